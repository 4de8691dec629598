#!/usr/bin/env bash
# Three silos on one Redis (Release builds, 127.0.0.1), loaded by LoadGen's mixed workload on private
# machines: one LoadGen through each silo in turn (its machines all placed there), then one LoadGen per
# silo at once, each on its own silo's machines. Prints each run's total and per-machine requests/s.
# Needs redis-server. On a 2-core machine the three silos and their LoadGens share two cores: the
# total shows what the cores allow, not what three machines would (docs/scale-out.md has the model).
set -u
cd "$(dirname "$0")/../.."
D=${DUR:-20s}; W=${WORKERS:-16}
dotnet build -c Release src/Api -v q -nologo >/dev/null && dotnet build -c Release tools/LoadGen -v q -nologo >/dev/null || exit 1
redis-server --port 16392 --save "" --appendonly no --daemonize yes >/dev/null
trap 'pkill -f "PageAlloc.Api.dll --urls http://127.0.0.1:1843"; redis-cli -p 16392 shutdown nosave >/dev/null 2>&1' EXIT
for i in 1 2 3; do
  (cd src/Api/bin/Release/net10.0 && Orleans__Clustering=Redis Orleans__Redis=127.0.0.1:16392 Orleans__AdvertisedAddress=127.0.0.1 \
    Orleans__SiloPort=1163$i Orleans__GatewayPort=0 Orleans__ClusterId=load$$ exec dotnet PageAlloc.Api.dll --urls http://127.0.0.1:1843$i) > /tmp/silo-$i.log 2>&1 &
done
for i in 1 2 3; do for _ in $(seq 100); do curl -sf http://127.0.0.1:1843$i/health/ready >/dev/null && break; sleep 0.3; done; done
loadgen() { dotnet tools/LoadGen/bin/Release/net10.0/PageAlloc.LoadGen.dll --url http://127.0.0.1:$1 --workload mixed --machines $2 \
  --concurrency $W --duration $D --no-progress --json; }
rate() { python3 -c "import json,sys; r=json.load(sys.stdin); print(round(r['requestsPerSecond']), 'errors', r['errors'])"; }
for i in 1 2 3; do loadgen 1843$i 2 >/dev/null; done # warm-up: JIT on every path of every silo
for i in 1 2 3; do echo "one LoadGen through silo $i alone (2 machines there): $(loadgen 1843$i 2 | rate) requests/s"; done
pids=(); for i in 1 2 3; do loadgen 1843$i 2 > /tmp/cluster-load-$i.json & pids+=($!); done; wait "${pids[@]}"
total=0; for i in 1 2 3; do r=$(rate < /tmp/cluster-load-$i.json); total=$((total + ${r%% *})); echo "  silo $i (its 2 machines): $r requests/s"; done
echo "three LoadGens, one per silo, at once: $total requests/s in total"
