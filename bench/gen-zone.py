#!/usr/bin/env python3
"""Writes a benchmark zone and a query file for it (dnsperf / udp_blast format).

    gen-zone.py RECORDS OUTDIR [--seed N] [--queries N] [--origin NAME]

OUTDIR/bench.zone: SOA, NS and its glue, then RECORDS records at hostNNNNNN
names, types mixed 40% A, 20% AAAA, 15% MX, 15% TXT, 10% CNAME (CNAME and MX
targets are in-zone A names). OUTDIR/queries.txt: 90% existing name+type
(type A at CNAME names, so the answer follows the CNAME), 10% names that do
not exist (NXDOMAIN), in random order. Same seed, same files.
"""
import argparse
import os
import random


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("records", type=int)
    parser.add_argument("outdir")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--queries", type=int, default=200_000)
    parser.add_argument("--origin", default="bench.test.")
    args = parser.parse_args()
    rng = random.Random(args.seed)
    origin = args.origin
    os.makedirs(args.outdir, exist_ok=True)

    kinds = ["A"] * 40 + ["AAAA"] * 20 + ["MX"] * 15 + ["TXT"] * 15 + ["CNAME"] * 10
    existing = []  # (name, type) pairs that have data
    a_names = []
    with open(os.path.join(args.outdir, "bench.zone"), "w") as zone:
        zone.write(f"$ORIGIN {origin}\n$TTL 3600\n")
        zone.write(f"@ IN SOA ns1.{origin} hostmaster.{origin} 1 7200 3600 1209600 300\n")
        zone.write(f"@ IN NS ns1.{origin}\nns1 IN A 192.0.2.53\n")
        for i in range(args.records):
            name = f"host{i:07d}"
            kind = kinds[rng.randrange(len(kinds))]
            if kind in ("CNAME", "MX") and not a_names:
                kind = "A"
            if kind == "A":
                data = f"10.{(i >> 16) & 255}.{(i >> 8) & 255}.{i & 255}"
                a_names.append(name)
            elif kind == "AAAA":
                data = f"2001:db8::{(i >> 16) & 0xffff:x}:{i & 0xffff:x}"
            elif kind == "MX":
                data = f"{rng.randrange(1, 50)} {rng.choice(a_names)}"
            elif kind == "TXT":
                data = f'"v=bench1 id={i} {rng.getrandbits(64):016x}"'
            else:
                data = rng.choice(a_names)
            zone.write(f"{name} IN {kind} {data}\n")
            existing.append((f"{name}.{origin}", kind))

    with open(os.path.join(args.outdir, "queries.txt"), "w") as queries:
        for _ in range(args.queries):
            if rng.random() < 0.9:
                name, kind = existing[rng.randrange(len(existing))]
                if kind == "CNAME":
                    kind = "A"  # the answer follows the CNAME in the zone
            else:
                name, kind = f"nx{rng.getrandbits(40):010x}.{origin}", rng.choice(["A", "AAAA", "MX", "TXT"])
            queries.write(f"{name} {kind}\n")


if __name__ == "__main__":
    main()
