#!/usr/bin/env bash
# Queries while a zone is transferred: the latency of plain UDP queries at a
# steady rate, alone and while AXFRs of a 100,000-record zone run back to
# back, cutover beside Knot DNS, one after the other.
#
#   bench/transfer.sh          (from the repository root; about 1 minute)
#
#   gen-zone.py ─▶ bench.zone (RECORDS records) + queries.txt
#   for server in knot cutover (pinned to core 0, one UDP worker):
#       dnsperf at RATE queries/s, SECONDS_PER_RUN s, every query's time (-v)  ─▶ p50, p99 alone
#       the same with `kdig AXFR` in a loop beside it (core 1)                  ─▶ p50, p99 during AXFRs,
#                                                                                  transfers done
#   ─▶ p99 during / alone (each server), cutover / Knot
#
# Knobs: SECONDS_PER_RUN (10), RECORDS (100000), RATE (5000), CUTOVER_BIN
# (a binary to measure instead of the release build), KEEP=1 keeps the work
# directory. Every process started here is killed on exit.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
SECONDS_PER_RUN=${SECONDS_PER_RUN:-10}
RECORDS=${RECORDS:-100000}
RATE=${RATE:-5000}
ORIGIN=bench.test.
WORK=$(mktemp -d /tmp/cutover-transfer-bench.XXXXXX)

source "$ROOT/bench/lib.sh"
clean_up_on_exit
need_tools knotd kdig dnsperf taskset python3 cargo timeout
[[ $(nproc) -ge 2 ]] || die "needs two cores (server on 0, load on 1)"

# dnsperf at RATE against port $1 (core 1), every query's time kept;
# prints "p50_ms p99_ms lost".
run_timed() {
    local port=$1 out
    out=$(taskset -c 1 dnsperf -s 127.0.0.1 -p "$port" -d "$WORK/zone/queries.txt" \
        -c 4 -T 1 -Q "$RATE" -l "$SECONDS_PER_RUN" -t 2 -v 2>&1)
    python3 -c '
import sys
times = []
lost = 0
for line in sys.stdin:
    parts = line.split()
    if line.startswith("> ") and len(parts) >= 5:
        times.append(float(parts[-1]) * 1000)
    elif line.startswith("[Timeout]"):
        lost += 1
    elif "Queries lost:" in line:
        lost = int(line.split()[2])
if not times:
    sys.exit("dnsperf gave no timed queries")
times.sort()
pick = lambda p: times[min(len(times) - 1, int(p / 100 * len(times)))]
print("%.3f %.3f %d" % (pick(50), pick(99), lost))
' <<<"$out"
}

# AXFRs of the zone from port $1 back to back (core 1) for SECONDS_PER_RUN;
# prints how many completed.
transfer_loop() {
    local port=$1 done=0 end=$((SECONDS + SECONDS_PER_RUN))
    while ((SECONDS < end)); do
        if taskset -c 1 kdig +timeout=10 +retry=0 @127.0.0.1 -p "$port" "$ORIGIN" AXFR 2>/dev/null |
            grep -c "IN[[:space:]]SOA" | grep -q '^2$'; then
            done=$((done + 1))
        fi
    done
    echo "$done"
}

if [[ -z "${CUTOVER_BIN:-}" ]]; then
    echo "== building cutover (release)"
    (cd "$ROOT" && cargo build --release -q -p cutover)
    CUTOVER_BIN="${CARGO_TARGET_DIR:-$ROOT/target}/release/cutover"
fi
[[ -x "$CUTOVER_BIN" ]] || die "no binary at $CUTOVER_BIN"

echo "== generating a $RECORDS-record zone"
python3 "$ROOT/bench/gen-zone.py" "$RECORDS" "$WORK/zone" --origin "$ORIGIN" >/dev/null

# knotd serving the zone, transfers allowed from loopback.
start_knot() {
    local port=$1 dir
    dir=$(mktemp -d "$WORK/knot.XXXXXX")
    cp "$WORK/zone/bench.zone" "$dir/bench.zone"
    {
        knot_server_conf "$dir" "$port"
        cat <<EOF
acl:
  - id: transfer
    address: 127.0.0.1
    action: transfer
zone:
  - domain: $ORIGIN
    storage: "$dir"
    file: "$dir/bench.zone"
    zonefile-sync: -1
    semantic-checks: off
    acl: transfer
EOF
    } >"$dir/knot.conf"
    taskset -c 0 knotd -c "$dir/knot.conf" 2>"$dir/knotd.log" &
    SERVER_PID=$!
    PIDS+=("$SERVER_PID")
}

# cutover serve, transfers allowed from loopback.
start_cutover() {
    local port=$1 dir
    dir=$(mktemp -d "$WORK/cutover.XXXXXX")
    cat >"$dir/cutover.toml" <<EOF
store = "$dir/cutover.db"

[dns]
listen = ["127.0.0.1:$port"]
udp_workers = 1

[[zone]]
name = "$ORIGIN"
transfer_from = ["127.0.0.1/32"]
EOF
    "$CUTOVER_BIN" --config "$dir/cutover.toml" zone import "$WORK/zone/bench.zone" --origin "$ORIGIN" >/dev/null
    RUST_LOG=warn taskset -c 0 "$CUTOVER_BIN" --config "$dir/cutover.toml" serve 2>"$dir/serve.log" &
    SERVER_PID=$!
    PIDS+=("$SERVER_PID")
}

declare -A ALONE DURING XFRS
for server in knot cutover; do
    port=$(free_port)
    echo "== $server"
    "start_$server" "$port"
    wait_for_answer "$port" 120
    ALONE[$server]=$(run_timed "$port")
    transfer_loop "$port" >"$WORK/xfrs.$server" &
    loop=$!
    PIDS+=("$loop")
    DURING[$server]=$(run_timed "$port")
    wait "$loop" 2>/dev/null || true
    XFRS[$server]=$(cat "$WORK/xfrs.$server")
    stop_server
    printf '   alone: p50 p99 lost = %s; during AXFRs: %s; AXFRs done: %s\n' \
        "${ALONE[$server]}" "${DURING[$server]}" "${XFRS[$server]}"
done

echo
echo "== results ($RECORDS records, $RATE queries/s, ${SECONDS_PER_RUN}s per run, server on core 0, load on core 1)"
echo "== load: $(cut -d' ' -f1-3 /proc/loadavg) (1, 5, 15 min)"
printf '%-8s %12s %12s %14s %14s %8s %8s\n' server "p50 alone" "p99 alone" "p50 w/ AXFR" "p99 w/ AXFR" "lost" "AXFRs"
for server in knot cutover; do
    read -r a50 a99 _ <<<"${ALONE[$server]}"
    read -r d50 d99 lost <<<"${DURING[$server]}"
    printf '%-8s %9s ms %9s ms %11s ms %11s ms %8s %8s\n' "$server" "$a50" "$a99" "$d50" "$d99" "$lost" "${XFRS[$server]}"
done
read -r _ ka99 _ <<<"${ALONE[knot]}"
read -r _ kd99 _ <<<"${DURING[knot]}"
read -r _ ca99 _ <<<"${ALONE[cutover]}"
read -r _ cd99 _ <<<"${DURING[cutover]}"
awk -v ka="$ka99" -v kd="$kd99" -v ca="$ca99" -v cd="$cd99" 'BEGIN {
    printf "p99 during AXFRs / alone: knot %.2f, cutover %.2f; cutover / knot p99 during AXFRs %.2f\n", kd / ka, cd / ca, cd / kd }'
