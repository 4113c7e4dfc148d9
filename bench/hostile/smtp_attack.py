#!/usr/bin/env python3
"""SMTP attacks, a real client and a memory sampler for bench/hostile/mail.sh.

  smtp_attack.py memory PORT SESSIONS ADDRESSES MIB SECONDS
      SESSIONS sessions from ADDRESSES source addresses (127.0.0.2, .3, …)
      each send MIB MiB of DATA, 64 KiB every 50 ms, and never end it; all
      are closed after SECONDS.
  smtp_attack.py idle PORT ADDRESSES EACH SECONDS [FIRST]
      EACH connections from each of ADDRESSES source addresses (127.1.x.y,
      from the FIRST-th on), idle after the greeting, reopened as soon as
      the server closes one.
  smtp_attack.py sum FILE…
      the JSON objects of FILEs (one per attacking process), added up.
  smtp_attack.py legit PORT SECONDS INTERVAL
      a real client on 127.0.0.1: one message every INTERVAL seconds, 10 s
      per reply at most.
  smtp_attack.py sample SECONDS KIND PID
      every 0.25 s, the memory of a cutover process (KIND cutover: VmRSS and
      open descriptors) or of a Postfix master and its children (KIND
      postfix: summed PSS and RSS, processes).

Each prints one JSON object on stdout when done.
"""

import json
import os
import resource
import selectors
import socket
import sys
import time


def raise_descriptor_limit():
    """Raises the soft limit on open files to the hard one."""
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def connect(source, port, timeout):
    """A blocking connection from `source` to 127.0.0.1:`port`."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind((source, 0))
    sock.settimeout(timeout)
    sock.connect(("127.0.0.1", port))
    return sock


def reply(reader):
    """One (multi-line) SMTP reply, or '' when the connection closed."""
    text = ""
    while True:
        line = reader.readline()
        if not line:
            return text
        text += line
        if len(line) < 4 or line[3] != "-":
            return text


def memory(port, sessions, addresses, mib, seconds):
    """Sessions sending large messages slowly, never ending them."""
    raise_descriptor_limit()
    chunk = (b"x" * 998 + b"\r\n") * 64
    started, refused, live = 0, 0, []
    for number in range(sessions):
        source = "127.0.0.%d" % (2 + number % addresses)
        try:
            sock = connect(source, port, 10)
            reader = sock.makefile("r", encoding="latin-1", newline="\r\n")
            if not reply(reader).startswith("220"):
                refused += 1
                sock.close()
                continue
            ok = True
            for line, code in (("EHLO attacker.test", "250"),
                               ("MAIL FROM:<a@attacker.test>", "250"),
                               ("RCPT TO:<user@example.com>", "250"),
                               ("DATA", "354")):
                sock.sendall(line.encode() + b"\r\n")
                if not reply(reader).startswith(code):
                    ok = False
                    break
            if not ok:
                refused += 1
                sock.close()
                continue
            sock.setblocking(False)
            live.append([sock, 0])
            started += 1
        except OSError:
            refused += 1
    target = mib << 20
    end = time.monotonic() + seconds
    sent = 0
    while time.monotonic() < end:
        for entry in live:
            sock, done = entry
            if sock is None or done >= target:
                continue
            try:
                count = sock.send(chunk)
                entry[1] += count
                sent += count
            except BlockingIOError:
                pass
            except OSError:
                entry[0] = None
        time.sleep(0.05)
    for sock, _ in live:
        if sock is not None:
            sock.close()
    return {"sessions_in_data": started, "refused": refused, "sent_mib": sent >> 20}


def idle(port, addresses, each, seconds, first=0):
    """Idle sessions from many addresses, reopened when closed."""
    raise_descriptor_limit()
    chooser = selectors.DefaultSelector()
    sources = ["127.1.%d.%d" % (number // 250, number % 250 + 1)
               for number in range(first, first + addresses)]
    counts = {"opened": 0, "greeted": 0, "busy": 0, "timed_out": 0, "closed_by_server": 0,
              "connect_failed": 0}

    def open_one(source):
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            sock.bind((source, 0))
            sock.setblocking(False)
            sock.connect_ex(("127.0.0.1", port))
            chooser.register(sock, selectors.EVENT_READ, source)
            counts["opened"] += 1
        except OSError:
            sock.close()
            counts["connect_failed"] += 1

    for source in sources:
        for _ in range(each):
            open_one(source)
    end = time.monotonic() + seconds
    reopen = []
    while time.monotonic() < end:
        for key, _ in chooser.select(timeout=0.1):
            sock, source = key.fileobj, key.data
            try:
                data = sock.recv(4096)
            except (BlockingIOError, InterruptedError):
                continue
            except OSError:
                data = b""
            if data.startswith(b"220"):
                counts["greeted"] += 1
            elif data.startswith(b"421"):
                counts["timed_out" if b"4.4.2" in data else "busy"] += 1
            if not data:
                counts["closed_by_server"] += 1
                chooser.unregister(sock)
                sock.close()
                reopen.append(source)
        while reopen:
            open_one(reopen.pop())
    return counts


def legit(port, seconds, interval):
    """A real client: one message every `interval` seconds."""
    counts = {"tried": 0, "sessions": 0, "busy": 0, "failed": 0, "delivered": 0}
    end = time.monotonic() + seconds
    number = 0
    while time.monotonic() < end:
        counts["tried"] += 1
        number += 1
        try:
            sock = connect("127.0.0.1", port, 10)
            reader = sock.makefile("r", encoding="latin-1", newline="\r\n")
            greeting = reply(reader)
            if greeting.startswith("421"):
                counts["busy"] += 1
            elif not greeting.startswith("220"):
                counts["failed"] += 1
            else:
                counts["sessions"] += 1
                ok = True
                for line, code in (("EHLO real.client.test", "250"),
                                   ("MAIL FROM:<someone@real.client.test>", "250"),
                                   ("RCPT TO:<user@example.com>", "250"),
                                   ("DATA", "354"),
                                   ("Subject: real %d\r\n\r\nhello\r\n." % number, "250")):
                    sock.sendall(line.encode() + b"\r\n")
                    if not reply(reader).startswith(code):
                        ok = False
                        break
                counts["delivered" if ok else "failed"] += 1
                if ok:
                    sock.sendall(b"QUIT\r\n")
            sock.close()
        except OSError:
            counts["failed"] += 1
        time.sleep(interval)
    return counts


def field_kib(path, name):
    """A `Name:  N kB` field of a /proc file, in KiB (0 when unreadable)."""
    try:
        with open(path) as status:
            for line in status:
                if line.startswith(name + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def children(pid):
    """The pids whose parent is `pid`."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % entry) as stat:
                fields = stat.read().rsplit(")", 1)[1].split()
            if int(fields[1]) == pid:
                found.append(int(entry))
        except (OSError, IndexError, ValueError):
            pass
    return found


