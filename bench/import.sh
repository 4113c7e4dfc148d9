#!/usr/bin/env bash
# The import benchmark: `cutover zone import` of a 1,000,000-record zone
# file into a new store, wall time and peak memory, beside Knot's own reader
# of the same file (kzonecheck: parse and check, no store) in the same run,
# against the targets of issue 12 (≤ 5 s, ≤ 400 MB peak).
#
#   bench/import.sh            (from the repository root; about 1 minute
#                               after the release build)
#
#   gen-zone.py ─▶ bench.zone (RECORDS records, 36 MB)
#   for RUNS runs: kzonecheck -o ORIGIN bench.zone              ─▶ wall, peak RSS
#                  cutover zone import --dry-run (parse, build, check) ─▶ wall, peak RSS
#                  cutover zone import into a fresh store (and commit) ─▶ wall, peak RSS
#   ─▶ medians, ratios to kzonecheck, each import figure beside its target
#   then serve on that store, and `zone import --replace --yes` of version 2
#   (serial 2, every 100th address changed) beside it: serve's RSS sampled
#   every 50 ms ─▶ before, peak, and 10 s after version 2 is served
#
# Memory comes from /usr/bin/time -v (maximum resident set size), the wall
# clock from bash's EPOCHREALTIME around it. Knobs: RECORDS (1000000),
# RUNS (3), KEEP=1 keeps the work directory.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
RECORDS=${RECORDS:-1000000}
RUNS=${RUNS:-3}
ORIGIN=bench.test.
WORK=$(mktemp -d /tmp/cutover-import-bench.XXXXXX)

source "$ROOT/bench/lib.sh"
clean_up_on_exit
need_tools python3 cargo awk sort kzonecheck kdig
[[ -x /usr/bin/time ]] || die "needs GNU time at /usr/bin/time (Debian: apt-get install time)"

echo "== building cutover (release)"
(cd "$ROOT" && cargo build --release -q -p cutover)
CUTOVER_BIN="${CARGO_TARGET_DIR:-$ROOT/target}/release/cutover"
[[ -x "$CUTOVER_BIN" ]] || die "no binary at $CUTOVER_BIN"

echo "== generating a zone of $RECORDS records"
python3 "$ROOT/bench/gen-zone.py" "$RECORDS" "$WORK/zone" --queries 10 --origin "$ORIGIN" >/dev/null
ZONE="$WORK/zone/bench.zone"

# Runs a command under /usr/bin/time -v; prints "seconds kilobytes" (a
# failure stops the benchmark).
measure() {
    local start end
    start=$EPOCHREALTIME
    if ! /usr/bin/time -v -o "$WORK/time.txt" "$@" >"$WORK/last.out" 2>&1; then
        cat "$WORK/last.out" >&2
        die "$* failed"
    fi
    end=$EPOCHREALTIME
    awk -v a="$start" -v b="$end" '
        /Maximum resident set size/ { kb = $NF }
        END { printf "%.3f %d\n", b - a, kb }' "$WORK/time.txt"
}

# The median of the numbers on standard input.
median() { sort -g | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }

declare -A seconds kilobytes
for what in knot dry import; do seconds[$what]=""; kilobytes[$what]=""; done
for run in $(seq 1 "$RUNS"); do
    read -r s kb <<<"$(measure kzonecheck -o "$ORIGIN" "$ZONE")"
    seconds[knot]+="$s"$'\n'; kilobytes[knot]+="$kb"$'\n'
    rm -f "$WORK"/dry.db*
    read -r s kb <<<"$(measure "$CUTOVER_BIN" --store "$WORK/dry.db" zone import "$ZONE" --origin "$ORIGIN" --dry-run)"
    seconds[dry]+="$s"$'\n'; kilobytes[dry]+="$kb"$'\n'
    rm -f "$WORK"/import.db*
    read -r s kb <<<"$(measure "$CUTOVER_BIN" --store "$WORK/import.db" zone import "$ZONE" --origin "$ORIGIN")"
    grep -q "imported $((RECORDS + 3)) records" "$WORK/last.out" ||
        die "the import did not say it imported $((RECORDS + 3)) records: $(cat "$WORK/last.out")"
    seconds[import]+="$s"$'\n'; kilobytes[import]+="$kb"$'\n'
