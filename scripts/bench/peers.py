#!/usr/bin/env python3
"""The peers' side of the benchmarks: hnswlib, faiss-cpu, Qdrant Edge and numpy on the files
prepare_data.py wrote. Prints one JSON object on stdout, in the shape benches/examples/peer_bench.rs
prints for Quiver.

  peers.py hnsw DIR --lib hnswlib|faiss|qdrant-edge --metric euclid|cosine [--m 16] [--ef-construct 100]
           [--efs 10,20,40,80,160,320] [--threads 2] [--work DIR]
           [--quantization int8|binary|binary-1.5|binary-2|binary-2-q8 --oversampling 1,2,4,8]  (qdrant-edge)
  peers.py scan DIR --metric euclid|cosine [--threads 2] [--queries N]

Each invocation is its own process, so its peak RSS (getrusage) is its own. build_cpu_s is the
process's CPU time (all threads) over the build, which a shared machine disturbs less than wall time. Query timing: the "1 thread"
pass hands the whole query batch to the library with one thread (no per-query Python overhead); the
parallel pass does the same with --threads threads. Best of two passes, as on Quiver's side.

Qdrant Edge (qdrant-edge-py, Qdrant's shard engine in process) has no batch call that stays on one
thread, so its "1 thread" pass sends the queries one at a time from Python to a shard whose search pool
has one thread (each call costs a few microseconds of Python on top of the search), and its parallel
pass runs --threads such loops on Python threads. Its
build time is `optimize()` after all points are upserted: the optimizer copies the appended points into
one segment and builds its HNSW graph there, with --threads indexing threads.

With --quantization (Qdrant Edge only) the collection gets Qdrant's quantization config of that name
(`always_ram`, originals in RAM as Quiver's quantization_bench keeps them) and each row is one
`hnsw_ef` at one oversampling, searched with `rescore: true`: the walk scores codes and the
`limit × oversampling` best are rescored with the originals, as Quiver does.
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
    t, cpu = time.perf_counter(), time.process_time()
    index.add_items(base, np.arange(n), num_threads=a.threads)
    build_s, build_cpu_s = time.perf_counter() - t, time.process_time() - cpu
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
            "build_cpu_s": build_cpu_s,
            "index_bytes": os.path.getsize(path), "rows": rows}


def run_faiss(a, base, queries, gt):
    import faiss

    n, dim = base.shape
    metric = faiss.METRIC_L2 if a.metric == "euclid" else faiss.METRIC_INNER_PRODUCT
    # IndexHNSWFlat(d, M): M links per node on upper layers and 2·M on layer 0, as hnswlib and Quiver.
    index = faiss.IndexHNSWFlat(dim, a.m, metric)
    index.hnsw.efConstruction = a.ef_construct
    faiss.omp_set_num_threads(a.threads)
    t, cpu = time.perf_counter(), time.process_time()
    index.add(base)
    build_s, build_cpu_s = time.perf_counter() - t, time.process_time() - cpu
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
    return {"impl": "faiss", "version": faiss.__version__, "build_s": build_s, "build_cpu_s": build_cpu_s,
            "index_bytes": os.path.getsize(path), "rows": rows}


def edge_quantization(qe, name):
    """Qdrant's quantization config for a --quantization name (None for none)."""
    if not name or name == "none":
        return None
    if name == "int8":
        return qe.ScalarQuantizationConfig(type=qe.ScalarType.Int8, always_ram=True)
    encodings = {"binary": (qe.BinaryQuantizationEncoding.OneBit, None),
                 "binary-1.5": (qe.BinaryQuantizationEncoding.OneAndHalfBits, None),
                 "binary-2": (qe.BinaryQuantizationEncoding.TwoBits, None),
                 "binary-2-q8": (qe.BinaryQuantizationEncoding.TwoBits,
                                 qe.BinaryQuantizationQueryEncoding.Scalar8Bits)}
    if name not in encodings:
        sys.exit(f"--quantization: unknown {name!r} (int8, {', '.join(encodings)})")
    encoding, query = encodings[name]
    return qe.BinaryQuantizationConfig(always_ram=True, encoding=encoding, query_encoding=query)


