#!/usr/bin/env bash
# The nameserver benchmark: cutover against Knot DNS on the same zone, the
# same queries and the same cores, one after the other.
#
#   bench/nameserver.sh            (from the repository root; about 2 minutes)
#
#   gen-zone.py ─▶ bench.zone (100k records) + queries.txt (90% hits, 10% NXDOMAIN)
#   for server in knot cutover:
#       start it pinned to core 0 (one UDP worker), wait until it answers
#       dnsperf   pinned to core 1, 10 s  ─▶ QPS, average latency, CPU/1k answers
#       udp_blast pinned to core 1, 10 s  ─▶ QPS, p50/p99 latency, CPU/1k answers
#   then each server alone on a 1,000,000-record zone ─▶ VmHWM after its first answer
#
# CPU per 1,000 answers = (utime+stime of the server from /proc/PID/stat, after
# minus before) / answered queries * 1000. Every process started here is
# killed on exit (trap). Environment knobs: SECONDS_PER_RUN (10), RECORDS
# (100000), BIG_RECORDS (1000000), KEEP=1 keeps the work directory.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
SECONDS_PER_RUN=${SECONDS_PER_RUN:-10}
RECORDS=${RECORDS:-100000}
BIG_RECORDS=${BIG_RECORDS:-1000000}
ORIGIN=bench.test.
WORK=$(mktemp -d /tmp/cutover-bench.XXXXXX)
CLK_TCK=$(getconf CLK_TCK)
source "$ROOT/bench/lib.sh"
clean_up_on_exit
need_tools knotd kdig dnsperf taskset gcc python3 cargo
[[ $(nproc) -ge 2 ]] || die "needs two cores (server on 0, load on 1)"

# utime+stime of a process, in clock ticks.
cpu_ticks() {
    awk '{ print $14 + $15 }' "/proc/$1/stat"
}

# VmHWM of a process, in KiB.
peak_kib() {
    awk '/^VmHWM:/ { print $2 }' "/proc/$1/status"
}

# Percent of both cores busy over one second (other work skews every figure).
busy_percent() {
    local a b
    a=$(awk '/^cpu / { print $2 + $3 + $4 + $7 + $8, $5 + $6 }' /proc/stat)
    sleep 1
    b=$(awk '/^cpu / { print $2 + $3 + $4 + $7 + $8, $5 + $6 }' /proc/stat)
    awk -v a="$a" -v b="$b" 'BEGIN { split(a, x, " "); split(b, y, " "); busy = y[1] - x[1]; idle = y[2] - x[2];
        printf "%.0f", 100 * busy / (busy + idle) }'
}

echo "== building"
(cd "$ROOT" && cargo build --release -q -p cutover-nameserver --example serve_zone)
SERVE_ZONE="${CARGO_TARGET_DIR:-$ROOT/target}/release/examples/serve_zone"
CUTOVER_BIN=""
if (cd "$ROOT" && cargo build --release -q -p cutover 2>/dev/null); then
    CUTOVER_BIN="${CARGO_TARGET_DIR:-$ROOT/target}/release/cutover"
fi
gcc -O2 -o "$WORK/udp_blast" /work/shared/tools/udp_blast.c
UDP_BLAST="$WORK/udp_blast"

echo "== generating zones ($RECORDS and $BIG_RECORDS records)"
python3 "$ROOT/bench/gen-zone.py" "$RECORDS" "$WORK/zone" --origin "$ORIGIN"
python3 "$ROOT/bench/gen-zone.py" "$BIG_RECORDS" "$WORK/big" --origin "$ORIGIN" --queries 10

# Starts knotd on zone file $1 and port $2, pinned to core 0; sets SERVER_PID.
start_knot() {
    local zonefile=$1 port=$2 dir
    dir=$(mktemp -d "$WORK/knot.XXXXXX")
    cp "$zonefile" "$dir/bench.zone"
    {
        knot_server_conf "$dir" "$port"
        cat <<EOF
template:
  - id: default
    storage: "$dir"
    journal-content: none
    zonefile-sync: -1
    semantic-checks: off
zone:
  - domain: $ORIGIN
    file: "$dir/bench.zone"
EOF
    } >"$dir/knot.conf"
    STARTED=$(date +%s.%N)
    taskset -c 0 knotd -c "$dir/knot.conf" 2>"$dir/knotd.log" &
    SERVER_PID=$!
    PIDS+=("$SERVER_PID")
}

