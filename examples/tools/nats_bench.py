#!/usr/bin/env python3
"""A full table through the NATS pipeline: speaker -> collector -> JetStream -> consumer.

A stand-in speaker (full_table_bench.py's: PREFIXES IPv4 /24s, PER per UPDATE,
ORIGIN, 3-hop 4-octet AS_PATH, NEXT_HOP, MED, two COMMUNITIES, one
LARGE_COMMUNITY, then End-of-RIB) feeds `collector --nats … --nats-format
FORMAT`, which publishes into a single-node `nats-server -js` on loopback
(file storage, a fresh store per run), while `rib-from-stream` consumes.
Everything is encoded, the stream created and the consumer reading before
the session opens.

Reported per run and format:
  * Established -> last message acknowledged by the stream (the collector's
    own `established` and `nats.last_ack_at` timestamps);
  * Established -> the consumer has applied the last message (its
    `last_applied_at`, asked with SIGUSR1 until every prefix is there);
  * the stream's bytes per prefix (nats-server's /jsz);
  * the collector's and the consumer's peak RSS (VmHWM);
  * the CPU seconds each process used (collector, nats-server, consumer):
    where the time goes.

    cargo build --release --example collector --example rib-from-stream
    python3 examples/tools/nats_bench.py [--runs 3] [--prefixes 1000000] [--per 3] \
        [--formats raw,json] [--batches 1,1000]

`--batches` lists `--nats-batch` values (1: every UPDATE its own NATS
message, the unbatched mode); the runs of the modes alternate, so that a
busy machine weighs on both alike.
"""

import argparse
import json
import os
import queue
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import full_table_bench as ft  # noqa: E402


def free_port(addr):
    s = socket.socket()
    s.bind((addr, 0))
    p = s.getsockname()[1]
    s.close()
    return p


def lines_of(proc):
    """stdout lines as parsed JSON, through a queue (read by a thread)."""
    q = queue.Queue()

    def pump():
        for line in proc.stdout:
            try:
                q.put(json.loads(line))
            except ValueError:
                pass
        q.put(None)

    threading.Thread(target=pump, daemon=True).start()
    return q


def wait_line(q, pred, timeout, what):
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            v = q.get(timeout=max(0.01, deadline - time.time()))
        except queue.Empty:
            break
        if v is None:
            raise RuntimeError(f"process ended while waiting for {what}")
        if pred(v):
            return v
    raise RuntimeError(f"timed out waiting for {what}")


def jsz_stream(monitor, name):
    with urllib.request.urlopen(f"http://127.0.0.1:{monitor}/jsz?streams=true", timeout=5) as r:
        v = json.load(r)
    for acc in v.get("account_details", []):
        for s in acc.get("stream_detail", []) or []:
            if s["name"] == name:
                return s["state"]
    return None


