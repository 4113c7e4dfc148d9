#!/usr/bin/env bash
# Edit-to-visible: how long after `cutover record set` returns (its change
# committed to the store) a running `cutover serve` answers the new value,
# for a small zone and a large one.
#
#   bench/visible.sh           (from the repository root; about 2 minutes)
#
#   gen-zone.py ─▶ zone of RECORDS records ─▶ zone import ─▶ serve (one UDP worker)
#   EDITS times: record set www.ORIGIN A 10.x.y.z (a new address each time)
#     t0 = the command's exit ─▶ a UDP query every 0.5 ms until the answer holds it ─▶ t1
#   ─▶ median, p90 and max of t1 - t0, the command's own time, and t1 - its start,
#      per zone size (serve may publish before the command has exited: it
#      reloads as soon as the commit is visible, while the command tears down)
#
# The command writes the store from its own process; serve sees the commit
# through its inotify wake-up on the store's files (the 250 ms poll being
# the fallback) and rebuilds the zone's snapshot. Knobs: SIZES ("1000
# 100000"), EDITS (20), CUTOVER_BIN (a binary to measure instead of the
# release build), KEEP=1 keeps the work directory.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
SIZES=${SIZES:-"1000 100000"}
EDITS=${EDITS:-20}
ORIGIN=bench.test.
WORK=$(mktemp -d /tmp/cutover-visible-bench.XXXXXX)

source "$ROOT/bench/lib.sh"
clean_up_on_exit
need_tools kdig python3 cargo

if [[ -z "${CUTOVER_BIN:-}" ]]; then
    echo "== building cutover (release)"
    (cd "$ROOT" && cargo build --release -q -p cutover)
    CUTOVER_BIN="${CARGO_TARGET_DIR:-$ROOT/target}/release/cutover"
fi

echo "== load: $(cut -d' ' -f1-3 /proc/loadavg) (1, 5, 15 min)"
printf '%-9s %14s %14s %14s %16s %19s\n' records "visible p50" "visible p90" "visible max" "command p50" "start→visible p50"
for size in $SIZES; do
    dir="$WORK/$size"
    mkdir -p "$dir"
    python3 "$ROOT/bench/gen-zone.py" "$size" "$dir/zone" --queries 10 >/dev/null
    port=$(free_port)
    cat >"$dir/cutover.toml" <<EOF
store = "$dir/cutover.db"

[dns]
listen = ["127.0.0.1:$port"]
udp_workers = 1
EOF
    "$CUTOVER_BIN" --config "$dir/cutover.toml" zone import "$dir/zone/bench.zone" --origin "$ORIGIN" >/dev/null
    RUST_LOG=warn "$CUTOVER_BIN" --config "$dir/cutover.toml" serve 2>"$dir/serve.log" &
    SERVER_PID=$!
    PIDS+=("$SERVER_PID")
    wait_for_answer "$port" 120
    python3 - "$CUTOVER_BIN" "$dir/cutover.toml" "$port" "$ORIGIN" "$EDITS" "$size" <<'EOF'
import socket, struct, subprocess, sys, time

binary, config, port, origin, edits, size = sys.argv[1:7]
port, edits = int(port), int(edits)
name = "www." + origin

def query(sock, qid):
    wire = struct.pack(">HHHHHH", qid, 0, 1, 0, 0, 0)
    for label in name.rstrip(".").split("."):
        wire += bytes([len(label)]) + label.encode()
    wire += b"\x00" + struct.pack(">HH", 1, 1)
    sock.send(wire)
    data = sock.recv(4096)
    # The last A record's address: the answer's final 4 bytes.
    if len(data) < 16 or struct.unpack(">H", data[6:8])[0] == 0:
        return None
    return socket.inet_ntoa(data[-4:])

sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
sock.connect(("127.0.0.1", port))
sock.settimeout(2)
visible, whole, command = [], [], []
for i in range(edits):
    address = "10.%d.%d.%d" % (i // 65536 % 256, i // 256 % 256, i % 256 or 1)
    started = time.perf_counter()
    subprocess.run([binary, "--config", config, "record", "set", origin, "www", "A", address],
                   check=True, stdout=subprocess.DEVNULL)
    exited = time.perf_counter()
    while query(sock, i & 0xFFFF) != address:
        if time.perf_counter() - exited > 30:
            sys.exit("record set %s: not answered within 30 s" % address)
        time.sleep(0.0005)
    seen = time.perf_counter()
    visible.append((seen - exited) * 1000)
    whole.append((seen - started) * 1000)
    command.append((exited - started) * 1000)

def pct(values, p):
    values = sorted(values)
    return values[min(len(values) - 1, int(round(p / 100 * (len(values) - 1))))]

print("%-9s %11.1f ms %11.1f ms %11.1f ms %13.1f ms %16.1f ms" % (
    size, pct(visible, 50), pct(visible, 90), max(visible), pct(command, 50), pct(whole, 50)))
EOF
    stop_server
done
