#!/usr/bin/env python3
"""Where a server's resident memory goes while it ingests, indexes and serves one collection.

  resident_memory.py --data target/bench-data/fashion-mnist [--bin target/release/quiver]
      [--distance Euclid] [--on-disk] [--quantization none|int8|binary] [--searches 200]

Starts `quiver serve` on a temporary directory, creates a collection (Qdrant's shapes: `on_disk`
originals, `quantization_config` with `always_ram: true`), upserts `base.npy` over HTTP in requests of
500 points, waits until every vector is indexed and no optimization runs, then sends the searches.
At each stage it reads the server's /proc/PID/smaps_rollup: `Rss` split into anonymous memory (the
heap: what the process allocated and has not given back) and file-backed pages (mapped segment files,
which the kernel may drop at any time and which count once however many processes map them). The
collection's "in RAM by config" is what its configuration says it keeps resident: the codes when
quantized with `always_ram`, the vectors when not `on_disk`, and the graph links.
Prints one markdown table.
"""

import argparse
import json
import os
import shutil
import socket
import subprocess
import tempfile
import time
import urllib.request

import numpy as np


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def call(base, method, path, body=None, timeout=600):
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(base + path, data=data, method=method,
                                 headers={"content-type": "application/json"})
    with urllib.request.urlopen(req, timeout=timeout) as r:
        return json.loads(r.read() or b"null")


def rollup(pid):
    out = {}
    with open(f"/proc/{pid}/smaps_rollup") as f:
        for line in f:
            parts = line.split()
            if len(parts) >= 3 and parts[-1] == "kB":
                out[parts[0].rstrip(":")] = int(parts[1]) * 1024
    return out


def mib(x):
    return x / (1 << 20)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", required=True)
    ap.add_argument("--bin", default="target/release/quiver")
    ap.add_argument("--distance", default="Euclid")
    ap.add_argument("--on-disk", action="store_true")
    ap.add_argument("--quantization", default="none", choices=["none", "int8", "binary"])
    ap.add_argument("--searches", type=int, default=200)
    ap.add_argument("--batch", type=int, default=500)
    ap.add_argument("--drop-caches", action="store_true",
                    help="drop the kernel's page cache once indexed (needs root): searches then "
                         "read the rows from disk, as after a restart")
    ap.add_argument("--segment-points", type=int, default=0,
                    help="segment_max_points (0: the server's default)")
    a = ap.parse_args()

    base_vectors = np.load(os.path.join(a.data, "base.npy")).astype(np.float32)
    queries = np.load(os.path.join(a.data, "queries.npy")).astype(np.float32)
    n, dim = base_vectors.shape
    work = tempfile.mkdtemp(prefix="quiver-rss-")
    port = free_port()
    server = subprocess.Popen([a.bin, "--data-dir", work, "--log", "warn", "serve", "--port", str(port)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    rows = []

    def stage(name):
        r = rollup(server.pid)
        rows.append((name, r["Rss"], r.get("Anonymous", 0), r["Rss"] - r.get("Anonymous", 0)))

    try:
        for _ in range(200):
            try:
                urllib.request.urlopen(url + "/readyz", timeout=5).read()
                break
            except OSError:
                time.sleep(0.1)
        stage("started")
        body = {"vectors": {"size": dim, "distance": a.distance, "on_disk": a.on_disk}}
        if a.quantization == "int8":
            body["quantization_config"] = {"scalar": {"type": "int8", "always_ram": True}}
        elif a.quantization == "binary":
            body["quantization_config"] = {"binary": {"always_ram": True}}
        if a.segment_points:
            body["optimizers_config"] = {"segment_max_points": a.segment_points}
        call(url, "PUT", "/collections/rss", body)
        t = time.perf_counter()
        for s in range(0, n, a.batch):
            pts = [{"id": s + i, "vector": v} for i, v in enumerate(base_vectors[s:s + a.batch].tolist())]
            call(url, "PUT", "/collections/rss/points?wait=true", {"points": pts})
        ingest_s = time.perf_counter() - t
        stage("after upserts")
        # Settled: no optimization running and the same count of indexed vectors over 2 s (a
        # segment under `segment_max_points` stays appendable and unindexed, as in Qdrant).
        seen = []
        while True:
            info = call(url, "GET", "/collections/rss")["result"]
            seen.append((info["status"], info["indexed_vectors_count"], info["segments_count"]))
            if len(seen) >= 5 and len(set(seen[-5:])) == 1 and seen[-1][0] == "green":
                break
            time.sleep(0.5)
        index_s = time.perf_counter() - t
        stage("indexed")
        if a.drop_caches:
            os.sync()
            with open("/proc/sys/vm/drop_caches", "w") as f:
                f.write("3\n")
            stage("page cache dropped")
        for q in queries[:a.searches].tolist():
            call(url, "POST", "/collections/rss/points/query", {"query": q, "limit": 10})
        stage(f"after {a.searches} searches")
        metrics = urllib.request.urlopen(url + "/metrics", timeout=30).read().decode()
    finally:
        server.terminate()
        server.wait(timeout=60)
    disk = {}
    for d, _, files in os.walk(work):
        for f in files:
            kind = "wal" if "wal" in d.split(os.sep)[-1] or f.startswith("wal") else os.path.splitext(f)[1] or f
            disk[kind] = disk.get(kind, 0) + os.path.getsize(os.path.join(d, f))
    shutil.rmtree(work, ignore_errors=True)

    f32 = n * dim * 4
    print(f"# {n} x {dim} {a.distance}, on_disk={a.on_disk}, quantization={a.quantization}; "
          f"f32 vectors {mib(f32):.1f} MiB; ingest {ingest_s:.1f} s, settled after {index_s:.1f} s "
          f"({info['segments_count']} segments, {info['indexed_vectors_count']} vectors indexed)")
    print()
    print("| stage | RSS MiB | anonymous MiB | file-backed MiB | anonymous over start MiB |")
    print("|---|---:|---:|---:|---:|")
    start_anon = rows[0][2]
    for name, rss, anon, filed in rows:
        print(f"| {name} | {mib(rss):.1f} | {mib(anon):.1f} | {mib(filed):.1f} | {mib(anon - start_anon):.1f} |")
    print()
    print("disk by file kind (MiB): " + ", ".join(f"{k} {mib(v):.1f}" for k, v in sorted(disk.items())))
    for line in metrics.splitlines():
        if line.startswith("quiver_") and ("memory" in line or "bytes" in line) and "bucket" not in line:
            print(line)


if __name__ == "__main__":
    main()