def cpu_seconds(pid):
    """User + system CPU time of a process so far (where the time goes)."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def one_run(a, fmt, batch, run, data, updates):
    store = tempfile.mkdtemp(prefix="nats-bench-")
    port, monitor = free_port("127.0.0.1"), free_port("127.0.0.1")
    url = f"nats://127.0.0.1:{port}"
    nats = subprocess.Popen(["nats-server", "-a", "127.0.0.1", "-p", str(port), "-m", str(monitor),
                             "-js", "-sd", store], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    procs = [nats]
    try:
        for _ in range(200):
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{monitor}/healthz", timeout=1) as r:
                    if b"ok" in r.read():
                        break
            except OSError:
                time.sleep(0.05)
        us, them = f"127.0.{40 + run}.1", f"127.0.{40 + run}.2"
        bgp = free_port(us)
        col = subprocess.Popen(
            [a.collector, "--router-id", us, "--local-as", "65000", "--remote-as", "65001",
             "--peer", them, "--passive", "--listen", f"{us}:{bgp}", "--stats",
             "--stats-interval", "0.05", "--log-level", "warn", "--nats", url,
             "--collector-id", "bench", "--nats-format", fmt, "--nats-batch", str(batch)]
            + a.collector_args.split(),
            stdout=subprocess.PIPE, text=True)
        procs.append(col)
        cq = lines_of(col)
        # The stream exists once the collector listens.
        s = None
        for _ in range(400):
            try:
                s = socket.create_connection((us, bgp), source_address=(them, 0))
                break
            except OSError:
                time.sleep(0.05)
        if s is None:
            raise RuntimeError("collector did not listen")
        con = subprocess.Popen([a.consumer, "--nats", url, "--log-level", "info"],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        procs.append(con)
        for line in con.stderr:
            if "reading the stream" in line:
                break
        threading.Thread(target=lambda: con.stderr.read(), daemon=True).start()
        rq = lines_of(con)
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        s.sendall(ft.open_msg(65001, them, 90))
        kind, _ = ft.recv_msg(s)
        assert kind == 1, f"expected OPEN, got {kind}"
        s.sendall(ft.msg(4, b""))
        kind, _ = ft.recv_msg(s)
        assert kind == 4, f"expected KEEPALIVE, got {kind}"
        est = wait_line(cq, lambda v: v["event"] == "established", 30, "established")["at"]
        s.sendall(data)
        eor_seen = []

        def acked(v):
            if v["event"] == "end_of_rib":
                eor_seen.append(v)
            return (v["event"] == "nats" and eor_seen and v["inflight"] == 0
                    and v["acked"] == v["published"] and v["acked"] >= updates)

        last = wait_line(cq, acked, 600, "every message acknowledged")
        col_hwm = ft.vm_hwm_kib(col.pid)
        while True:
            con.send_signal(signal.SIGUSR1)
            r = wait_line(rq, lambda v: v["event"] == "rib", 30, "a rib line")
            peers = r["peers"]
            if peers and peers[0]["prefixes"] == a.prefixes and r["pending"] == 0:
                break
            time.sleep(0.05)
        con_hwm = ft.vm_hwm_kib(con.pid)
        cpu = {k: cpu_seconds(p.pid) for k, p in (("collector", col), ("nats-server", nats), ("consumer", con))}
        state = jsz_stream(monitor, "BGP")
        s.close()
        return {
            "acked": last["last_ack_at"] - est,
            "applied": r["last_applied_at"] - est,
            "bytes_per_prefix": state["bytes"] / a.prefixes,
            "messages": state["messages"],
            "collector_rss": col_hwm,
            "consumer_rss": con_hwm,
            "cpu": cpu,
        }
    finally:
        for p in reversed(procs):
            p.terminate()
            try:
                p.wait(timeout=30)
            except subprocess.TimeoutExpired:
                p.kill()
        shutil.rmtree(store, ignore_errors=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--prefixes", type=int, default=1_000_000)
    ap.add_argument("--per", type=int, default=3, help="prefixes per UPDATE")
    ap.add_argument("--formats", default="raw,json")
    ap.add_argument("--batches", default="1000", help="--nats-batch values, comma-separated")
    ap.add_argument("--collector-args", default="", help="more collector flags, e.g. '--nats-max-inflight 4096'")
    ap.add_argument("--collector", default="target/release/examples/collector")
    ap.add_argument("--consumer", default="target/release/examples/rib-from-stream")
    a = ap.parse_args()
    for b in (a.collector, a.consumer):
        if not os.path.exists(b):
            sys.exit(f"{b} missing: cargo build --release --example collector --example rib-from-stream")
    if not shutil.which("nats-server"):
        sys.exit("nats-server missing: apt-get install nats-server")
    data = ft.table(a.prefixes, a.per, 65001)
    updates = (a.prefixes + a.per - 1) // a.per
    modes = [(fmt, int(b)) for fmt in a.formats.split(",") for b in a.batches.split(",")]
    res = {m: [] for m in modes}
    for r in range(a.runs):
        for fmt, batch in modes:
            x = one_run(a, fmt, batch, r, data, updates)
            res[(fmt, batch)].append(x)
            print(f"{fmt} batch {batch} run {r + 1}: {a.prefixes} prefixes, {a.per}/UPDATE: "
                  f"Established -> acked {x['acked']:.3f} s, -> consumer {x['applied']:.3f} s; "
                  f"stream {x['messages']} messages, {x['bytes_per_prefix']:.1f} B/prefix; "
                  f"peak RSS collector {x['collector_rss'] / 1024:.1f} MiB, "
                  f"consumer {x['consumer_rss'] / 1024:.1f} MiB; CPU s: "
                  + ", ".join(f"{k} {v:.1f}" for k, v in x["cpu"].items()), flush=True)
    for (fmt, batch), rs in res.items():
        med = lambda k: sorted(x[k] for x in rs)[len(rs) // 2]  # noqa: E731
        cpu = {k: sorted(x["cpu"][k] for x in rs)[len(rs) // 2] for k in rs[0]["cpu"]}
        print(f"{fmt} batch {batch} median: acked {med('acked'):.3f} s, consumer {med('applied'):.3f} s, "
              f"{med('messages')} messages, {med('bytes_per_prefix'):.1f} B/prefix, collector peak RSS "
              f"{max(x['collector_rss'] for x in rs) / 1024:.1f} MiB; CPU s: "
              + ", ".join(f"{k} {v:.1f}" for k, v in cpu.items()), flush=True)

if __name__ == "__main__":
    main()
