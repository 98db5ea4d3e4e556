#!/usr/bin/env python3
"""Qdrant Edge's multivector search on the token set prepare_data.py writes (minilm-tokens/), the peer of
`peer_bench plaid`. Prints one JSON object on stdout.

  token_peer.py DIR [--m 16] [--ef-construct 100] [--efs 10,20,40,80,160] [--threads 2]
                [--memory ram|disk] [--work DIR]

One named Cosine multivector with the `max_sim` comparator (`MultiVectorConfig`), every document a point
of its token rows; `optimize()` builds the HNSW graph over the points in one segment (the graph's
distance is MaxSim). Ground truth is exhaustive MaxSim over the raw f32 tokens (numpy), the same as on
Quiver's side. Queries go one at a time from Python to a shard whose search pool has one thread, best
of two passes; recall@10 and QPS per `hnsw_ef`.

Memory: the queries run in a second process that only loads the built shard (`EdgeShard.load`) and the
queries; `shard_rss_mib` is that process's resident set after the queries less the one before the
load (the shard's vectors, graph, ids and whatever else it keeps), `serve_peak_rss_mib` its peak
(VmHWM).
`build_peak_rss_mib` is the building process's peak (getrusage), the documents' arrays included.
`--memory disk` stores the vectors and the graph on disk (`on_disk`), served from the page cache.
`disk_bytes` is the shard directory's allocated size after the build.
"""

import argparse
import gc
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time

import numpy as np


