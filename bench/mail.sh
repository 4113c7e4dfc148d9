#!/usr/bin/env bash
# The mail relay beside Postfix, in one run, on this machine:
#
#   smtp-source ──▶ relay (cutover | Postfix) ──▶ smtp-sink
#
# Both relays accept mail for example.com on loopback, fsync every message
# before answering 250 (cutover always; Postfix by default), and deliver to
# the same smtp-sink. Their queues live on the same file system, under one
# work directory. Each relay is measured alone, one after the other:
#
#   accepted/s    messages smtp-source got 250 for, per second of sending
#   end-to-end/s  messages the sink received, per second from the first
#                 send until the last delivery
#
# Usage: bench/mail.sh [MESSAGES] [SESSIONS] [SIZE]
#   defaults 5000 messages, 20 parallel sessions, 1024-byte bodies.
# Needs: postfix (smtp-source, smtp-sink, postfix), root (Postfix runs its
# daemons as the postfix user), cargo. Prints the figures and the ratios.
set -euo pipefail

MESSAGES=${1:-5000}
SESSIONS=${2:-20}
SIZE=${3:-1024}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
TARGET=${CARGO_TARGET_DIR:-$ROOT/target}
WORK=$(mktemp -d "${BENCH_DIR:-/tmp}/cutover-mail-bench.XXXXXX")
chmod 755 "$WORK"  # Postfix daemons (user postfix) must reach their directories
PIDS=()

cleanup() {
    for pid in "${PIDS[@]}"; do kill -9 "$pid" 2>/dev/null || true; done
    if [[ -f $WORK/postfix/etc/main.cf ]]; then
        postfix -c "$WORK/postfix/etc" stop >/dev/null 2>&1 || true
    fi
    if [[ -z ${KEEP:-} ]]; then rm -rf "$WORK"; else echo "kept $WORK" >&2; fi
}
trap cleanup EXIT

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

wait_port() {
    for _ in $(seq 200); do
        if (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; then return 0; fi
        sleep 0.05
    done
    echo "nothing listens on $1" >&2
    exit 1
}

now() { date +%s.%N; }

# smtp-sink with a counter: the last number it printed is the count.
start_sink() {
    local port=$1 log=$2
    smtp-sink -c -u nobody 127.0.0.1:"$port" 256 >"$log" 2>&1 &
    PIDS+=($!)
    wait_port "$port"
}

sink_count() {
    tr '\r' '\n' <"$1" | grep -Eo '[0-9]+' | tail -1 || echo 0
}

# Sends the load; prints "accepted_seconds end_to_end_seconds".
run_load() {
    local port=$1 sink_log=$2 start sent done
    start=$(now)
    smtp-source -s "$SESSIONS" -m "$MESSAGES" -l "$SIZE" -f bench@client.test \
        -t user@example.com -M client.test 127.0.0.1:"$port"
    sent=$(now)
    for _ in $(seq 6000); do
        if [[ $(sink_count "$sink_log") -ge $MESSAGES ]]; then break; fi
        sleep 0.05
    done
    done=$(now)
    local got
    got=$(sink_count "$sink_log")
    if [[ $got -lt $MESSAGES ]]; then
        echo "only $got of $MESSAGES messages arrived" >&2
        exit 1
    fi
    echo "$(echo "$sent - $start" | bc -l) $(echo "$done - $start" | bc -l)"
}

echo "building cutover-mail-relay (release)…" >&2
(cd "$ROOT" && cargo build --release -q -p cutover-mail --bin cutover-mail-relay)
RELAY=$TARGET/release/cutover-mail-relay

# --- cutover -----------------------------------------------------------------
SINK1=$(free_port)
start_sink "$SINK1" "$WORK/sink-cutover.log"
CUTOVER=$(free_port)
"$RELAY" --listen 127.0.0.1:"$CUTOVER" --spool "$WORK/cutover-spool" \
    --hostname relay.bench.test --domain example.com=user \
    --route example.com=127.0.0.1:"$SINK1" --max-connections-per-client 1000 >/dev/null 2>"$WORK/cutover.log" &
PIDS+=($!)
wait_port "$CUTOVER"
read -r C_ACCEPT C_E2E < <(run_load "$CUTOVER" "$WORK/sink-cutover.log")

# --- Postfix -----------------------------------------------------------------
SINK2=$(free_port)
start_sink "$SINK2" "$WORK/sink-postfix.log"
POSTFIX=$(free_port)
mkdir -p "$WORK/postfix/etc" "$WORK/postfix/queue" "$WORK/postfix/data"
cp /etc/postfix/master.cf.proto "$WORK/postfix/etc/master.cf" 2>/dev/null ||
    cp /etc/postfix/master.cf "$WORK/postfix/etc/master.cf"
# Only our listener: the stock smtp line on port 25 is replaced.
sed -i -E "s/^smtp +inet .*/127.0.0.1:$POSTFIX inet n - n - - smtpd/" "$WORK/postfix/etc/master.cf"
cat >"$WORK/postfix/etc/main.cf" <<EOF
compatibility_level = 3.6
queue_directory = $WORK/postfix/queue
data_directory = $WORK/postfix/data
mail_owner = postfix
setgid_group = postdrop
myhostname = postfix.bench.test
mydestination =
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
mynetworks = 127.0.0.0/8
relay_domains = example.com
relay_transport = smtp:[127.0.0.1]:$SINK2
alias_maps =
alias_database =
smtpd_relay_restrictions = permit_mynetworks, reject_unauth_destination
smtp_tls_security_level = none
smtpd_tls_security_level = none
maillog_file = $WORK/postfix/maillog
maillog_file_prefixes = $WORK
default_process_limit = 100
EOF
chown -R postfix "$WORK/postfix/data"
# Postfix reports errors on a terminal or in its log only.
if ! postfix -c "$WORK/postfix/etc" start >/dev/null 2>&1; then
    echo "postfix did not start:" >&2
    cat "$WORK/postfix/maillog" >&2 2>/dev/null || true
    script -qc "postfix -c $WORK/postfix/etc check" /dev/null >&2 || true
    exit 1
fi
wait_port "$POSTFIX"
read -r P_ACCEPT P_E2E < <(run_load "$POSTFIX" "$WORK/sink-postfix.log")
postfix -c "$WORK/postfix/etc" stop >/dev/null 2>&1 || true

# --- report ------------------------------------------------------------------
rate() { echo "scale=1; $MESSAGES / $1" | bc -l; }
C_A=$(rate "$C_ACCEPT"); C_E=$(rate "$C_E2E")
P_A=$(rate "$P_ACCEPT"); P_E=$(rate "$P_E2E")
printf '%s messages, %s sessions, %s-byte bodies, spools on %s\n' \
    "$MESSAGES" "$SESSIONS" "$SIZE" "$(df -T "$WORK" | awk 'NR==2 {print $2}')"
printf '%-9s %14s %16s\n' relay accepted/s end-to-end/s
printf '%-9s %14s %16s\n' cutover "$C_A" "$C_E"
printf '%-9s %14s %16s\n' postfix "$P_A" "$P_E"
printf 'ratio cutover/postfix: accepted %.2f, end-to-end %.2f\n' \
    "$(echo "$C_A / $P_A" | bc -l)" "$(echo "$C_E / $P_E" | bc -l)"
