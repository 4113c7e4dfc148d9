#!/usr/bin/env bash
# The hostile-client benchmark of the control plane: what a legitimate admin
# still gets from `cutover serve`'s HTTP API while it is attacked.
#
#   bench/hostile/http.sh      (from the repository root; about 2 minutes)
#
#   cutover serve ([http]: defaults — max_connections 256, header_timeout 10s,
#                  max_probes 8, max_probes_per_token 2, probe_timeout 30s)
#   admin client: GET /api/v1/zones every 100 ms, a new connection each,
#                 5 s client timeout ─▶ answered, failed, p50 / p99 / max latency
#   1. quiet        ─▶ the admin alone (the baseline)
#   2. slowloris    ─▶ CONNECTIONS connections trickling a byte of headers every
#                      5 s, each reopened when the server closes it
#   3. API lockout  ─▶ PROBES concurrent `verify smtp` calls from 5 probe tokens
#                      to a tarpit (accepts, never greets) with --timeout 20s,
#                      each sent again as soon as it is answered
#   (nginx, when installed: the same slowloris against nginx serving a file,
#    client_header_timeout 10s, side by side)
#
# Every process started here is killed on exit. Knobs: SECONDS_PER_RUN (20),
# CONNECTIONS (3000), PROBES (500), KEEP=1 keeps the work directory.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
SECONDS_PER_RUN=${SECONDS_PER_RUN:-20}
CONNECTIONS=${CONNECTIONS:-3000}
PROBES=${PROBES:-500}
ORIGIN=bench.test.
WORK=$(mktemp -d /tmp/cutover-hostile-http.XXXXXX)

source "$ROOT/bench/lib.sh"
clean_up_on_exit
need_tools python3 cargo kdig

echo "== building cutover (release)"
(cd "$ROOT" && cargo build --release -q -p cutover)
CUTOVER_BIN="${CARGO_TARGET_DIR:-$ROOT/target}/release/cutover"
[[ -x "$CUTOVER_BIN" ]] || die "no binary at $CUTOVER_BIN"

# The attacks and the admin's client, in one Python program (asyncio, raw sockets).
cat >"$WORK/hostile.py" <<'EOF'
import asyncio, json, socket, statistics, sys, time

def parse(address):
    host, port = address.rsplit(":", 1)
    return host, int(port)

async def admin_client(address, token, path, stop, stats):
    """GET path every 100 ms on a new connection; record what came back."""
    host, port = parse(address)
    head = f"GET {path} HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n"
    if token:
        head += f"Authorization: Bearer {token}\r\n"
    head = (head + "\r\n").encode()
    while not stop.is_set():
        started = time.monotonic()
        try:
            reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port), 5)
            writer.write(head)
            data = await asyncio.wait_for(reader.read(), 5 - (time.monotonic() - started))
            writer.close()
            status = int(data.split(b" ", 2)[1]) if data.startswith(b"HTTP/1.1 ") else 0
        except Exception:
            status = -1
        took = time.monotonic() - started
        stats["sent"] += 1
        if status == 200:
            stats["ok"] += 1
            stats["latency"].append(took)
        else:
            stats["failed"] += 1
        await asyncio.sleep(max(0, 0.1 - took))

async def trickler(address, stop, stats, interval):
    """One slowloris connection, reopened whenever the server closes it."""
    host, port = parse(address)
    line = b"GET / HTTP/1.1\r\nHost: bench\r\nX-a: " + b"b" * 10000
    while not stop.is_set():
        try:
            reader, writer = await asyncio.open_connection(host, port)
        except Exception:
            stats["connect_failed"] += 1
            await asyncio.sleep(0.5)
            continue
        stats["opened"] += 1
        opened = time.monotonic()
        closed_by_server = False
        i = 0
        while not stop.is_set():
            try:
                writer.write(line[i % len(line):][:1])
                await writer.drain()
                i += 1
                data = await asyncio.wait_for(reader.read(1024), interval)
                if not data:
                    closed_by_server = True
                    break
                # An answer (a 408, a 400): the server is done with it.
                closed_by_server = True
                break
            except asyncio.TimeoutError:
                continue
            except Exception:
                closed_by_server = True
                break
        held = time.monotonic() - opened
        if closed_by_server:
            stats["closed"] += 1
            stats["held"].append(held)
        writer.close()

