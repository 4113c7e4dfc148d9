#!/usr/bin/env bash
# The mail relay attacked, beside Postfix attacked the same way, on this
# machine: what a real client still gets while it happens.
#
#   attackers (smtp_attack.py) ──▶ relay (cutover serve [mail] | Postfix) ──▶ smtp-sink
#   a real client on 127.0.0.1 ──▶ the same relay, one message every 0.5 s
#
# Both relays accept mail for example.com (any local part) on loopback and
# deliver it to their own smtp-sink; each is attacked alone, freshly
# started, once per attack:
#
#   memory  SESSIONS sessions from 6 addresses (within both per-client
#           caps) each send DATA_MIB MiB slowly (64 KiB every 50 ms) and
#           never end it (the review: RSS from 12 MB to 2.0 GB)
#   idle    PER_ADDRESS sessions from each of ADDRESSES loopback addresses
#           (127.1.x.y) stay idle after the greeting and are reopened as soon
#           as the relay closes them (the review: 19,980 sessions took all
#           20,000 descriptors)
#
# Printed per relay and attack: the real client's tries, the sessions it got
# (220), the tries refused as busy (421) or failed (timeout, error, 4xx),
# the messages accepted (250) and of those the ones that reached the sink;
# the relay's peak memory (cutover: VmRSS of the one process; Postfix: the
# summed PSS of the master and its children, RSS in brackets) and peak open
# descriptors; what the attackers got.
#
# Usage: bench/hostile/mail.sh          (from anywhere; about 4 minutes)
# Knobs: ATTACKS ("memory idle"), SECONDS_PER_ATTACK (30), SESSIONS (60),
#        DATA_MIB (32), ADDRESSES (1000), PER_ADDRESS (10), CUTOVER (a cutover
#        binary; by default the release build is made), KEEP=1 keeps the work
#        directory. The review's idle attack: ADDRESSES=1998 PER_ADDRESS=10.
# Needs: postfix (postfix, smtp-sink), python3, root (Postfix runs its
# daemons as the postfix user), cargo unless CUTOVER is given.
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
TARGET=${CARGO_TARGET_DIR:-$ROOT/target}
ATTACKS=${ATTACKS:-memory idle}
SECONDS_PER_ATTACK=${SECONDS_PER_ATTACK:-30}
SESSIONS=${SESSIONS:-60}
DATA_MIB=${DATA_MIB:-32}
ADDRESSES=${ADDRESSES:-1000}
PER_ADDRESS=${PER_ADDRESS:-10}
ATTACK="python3 $HERE/smtp_attack.py"
WORK=$(mktemp -d "${BENCH_DIR:-/tmp}/cutover-hostile-mail.XXXXXX")
chmod 755 "$WORK" # Postfix daemons (user postfix) must reach their directories
source "$ROOT/bench/lib.sh"

# Stops Postfix too (its daemons are not ours to kill one by one).
stop_postfix() {
    if [[ -f $WORK/postfix/etc/main.cf ]]; then
        postfix -c "$WORK/postfix/etc" stop >/dev/null 2>&1 || true
    fi
}
trap 'stop_postfix; cleanup' EXIT
trap 'exit 130' INT TERM
need_tools postfix smtp-sink python3
[[ $(id -u) == 0 ]] || die "needs root (Postfix runs its daemons as the postfix user)"

# Waits until something accepts on 127.0.0.1:$1.
wait_port() {
    local _
    for _ in $(seq 200); do
        if (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; then return 0; fi
        sleep 0.05
    done
    die "nothing listens on $1"
}

# The count smtp-sink -c printed last.
sink_count() {
    tr '\r' '\n' <"$1" | grep -Eo '[0-9]+' | tail -1 || echo 0
}

# A JSON field of a file of smtp_attack.py output.
field() {
    python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])' "$1" "$2"
}

if [[ -n ${CUTOVER:-} ]]; then
    CUTOVER_BIN=$CUTOVER
else
    echo "building cutover (release)…" >&2
    (cd "$ROOT" && cargo build --release -q -p cutover)
    CUTOVER_BIN=$TARGET/release/cutover
fi
[[ -x $CUTOVER_BIN ]] || die "no cutover binary at $CUTOVER_BIN"

# Starts cutover serve relaying example.com to the sink on $2, SMTP on $1;
# sets RELAY_PID.
start_cutover() {
    local smtp=$1 sink=$2 run=$3 dns
    dns=$(free_port)
    mkdir -p "$WORK/$run"
    cat >"$WORK/$run/cutover.toml" <<EOF
store = "$WORK/$run/cutover.db"
[dns]
listen = ["127.0.0.1:$dns"]
udp_workers = 1
[mail]
listen = ["127.0.0.1:$smtp"]
hostname = "relay.bench.test"
spool = "$WORK/$run/spool"
[[mail.domain]]
name = "example.com"
destination = "127.0.0.1:$sink"
recipients = ["@example.com"]
EOF
    RUST_LOG=warn "$CUTOVER_BIN" --config "$WORK/$run/cutover.toml" serve \
        >/dev/null 2>"$WORK/$run/serve.log" &
    RELAY_PID=$!
    PIDS+=("$RELAY_PID")
    wait_port "$smtp"
    sleep 1 # the rest of `serve` starts after the relay
}