# Starts cutover on zone file $1 and port $2, pinned to core 0; sets
# SERVER_PID and SERVER_HOW. Uses `cutover serve` when the CLI can import the
# zone, else the serve_zone example.
start_cutover() {
    local zonefile=$1 port=$2 dir
    dir=$(mktemp -d "$WORK/cutover.XXXXXX")
    cat >"$dir/cutover.toml" <<EOF
store = "$dir/cutover.db"

[dns]
listen = ["127.0.0.1:$port"]
udp_workers = 1

[[zone]]
name = "$ORIGIN"
EOF
    if [[ -n "$CUTOVER_BIN" ]] &&
        "$CUTOVER_BIN" --config "$dir/cutover.toml" zone import "$zonefile" --origin "$ORIGIN" >"$dir/import.log" 2>&1; then
        SERVER_HOW="cutover serve"
        STARTED=$(date +%s.%N)
        taskset -c 0 "$CUTOVER_BIN" --config "$dir/cutover.toml" serve 2>"$dir/serve.log" &
    else
        SERVER_HOW="examples/serve_zone (cutover CLI not usable: $(tail -1 "$dir/import.log" 2>/dev/null || echo 'did not build'))"
        STARTED=$(date +%s.%N)
        taskset -c 0 "$SERVE_ZONE" "$zonefile" "$ORIGIN" "127.0.0.1:$port" 1 2>"$dir/serve.log" &
    fi
    SERVER_PID=$!
    PIDS+=("$SERVER_PID")
}

# Runs dnsperf against port $1 for server pid $2; prints "qps avg_ms cpu_per_1k completed".
run_dnsperf() {
    local port=$1 pid=$2 before after out qps avg done
    before=$(cpu_ticks "$pid")
    out=$(taskset -c 1 dnsperf -s 127.0.0.1 -p "$port" -d "$WORK/zone/queries.txt" \
        -c 8 -T 1 -q 256 -l "$SECONDS_PER_RUN" -t 2 2>&1)
    after=$(cpu_ticks "$pid")
    qps=$(awk '/Queries per second:/ { printf "%.0f", $4 }' <<<"$out")
    avg=$(awk '/Average Latency \(s\):/ { printf "%.3f", $4 * 1000 }' <<<"$out")
    done=$(awk '/Queries completed:/ { print $3 }' <<<"$out")
    [[ -n "$qps" && -n "$done" && "$done" -gt 0 ]] || { echo "$out" >&2; die "dnsperf gave no result"; }
    echo "$qps $avg $(awk -v t=$((after - before)) -v hz="$CLK_TCK" -v n="$done" 'BEGIN { printf "%.2f", t / hz * 1000 / n * 1000 }') $done"
}

# Runs udp_blast against port $1 for server pid $2; prints "qps p50_us p99_us cpu_per_1k recv rcodes".
run_blast() {
    local port=$1 pid=$2 before after out
    before=$(cpu_ticks "$pid")
    out=$(taskset -c 1 "$UDP_BLAST" -p "$port" -d "$WORK/zone/queries.txt" -l "$SECONDS_PER_RUN")
    after=$(cpu_ticks "$pid")
    field() { tr ' ' '\n' <<<"$out" | awk -F= -v k="$1" '$1 == k { print $2 }'; }
    local recv qps
    recv=$(field recv)
    qps=$(field qps)
    [[ -n "$recv" && "$recv" -gt 0 ]] || { echo "$out" >&2; die "udp_blast got no answers"; }
    echo "$qps $(field p50_us) $(field p99_us) $(awk -v t=$((after - before)) -v hz="$CLK_TCK" -v n="$recv" 'BEGIN { printf "%.2f", t / hz * 1000 / n * 1000 }') $recv noerror=$(field noerror),nxdomain=$(field nxdomain),other=$(field other)"
}