def run_qdrant_edge(a, base, queries, gt):
    import shutil
    from concurrent.futures import ThreadPoolExecutor
    from importlib.metadata import version

    import qdrant_edge as qe

    n, dim = base.shape
    path = os.path.join(a.work, "qdrant-edge")
    shutil.rmtree(path, ignore_errors=True)
    os.makedirs(path)
    hnsw = qe.HnswIndexConfig(m=a.m, ef_construct=a.ef_construct, full_scan_threshold=10,
                              max_indexing_threads=a.threads)
    config = qe.EdgeConfig(
        vectors=qe.EdgeVectorParams(size=dim, distance=qe.Distance.Euclid if a.metric == "euclid"
                                    else qe.Distance.Cosine),
        hnsw_config=hnsw,
        quantization_config=edge_quantization(qe, a.quantization),
        # One segment, indexed whatever its size: the graph is built once over all points, as the
        # other libraries build theirs.
        optimizers=qe.EdgeOptimizersConfig(default_segment_number=1, indexing_threshold=1,
                                           max_segment_size=2**31),
        max_search_threads=1,
        wal_enabled=False,
    )
    shard = qe.EdgeShard.create(path, config)
    for s in range(0, n, 1000):
        rows = base[s:s + 1000].tolist()
        shard.update(qe.UpdateOperation.upsert_points(
            [qe.Point(id=s + i, vector=r) for i, r in enumerate(rows)]))
    shard.flush()
    t, cpu = time.perf_counter(), time.process_time()
    shard.optimize()
    build_s, build_cpu_s = time.perf_counter() - t, time.process_time() - cpu
    shard.flush()
    info = shard.info()
    # The shard keeps an empty appendable segment beside the optimized one.
    if info.indexed_vectors_count != n:
        sys.exit(f"qdrant-edge: {info.indexed_vectors_count} of {n} vectors indexed after optimize() "
                 f"({info.segments_count} segments)")
    qlists = queries.tolist()
    k = gt.shape[1]
    rows = []
    quantized = a.quantization not in (None, "none")
    settings = [(ef, o) for ef in a.efs for o in (a.oversampling if quantized else [None])]
    for ef, oversampling in settings:
        quant = (qe.QuantizationSearchParams(ignore=False, rescore=True, oversampling=oversampling)
                 if quantized else None)
        params = qe.SearchParams(hnsw_ef=ef, quantization=quant)

        def one(q):
            hits = shard.query(qe.QueryRequest(limit=k, query=qe.Query.Nearest(q), params=params,
                                               with_payload=False, with_vector=False))
            return [h.id for h in hits]

        single, ids = best_of_two(lambda: [one(q) for q in qlists])
        with ThreadPoolExecutor(a.threads) as pool:
            chunks = [qlists[i::a.threads] for i in range(a.threads)]
            many, _ = best_of_two(lambda: list(pool.map(lambda c: [one(q) for q in c], chunks)))
        row = {"ef": ef, "recall": recall(ids, gt), "qps_1": len(queries) / single,
               "qps_threads": len(queries) / many}
        if quantized:
            row["oversampling"] = oversampling
        rows.append(row)
    # Allocated bytes: the shard's files are created sparse at a larger size than they fill.
    index_bytes = sum(os.stat(os.path.join(d, f)).st_blocks * 512 for d, _, fs in os.walk(path) for f in fs)
    shard.close()
    return {"impl": "qdrant-edge", "version": version("qdrant-edge-py"), "build_s": build_s,
            "quantization": a.quantization or "none",
            "build_cpu_s": build_cpu_s,
            "index_bytes": index_bytes, "rows": rows}


def hnsw(a):
    base, queries, gt = load(a.dir, a.queries)
    os.makedirs(a.work, exist_ok=True)
    run = {"hnswlib": run_hnswlib, "faiss": run_faiss, "qdrant-edge": run_qdrant_edge}[a.lib]
    out = run(a, base, queries, gt)
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
    ap.add_argument("--lib", choices=["hnswlib", "faiss", "qdrant-edge"], default="hnswlib")
    ap.add_argument("--metric", choices=["euclid", "cosine"], required=True)
    ap.add_argument("--m", type=int, default=16)
    ap.add_argument("--ef-construct", type=int, default=100)
    ap.add_argument("--efs", default="10,20,40,80,160,320")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--work", default=None)
    ap.add_argument("--queries", type=int, default=0, help="only the first N queries (0: all)")
    ap.add_argument("--quantization", default=None,
                    help="qdrant-edge: int8, binary, binary-1.5, binary-2 or binary-2-q8")
    ap.add_argument("--oversampling", default="1,2,4,8", help="with --quantization")
    a = ap.parse_args()
    a.efs = [int(x) for x in a.efs.split(",")]
    a.oversampling = [float(x) for x in a.oversampling.split(",")]
    if a.quantization and a.lib != "qdrant-edge":
        sys.exit("--quantization is for --lib qdrant-edge")
    if a.work is None:
        import tempfile

        a.work = tempfile.mkdtemp(prefix="quiver-peers-")
    out = hnsw(a) if a.mode == "hnsw" else scan(a)
    json.dump(out, sys.stdout)
    print()


if __name__ == "__main__":
    main()
