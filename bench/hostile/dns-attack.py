#!/usr/bin/env python3
"""Hostile and legitimate DNS clients for bench/hostile/dns.sh (stdlib only).

  dns-attack.py hoard   SERVER ZONE --from A[,B…] --per-address N --queries Q
      every address in --from opens N TCP connections and holds them idle;
      then 127.0.0.1 sends Q queries over TCP, one fresh connection each
      (2 s to answer), while the hoard is held. Prints
      "held=H opened=O answered=A queries=Q"  (H: hoard connections still
      open when the queries end)
  dns-attack.py flood   SERVER ZONE --key NAME:SECRET --rate R --seconds S
      from 127.0.0.3: unsigned UPDATEs; from 127.0.0.4: SOA queries signed
      with an unknown key and with NAME and a wrong secret; R datagrams a
      second each, for S seconds or until SIGTERM. Prints "sent=N"
  dns-attack.py signed  SERVER ZONE --key NAME:SECRET --updates U --queries Q
      from 127.0.0.1, over UDP, one try each with a 1 s timeout: U signed
      UPDATEs adding hostile-N.ZONE, then Q plain SOA queries. Prints
      "updates_noerror=… updates_other=… updates_lost=… queries_answered=…"

SERVER is HOST:PORT. Messages are built here (TSIG per RFC 8945,
hmac-sha256), so a flood costs the sender little.
"""

import argparse
import base64
import hashlib
import hmac
import os
import signal
import socket
import struct
import sys
import time


def wire_name(name):
    """A domain name in uncompressed wire form (lowercase)."""
    out = b""
    for label in name.rstrip(".").split("."):
        if label:
            out += bytes([len(label)]) + label.lower().encode()
    return out + b"\0"


def header(msg_id, opcode, qd=1, an=0, ns=0, ar=0):
    """A DNS header: ID, opcode, counts."""
    return struct.pack(">HHHHHH", msg_id, opcode << 11, qd, an, ns, ar)


def soa_query(msg_id, zone):
    """A plain SOA query for ZONE."""
    return header(msg_id, 0) + wire_name(zone) + struct.pack(">HH", 6, 1)


def update_add(msg_id, zone, owner, address):
    """An UPDATE of ZONE adding OWNER A ADDRESS (60 s)."""
    body = header(msg_id, 5, qd=1, ns=1) + wire_name(zone) + struct.pack(">HH", 6, 1)
    rdata = socket.inet_aton(address)
    body += wire_name(owner) + struct.pack(">HHIH", 1, 1, 60, len(rdata)) + rdata
    return body


def sign(message, key_name, secret, now=None):
    """MESSAGE with a TSIG (hmac-sha256, fudge 300) appended."""
    now = int(time.time()) if now is None else now
    key = wire_name(key_name)
    algorithm = wire_name("hmac-sha256")
    signed_time = struct.pack(">HI", now >> 32, now & 0xFFFFFFFF)
    variables = key + struct.pack(">HI", 255, 0) + algorithm + signed_time + struct.pack(">HHH", 300, 0, 0)
    mac = hmac.new(secret, message + variables, hashlib.sha256).digest()
    msg_id = message[:2]
    rdata = algorithm + signed_time + struct.pack(">HH", 300, len(mac)) + mac + msg_id + struct.pack(">HH", 0, 0)
    record = key + struct.pack(">HHIH", 250, 255, 0, len(rdata)) + rdata
    arcount = struct.unpack(">H", message[10:12])[0] + 1
    return message[:10] + struct.pack(">H", arcount) + message[12:] + record


def parse_server(text):
    """HOST:PORT as a tuple."""
    host, port = text.rsplit(":", 1)
    return host, int(port)


def parse_key(text):
    """NAME:BASE64 as (name, secret bytes)."""
    name, secret = text.split(":", 1)
    return name, base64.b64decode(secret)


def tcp_query(server, zone, msg_id, source="127.0.0.1", wait=2.0):
    """One SOA query on a fresh TCP connection: True when answered."""
    message = soa_query(msg_id, zone)
    try:
        with socket.create_connection(server, timeout=wait, source_address=(source, 0)) as conn:
            conn.settimeout(wait)
            conn.sendall(struct.pack(">H", len(message)) + message)
            length = b""
            while len(length) < 2:
                chunk = conn.recv(2 - len(length))
                if not chunk:
                    return False
                length += chunk
            need = struct.unpack(">H", length)[0]
            answer = b""
            while len(answer) < need:
                chunk = conn.recv(need - len(answer))
                if not chunk:
                    return False
                answer += chunk
            return answer[:2] == message[:2] and answer[3] & 0x0F == 0
    except OSError:
        return False