BUSY=$(busy_percent)
if [[ $BUSY -gt 10 ]]; then
    echo "WARNING: the machine is ${BUSY}% busy before the benchmark; figures will be skewed" >&2
fi

declare -A RESULT
for server in knot cutover; do
    port=$(free_port)
    echo "== $server: $RECORDS records, port $port"
    if [[ $server == knot ]]; then start_knot "$WORK/zone/bench.zone" "$port"; SERVER_HOW="knotd $(knotd -V | awk '{ print $NF }')";
    else start_cutover "$WORK/zone/bench.zone" "$port"; fi
    wait_for_answer "$port" 120
    echo "   served by: $SERVER_HOW"
    echo "   sample: $(kdig +noall +answer +comments @127.0.0.1 -p "$port" "$(head -1 "$WORK/zone/queries.txt" | cut -d' ' -f1)" "$(head -1 "$WORK/zone/queries.txt" | cut -d' ' -f2)" | grep -E 'status|IN' | head -3 | tr -s ' \t' ' ' | paste -sd'|')"
    RESULT[$server.dnsperf]=$(run_dnsperf "$port" "$SERVER_PID")
    echo "   dnsperf:   qps avg_ms cpu_ms_per_1k answered = ${RESULT[$server.dnsperf]}"
    RESULT[$server.blast]=$(run_blast "$port" "$SERVER_PID")
    echo "   udp_blast: qps p50_us p99_us cpu_ms_per_1k answered rcodes = ${RESULT[$server.blast]}"
    stop_server
done

for server in knot cutover; do
    port=$(free_port)
    echo "== $server: $BIG_RECORDS records, peak memory"
    if [[ $server == knot ]]; then start_knot "$WORK/big/bench.zone" "$port"; else start_cutover "$WORK/big/bench.zone" "$port"; fi
    wait_for_answer "$port" 600
    loaded=$(awk -v a="$STARTED" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }')
    RESULT[$server.hwm]=$(peak_kib "$SERVER_PID")
    RESULT[$server.load]=$loaded
    echo "   VmHWM ${RESULT[$server.hwm]} KiB, first answer ${loaded}s after the server process started"
    stop_server
done

# Field $2 of result $1.
f() { awk -v i="$2" '{ print $i }' <<<"${RESULT[$1]}"; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "n/a" }'; }

echo
echo "== report ($RECORDS-record zone, servers on core 0 with one UDP worker, load on core 1, ${SECONDS_PER_RUN}s runs)"
printf '%-34s %14s %14s %10s\n' "" "knot" "cutover" "cutover/knot"
row() { printf '%-34s %14s %14s %10s\n' "$1" "$2" "$3" "$(ratio "$3" "$2")"; }
row "dnsperf QPS" "$(f knot.dnsperf 1)" "$(f cutover.dnsperf 1)"
row "dnsperf average latency (ms)" "$(f knot.dnsperf 2)" "$(f cutover.dnsperf 2)"
row "dnsperf CPU ms / 1k answers" "$(f knot.dnsperf 3)" "$(f cutover.dnsperf 3)"
row "udp_blast QPS" "$(f knot.blast 1)" "$(f cutover.blast 1)"
row "udp_blast p50 latency (us)" "$(f knot.blast 2)" "$(f cutover.blast 2)"
row "udp_blast p99 latency (us)" "$(f knot.blast 3)" "$(f cutover.blast 3)"
row "udp_blast CPU ms / 1k answers" "$(f knot.blast 4)" "$(f cutover.blast 4)"
row "peak memory, ${BIG_RECORDS} records (MiB)" "$(awk -v k="${RESULT[knot.hwm]}" 'BEGIN { printf "%.1f", k / 1024 }')" "$(awk -v k="${RESULT[cutover.hwm]}" 'BEGIN { printf "%.1f", k / 1024 }')"
row "start to first answer, ${BIG_RECORDS} records (s)" "${RESULT[knot.load]}" "${RESULT[cutover.load]}"
echo "rcodes seen by udp_blast: knot $(f knot.blast 6); cutover $(f cutover.blast 6)"
echo "cutover served by: $SERVER_HOW"
echo "machine busy before the runs: ${BUSY}% ($(uptime | sed 's/.*load/load/'))"
