#!/usr/bin/env bash
# Requests per second of alloc_pages + free_pages pairs against GET /healthz on the same Release
# server, 32 connections, 127.0.0.1 only. The two alternate for ROUNDS rounds so that both see the
# same machine; each round's ratio is printed, then the median. Needs wrk (apt-get install wrk).
set -euo pipefail
cd "$(dirname "$0")/../.."
duration=${DURATION:-5s}
rounds=${ROUNDS:-5}
connections=${CONNECTIONS:-32}
port=${PORT:-8080}
# Refuse a busy port: otherwise the numbers would be whatever already listens there, not this build.
if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
  echo "bench/http/run.sh: something already listens on 127.0.0.1:$port; stop it or set PORT=..." >&2
  exit 1
fi
dotnet build -c Release src/Api -v q -nologo >/dev/null
# Run from the output folder so that appsettings.json (logging at Warning) is the content root's.
(cd src/Api/bin/Release/net10.0 && exec dotnet PageAlloc.Api.dll --urls "http://127.0.0.1:$port") >/tmp/pagealloc-bench.log 2>&1 &
server=$!
trap 'kill $server; wait $server 2>/dev/null || true' EXIT
for _ in $(seq 50); do curl -sf "http://127.0.0.1:$port/healthz" >/dev/null && break; sleep 0.2; done
kill -0 "$server" 2>/dev/null || { echo "bench/http/run.sh: the server did not start (see /tmp/pagealloc-bench.log)" >&2; exit 1; }

run() { wrk -t2 -c"$connections" -d"$1" --latency -s "bench/http/$2.lua" "http://127.0.0.1:$port"; }
# The server's CPU time (user + system, in clock ticks) from /proc: CPU per request is steadier than
# requests per second on a machine where wrk and the server share two cores.
ticks() { awk '{print $14 + $15}' "/proc/$server/stat"; }
hz=$(getconf CLK_TCK)
# bc prints a value below 1 as ".901": give it its leading zero.
calc() { echo "$1" | bc | sed -e 's/^\./0./' -e 's/^-\./-0./'; }
cpu_us() { calc "scale=1; ($2 - $1) * 1000000 / $hz / $3"; } # before, after, requests

run 5s healthz >/dev/null # warm-up: JIT, tiered compilation, connection pools
run 5s alloc-free >/dev/null

ratios=()
cpu_ratios=()
for r in $(seq "$rounds"); do
  t0=$(ticks)
  health=$(run "$duration" healthz)
  t1=$(ticks)
  pairs=$(run "$duration" alloc-free)
  t2=$(ticks)
  h=$(echo "$health" | awk '/Requests\/sec/ {print $2}')
  p=$(echo "$pairs" | awk '/Requests\/sec/ {print $2}')
  hp99=$(echo "$health" | awk '$1 == "99%" {print $2}')
  pp99=$(echo "$pairs" | awk '$1 == "99%" {print $2}')
  hn=$(echo "$health" | awk '/requests in/ {print $1}')
  pn=$(echo "$pairs" | awk '/requests in/ {print $1}')
  hcpu=$(cpu_us "$t0" "$t1" "$hn")
  pcpu=$(cpu_us "$t1" "$t2" "$pn")
  ratio=$(calc "scale=3; $p / $h")
  cpu_ratio=$(calc "scale=3; $hcpu / $pcpu")
  ratios+=("$ratio")
  cpu_ratios+=("$cpu_ratio")
  echo "round $r: healthz $h req/s (p99 $hp99, server CPU $hcpu us/req), alloc+free $p req/s (p99 $pp99, $pcpu us/req), ratio $ratio, CPU ratio $cpu_ratio"
done
median() { printf '%s\n' "$@" | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
echo "median ratio (alloc/free requests per second over healthz, $connections connections): $(median "${ratios[@]}")"
echo "median CPU ratio (healthz server CPU per request over alloc/free's): $(median "${cpu_ratios[@]}")"
