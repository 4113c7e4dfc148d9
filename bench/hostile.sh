#!/usr/bin/env bash
# The hostile-client benchmark: cutover attacked the way a hostile client
# would, beside the servers people trust attacked the same way, and what
# legitimate clients still got from each.
#
#   bench/hostile.sh [dns] [mail] [http]     (from anywhere; all three by default, about 8 minutes)
#
#   dns   bench/hostile/dns.sh   cutover beside Knot DNS: one client hoarding 1,100 TCP
#                                connections, 40 clients hoarding 1,280, a UDP flood of
#                                forged UPDATEs and TSIGs; legitimate TCP queries, signed
#                                UPDATEs and plain queries answered
#   mail  bench/hostile/mail.sh  cutover's relay beside Postfix: slow large messages from
#                                many sessions (memory), thousands of idle sessions from many
#                                addresses (descriptors); a real sender's messages delivered,
#                                peak memory and descriptors
#   http  bench/hostile/http.sh  cutover's control plane (beside nginx when installed):
#                                slowloris, hundreds of slow probes from probe tokens; an admin
#                                client's answers and latency
#
# Each part prints its own table; every process it starts is killed on
# exit. The parts' knobs (FLOOD_RATE, ATTACKS, SECONDS_PER_RUN…) are
# documented at the top of each script. Figures from one run on a shared
# machine; say the machine's load beside them.
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
parts=("$@")
[[ ${#parts[@]} -gt 0 ]] || parts=(dns mail http)
status=0
for part in "${parts[@]}"; do
    script="$HERE/hostile/$part.sh"
    [[ -x "$script" || -f "$script" ]] || { echo "no part $part (dns, mail, http)" >&2; exit 2; }
    echo
    echo "################ $part ($(date -u +%H:%M:%SZ), load $(cut -d' ' -f1-3 /proc/loadavg))"
    bash "$script" || { echo "the $part part failed (exit $?)" >&2; status=1; }
done
exit $status
