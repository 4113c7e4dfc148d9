#!/bin/sh
# Probe benchmark: 50 names checked on 4 authoritative addresses (one knotd
# listening on 127.0.1.1-4) and 20 resolver addresses (one Unbound listening
# on 127.0.2.1-20, stub zone to the knotd), all queries at once. Prints the
# wall time (which must be well under one 2 s timeout: the queries run
# concurrently) and the number of messages sent.
# Needs: knot, unbound. Usage: bench/probe.sh [NAMES]
set -eu
NAMES=${1:-50}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
DIR=$(mktemp -d)
PIDS=""
cleanup() { for p in $PIDS; do kill "$p" 2>/dev/null || true; done; rm -rf "$DIR"; }
trap cleanup EXIT INT TERM
PORT=$(python3 -c 'import socket,random; print(random.randint(20000, 60000))')

{
  echo '$TTL 300'
  echo '@ SOA ns.bench.test. h.bench.test. 1 60 60 600 60'
  echo '@ NS ns'
  echo 'ns A 127.0.1.1'
  i=0; while [ $i -lt "$NAMES" ]; do echo "name$i A 192.0.2.$((i % 250 + 1))"; i=$((i + 1)); done
} > "$DIR/bench.test.zone"
{
  echo "server:"
  for i in 1 2 3 4; do echo "    listen: 127.0.1.$i@$PORT"; done
  echo "    rundir: $DIR"
  echo "database:"
  echo "    storage: $DIR"
  echo "zone:"
  echo "  - domain: bench.test."
  echo "    file: $DIR/bench.test.zone"
} > "$DIR/knot.conf"
knotd -c "$DIR/knot.conf" 2>"$DIR/knotd.log" & PIDS="$PIDS $!"

{
  echo "server:"
  i=1; while [ $i -le 20 ]; do echo "    interface: 127.0.2.$i@$PORT"; i=$((i + 1)); done
  echo "    port: $PORT"
  echo "    do-daemonize: no"
  echo '    chroot: ""'
  echo '    username: ""'
  echo "    directory: \"$DIR\""
  echo "    pidfile: \"$DIR/unbound.pid\""
  echo "    use-syslog: no"
  echo "    do-not-query-localhost: no"
  echo "    access-control: 127.0.0.0/8 allow"
  echo '    module-config: "iterator"'
  echo '    domain-insecure: "bench.test"'
  echo '    local-zone: "test." nodefault'
  echo "    do-ip6: no"
  echo "stub-zone:"
  echo '    name: "bench.test"'
  echo "    stub-addr: 127.0.1.1@$PORT"
} > "$DIR/unbound.conf"
unbound -d -c "$DIR/unbound.conf" 2>"$DIR/unbound.log" & PIDS="$PIDS $!"

cd "$ROOT"
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
cargo build -q --release -p cutover-probe --example bench
BIN="$CARGO_TARGET_DIR/release/examples/bench"
# Wait until both servers answer.
i=0
until kdig +short +time=1 @127.0.1.1 -p "$PORT" bench.test SOA >/dev/null 2>&1 \
   && kdig +short +time=1 @127.0.2.20 -p "$PORT" bench.test SOA >/dev/null 2>&1; do
  i=$((i + 1)); [ $i -lt 50 ] || { echo "servers did not start; logs in $DIR" >&2; cat "$DIR"/*.log >&2; exit 1; }
  sleep 0.1
done
AUTH="127.0.1.1 127.0.1.2 127.0.1.3 127.0.1.4"
RES=$(i=1; while [ $i -le 20 ]; do printf '127.0.2.%d ' $i; i=$((i + 1)); done)
echo "cold caches:"
"$BIN" bench.test "$NAMES" "$PORT" --auth $AUTH --resolvers $RES
echo "warm caches:"
"$BIN" bench.test "$NAMES" "$PORT" --auth $AUTH --resolvers $RES
