#!/usr/bin/env bash
# Run with Release builds of both (BASE=a worktree of the build to compare with), nothing else on the machine. Figures: docs/results.md.
# Alternating rounds: base (before Orleans), new with the local shortcut, new with every request through a grain call,
# then a forwarded path (two silos on Redis: the machine on A, requests through B), same wrk script.
set -u
cd "$(dirname "$0")/../.."
R=${ROUNDS:-5}; D=${DUR:-5s}
start() { # dir port extra-env...
  local dir=$1 port=$2; shift 2
  (cd $dir/src/Api/bin/Release/net10.0 && env "$@" dotnet PageAlloc.Api.dll --urls http://127.0.0.1:$port > /tmp/srv-$port.log 2>&1) &
  for _ in $(seq 100); do curl -sf http://127.0.0.1:$port/health/ready >/dev/null && break; sleep 0.2; done
}
start "${BASE:?BASE=a worktree of the build to compare with, built -c Release}" 18401 Orleans__SiloPort=11601
start . 18402 Orleans__SiloPort=11602 Orleans__GatewayPort=0
start . 18403 Orleans__SiloPort=11603 Orleans__GatewayPort=0 Orleans__LocalShortcut=false
rps() { wrk -t1 -c32 -d$2 -s bench/http/alloc-free.lua http://127.0.0.1:$1 | awk '/Requests\/sec/ {print $2}'; }
lat() { wrk -t1 -c32 -d$2 --latency -s bench/http/alloc-free.lua http://127.0.0.1:$1 | awk '$1=="50%"||$1=="99%" {printf "%s=%s ", $1, $2}'; }
for p in 18401 18402 18403; do rps $p 3s >/dev/null; done
for r in $(seq $R); do
  b=$(rps 18401 $D); l=$(rps 18402 $D); g=$(rps 18403 $D)
  echo "round $r: base $b local $l grain $g  local/base $(echo "scale=3; $l/$b" | bc) grain/base $(echo "scale=3; $g/$b" | bc)"
done
echo "latency base: $(lat 18401 5s) local: $(lat 18402 5s) grain: $(lat 18403 5s)"
pkill -f "PageAlloc.Api.dll --urls http://127.0.0.1:1840" ; sleep 2
# forwarded: two silos on a Redis
redis-server --port 16390 --save "" --appendonly no --daemonize yes >/dev/null
start . 18411 Orleans__Clustering=Redis Orleans__Redis=127.0.0.1:16390 Orleans__AdvertisedAddress=127.0.0.1 Orleans__SiloPort=11611 Orleans__GatewayPort=0 Orleans__ClusterId=bench$$
start . 18412 Orleans__Clustering=Redis Orleans__Redis=127.0.0.1:16390 Orleans__AdvertisedAddress=127.0.0.1 Orleans__SiloPort=11612 Orleans__GatewayPort=0 Orleans__ClusterId=bench$$
curl -s -XPOST http://127.0.0.1:18411/machines -H 'content-type: application/json' -d '{"name":"bench"}' >/dev/null
for p in 18411 18412; do MACHINE=bench wrk -t1 -c32 -d3s -s bench/http/alloc-free.lua http://127.0.0.1:$p >/dev/null; done
for r in $(seq $R); do
  a=$(MACHINE=bench wrk -t1 -c32 -d$D -s bench/http/alloc-free.lua http://127.0.0.1:18411 | awk '/Requests\/sec/ {print $2}')
  f=$(MACHINE=bench wrk -t1 -c32 -d$D -s bench/http/alloc-free.lua http://127.0.0.1:18412 | awk '/Requests\/sec/ {print $2}')
  echo "round $r: on its silo $a, forwarded $f, forwarded/local $(echo "scale=3; $f/$a" | bc)"
done
echo "latency on its silo: $(MACHINE=bench wrk -t1 -c32 -d5s --latency -s bench/http/alloc-free.lua http://127.0.0.1:18411 | awk '$1=="50%"||$1=="99%" {printf "%s=%s ", $1, $2}') forwarded: $(MACHINE=bench wrk -t1 -c32 -d5s --latency -s bench/http/alloc-free.lua http://127.0.0.1:18412 | awk '$1=="50%"||$1=="99%" {printf "%s=%s ", $1, $2}')"
curl -s http://127.0.0.1:18412/machines/bench | python3 -c "import json,sys; print('durability', json.load(sys.stdin)['durability'])"
pkill -f "PageAlloc.Api.dll --urls http://127.0.0.1:184" ; redis-cli -p 16390 shutdown nosave >/dev/null 2>&1