def rss_mib(field="VmRSS:"):
    """This process's resident set (or, with "VmHWM:", its peak) in MiB. The peak of getrusage
    survives exec, so a child started from the building process would report the builder's."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field):
                return int(line.split()[1]) / 1024.0
    return 0.0


def best_of_two(f):
    best, out = float("inf"), None
    for _ in range(2):
        t = time.perf_counter()
        out = f()
        best = min(best, time.perf_counter() - t)
    return best, out


def exhaustive_top(doc_tokens, doc_offsets, queries, k):
    """Exact MaxSim top k of each query: every query token's best score in each document, summed."""
    starts = doc_offsets[:-1].astype(np.int64)
    out = []
    for q in queries:
        s = q @ doc_tokens.T
        per_doc = np.maximum.reduceat(s, starts, axis=1).sum(0)
        top = np.argpartition(-per_doc, k)[:k]
        out.append(top[np.argsort(-per_doc[top], kind="stable")])
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("dir")
    ap.add_argument("--m", type=int, default=16)
    ap.add_argument("--ef-construct", type=int, default=100)
    ap.add_argument("--efs", default="10,20,40,80,160")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--memory", choices=["ram", "disk"], default="ram")
    ap.add_argument("--work", default=None)
    ap.add_argument("--load", default=None, help=argparse.SUPPRESS)
    ap.add_argument("--truth", default=None, help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.load:
        return serve(a)
    from importlib.metadata import version

    import qdrant_edge as qe

    k = 10
    rss0 = rss_mib()
    doc_tokens = np.load(os.path.join(a.dir, "doc_tokens.npy"))
    doc_offsets = np.load(os.path.join(a.dir, "doc_offsets.npy"))
    q_tokens = np.load(os.path.join(a.dir, "query_tokens.npy"))
    q_offsets = np.load(os.path.join(a.dir, "query_offsets.npy"))
    queries = [q_tokens[q_offsets[i]:q_offsets[i + 1]] for i in range(len(q_offsets) - 1)]
    n, dim = len(doc_offsets) - 1, doc_tokens.shape[1]
    t = time.perf_counter()
    truth = exhaustive_top(doc_tokens, doc_offsets, queries, k)
    exhaustive_s = time.perf_counter() - t

    work = a.work or tempfile.mkdtemp(prefix="quiver-token-peer-")
    path = os.path.join(work, "qdrant-edge-multi")
    shutil.rmtree(path, ignore_errors=True)
    os.makedirs(path)
    on_disk = a.memory == "disk"
    hnsw = qe.HnswIndexConfig(m=a.m, ef_construct=a.ef_construct, full_scan_threshold=10,
                              max_indexing_threads=a.threads, on_disk=on_disk)
    config = qe.EdgeConfig(
        vectors={"colbert": qe.EdgeVectorParams(
            size=dim, distance=qe.Distance.Cosine, on_disk=on_disk,
            multivector_config=qe.MultiVectorConfig(qe.MultiVectorComparator.MaxSim))},
        hnsw_config=hnsw,
        optimizers=qe.EdgeOptimizersConfig(default_segment_number=1, indexing_threshold=1,
                                           max_segment_size=2**31),
        max_search_threads=1,
        wal_enabled=False,
    )
    shard = qe.EdgeShard.create(path, config)
    t = time.perf_counter()
    for s in range(0, n, 200):
        pts = []
        for i in range(s, min(s + 200, n)):
            rows = doc_tokens[doc_offsets[i]:doc_offsets[i + 1]].tolist()
            pts.append(qe.Point(id=i, vector={"colbert": rows}))
        shard.update(qe.UpdateOperation.upsert_points(pts))
    shard.flush()
    upsert_s = time.perf_counter() - t
    del doc_tokens, pts
    gc.collect()
    t, cpu = time.perf_counter(), time.process_time()
    shard.optimize()
    build_s, build_cpu_s = time.perf_counter() - t, time.process_time() - cpu
    shard.flush()
    info = shard.info()
    if info.indexed_vectors_count < n:
        sys.exit(f"qdrant-edge: {info.indexed_vectors_count} of {n} points indexed after optimize() "
                 f"({info.segments_count} segments)")
    shard.close()
    disk = sum(os.stat(os.path.join(d, f)).st_blocks * 512 for d, _, fs in os.walk(path) for f in fs)
    truth_path = os.path.join(work, "truth.npy")
    np.save(truth_path, np.array(truth, dtype=np.int64))
    served = subprocess.run([sys.executable, os.path.abspath(__file__), a.dir, "--load", path, "--truth",
                             truth_path, "--efs", a.efs], check=True, capture_output=True, text=True)
    query_phase = json.loads(served.stdout)
    tokens = int(doc_offsets[-1])
    out = {"impl": "qdrant-edge", "version": version("qdrant-edge-py"), "memory": a.memory,
           "docs": n, "tokens": tokens, "dim": dim, "queries": len(queries),
           "query_tokens_mean": sum(len(q) for q in queries) / len(queries), "m": a.m,
           "ef_construct": a.ef_construct, "threads": a.threads, "upsert_s": upsert_s, "build_s": build_s,
           "build_cpu_s": build_cpu_s, "exhaustive_numpy_qps": len(queries) / exhaustive_s,
           "shard_rss_mib": query_phase["shard_rss_mib"],
           "shard_rss_bytes_per_token": query_phase["shard_rss_mib"] * 2**20 / tokens,
           "serve_peak_rss_mib": query_phase["peak_rss_mib"],
           "build_peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0,
           "disk_bytes": disk, "disk_bytes_per_token": disk / tokens, "rows": query_phase["rows"]}
    if a.work is None:
        shutil.rmtree(work, ignore_errors=True)
    json.dump(out, sys.stdout)
    print()


def serve(a):
    """The query phase, in its own process: load the shard, run the queries at each ef."""
    import qdrant_edge as qe

    k = 10
    q_tokens = np.load(os.path.join(a.dir, "query_tokens.npy"))
    q_offsets = np.load(os.path.join(a.dir, "query_offsets.npy"))
    qlists = [q_tokens[q_offsets[i]:q_offsets[i + 1]].tolist() for i in range(len(q_offsets) - 1)]
    truth = np.load(a.truth)
    rss0 = rss_mib()
    shard = qe.EdgeShard.load(a.load)
    rows = []
    for ef in [int(x) for x in a.efs.split(",")]:
        params = qe.SearchParams(hnsw_ef=ef)

        def one(q):
            hits = shard.query(qe.QueryRequest(limit=k, query=qe.Query.Nearest(q, using="colbert"),
                                               params=params, with_payload=False, with_vector=False))
            return [h.id for h in hits]

        secs, ids = best_of_two(lambda: [one(q) for q in qlists])
        hits = sum(len(set(map(int, g)) & set(map(int, w))) for g, w in zip(ids, truth))
        rows.append({"ef": ef, "recall": hits / (k * len(qlists)), "qps_1": len(qlists) / secs})
    out = {"shard_rss_mib": rss_mib() - rss0, "peak_rss_mib": rss_mib("VmHWM:"), "rows": rows}
    shard.close()
    json.dump(out, sys.stdout)
    print()


if __name__ == "__main__":
    main()
