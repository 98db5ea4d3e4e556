#!/usr/bin/env python3
"""Where a server's resident memory goes while it ingests, indexes and serves one collection.

  resident_memory.py --data target/bench-data/fashion-mnist [--bin target/release/quiver]
      [--distance Euclid] [--on-disk] [--quantization none|int8|binary] [--searches 200]
  resident_memory.py --multivector --data target/bench-data/minilm-tokens [--batch 100]

With `--multivector` the data are token matrices (`doc_tokens.npy`, `doc_offsets.npy`,
`query_tokens.npy`, `query_offsets.npy`, from `prepare_data.py --only tokens`) upserted as one Cosine
multivector per point, with `segment_max_points` at the number of documents so that one seal writes
them all (its token store, compressed only, as by default); "vectors" are then the f32 token rows.
`--indexing-threshold KIB` seals by bytes instead, and `--backlog` holds the optimizer through the
upserts, so that the seal starts from one backlog of every point (as after writers outpaced it).

Starts `quiver serve` on a temporary directory, creates a collection (Qdrant's shapes: `on_disk`
originals, `quantization_config` with `always_ram: true`), upserts `base.npy` over HTTP in requests of
500 points, waits until every vector is indexed and no optimization runs, then sends the searches.
At each stage it reads the server's /proc/PID/smaps_rollup: `Rss` split into anonymous memory (the
heap: what the process allocated and has not given back) and file-backed pages (mapped segment files,
which the kernel may drop at any time and which count once however many processes map them). The
collection's "in RAM by config" is what its configuration says it keeps resident: the codes when
quantized with `always_ram`, the vectors when not `on_disk`, and the graph links.
A sampler reads /proc/PID/status every few milliseconds meanwhile and reports the peaks of the
ingest (the upserts) and of the seal (from the last upsert until settled): the seal's peak increase
over the memory it started from, and its total peak, in MiB and as a multiple of the f32 vectors.
Prints two markdown tables.
"""

import argparse
import json
import os
import shutil
import socket
import subprocess
import tempfile
import threading
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


def status_rss(pid):
    """(RssAnon, RssFile) in bytes, from /proc/PID/status (cheap enough to poll)."""
    out = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(("RssAnon:", "RssFile:")):
                key, value, _ = line.split()
                out[key.rstrip(":")] = int(value) * 1024
    return out.get("RssAnon", 0), out.get("RssFile", 0)


class Sampler(threading.Thread):
    """Polls the server's resident memory and keeps, per phase, the anonymous memory at the phase's
    start and the peaks of anonymous and file-backed memory during it."""

    def __init__(self, pid, interval=0.005):
        super().__init__(daemon=True)
        self.pid, self.interval = pid, interval
        self.lock = threading.Lock()
        self.phase = None
        self.peaks = {}
        self.order = []
        self.done = threading.Event()

    def start_phase(self, name):
        anon, filed = status_rss(self.pid)
        with self.lock:
            self.phase = name
            self.order.append(name)
            self.peaks[name] = {"start": anon, "anon": anon, "file": filed}

    def stop_phase(self):
        with self.lock:
            self.phase = None

    def run(self):
        while not self.done.is_set():
            try:
                anon, filed = status_rss(self.pid)
            except OSError:
                return
            with self.lock:
                if self.phase is not None:
                    p = self.peaks[self.phase]
                    p["anon"] = max(p["anon"], anon)
                    p["file"] = max(p["file"], filed)
            time.sleep(self.interval)


