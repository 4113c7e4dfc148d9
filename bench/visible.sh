#!/usr/bin/env bash
# Edit-to-visible: how long after an edit starts a running `cutover serve`
# answers the new value, for each way of editing (the CLI beside serve, the
# HTTP API, an RFC 2136 UPDATE), for a small zone and a large one.
#
#   bench/visible.sh           (from the repository root; about 3 minutes)
#
#   gen-zone.py ─▶ zone of RECORDS records ─▶ zone import ─▶ serve (one UDP worker, [http] on)
#   EDITS times per way, www.ORIGIN A set to a new address each time:
#     cli     `cutover record set` in its own process (serve sees the commit by inotify)
#     api     PATCH /api/v1/zones/ORIGIN/rrsets REPLACE (answered once durable and served)
#     update  an unsigned UPDATE over UDP from 127.0.0.1 (answered once durable and served)
#   t0 = the edit starts ─▶ t_done = the command exits / the answer arrives
#     ─▶ a UDP query every 0.5 ms until the answer holds the new address ─▶ t1
#   ─▶ per zone size and way: median, p90 and max of t1 - t0 (edit to
#      visible), the median of t_done - t0 (the edit itself) and of t1 - t_done
#
# The CLI writes the store from its own process; serve sees the commit
# through its inotify wake-up on the store's files (the 250 ms poll being
# the fallback) and patches the zone's snapshot, possibly before the command
# has exited. The API and UPDATE are answered only once the change is
# durable and served, so for them t1 - t_done is one query's round trip.
# Knobs: SIZES ("1000 100000"), EDITS (20), WAYS ("cli api update"),
# CUTOVER_BIN (a binary to measure instead of the release build), KEEP=1
# keeps the work directory.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
SIZES=${SIZES:-"1000 100000"}
EDITS=${EDITS:-20}
WAYS=${WAYS:-"cli api update"}
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
printf '%-9s %-7s %14s %14s %14s %14s %18s\n' records way "visible p50" "visible p90" "visible max" "edit p50" "edit→visible p50"
for size in $SIZES; do
    dir="$WORK/$size"
    mkdir -p "$dir"
    python3 "$ROOT/bench/gen-zone.py" "$size" "$dir/zone" --queries 10 >/dev/null
    port=$(free_port)
    http=$(free_port)
    cat >"$dir/cutover.toml" <<EOF
store = "$dir/cutover.db"

[dns]
listen = ["127.0.0.1:$port"]
udp_workers = 1

[http]
listen = "127.0.0.1:$http"

[[zone]]
name = "$ORIGIN"
allow_unsigned_update_from = ["127.0.0.1/32"]
EOF
    "$CUTOVER_BIN" --config "$dir/cutover.toml" zone import "$dir/zone/bench.zone" --origin "$ORIGIN" >/dev/null
    token=$("$CUTOVER_BIN" --config "$dir/cutover.toml" token create bench --scope admin 2>/dev/null)
    RUST_LOG=warn "$CUTOVER_BIN" --config "$dir/cutover.toml" serve 2>"$dir/serve.log" &
    SERVER_PID=$!
    PIDS+=("$SERVER_PID")
    wait_for_answer "$port" 120
    python3 - "$CUTOVER_BIN" "$dir/cutover.toml" "$port" "$ORIGIN" "$EDITS" "$size" "$http" "$token" "$WAYS" <<'EOF'
import http.client, json, socket, struct, subprocess, sys, time

binary, config, port, origin, edits, size, http_port, token, ways = sys.argv[1:10]
port, edits = int(port), int(edits)
name = "www." + origin

def wire_name(text):
    out = b""
    for label in text.rstrip(".").split("."):
        out += bytes([len(label)]) + label.encode()
    return out + b"\x00"

def query(sock, qid):
    wire = struct.pack(">HHHHHH", qid, 0, 1, 0, 0, 0) + wire_name(name) + struct.pack(">HH", 1, 1)
    sock.send(wire)
    data = sock.recv(4096)
    # The last A record's address: the answer's final 4 bytes.
    if len(data) < 16 or struct.unpack(">H", data[6:8])[0] == 0:
        return None
    return socket.inet_ntoa(data[-4:])

sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
sock.connect(("127.0.0.1", port))
sock.settimeout(2)
api = http.client.HTTPConnection("127.0.0.1", int(http_port), timeout=30)
updates = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
updates.connect(("127.0.0.1", port))
updates.settimeout(30)

def by_cli(i, address):
    subprocess.run([binary, "--config", config, "record", "set", origin, "www", "A", address],
                   check=True, stdout=subprocess.DEVNULL)

def by_api(i, address):
    body = json.dumps({"rrsets": [{"name": name, "type": "A", "ttl": 300, "changetype": "REPLACE",
                                   "records": [{"content": address, "disabled": False}]}]})
    api.request("PATCH", "/api/v1/zones/%s/rrsets" % origin, body=body,
                headers={"Authorization": "Bearer " + token, "Content-Type": "application/json"})
    answer = api.getresponse()
    text = answer.read()
    if answer.status // 100 != 2:
        sys.exit("PATCH %s: %d %s" % (address, answer.status, text[:300]))

def by_update(i, address):
    qid = 0x4000 + (i & 0x3FFF)
    wire = struct.pack(">HHHHHH", qid, 5 << 11, 1, 0, 2, 0) + wire_name(origin) + struct.pack(">HH", 6, 1)
    # Delete the RRset (class ANY, RFC 2136 2.5.2), then add the new address.
    wire += wire_name(name) + struct.pack(">HHIH", 1, 255, 0, 0)
    wire += wire_name(name) + struct.pack(">HHIH", 1, 1, 300, 4) + socket.inet_aton(address)
    updates.send(wire)
    data = updates.recv(4096)
    if struct.unpack(">H", data[:2])[0] != qid or data[3] & 0x0F != 0:
        sys.exit("UPDATE %s: RCODE %d" % (address, data[3] & 0x0F))

def pct(values, p):
    values = sorted(values)
    return values[min(len(values) - 1, int(round(p / 100 * (len(values) - 1))))]

by_way = {"cli": by_cli, "api": by_api, "update": by_update}
serial = 0
for way in ways.split():
    edit = by_way[way]
    visible, took, after = [], [], []
    for i in range(edits):
        serial += 1
        address = "10.%d.%d.%d" % (serial // 65536 % 256, serial // 256 % 256, serial % 256 or 1)
        started = time.perf_counter()
        edit(i, address)
        done = time.perf_counter()
        while query(sock, i & 0xFFFF) != address:
            if time.perf_counter() - done > 30:
                sys.exit("%s %s: not answered within 30 s" % (way, address))
            time.sleep(0.0005)
        seen = time.perf_counter()
        visible.append((seen - started) * 1000)
        took.append((done - started) * 1000)
        after.append((seen - done) * 1000)
    print("%-9s %-7s %11.1f ms %11.1f ms %11.1f ms %11.1f ms %15.1f ms" % (
        size, way, pct(visible, 50), pct(visible, 90), max(visible), pct(took, 50), pct(after, 50)))
    sys.stdout.flush()
EOF
    stop_server
done
