#!/usr/bin/env bash
# The update benchmark: signed single-record RFC 2136 updates per second into
# a 100,000-record zone while dnsperf runs, and the query rate each server
# keeps under that load, cutover beside Knot DNS, one after the other.
#
#   bench/update.sh            (from the repository root; about 1 minute)
#
#   gen-zone.py ─▶ bench.zone (100k records) + queries.txt
#   for server in knot cutover (pinned to core 0, one UDP worker):
#       dnsperf alone, SECONDS_PER_RUN s (core 1)                      ─▶ QPS idle
#       dnsperf + knsupdate sending TSIG-signed updates back to back   ─▶ QPS under updates,
#         (one `update add uN.bench.test. A` per message, core 1)          updates/s
#   ─▶ ratios: QPS kept under updates (each server), cutover / Knot
#   then the same with UPDATERS (8) knsupdate processes at once, each its own
#   names (wK-N): what group commit is for (cutover commits what is queued
#   in one transaction and one fsync; Knot also applies queued updates
#   together)
#
# Updates applied are counted from the zone: names uN are added in order, so
# the highest N served (found by bisection with kdig) is the count. Every
# process started here is killed on exit. Knobs: SECONDS_PER_RUN (10),
# RECORDS (100000), UPDATERS (8; 0 skips the concurrent runs), KEEP=1 keeps
# the work directory.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
SECONDS_PER_RUN=${SECONDS_PER_RUN:-10}
RECORDS=${RECORDS:-100000}
ORIGIN=bench.test.
KEY_NAME=bench-update.
KEY_SECRET=q1SXa5nV3l9Mz7K0EYXlPjxfDt6vNfV9v0k1b7GHHgY=
MAX_UPDATES=200000
UPDATERS=${UPDATERS:-8}
WORK=$(mktemp -d /tmp/cutover-update-bench.XXXXXX)

source "$ROOT/bench/lib.sh"
clean_up_on_exit
need_tools knotd kdig knsupdate dnsperf taskset python3 cargo timeout
[[ $(nproc) -ge 2 ]] || die "needs two cores (server on 0, load on 1)"

# Runs dnsperf against port $1 on core 1; prints its QPS.
run_dnsperf() {
    local port=$1 out qps
    out=$(taskset -c 1 dnsperf -s 127.0.0.1 -p "$port" -d "$WORK/zone/queries.txt" \
        -c 8 -T 1 -q 256 -l "$SECONDS_PER_RUN" -t 2 2>&1)
    qps=$(awk '/Queries per second:/ { printf "%.0f", $4 }' <<<"$out")
    [[ -n "$qps" ]] || { echo "$out" >&2; die "dnsperf gave no result"; }
    echo "$qps"
}

# The highest N for which ${2:-u}N.$ORIGIN is served on port $1 (0 when none).
updates_applied() {
    local port=$1 prefix=${2:-u} lo=0 hi=$MAX_UPDATES mid
    while ((lo < hi)); do
        mid=$(((lo + hi + 1) / 2))
        if kdig +short +timeout=2 +retry=1 @127.0.0.1 -p "$port" "$prefix$mid.$ORIGIN" A | grep -q .; then
            lo=$mid
        else
            hi=$((mid - 1))
        fi
    done
    echo "$lo"
}

# dnsperf and back-to-back signed updates together against port $1; prints
# "qps updates_per_second".
run_with_updates() {
    local port=$1 updater qps applied
    sed "s/PORT/$port/" "$WORK/updates.txt" >"$WORK/updates.$port.txt"
    timeout "$SECONDS_PER_RUN" taskset -c 1 knsupdate -y "hmac-sha256:$KEY_NAME:$KEY_SECRET" \
        "$WORK/updates.$port.txt" >/dev/null 2>&1 &
    updater=$!
    PIDS+=("$updater")
    qps=$(run_dnsperf "$port")
    wait "$updater" 2>/dev/null || true
    sleep 1
    applied=$(updates_applied "$port")
    echo "$qps $(awk -v n="$applied" -v s="$SECONDS_PER_RUN" 'BEGIN { printf "%.1f", n / s }')"
}

# dnsperf and $UPDATERS updaters at once against port $1, each sending its
# own names back to back; prints "qps updates_per_second" (all updaters).
run_with_concurrent_updates() {
    local port=$1 k qps applied=0 updaters=()
    for ((k = 1; k <= UPDATERS; k++)); do
        sed -e "s/PORT/$port/" -e "s/ u\([0-9]*\)\./ w$k-\1./" "$WORK/updates.txt" >"$WORK/updates.$port.$k.txt"
        timeout "$SECONDS_PER_RUN" taskset -c 1 knsupdate -y "hmac-sha256:$KEY_NAME:$KEY_SECRET" \
            "$WORK/updates.$port.$k.txt" >/dev/null 2>&1 &
        updaters+=($!)
        PIDS+=($!)
    done
    qps=$(run_dnsperf "$port")
    for pid in "${updaters[@]}"; do wait "$pid" 2>/dev/null || true; done
    sleep 1
    for ((k = 1; k <= UPDATERS; k++)); do
        applied=$((applied + $(updates_applied "$port" "w$k-")))
    done
    echo "$qps $(awk -v n="$applied" -v s="$SECONDS_PER_RUN" 'BEGIN { printf "%.1f", n / s }')"
}

echo "== building cutover (release)"
(cd "$ROOT" && cargo build --release -q -p cutover)
CUTOVER_BIN="${CARGO_TARGET_DIR:-$ROOT/target}/release/cutover"
[[ -x "$CUTOVER_BIN" ]] || die "no binary at $CUTOVER_BIN"