def sample(seconds, kind, pid):
    """Peak memory (and descriptors or processes) over `seconds`."""
    peak = {"rss_kib": 0, "pss_kib": 0, "descriptors": 0, "processes": 0}
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        pids = [pid] + (children(pid) if kind == "postfix" else [])
        rss = sum(field_kib("/proc/%d/status" % p, "VmRSS") for p in pids)
        pss = sum(field_kib("/proc/%d/smaps_rollup" % p, "Pss") for p in pids)
        try:
            descriptors = sum(len(os.listdir("/proc/%d/fd" % p)) for p in pids)
        except OSError:
            descriptors = 0
        peak["rss_kib"] = max(peak["rss_kib"], rss)
        peak["pss_kib"] = max(peak["pss_kib"], pss)
        peak["descriptors"] = max(peak["descriptors"], descriptors)
        peak["processes"] = max(peak["processes"], len(pids))
        time.sleep(0.25)
    return peak


def main():
    """Runs the mode named on the command line."""
    mode, arguments = sys.argv[1], sys.argv[2:]
    if mode == "memory":
        port, sessions, addresses, mib, seconds = map(int, arguments)
        result = memory(port, sessions, addresses, mib, seconds)
    elif mode == "idle":
        result = idle(*map(int, arguments))
    elif mode == "sum":
        result = {}
        for name in arguments:
            with open(name) as part:
                for key, value in json.load(part).items():
                    result[key] = result.get(key, 0) + value
    elif mode == "legit":
        result = legit(int(arguments[0]), float(arguments[1]), float(arguments[2]))
    elif mode == "sample":
        result = sample(float(arguments[0]), arguments[1], int(arguments[2]))
    else:
        sys.exit("unknown mode %s" % mode)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