async def prober(address, body, token, stop, stats):
    """One slow verify after another, on a new connection each."""
    host, port = parse(address)
    request = (f"POST /api/v1/checks/verify HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n"
               f"Authorization: Bearer {token}\r\nContent-Type: application/json\r\n"
               f"Content-Length: {len(body)}\r\n\r\n{body}").encode()
    while not stop.is_set():
        try:
            reader, writer = await asyncio.open_connection(host, port)
            writer.write(request)
            data = await asyncio.wait_for(reader.read(), 60)
            writer.close()
            status = int(data.split(b" ", 2)[1]) if data.startswith(b"HTTP/1.1 ") else 0
        except Exception:
            status = -1
        stats[status] = stats.get(status, 0) + 1
        if status == 429:
            await asyncio.sleep(0.05)

def summary(name, stats, seconds):
    lat = sorted(stats["latency"])
    def q(p):
        return f"{lat[min(len(lat) - 1, int(p * len(lat)))] * 1000:.1f}" if lat else "-"
    print(f"{name:<34} admin: {stats['ok']:>4}/{stats['sent']:<4} answered  "
          f"{stats['failed']:>3} failed   latency p50 {q(0.5):>6} ms  p99 {q(0.99):>7} ms  "
          f"max {(max(lat) * 1000 if lat else 0):>7.1f} ms")

async def main():
    """admin ADDRESS TOKEN PATH SECONDS | slowloris ADDRESS SECONDS CONNECTIONS
    | lockout ADDRESS SECONDS COUNT TARPIT TOKENS — the admin and the attacks
    run as processes of their own, so that neither starves the other."""
    mode, address, rest = sys.argv[1], sys.argv[2], sys.argv[3:]
    stop = asyncio.Event()
    if mode == "admin":
        token, path, seconds, label = rest[0], rest[1], float(rest[2]), rest[3]
        stats = {"sent": 0, "ok": 0, "failed": 0, "latency": []}
        client = asyncio.create_task(admin_client(address, token, path, stop, stats))
        await asyncio.sleep(seconds)
        stop.set()
        await asyncio.wait([client], timeout=10)
        summary(label, stats, seconds)
        return
    seconds, tasks = float(rest[0]), []
    attack = {"opened": 0, "closed": 0, "held": [], "connect_failed": 0}
    probes = {}
    if mode == "slowloris":
        for i in range(int(rest[1])):
            tasks.append(asyncio.create_task(trickler(address, stop, attack, 5.0)))
            if i % 100 == 99:
                await asyncio.sleep(0.05)
    else:
        count, tarpit, tokens = int(rest[1]), rest[2], rest[3].split(",")
        body = json.dumps({"kind": "smtp", "args": [tarpit, "--timeout", "20s"]})
        for i in range(count):
            tasks.append(asyncio.create_task(prober(address, body, tokens[i % len(tokens)], stop, probes)))
    await asyncio.sleep(seconds)
    stop.set()
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    if mode == "slowloris":
        held = sorted(attack["held"])
        print(f"{'':<34} attack: {attack['opened']} connections opened, {attack['closed']} closed by the server "
              f"(held p50 {held[len(held) // 2] if held else 0:.1f} s, max {max(held) if held else 0:.1f} s), "
              f"{attack['connect_failed']} connects failed")
    else:
        shown = ", ".join(f"{k}: {v}" for k, v in sorted(probes.items()))
        print(f"{'':<34} attack: answers by status {{{shown}}} (0: closed without an answer, refused at max_connections; -1: none by the end)")

asyncio.run(main())
EOF

# Runs an attack ($4…: its mode and arguments) in a process of its own
# against $1, and the admin client ($2: its token; $3: the label) beside it.
under_attack() {
    local address=$1 token=$2 label=$3 mode=$4 attacker
    shift 4
    python3 "$WORK/hostile.py" "$mode" "$address" "$((SECONDS_PER_RUN + 3))" "$@" &
    attacker=$!
    PIDS+=("$attacker")
    sleep 2
    python3 "$WORK/hostile.py" admin "$address" "$token" /api/v1/zones "$SECONDS_PER_RUN" "$label"
    wait "$attacker" || true
}

echo "== a store with a zone, an admin token and five probe tokens"
cat >"$WORK/zone" <<EOF
\$ORIGIN $ORIGIN
\$TTL 3600
@ IN SOA ns1 hostmaster 1 3600 600 1209600 300
@ IN NS ns1
ns1 IN A 127.0.0.1
www IN A 127.0.0.2
EOF
"$CUTOVER_BIN" --store "$WORK/cutover.db" zone import "$WORK/zone" --origin "$ORIGIN" >/dev/null
ADMIN=$("$CUTOVER_BIN" --store "$WORK/cutover.db" token create ops --scope admin 2>/dev/null)
TOKENS=""
for i in 1 2 3 4 5; do
    TOKENS+="${TOKENS:+,}$("$CUTOVER_BIN" --store "$WORK/cutover.db" token create "probe$i" --scope probe 2>/dev/null)"
