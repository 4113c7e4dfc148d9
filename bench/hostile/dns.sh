#!/usr/bin/env bash
# The DNS part of the hostile-client benchmark: cutover and Knot DNS under
# the same attacks, one after the other, and what legitimate clients still
# got from each.
#
#   bench/hostile/dns.sh       (from the repository root; about 2 minutes)
#
#   for server in knot cutover (pinned to core 0, one UDP worker, defaults
#   otherwise; attackers and clients on core 1):
#     hoard, one client:   127.0.0.2 opens 1,100 TCP connections and holds
#                          them idle; 127.0.0.1 sends 125 SOA queries over
#                          TCP, a fresh connection each, 2 s to answer
#     hoard, many clients: 127.0.0.10–49 open 32 connections each (1,280),
#                          the same 125 queries
#     UDP flood:           127.0.0.3 sends unsigned UPDATEs, 127.0.0.4 SOA
#                          queries with forged TSIGs (unknown key, wrong
#                          secret), FLOOD_RATE datagrams a second each;
#                          meanwhile 127.0.0.1 sends 100 UPDATEs signed with
#                          the zone's key, then 500 plain SOA queries, over
#                          UDP, one try each with 1 s to answer
#   ─▶ a table: legitimate answers per server
#
# Every process started here is killed on exit. Knobs: FLOOD_RATE (10000),
# FLOOD_SECONDS (60: the flood is stopped once the legitimate traffic is
# done, this is only its limit), KEEP=1.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
FLOOD_RATE=${FLOOD_RATE:-10000}
FLOOD_SECONDS=${FLOOD_SECONDS:-60}
ORIGIN=hostile.test.
KEY_NAME=hostile-ops.
KEY_SECRET=q1SXa5nV3l9Mz7K0EYXlPjxfDt6vNfV9v0k1b7GHHgY=
ATTACK="$ROOT/bench/hostile/dns-attack.py"
WORK=$(mktemp -d /tmp/cutover-hostile-dns.XXXXXX)

source "$ROOT/bench/lib.sh"
clean_up_on_exit
need_tools knotd kdig taskset python3 cargo
[[ $(nproc) -ge 2 ]] || die "needs two cores (server on 0, attackers on 1)"

echo "== building cutover (release)"
(cd "$ROOT" && cargo build --release -q -p cutover)
CUTOVER_BIN="${CARGO_TARGET_DIR:-$ROOT/target}/release/cutover"
[[ -x "$CUTOVER_BIN" ]] || die "no binary at $CUTOVER_BIN"

cat >"$WORK/hostile.zone" <<EOF
\$ORIGIN $ORIGIN
\$TTL 3600
@ SOA ns1 hostmaster 1 3600 600 86400 300
@ NS ns1
ns1 A 192.0.2.1
www A 192.0.2.10
EOF

# knotd on port $1 with the key allowed to update; sets SERVER_PID.
start_knot() {
    local port=$1 dir
    dir=$(mktemp -d "$WORK/knot.XXXXXX")
    cp "$WORK/hostile.zone" "$dir/hostile.zone"
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
    file: "$dir/hostile.zone"
    zonefile-sync: -1
    acl: update
EOF
    } >"$dir/knot.conf"
    taskset -c 0 knotd -c "$dir/knot.conf" 2>"$dir/knotd.log" &
    SERVER_PID=$!
    PIDS+=("$SERVER_PID")
    SERVER_LOG="$dir/knotd.log"
}

# cutover serve on port $1 with the key allowed to update; sets SERVER_PID.
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
    "$CUTOVER_BIN" --config "$dir/cutover.toml" zone import "$WORK/hostile.zone" --origin "$ORIGIN" >/dev/null
    RUST_LOG=info taskset -c 0 "$CUTOVER_BIN" --config "$dir/cutover.toml" serve 2>"$dir/serve.log" &
    SERVER_PID=$!
    PIDS+=("$SERVER_PID")
    SERVER_LOG="$dir/serve.log"
}

# Field $2 of "k=v k=v" line $1.
field() { tr ' ' '\n' <<<"$1" | awk -F= -v k="$2" '$1 == k { print $2 }'; }

