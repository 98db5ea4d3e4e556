#!/usr/bin/env python3
"""The peers' side of the benchmarks: hnswlib, faiss-cpu and numpy on the files prepare_data.py wrote.
Prints one JSON object on stdout, in the shape benches/examples/peer_bench.rs prints for Quiver.

  peers.py hnsw DIR --lib hnswlib|faiss --metric euclid|cosine [--m 16] [--ef-construct 100]
           [--efs 10,20,40,80,160,320] [--threads 2] [--work DIR]
  peers.py scan DIR --metric euclid|cosine [--threads 2] [--queries N]

Each invocation is its own process, so its peak RSS (getrusage) is its own. Query timing: the "1 thread"
pass hands the whole query batch to the library with one thread (no per-query Python overhead); the
parallel pass does the same with --threads threads. Best of two passes, as on Quiver's side.
"""

import argparse
import json
import os
import resource
import sys
import time

import numpy as np


def load(d, limit=0):
    base = np.load(os.path.join(d, "base.npy"))
    queries = np.load(os.path.join(d, "queries.npy"))
    gt = np.load(os.path.join(d, "gt.npy"))
    if limit:
        queries, gt = queries[:limit], gt[:limit]
    return base, queries, gt


def recall(ids, gt):
    k = gt.shape[1]
    hits = sum(len(set(map(int, r[:k])) & set(map(int, g))) for r, g in zip(ids, gt))
    return hits / (len(gt) * k)


def best_of_two(f):
    best = float("inf")
    out = None
    for _ in range(2):
        t = time.perf_counter()
        out = f()
        best = min(best, time.perf_counter() - t)
    return best, out


def peak_rss_mib():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def run_hnswlib(a, base, queries, gt):
    import hnswlib

    n, dim = base.shape
    index = hnswlib.Index(space="l2" if a.metric == "euclid" else "cosine", dim=dim)
    index.init_index(max_elements=n, M=a.m, ef_construction=a.ef_construct, random_seed=100)
    index.set_num_threads(a.threads)
    t = time.perf_counter()
    index.add_items(base, np.arange(n), num_threads=a.threads)
    build_s = time.perf_counter() - t
    path = os.path.join(a.work, "hnswlib.bin")
    index.save_index(path)
    rows = []
    k = gt.shape[1]
    for ef in a.efs:
        index.set_ef(ef)
        one, (ids, _) = best_of_two(lambda: index.knn_query(queries, k=k, num_threads=1))
        many, _ = best_of_two(lambda: index.knn_query(queries, k=k, num_threads=a.threads))
        rows.append({"ef": ef, "recall": recall(ids, gt), "qps_1": len(queries) / one,
                     "qps_threads": len(queries) / many})
    return {"impl": "hnswlib", "version": getattr(hnswlib, "__version__", "0.8.0"), "build_s": build_s,
            "index_bytes": os.path.getsize(path), "rows": rows}


def run_faiss(a, base, queries, gt):
    import faiss

    n, dim = base.shape
    metric = faiss.METRIC_L2 if a.metric == "euclid" else faiss.METRIC_INNER_PRODUCT
    # IndexHNSWFlat(d, M): M links per node on upper layers and 2·M on layer 0, as hnswlib and Quiver.
    index = faiss.IndexHNSWFlat(dim, a.m, metric)
    index.hnsw.efConstruction = a.ef_construct
    faiss.omp_set_num_threads(a.threads)
    t = time.perf_counter()
    index.add(base)
    build_s = time.perf_counter() - t
    path = os.path.join(a.work, "faiss.index")
    faiss.write_index(index, path)
    rows = []
    k = gt.shape[1]
    for ef in a.efs:
        index.hnsw.efSearch = ef

        def search(threads):
            faiss.omp_set_num_threads(threads)
            return index.search(queries, k)[1]

        one, ids = best_of_two(lambda: search(1))
        many, _ = best_of_two(lambda: search(a.threads))
        rows.append({"ef": ef, "recall": recall(ids, gt), "qps_1": len(queries) / one,
                     "qps_threads": len(queries) / many})
    return {"impl": "faiss", "version": faiss.__version__, "build_s": build_s,
            "index_bytes": os.path.getsize(path), "rows": rows}


def hnsw(a):
    base, queries, gt = load(a.dir)
    os.makedirs(a.work, exist_ok=True)
    out = (run_hnswlib if a.lib == "hnswlib" else run_faiss)(a, base, queries, gt)
    out.update({"n": base.shape[0], "dim": base.shape[1], "queries": len(queries), "threads": a.threads,
                "peak_rss_mib": peak_rss_mib()})
    return out


def scan(a):
    from threadpoolctl import threadpool_limits

    base, queries, gt = load(a.dir, a.queries)
    k = gt.shape[1]
    euclid = a.metric == "euclid"
    # The usual numpy way for Euclid: |b|² precomputed once, then |b|² − 2 b·q per query.
    norms = (base * base).sum(1) if euclid else None

    def one(q):
        s = base @ q  # sgemv: one pass over the base vectors
        key = norms - 2 * s if euclid else -s
        top = np.argpartition(key, k)[:k]
        return top[np.argsort(key[top], kind="stable")]

    def run():
        return [one(q) for q in queries]

    nbytes = base.nbytes
    res = {}
    for label, threads in (("threads", a.threads), ("1", 1)):
        with threadpool_limits(limits=threads):
            s, ids = best_of_two(run)
        res[f"qps_{label}"] = len(queries) / s
        res[f"gbs_{label}"] = len(queries) * nbytes / s / 1e9
        if label == "threads":
            res["recall"] = recall(ids, gt)
    # numpy's own read rate: a float64-accumulating sum over the same array, one thread.
    s, _ = best_of_two(lambda: np.add.reduce(base, axis=None, dtype=np.float64))
    import threadpoolctl

    blas = [p.get("internal_api") for p in threadpoolctl.threadpool_info()]
    res.update({"impl": "numpy", "version": np.__version__, "blas": ",".join(sorted(set(map(str, blas)))),
                "n": base.shape[0], "dim": base.shape[1], "queries": len(queries), "threads": a.threads,
                "numpy_sum_gbs": nbytes / s / 1e9})
    return res


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("mode", choices=["hnsw", "scan"])
    ap.add_argument("dir")
    ap.add_argument("--lib", choices=["hnswlib", "faiss"], default="hnswlib")
    ap.add_argument("--metric", choices=["euclid", "cosine"], required=True)
    ap.add_argument("--m", type=int, default=16)
    ap.add_argument("--ef-construct", type=int, default=100)
    ap.add_argument("--efs", default="10,20,40,80,160,320")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--work", default=None)
    ap.add_argument("--queries", type=int, default=0, help="scan: only the first N queries (0: all)")
    a = ap.parse_args()
    a.efs = [int(x) for x in a.efs.split(",")]
    if a.work is None:
        import tempfile

        a.work = tempfile.mkdtemp(prefix="quiver-peers-")
    out = hnsw(a) if a.mode == "hnsw" else scan(a)
    json.dump(out, sys.stdout)
    print()


if __name__ == "__main__":
    main()
