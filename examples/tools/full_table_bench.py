#!/usr/bin/env python3
"""Full-table ingest by the `collector` tool: the realistic table.

A stand-in speaker (this script) connects to `collector --stats --passive`,
opens the session, then sends PREFIXES IPv4 /24s, PER prefixes per UPDATE
(default 1,000,000 and 3: 333,334 UPDATEs, about 23 MB, the shape of a real
full table), each with ORIGIN, a 3-hop 4-octet AS_PATH, NEXT_HOP, MED, two
COMMUNITIES and a LARGE_COMMUNITY, then End-of-RIB. Everything is encoded
before the session opens, and nothing is sent before the collector prints
`established`, so the clock (the collector's own `established` and
`end_of_rib` timestamps) measures the collector alone: receiving, framing,
decoding and checking every UPDATE and counting every prefix.

Reported per run: Established -> End-of-RIB, prefixes/s, and the
collector's peak resident memory (VmHWM).

    cargo build --release --example collector
    python3 examples/tools/full_table_bench.py [--runs 5] [--prefixes 1000000] [--per 3]
"""

import argparse
import json
import os
import socket
import struct
import subprocess
import sys
import time

MARKER = b"\xff" * 16


def msg(kind, body):
    return MARKER + struct.pack("!HB", 19 + len(body), kind) + body


def open_msg(asn, router_id, hold):
    caps = bytes([1, 4, 0, 1, 0, 1])  # MP IPv4 unicast
    caps += bytes([65, 4]) + struct.pack("!I", asn)  # 4-octet AS
    caps += bytes([64, 2, 0, 0])  # graceful restart, no families
    params = bytes([2, len(caps)]) + caps
    my_as = asn if asn < 65536 else 23456
    return msg(1, struct.pack("!BHH4sB", 4, my_as, hold, socket.inet_aton(router_id), len(params)) + params)


def attrs(asn):
    path = struct.pack("!BB3I", 2, 3, asn, 64500, 64501)
    a = bytes([0x40, 1, 1, 0])  # ORIGIN IGP
    a += bytes([0x40, 2, len(path)]) + path
    a += bytes([0x40, 3, 4]) + socket.inet_aton("192.0.2.2")
    a += bytes([0x80, 4, 4]) + struct.pack("!I", 10)
    a += bytes([0xC0, 8, 8]) + struct.pack("!II", (asn << 16 | 1) & 0xFFFFFFFF, 0xFDE90002)
    a += bytes([0xC0, 32, 12]) + struct.pack("!III", asn, 1, 2)
    return a


def table(prefixes, per, asn):
    a = attrs(asn)
    out = []
    for start in range(0, prefixes, per):
        nlri = b""
        for i in range(start, min(start + per, prefixes)):
            # 1.0.0.0/24, 1.0.1.0/24, … over the unicast space
            n = (1 << 24) + i
            nlri += bytes([24, (n >> 16) & 255, (n >> 8) & 255, n & 255])
        body = struct.pack("!H", 0) + struct.pack("!H", len(a)) + a + nlri
        out.append(msg(2, body))
    out.append(msg(2, b"\x00\x00\x00\x00"))  # End-of-RIB (RFC 4724 §2)
    return b"".join(out)


def recv_msg(s):
    head = b""
    while len(head) < 19:
        c = s.recv(19 - len(head))
        if not c:
            raise RuntimeError("collector closed the connection")
        head += c
    length = struct.unpack("!H", head[16:18])[0]
    body = b""
    while len(body) < length - 19:
        c = s.recv(length - 19 - len(body))
        if not c:
            raise RuntimeError("collector closed the connection")
        body += c
    return head[18], body


def vm_hwm_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    return 0


def one_run(binary, prefixes, per, run):
    us, them = f"127.0.{7 + run}.1", f"127.0.{7 + run}.2"
    port = 17900 + run
    data = table(prefixes, per, 65001)
    proc = subprocess.Popen(
        [binary, "--router-id", us, "--local-as", "65000", "--remote-as", "65001",
         "--peer", them, "--passive", "--listen", f"{us}:{port}", "--stats",
         "--stats-interval", "3600", "--log-level", "warn"],
        stdout=subprocess.PIPE, text=True)
    try:
        s = None
        for _ in range(200):
            try:
                s = socket.create_connection((us, port), source_address=(them, 0))
                break
            except OSError:
                time.sleep(0.05)
        if s is None:
            raise RuntimeError("collector did not listen")
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        s.sendall(open_msg(65001, them, 90))
        kind, _ = recv_msg(s)
        assert kind == 1, f"expected OPEN, got {kind}"
        s.sendall(msg(4, b""))
        kind, _ = recv_msg(s)
        assert kind == 4, f"expected KEEPALIVE, got {kind}"
        established = None
        for line in proc.stdout:
            ev = json.loads(line)
            if ev["event"] == "established":
                established = ev["at"]
                break
        s.sendall(data)
        eor = None
        for line in proc.stdout:
            ev = json.loads(line)
            if ev["event"] == "end_of_rib":
                eor = ev
                break
        hwm = vm_hwm_kib(proc.pid)
        s.close()
        took = eor["at"] - established
        assert eor["prefixes"] == prefixes, eor
        return took, hwm, len(data)
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--prefixes", type=int, default=1_000_000)
    ap.add_argument("--per", type=int, default=3, help="prefixes per UPDATE")
    ap.add_argument("--binary", default="target/release/examples/collector")
    a = ap.parse_args()
    if not os.path.exists(a.binary):
        sys.exit(f"{a.binary} missing: cargo build --release --example collector")
    results = []
    for r in range(a.runs):
        took, hwm, size = one_run(a.binary, a.prefixes, a.per, r)
        results.append((took, hwm))
        print(f"run {r + 1}: {a.prefixes} prefixes, {a.per}/UPDATE ({size / 1e6:.1f} MB): "
              f"Established -> End-of-RIB {took:.3f} s ({a.prefixes / took / 1e6:.1f} M prefixes/s), "
              f"peak RSS {hwm / 1024:.1f} MiB")
    times = sorted(t for t, _ in results)
    print(f"median {times[len(times) // 2]:.3f} s, max peak RSS {max(h for _, h in results) / 1024:.1f} MiB")


if __name__ == "__main__":
    main()
