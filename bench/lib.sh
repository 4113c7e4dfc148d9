# Shared by the bash benchmarks (bench/update.sh, bench/nameserver.sh): the
# process list and its cleanup, the free port, the wait for a first answer.
#
#   WORK=… ORIGIN=… ; source bench/lib.sh ; clean_up_on_exit
#   need_tools knotd kdig … ; port=$(free_port)
#   start a server (PIDS+=(pid), SERVER_PID=pid) ─▶ wait_for_answer "$port" 120
#   … ─▶ stop_server ─▶ on exit: every pid in PIDS killed, WORK removed
#
# The sourcing script sets WORK (its work directory) and ORIGIN (the zone
# asked for in wait_for_answer). KEEP=1 keeps the work directory.

PIDS=()

# Kills every process started, then removes the work directory (unless KEEP=1).
cleanup() {
    local pid
    for pid in "${PIDS[@]}"; do
        kill "$pid" 2>/dev/null || true
    done
    for pid in "${PIDS[@]}"; do
        wait "$pid" 2>/dev/null || true
    done
    if [[ "${KEEP:-0}" != 1 ]]; then rm -rf "$WORK"; else echo "work directory kept: $WORK"; fi
}

# Runs cleanup on exit, and exits on an interrupt.
clean_up_on_exit() {
    trap cleanup EXIT
    trap 'exit 130' INT TERM
}

# Prints its arguments as the script's error and exits.
die() { echo "$(basename "$0"): $*" >&2; exit 1; }

# Dies unless every tool named is installed.
need_tools() {
    local tool
    for tool in "$@"; do
        command -v "$tool" >/dev/null || die "$tool is not installed"
    done
}

# A port free for UDP and TCP on 127.0.0.1.
free_port() {
    python3 - <<'EOF'
import socket
while True:
    u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); u.bind(("127.0.0.1", 0))
    port = u.getsockname()[1]
    t = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        t.bind(("127.0.0.1", port)); print(port); break
    except OSError:
        pass
    finally:
        t.close(); u.close()
EOF
}

# Prints the sections every benchmark's knotd shares: folder $1, on
# 127.0.0.1@$2, one worker of each kind (the servers compared on one core),
# warnings on stderr; the caller appends its keys, ACLs, templates and zones.
knot_server_conf() {
    cat <<EOF
server:
    rundir: "$1"
    listen: 127.0.0.1@$2
    udp-workers: 1
    tcp-workers: 1
    background-workers: 1
database:
    storage: "$1"
log:
  - target: stderr
    any: warning
EOF
}

# Waits until the server on port $1 answers an SOA query (at most $2 seconds).
wait_for_answer() {
    local port=$1 limit=$2 i
    for ((i = 0; i < limit * 10; i++)); do
        if kdig +short +timeout=1 +retry=0 @127.0.0.1 -p "$port" "$ORIGIN" SOA 2>/dev/null | grep -q .; then
            return 0
        fi
        sleep 0.1
    done
    die "no answer on port $port after ${limit}s"
}

# Stops the server started last (SERVER_PID).
stop_server() {
    kill "$SERVER_PID" 2>/dev/null || true
    wait "$SERVER_PID" 2>/dev/null || true
}