echo "== generating a $RECORDS-record zone and $MAX_UPDATES updates"
python3 "$ROOT/bench/gen-zone.py" "$RECORDS" "$WORK/zone" --origin "$ORIGIN"
python3 - "$WORK/updates.txt" "$MAX_UPDATES" "$ORIGIN" <<'EOF'
import sys
path, count, origin = sys.argv[1], int(sys.argv[2]), sys.argv[3]
with open(path, "w") as out:
    out.write(f"server 127.0.0.1 PORT\nzone {origin}\n")
    for i in range(1, count + 1):
        out.write(f"update add u{i}.{origin} 300 A 10.{i >> 16 & 255}.{i >> 8 & 255}.{i & 255}\nsend\n")
EOF

# knotd with the key allowed to update, journal on (updates need it).
start_knot() {
    local port=$1 dir
    dir=$(mktemp -d "$WORK/knot.XXXXXX")
    cp "$WORK/zone/bench.zone" "$dir/bench.zone"
    {
        knot_server_conf "$dir" "$port"
        cat <<EOF
key:
  - id: $KEY_NAME
    algorithm: hmac-sha256
    secret: $KEY_SECRET
acl:
  - id: update
    key: $KEY_NAME
    action: update
zone:
  - domain: $ORIGIN
    storage: "$dir"
    file: "$dir/bench.zone"
    zonefile-sync: -1
    semantic-checks: off
    acl: update
EOF
    } >"$dir/knot.conf"
    taskset -c 0 knotd -c "$dir/knot.conf" 2>"$dir/knotd.log" &
    SERVER_PID=$!
    PIDS+=("$SERVER_PID")
}

# cutover serve with the key allowed to update the zone.
start_cutover() {
    local port=$1 dir
    dir=$(mktemp -d "$WORK/cutover.XXXXXX")
    cat >"$dir/cutover.toml" <<EOF
store = "$dir/cutover.db"

[dns]
listen = ["127.0.0.1:$port"]
udp_workers = 1

[[key]]
name = "$KEY_NAME"
algorithm = "hmac-sha256"
secret = "$KEY_SECRET"

[[zone]]
name = "$ORIGIN"
update_keys = ["$KEY_NAME"]
EOF
    "$CUTOVER_BIN" --config "$dir/cutover.toml" zone import "$WORK/zone/bench.zone" --origin "$ORIGIN" >/dev/null
    RUST_LOG=warn taskset -c 0 "$CUTOVER_BIN" --config "$dir/cutover.toml" serve 2>"$dir/serve.log" &
    SERVER_PID=$!
    PIDS+=("$SERVER_PID")
}

declare -A IDLE LOADED RATE CLOADED CRATE
for server in knot cutover; do
    port=$(free_port)
    echo "== $server"
    "start_$server" "$port"
    wait_for_answer "$port" 120
    IDLE[$server]=$(run_dnsperf "$port")
    read -r LOADED[$server] RATE[$server] < <(run_with_updates "$port")
    if ((UPDATERS > 0)); then
        read -r CLOADED[$server] CRATE[$server] < <(run_with_concurrent_updates "$port")
        printf '   with %s updaters at once: QPS %s, updates/s %s\n' "$UPDATERS" \
            "${CLOADED[$server]}" "${CRATE[$server]}"
    fi
    stop_server
    printf '   QPS alone %s, QPS under updates %s, updates/s %s\n' \
        "${IDLE[$server]}" "${LOADED[$server]}" "${RATE[$server]}"
done

echo
echo "== results ($RECORDS records, ${SECONDS_PER_RUN}s per run, server on core 0, load on core 1)"
printf '%-8s %12s %16s %10s %14s\n' server "QPS alone" "QPS w/ updates" "kept" "updates/s"
for server in knot cutover; do
    printf '%-8s %12s %16s %9s%% %14s\n' "$server" "${IDLE[$server]}" "${LOADED[$server]}" \
        "$(awk -v a="${LOADED[$server]}" -v b="${IDLE[$server]}" 'BEGIN { printf "%.0f", 100 * a / b }')" \
        "${RATE[$server]}"
done
awk -v cq="${LOADED[cutover]}" -v kq="${LOADED[knot]}" -v cu="${RATE[cutover]}" -v ku="${RATE[knot]}" 'BEGIN {
    printf "cutover / knot: QPS under updates %.2f, updates/s %.3f\n", cq / kq, (ku > 0 ? cu / ku : 0) }'
if ((UPDATERS > 0)); then
    echo
    echo "== with $UPDATERS updaters at once"
    printf '%-8s %16s %10s %14s\n' server "QPS w/ updates" "kept" "updates/s"
    for server in knot cutover; do
        printf '%-8s %16s %9s%% %14s\n' "$server" "${CLOADED[$server]}" \
            "$(awk -v a="${CLOADED[$server]}" -v b="${IDLE[$server]}" 'BEGIN { printf "%.0f", 100 * a / b }')" \
            "${CRATE[$server]}"
    done
    awk -v cq="${CLOADED[cutover]}" -v kq="${CLOADED[knot]}" -v cu="${CRATE[cutover]}" -v ku="${CRATE[knot]}" 'BEGIN {
        printf "cutover / knot with %d updaters: QPS under updates %.2f, updates/s %.3f\n", '"$UPDATERS"', cq / kq, (ku > 0 ? cu / ku : 0) }'
fi