def anon_mappings(pid):
    """Anonymous resident bytes of each mapping of the process: (bytes, mapping size, name), largest
    first, with the thread count."""
    maps, current = [], None
    with open(f"/proc/{pid}/smaps") as f:
        for line in f:
            parts = line.split()
            if "-" in parts[0] and len(parts) >= 5 and not parts[0].endswith(":"):
                lo, hi = (int(x, 16) for x in parts[0].split("-"))
                current = [0, hi - lo, parts[5] if len(parts) > 5 else "(anonymous)"]
                maps.append(current)
            elif parts[0] == "Anonymous:":
                current[0] = int(parts[1]) * 1024
    with open(f"/proc/{pid}/status") as f:
        threads = next(int(l.split()[1]) for l in f if l.startswith("Threads:"))
    return sorted((m for m in maps if m[0] > 0), reverse=True), threads


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
    ap.add_argument("--smaps", action="store_true",
                    help="after the searches, list the server's mappings by anonymous memory")
    ap.add_argument("--multivector", action="store_true",
                    help="token matrices in --data, one Cosine multivector per point")
    ap.add_argument("--indexing-threshold", type=int, default=None,
                    help="optimizers_config.indexing_threshold in KiB (with --multivector the "
                         "default is 0: only segment_max_points seals)")
    ap.add_argument("--backlog", action="store_true",
                    help="hold the optimizer (max_optimization_threads 0) through the upserts, then "
                         "let it run: the seal then starts from one backlog of every point")
    ap.add_argument("--server-log", default=None,
                    help="write the server's log here, with the optimizer's per-phase memory "
                         "(debug) lines")
    a = ap.parse_args()

    if a.multivector:
        tokens = np.load(os.path.join(a.data, "doc_tokens.npy")).astype(np.float32)
        offsets = np.load(os.path.join(a.data, "doc_offsets.npy"))
        q_tokens = np.load(os.path.join(a.data, "query_tokens.npy")).astype(np.float32)
        q_offsets = np.load(os.path.join(a.data, "query_offsets.npy"))
        base_vectors = [tokens[offsets[i]:offsets[i + 1]] for i in range(len(offsets) - 1)]
        queries = [q_tokens[q_offsets[i]:q_offsets[i + 1]] for i in range(len(q_offsets) - 1)]
        n, dim = len(base_vectors), tokens.shape[1]
        a.distance = "Cosine"
        a.segment_points = a.segment_points or n
        f32 = tokens.size * 4
    else:
        base_vectors = np.load(os.path.join(a.data, "base.npy")).astype(np.float32)
        queries = np.load(os.path.join(a.data, "queries.npy")).astype(np.float32)
        n, dim = base_vectors.shape
        f32 = n * dim * 4
    work = tempfile.mkdtemp(prefix="quiver-rss-")
    port = free_port()
    log = "warn,quiver_engine::collection::optimize=debug" if a.server_log else "warn"
    log_file = open(a.server_log, "w") if a.server_log else subprocess.DEVNULL
    server = subprocess.Popen([a.bin, "--data-dir", work, "--log", log, "serve", "--port", str(port)],
                              stdout=subprocess.DEVNULL, stderr=log_file)
    sampler = Sampler(server.pid)
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
        sampler.start()
        body = {"vectors": {"size": dim, "distance": a.distance, "on_disk": a.on_disk}}
        if a.multivector:
            body["vectors"]["multivector_config"] = {"comparator": "max_sim"}
            # Only `segment_max_points` seals: one seal of every document.
            body["optimizers_config"] = {"indexing_threshold": 0}
        if a.indexing_threshold is not None:
            body.setdefault("optimizers_config", {})["indexing_threshold"] = a.indexing_threshold
        if a.backlog:
            body.setdefault("optimizers_config", {})["max_optimization_threads"] = 0
        if a.quantization == "int8":
            body["quantization_config"] = {"scalar": {"type": "int8", "always_ram": True}}
        elif a.quantization == "binary":
            body["quantization_config"] = {"binary": {"always_ram": True}}
        if a.segment_points:
            body.setdefault("optimizers_config", {})["segment_max_points"] = a.segment_points
        call(url, "PUT", "/collections/rss", body)
        t = time.perf_counter()
        sampler.start_phase("ingest")
        for s in range(0, n, a.batch):
            pts = [{"id": s + i, "vector": v.tolist()} for i, v in enumerate(base_vectors[s:s + a.batch])]
            call(url, "PUT", "/collections/rss/points?wait=true", {"points": pts})
        ingest_s = time.perf_counter() - t
        sampler.start_phase("seal")
        stage("after upserts")
        if a.backlog:
            t = time.perf_counter()
            call(url, "PATCH", "/collections/rss",
                 {"optimizers_config": {"max_optimization_threads": "auto"}})
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
        query_t = time.perf_counter()
        sampler.stop_phase()
        stage("indexed")
        if a.drop_caches:
            os.sync()
            with open("/proc/sys/vm/drop_caches", "w") as f:
                f.write("3\n")
            stage("page cache dropped")
        for q in queries[:a.searches]:
            call(url, "POST", "/collections/rss/points/query", {"query": q.tolist(), "limit": 10})
        query_ms = (time.perf_counter() - query_t) * 1000 / max(1, min(a.searches, len(queries)))
        stage(f"after {a.searches} searches")
        smaps = anon_mappings(server.pid) if a.smaps else None
        metrics = urllib.request.urlopen(url + "/metrics", timeout=30).read().decode()
    finally:
        sampler.done.set()
        server.terminate()
        server.wait(timeout=60)
    disk = {}
    for d, _, files in os.walk(work):
        for f in files:
            kind = "wal" if "wal" in d.split(os.sep)[-1] or f.startswith("wal") else os.path.splitext(f)[1] or f
            disk[kind] = disk.get(kind, 0) + os.path.getsize(os.path.join(d, f))
    shutil.rmtree(work, ignore_errors=True)

    print(f"# {n} x {dim} {a.distance}, on_disk={a.on_disk}, quantization={a.quantization}; "
          f"f32 vectors {mib(f32):.1f} MiB; ingest {ingest_s:.1f} s, settled after {index_s:.1f} s "
          f"({info['segments_count']} segments, {info['indexed_vectors_count']} vectors indexed); "
          f"searches {query_ms:.2f} ms each"
          + ("; settled counted from the optimizer's release" if a.backlog else ""))
    print()
    print("| stage | RSS MiB | anonymous MiB | file-backed MiB | anonymous over start MiB |")
    print("|---|---:|---:|---:|---:|")
    start_anon = rows[0][2]
    for name, rss, anon, filed in rows:
        print(f"| {name} | {mib(rss):.1f} | {mib(anon):.1f} | {mib(filed):.1f} | {mib(anon - start_anon):.1f} |")
    print()
    print("| phase | anonymous at start MiB | peak anonymous MiB | peak increase MiB | "
          "peak increase × vectors | peak anonymous × vectors | peak file-backed MiB |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for name in sampler.order:
        p = sampler.peaks[name]
        print(f"| {name} | {mib(p['start']):.1f} | {mib(p['anon']):.1f} | {mib(p['anon'] - p['start']):.1f} | "
              f"{(p['anon'] - p['start']) / f32:.2f} | {p['anon'] / f32:.2f} | {mib(p['file']):.1f} |")
    if smaps:
        maps, threads = smaps
        print()
        print(f"anonymous memory by mapping after the searches ({threads} threads; mapping size in MiB):")
        for anon, size, name in maps[:25]:
            print(f"  {mib(anon):8.2f} MiB of {mib(size):9.2f}  {name}")
        rest = maps[25:]
        print(f"  {mib(sum(m[0] for m in rest)):8.2f} MiB in {len(rest)} more mappings")
    print()
    print("disk by file kind (MiB): " + ", ".join(f"{k} {mib(v):.1f}" for k, v in sorted(disk.items())))
    for line in metrics.splitlines():
        if line.startswith("quiver_") and ("memory" in line or "bytes" in line) and "bucket" not in line:
            print(line)


if __name__ == "__main__":
    main()