def still_open(conn):
    """True when the server has not closed CONN."""
    conn.setblocking(False)
    try:
        return conn.recv(1) != b""
    except BlockingIOError:
        return True
    except OSError:
        return False


def hoard(args):
    """Hold connections idle from each --from address, then count answers."""
    server = parse_server(args.server)
    conns = []
    opened = 0
    for address in args.source.split(","):
        for _ in range(args.per_address):
            try:
                conn = socket.create_connection(server, timeout=2, source_address=(address, 0))
                conns.append(conn)
                opened += 1
            except OSError:
                pass
    time.sleep(0.5)
    answered = sum(tcp_query(server, args.zone, i) for i in range(args.queries))
    held = sum(still_open(conn) for conn in conns)
    print(f"held={held} opened={opened} answered={answered} queries={args.queries}")
    for conn in conns:
        conn.close()


def flood(args):
    """Unsigned UPDATEs and forged TSIG queries at --rate a second each."""
    server = parse_server(args.server)
    key_name, secret = parse_key(args.key)
    updates = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    updates.bind(("127.0.0.3", 0))
    forged = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    forged.bind(("127.0.0.4", 0))
    for sock in (updates, forged):
        sock.setblocking(False)
    wrong = hashlib.sha256(secret).digest()
    batch_unsigned = [update_add(i, args.zone, f"spoof{i}.{args.zone}", "10.9.9.9") for i in range(64)]
    batch_forged = []
    for i in range(64):
        if i % 2:
            batch_forged.append(sign(soa_query(i, args.zone), "bogus.", wrong))
        else:
            batch_forged.append(sign(soa_query(i, args.zone), key_name, wrong))
    per_tick = max(1, args.rate // 100)
    sent = 0
    end = time.monotonic() + args.seconds
    stopped = []
    signal.signal(signal.SIGTERM, lambda *_: stopped.append(True))
    tick = time.monotonic()
    while time.monotonic() < end and not stopped:
        for i in range(per_tick):
            for sock, batch in ((updates, batch_unsigned), (forged, batch_forged)):
                try:
                    sock.sendto(batch[i % 64], server)
                    sent += 1
                except OSError:
                    pass
        for sock in (updates, forged):
            try:
                while sock.recv(4096):
                    pass
            except OSError:
                pass
        tick += 0.01
        delay = tick - time.monotonic()
        if delay > 0:
            time.sleep(delay)
    print(f"sent={sent}")


def udp_exchange(sock, server, message, wait):
    """Sends MESSAGE, waits WAIT s for the answer with its ID: its RCODE or None."""
    sock.sendto(message, server)
    deadline = time.monotonic() + wait
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            return None
        sock.settimeout(left)
        try:
            answer = sock.recv(4096)
        except OSError:
            return None
        if len(answer) >= 12 and answer[:2] == message[:2]:
            return answer[3] & 0x0F


def signed(args):
    """Signed UPDATEs and plain queries over UDP, one try each."""
    server = parse_server(args.server)
    key_name, secret = parse_key(args.key)
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    tag = os.getpid() % 1000
    noerror = other = lost = 0
    for i in range(args.updates):
        owner = f"hostile-{tag}-{i}.{args.zone}"
        message = sign(update_add(10000 + i, args.zone, owner, f"10.7.{i // 250}.{i % 250 + 1}"), key_name, secret)
        rcode = udp_exchange(sock, server, message, 1.0)
        if rcode is None:
            lost += 1
        elif rcode == 0:
            noerror += 1
        else:
            other += 1
    answered = 0
    for i in range(args.queries):
        if udp_exchange(sock, server, soa_query(30000 + i, args.zone), 1.0) == 0:
            answered += 1
    print(f"updates_noerror={noerror} updates_other={other} updates_lost={lost} queries_answered={answered}")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("hoard")
    p.add_argument("server")
    p.add_argument("zone")
    p.add_argument("--from", dest="source", default="127.0.0.2")
    p.add_argument("--per-address", type=int, default=1100)
    p.add_argument("--queries", type=int, default=125)
    p.set_defaults(run=hoard)
    p = sub.add_parser("flood")
    p.add_argument("server")
    p.add_argument("zone")
    p.add_argument("--key", required=True)
    p.add_argument("--rate", type=int, default=10000)
    p.add_argument("--seconds", type=float, default=10)
    p.set_defaults(run=flood)
    p = sub.add_parser("signed")
    p.add_argument("server")
    p.add_argument("zone")
    p.add_argument("--key", required=True)
    p.add_argument("--updates", type=int, default=100)
    p.add_argument("--queries", type=int, default=500)
    p.set_defaults(run=signed)
    args = parser.parse_args()
    args.run(args)


if __name__ == "__main__":
    sys.exit(main())
