#!/usr/bin/env bash
# alloc_pages + free_pages pairs over HTTP, 32 connections, 127.0.0.1 only, against two yardsticks
# run by the same wrk script in the same rounds:
#  - the framework floor (bench/HttpFloor): a bare minimal API with the same two routes and JSON
#    shapes, a pfn from a stack under a lock, nothing else. PageAlloc / floor is what a page call
#    costs beyond ASP.NET Core's own minimum (issue 27's target: 0.9 or more);
#  - GET /healthz on PageAlloc itself (the older yardstick, kept as a second line).
# The runs alternate in every round, their order rotating, so that all see the same machine; each
# round's ratios are printed, then the medians and their spread. Needs wrk (apt-get install wrk).
set -euo pipefail
cd "$(dirname "$0")/../.."
duration=${DURATION:-5s}
rounds=${ROUNDS:-10}
connections=${CONNECTIONS:-32}
port=${PORT:-8080}
floor_port=${FLOOR_PORT:-8090}
# Refuse a busy port: otherwise the numbers would be whatever already listens there, not this build.
for p in "$port" "$floor_port"; do
  if (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
    echo "bench/http/run.sh: something already listens on 127.0.0.1:$p; stop it or set PORT=/FLOOR_PORT=..." >&2
    exit 1
  fi
done
dotnet build -c Release src/Api -v q -nologo >/dev/null
dotnet build -c Release bench/HttpFloor -v q -nologo >/dev/null
# Run from the output folder so that appsettings.json (logging at Warning) is the content root's.
(cd src/Api/bin/Release/net10.0 && exec dotnet PageAlloc.Api.dll --urls "http://127.0.0.1:$port") >/tmp/pagealloc-bench.log 2>&1 &
server=$!
(cd bench/HttpFloor/bin/Release/net10.0 && exec dotnet PageAlloc.Bench.HttpFloor.dll --urls "http://127.0.0.1:$floor_port") >/tmp/pagealloc-floor.log 2>&1 &
floor=$!
trap 'kill $server $floor; wait $server $floor 2>/dev/null || true' EXIT
for p in "$port" "$floor_port"; do
  for _ in $(seq 50); do curl -sf "http://127.0.0.1:$p/healthz" >/dev/null && break; sleep 0.2; done
done
kill -0 "$server" 2>/dev/null || { echo "bench/http/run.sh: the server did not start (see /tmp/pagealloc-bench.log)" >&2; exit 1; }
kill -0 "$floor" 2>/dev/null || { echo "bench/http/run.sh: the floor did not start (see /tmp/pagealloc-floor.log)" >&2; exit 1; }

run() { wrk -t2 -c"$connections" -d"$1" --latency -s "bench/http/$2.lua" "http://127.0.0.1:$3"; }
# A process's CPU time (user + system, in clock ticks) from /proc: CPU per request is steadier than
# requests per second on a machine where wrk and the server share two cores.
ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
hz=$(getconf CLK_TCK)
# bc prints a value below 1 as ".901": give it its leading zero.
calc() { echo "$1" | bc | sed -e 's/^\./0./' -e 's/^-\./-0./'; }
# One measured run: "requests/s p99 server-CPU-µs-per-request".
measure() { # script port pid
  local t0 t1 out
  t0=$(ticks "$3"); out=$(run "$duration" "$1" "$2"); t1=$(ticks "$3")
  local rps p99 n
  rps=$(echo "$out" | awk '/Requests\/sec/ {print $2}')
  p99=$(echo "$out" | awk '$1 == "99%" {print $2}')
  n=$(echo "$out" | awk '/requests in/ {print $1}')
  echo "$rps $p99 $(calc "scale=1; ($t1 - $t0) * 1000000 / $hz / $n")"
}

# Warm-up: JIT, tiered compilation, connection pools.
run 5s alloc-free "$floor_port" >/dev/null; run 5s alloc-free "$port" >/dev/null; run 5s healthz "$port" >/dev/null

floor_ratios=(); floor_cpu_ratios=(); health_ratios=()
for r in $(seq "$rounds"); do
  # Rotate the order of the three runs from round to round.
  case $((r % 3)) in
    0) f=$(measure alloc-free "$floor_port" "$floor"); p=$(measure alloc-free "$port" "$server"); h=$(measure healthz "$port" "$server") ;;
    1) p=$(measure alloc-free "$port" "$server"); h=$(measure healthz "$port" "$server"); f=$(measure alloc-free "$floor_port" "$floor") ;;
    2) h=$(measure healthz "$port" "$server"); f=$(measure alloc-free "$floor_port" "$floor"); p=$(measure alloc-free "$port" "$server") ;;
  esac
  read -r frps fp99 fcpu <<<"$f"; read -r prps pp99 pcpu <<<"$p"; read -r hrps hp99 hcpu <<<"$h"
  fr=$(calc "scale=3; $prps / $frps"); fc=$(calc "scale=3; $fcpu / $pcpu"); hr=$(calc "scale=3; $prps / $hrps")
  floor_ratios+=("$fr"); floor_cpu_ratios+=("$fc"); health_ratios+=("$hr")
  echo "round $r: floor $frps req/s (p99 $fp99, $fcpu us/req), alloc+free $prps req/s (p99 $pp99, $pcpu us/req), healthz $hrps req/s; x floor $fr (CPU $fc), x healthz $hr"
done
median() { printf '%s\n' "$@" | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
spread() { printf '%s\n' "$@" | sort -n | awk 'NR==1 {lo=$1} {hi=$1} END {print lo "-" hi}'; }
echo "alloc+free x framework floor ($connections connections, $rounds rounds): median $(median "${floor_ratios[@]}") ($(spread "${floor_ratios[@]}")); server CPU per request, floor over PageAlloc: median $(median "${floor_cpu_ratios[@]}") ($(spread "${floor_cpu_ratios[@]}"))"
echo "alloc+free x GET /healthz: median $(median "${health_ratios[@]}") ($(spread "${health_ratios[@]}"))"