# Starts a private Postfix relaying example.com to the sink on $2, SMTP on
# $1 (the stock limits: 100 smtpd processes, 50 per client, stress mode);
# sets RELAY_PID to its master.
start_postfix() {
    local smtp=$1 sink=$2 run=$3 directory=$WORK/postfix
    stop_postfix
    rm -rf "$directory"
    mkdir -p "$directory/etc" "$directory/queue" "$directory/data"
    cp /etc/postfix/master.cf.proto "$directory/etc/master.cf" 2>/dev/null ||
        cp /etc/postfix/master.cf "$directory/etc/master.cf"
    sed -i -E "s/^smtp +inet .*/127.0.0.1:$smtp inet n - n - - smtpd/" "$directory/etc/master.cf"
    cat >"$directory/etc/main.cf" <<EOF
compatibility_level = 3.6
queue_directory = $directory/queue
data_directory = $directory/data
mail_owner = postfix
setgid_group = postdrop
myhostname = postfix.bench.test
mydestination =
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
mynetworks = 127.0.0.1/32
relay_domains = example.com
relay_transport = smtp:[127.0.0.1]:$sink
alias_maps =
alias_database =
smtpd_relay_restrictions = permit_mynetworks, reject_unauth_destination
smtp_tls_security_level = none
smtpd_tls_security_level = none
message_size_limit = 36700160
maillog_file = $directory/maillog
maillog_file_prefixes = $WORK
EOF
    chown -R postfix "$directory/data"
    if ! postfix -c "$directory/etc" start >/dev/null 2>&1; then
        cat "$directory/maillog" >&2 2>/dev/null || true
        die "postfix did not start"
    fi
    wait_port "$smtp"
    RELAY_PID=$(tr -d ' ' <"$directory/queue/pid/master.pid")
    mkdir -p "$WORK/$run"
}

# Runs attack $1 against relay $2 (cutover | postfix); prints one line.
run_attack() {
    local attack=$1 relay=$2 run="$2-$1" smtp sink kind
    sink=$(free_port)
    smtp=$(free_port)
    mkdir -p "$WORK/$run"
    smtp-sink -c -u nobody 127.0.0.1:"$sink" 256 >"$WORK/$run/sink.log" 2>&1 &
    PIDS+=($!)
    local sink_pid=$!
    wait_port "$sink"
    if [[ $relay == cutover ]]; then
        start_cutover "$smtp" "$sink" "$run"
        kind=cutover
    else
        start_postfix "$smtp" "$sink" "$run"
        kind=postfix
    fi
    local seconds=$SECONDS_PER_ATTACK attackers=()
    $ATTACK sample $((seconds + 2)) "$kind" "$RELAY_PID" >"$WORK/$run/sample.json" &
    local sampler=$!
    if [[ $attack == memory ]]; then
        $ATTACK memory "$smtp" "$SESSIONS" 6 "$DATA_MIB" "$seconds" >"$WORK/$run/attack.json" &
        attackers+=($!)
    else
        # At most 5000 connections per attacking process (its descriptors).
        local per=$((5000 / PER_ADDRESS)) first
        for ((first = 0; first < ADDRESSES; first += per)); do
            $ATTACK idle "$smtp" $((ADDRESSES - first < per ? ADDRESSES - first : per)) \
                "$PER_ADDRESS" "$seconds" "$first" >"$WORK/$run/attack-$first.json" &
            attackers+=($!)
        done
    fi
    sleep 2 # the attack gets going before the real client starts
    $ATTACK legit "$smtp" $((seconds - 2)) 0.5 >"$WORK/$run/legit.json"
    wait "${attackers[@]}" "$sampler"
    if [[ $attack == idle ]]; then
        $ATTACK sum "$WORK/$run"/attack-*.json >"$WORK/$run/attack.json"
    fi
    # What was accepted reaches the sink (20 s at most).
    local accepted arrived _
    accepted=$(field "$WORK/$run/legit.json" delivered)
    for _ in $(seq 400); do
        arrived=$(sink_count "$WORK/$run/sink.log")
        [[ ${arrived:-0} -ge $accepted ]] && break
        sleep 0.05
    done
    local legit=$WORK/$run/legit.json sample=$WORK/$run/sample.json memory
    if [[ $kind == cutover ]]; then
        memory="$(($(field "$sample" rss_kib) / 1024)) MB"
        kill "$RELAY_PID" 2>/dev/null || true
        wait "$RELAY_PID" 2>/dev/null || true
    else
        memory="$(($(field "$sample" pss_kib) / 1024)) MB ($(($(field "$sample" rss_kib) / 1024)))"
        stop_postfix
    fi
    kill "$sink_pid" 2>/dev/null || true
    printf '%-7s %-8s %5s %8s %5s %6s %8s %7s  %-12s %5s   %s\n' \
        "$attack" "$relay" "$(field "$legit" tried)" "$(field "$legit" sessions)" \
        "$(field "$legit" busy)" "$(field "$legit" failed)" "$accepted" "${arrived:-0}" \
        "$memory" "$(field "$sample" descriptors)" "$(tr -d '{}"' <"$WORK/$run/attack.json")"
}

printf 'memory: %s sessions x %s MiB of DATA, slowly; idle: %s addresses x %s sessions; %s s each\n' \
    "$SESSIONS" "$DATA_MIB" "$ADDRESSES" "$PER_ADDRESS" "$SECONDS_PER_ATTACK"
printf 'cores: %s, load average before: %s, descriptors per process: %s\n' \
    "$(nproc)" "$(cut -d' ' -f1-3 /proc/loadavg)" "$(ulimit -n)"
printf '%-7s %-8s %5s %8s %5s %6s %8s %7s  %-12s %5s   %s\n' \
    attack relay tries sessions busy failed accepted arrived "peak memory" fds attackers
for attack in $ATTACKS; do
    for relay in cutover postfix; do
        run_attack "$attack" "$relay"
    done
done