done

echo "== a tarpit (accepts, never says a word)"
python3 - "$WORK/tarpit.port" <<'EOF' &
import socket, sys, time
s = socket.socket(); s.bind(("127.0.0.1", 0)); s.listen(4096)
open(sys.argv[1], "w").write(str(s.getsockname()[1]))
held = []
while True:
    c, _ = s.accept(); held.append(c)
EOF
PIDS+=($!)
for _ in $(seq 50); do [[ -s "$WORK/tarpit.port" ]] && break; sleep 0.1; done
TARPIT="127.0.0.1:$(cat "$WORK/tarpit.port")"

DNS_PORT=$(free_port)
HTTP_PORT=$(free_port)
cat >"$WORK/cutover.toml" <<EOF
store = "$WORK/cutover.db"
[dns]
listen = ["127.0.0.1:$DNS_PORT"]
udp_workers = 1
[http]
listen = "127.0.0.1:$HTTP_PORT"
probe_allow = ["$TARPIT"]
EOF
echo "== cutover serve (control plane on 127.0.0.1:$HTTP_PORT, [http] defaults)"
RUST_LOG=warn "$CUTOVER_BIN" --config "$WORK/cutover.toml" serve 2>"$WORK/serve.log" &
SERVER_PID=$!
PIDS+=("$SERVER_PID")
wait_for_answer "$DNS_PORT" 30
for _ in $(seq 100); do
    python3 -c "import urllib.request,sys; urllib.request.urlopen('http://127.0.0.1:$HTTP_PORT/api/v1/openapi.json', timeout=1)" 2>/dev/null && break
    sleep 0.1
done

ADDRESS="127.0.0.1:$HTTP_PORT"
echo
echo "== cutover serve, $SECONDS_PER_RUN s each (admin: GET /api/v1/zones every 100 ms)"
python3 "$WORK/hostile.py" admin "$ADDRESS" "$ADMIN" /api/v1/zones "$SECONDS_PER_RUN" "quiet"
under_attack "$ADDRESS" "$ADMIN" "slowloris ($CONNECTIONS)" slowloris "$CONNECTIONS"
echo "   serve's log on the cap: $(grep -c 'max_connections' "$WORK/serve.log" || true) lines"
under_attack "$ADDRESS" "$ADMIN" "lockout ($PROBES slow verifies)" lockout "$PROBES" "$TARPIT" "$TOKENS"
echo "   serve's threads after the lockout: $(awk '/^Threads:/ { print $2 }' "/proc/$SERVER_PID/status")"
stop_server

if command -v nginx >/dev/null; then
    NGINX_PORT=$(free_port)
    # nginx's workers run as an unprivileged user: they must read the files.
    chmod 755 "$WORK"
    mkdir -p "$WORK/nginx/html/api/v1" "$WORK/nginx/logs"
    echo '{"zones":[]}' >"$WORK/nginx/html/api/v1/zones"
    cat >"$WORK/nginx/nginx.conf" <<EOF
daemon off;
pid $WORK/nginx/nginx.pid;
error_log $WORK/nginx/logs/error.log warn;
worker_processes 1;
events { worker_connections 1024; }
http {
    access_log off;
    client_header_timeout 10s;
    server {
        listen 127.0.0.1:$NGINX_PORT;
        root $WORK/nginx/html;
        default_type application/json;
    }
}
EOF
    nginx -p "$WORK/nginx" -c "$WORK/nginx/nginx.conf" &
    SERVER_PID=$!
    PIDS+=("$SERVER_PID")
    sleep 1
    echo
    echo "== nginx $(nginx -v 2>&1 | sed 's/.*\///'), the same (worker_connections 1024, client_header_timeout 10s; a file for /api/v1/zones)"
    python3 "$WORK/hostile.py" admin "127.0.0.1:$NGINX_PORT" "" /api/v1/zones "$SECONDS_PER_RUN" "quiet"
    under_attack "127.0.0.1:$NGINX_PORT" "" "slowloris ($CONNECTIONS)" slowloris "$CONNECTIONS"
    stop_server
else
    echo
    echo "(nginx is not installed: no side-by-side slowloris run)"
fi