done

echo
echo "== $RECORDS records, median of $RUNS runs (load: $(cut -d' ' -f1-3 /proc/loadavg))"
knot_s=$(printf '%s' "${seconds[knot]}" | median)
knot_kb=$(printf '%s' "${kilobytes[knot]}" | median)
printf '%-44s %8s %10s %12s %12s\n' "" "wall s" "peak MB" "s / Knot's" "MB / Knot's"
for what in knot dry import; do
    s=$(printf '%s' "${seconds[$what]}" | median)
    kb=$(printf '%s' "${kilobytes[$what]}" | median)
    case $what in
        knot) label="kzonecheck (Knot: parse and check)" ;;
        dry) label="cutover zone import --dry-run (no store)" ;;
        import) label="cutover zone import (into the store)" ;;
    esac
    awk -v l="$label" -v s="$s" -v kb="$kb" -v ks="$knot_s" -v kk="$knot_kb" \
        'BEGIN { printf "%-44s %8.2f %10.0f %12.2f %12.2f\n", l, s, kb / 1024, s / ks, kb / kk }'
done
import_s=$(printf '%s' "${seconds[import]}" | median)
import_kb=$(printf '%s' "${kilobytes[import]}" | median)
awk -v s="$import_s" -v kb="$import_kb" 'BEGIN {
    printf "target (issue 12): ≤ 5 s → %s; ≤ 400 MB → %s\n",
        (s <= 5 ? "met" : "NOT met"), (kb / 1024 <= 400 ? "met" : "NOT met") }'

# serve picks the import up: its memory before, at the peak, and after.
echo
echo "== serve beside \`zone import --replace\` of version 2 (RSS every 50 ms)"
awk '/ IN SOA / { sub(/ 1 7200 /, " 2 7200 ") } / IN A 10\./ && NR % 100 == 0 { sub(/ 10\./, " 172.") } { print }' \
    "$ZONE" >"$WORK/v2.zone"
port=$(free_port)
cat >"$WORK/serve.toml" <<EOF
store = "$WORK/import.db"

[dns]
listen = ["127.0.0.1:$port"]
udp_workers = 1
EOF
RUST_LOG=warn "$CUTOVER_BIN" --config "$WORK/serve.toml" serve 2>"$WORK/serve.log" &
SERVER_PID=$!
PIDS+=("$SERVER_PID")
wait_for_answer "$port" 120
rss() { awk '/VmRSS/ { printf "%d", $2 / 1024 }' "/proc/$SERVER_PID/status"; }
serial() { kdig +short +timeout=1 +retry=0 @127.0.0.1 -p "$port" "$ORIGIN" SOA | awk '{ print $3 }'; }
sleep 1
before=$(rss)
peak=$before
started=$EPOCHREALTIME
"$CUTOVER_BIN" --store "$WORK/import.db" zone import "$WORK/v2.zone" --origin "$ORIGIN" --replace --yes \
    >"$WORK/replace.out" 2>&1 &
importer=$!
PIDS+=("$importer")
served=""
while [[ -z "$served" ]] || (($(awk -v a="$served" -v b="$EPOCHREALTIME" 'BEGIN { print (b - a < 10) }'))); do
    now=$(rss)
    ((now > peak)) && peak=$now
    if [[ -z "$served" ]] && [[ "$(serial)" == 2 ]]; then
        served=$EPOCHREALTIME
    fi
    awk -v a="$started" -v b="$EPOCHREALTIME" 'BEGIN { exit !(b - a > 120) }' &&
        die "version 2 not served within 120 s: $(cat "$WORK/replace.out")"
    sleep 0.05
done
wait "$importer" || die "zone import --replace failed: $(cat "$WORK/replace.out")"
after=$(rss)
awk -v a="$started" -v b="$served" 'BEGIN { printf "version 2 served %.2f s after the import started\n", b - a }'
printf 'serve RSS: before %s MB, peak %s MB (%.2f× before), 10 s after %s MB (%.2f× before)\n' \
    "$before" "$peak" "$(awk -v p="$peak" -v b="$before" 'BEGIN { print p / b }')" \
    "$after" "$(awk -v p="$after" -v b="$before" 'BEGIN { print p / b }')"
stop_server
