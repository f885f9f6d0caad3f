#!/usr/bin/env bash
# fsdialer load and switchio driving the same simulated switch at the same asked rate, one after the other.
#
# Usage: scripts/load-compare/run.sh RATE [SECS] [SPEED] [HOLD_SIM_SEC]
#   RATE calls/s asked of both; SECS of placing (default 60); the simulator's SPEED (default 100) and the hold in
#   the switch's seconds (default 60, i.e. 0.6 s real at ×100). switchio counts its call duration from the
#   channel's creation (and `sched_hangup` takes whole seconds): it is given HOLD + 1 to cover the ringing
#   (0.2-1.5 s in fixtures/sim/load.toml). switchio stalls against a sped-up simulator (see README): compare at
#   SPEED 1 with a short hold.
# Needs target/release/fsdialer (cargo build --release) and, for switchio, SWITCHIO_PYTHON: a Python 3.6 with
# `pip install switchio six` (switchio 0.1.0a1 does not import on 3.7+); without it only fsdialer runs.
# Prints fsdialer's report, switchio's JSON line, and the simulator's CPU per call under each.
set -euo pipefail
rate=${1:?RATE}
secs=${2:-60}
speed=${3:-100}
hold=${4:-60}
root=$(cd "$(dirname "$0")/../.." && pwd)
bin=$root/target/release/fsdialer
out=${OUT:-$(mktemp -d)}
mkdir -p "$out"
tck=$(getconf CLK_TCK)

cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }

start_sim() {
  local port=$1
  "$bin" sim --listen "127.0.0.1:$port" --speed "$speed" --sessions-per-second 1000000 --max-sessions 1000000 \
    --heartbeat-sec 0 --scenario "$root/fixtures/sim/load.toml" >"$out/sim-$port.log" 2>&1 &
  sim_pid=$!
  for _ in $(seq 50); do grep -q listening "$out/sim-$port.log" && return; sleep 0.1; done
  echo "the simulator did not start: $(cat "$out/sim-$port.log")" >&2
  exit 1
}

port=$((20000 + RANDOM % 20000))
start_sim "$port"
before=$(cpu_ticks "$sim_pid")
"$bin" load --esl "127.0.0.1:$port" --dial-string 'sofia/gateway/gw1/{n}' --rate "$rate" --limit 1000000 \
  --duration "$secs" --hold "$hold" --speed "$speed" --quiet --report "$out/fsdialer.json"
after=$(cpu_ticks "$sim_pid")
kill "$sim_pid"; wait "$sim_pid" 2>/dev/null || true
placed=$(python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['calls']['placed'])" "$out/fsdialer.json")
echo "simulator CPU under fsdialer: $(( (after - before) * 1000000 / tck / placed )) µs per call"

if [ -n "${SWITCHIO_PYTHON:-}" ]; then
  port=$((20000 + RANDOM % 20000))
  start_sim "$port"
  before=$(cpu_ticks "$sim_pid")
  "$SWITCHIO_PYTHON" "$root/scripts/load-compare/switchio_load.py" 127.0.0.1 "$port" "$rate" 1000000 \
    "$((rate * secs))" "$((hold + 1))" 2>"$out/switchio.log" | tee "$out/switchio.json"
  after=$(cpu_ticks "$sim_pid")
  kill "$sim_pid"; wait "$sim_pid" 2>/dev/null || true
  placed=$(python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['placed'])" "$out/switchio.json")
  [ "$placed" -gt 0 ] && echo "simulator CPU under switchio: $(( (after - before) * 1000000 / tck / placed )) µs per call"
fi
echo "reports in $out"