# 127.0.0.10 … 127.0.0.49, comma-separated.
MANY=$(seq -s, -f '127.0.0.%g' 10 49)

declare -A R
for server in knot cutover; do
    port=$(free_port)
    echo "== $server on port $port"
    "start_$server" "$port"
    wait_for_answer "$port" 60
    R[$server.one]=$(taskset -c 1 python3 "$ATTACK" hoard "127.0.0.1:$port" "$ORIGIN" --from 127.0.0.2 --per-address 1100 --queries 125)
    echo "   hoard, one client:   ${R[$server.one]}"
    sleep 1
    R[$server.many]=$(taskset -c 1 python3 "$ATTACK" hoard "127.0.0.1:$port" "$ORIGIN" --from "$MANY" --per-address 32 --queries 125)
    echo "   hoard, 40 clients:   ${R[$server.many]}"
    sleep 1
    taskset -c 1 python3 "$ATTACK" flood "127.0.0.1:$port" "$ORIGIN" --key "$KEY_NAME:$KEY_SECRET" \
        --rate "$FLOOD_RATE" --seconds "$FLOOD_SECONDS" >"$WORK/flood.$server" &
    flooder=$!
    PIDS+=("$flooder")
    sleep 2
    R[$server.flood]=$(taskset -c 1 python3 "$ATTACK" signed "127.0.0.1:$port" "$ORIGIN" --key "$KEY_NAME:$KEY_SECRET" --updates 100 --queries 500)
    kill -TERM "$flooder" 2>/dev/null || true
    wait "$flooder" || true
    R[$server.sent]=$(cat "$WORK/flood.$server")
    echo "   UDP flood:           ${R[$server.flood]} (flood: $(field "${R[$server.sent]}" sent) datagrams)"
    R[$server.rss]=$(awk '/^VmHWM:/ { print $2 }' "/proc/$SERVER_PID/status")
    if [[ $server == cutover ]]; then
        echo "   log lines: $(wc -l <"$SERVER_LOG") (TCP pressure reports: $(grep -c 'TCP under pressure' "$SERVER_LOG" || true), refusals: $(grep -c 'refused\|TSIG:' "$SERVER_LOG" || true))"
    fi
    stop_server
done

echo
echo "== what legitimate clients got (server on core 0 with one UDP worker, attackers on core 1)"
printf '%-44s %14s %14s\n' "" knot cutover
row() { printf '%-44s %14s %14s\n' "$1" "$2" "$3"; }
row "TCP queries answered, 1 client holds 1,100" \
    "$(field "${R[knot.one]}" answered)/125" "$(field "${R[cutover.one]}" answered)/125"
row "  connections the hoarder still held" \
    "$(field "${R[knot.one]}" held)/$(field "${R[knot.one]}" opened)" "$(field "${R[cutover.one]}" held)/$(field "${R[cutover.one]}" opened)"
row "TCP queries answered, 40 clients hold 1,280" \
    "$(field "${R[knot.many]}" answered)/125" "$(field "${R[cutover.many]}" answered)/125"
row "  connections the hoarders still held" \
    "$(field "${R[knot.many]}" held)/$(field "${R[knot.many]}" opened)" "$(field "${R[cutover.many]}" held)/$(field "${R[cutover.many]}" opened)"
row "signed UDP UPDATEs NOERROR in a flood (1 try)" \
    "$(field "${R[knot.flood]}" updates_noerror)/100" "$(field "${R[cutover.flood]}" updates_noerror)/100"
row "  lost (no answer in 1 s) / other RCODE" \
    "$(field "${R[knot.flood]}" updates_lost) / $(field "${R[knot.flood]}" updates_other)" \
    "$(field "${R[cutover.flood]}" updates_lost) / $(field "${R[cutover.flood]}" updates_other)"
row "plain UDP queries answered in the flood" \
    "$(field "${R[knot.flood]}" queries_answered)/500" "$(field "${R[cutover.flood]}" queries_answered)/500"
row "flood datagrams sent" "$(field "${R[knot.sent]}" sent)" "$(field "${R[cutover.sent]}" sent)"
row "peak RSS of the server (KiB)" "${R[knot.rss]}" "${R[cutover.rss]}"
