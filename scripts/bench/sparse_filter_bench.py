#!/usr/bin/env python3
"""Sparse search and filtered dense search, Quiver's engine against Qdrant Edge (qdrant-edge-py, Qdrant's
shard engine in process), on the same vectors in the same run. One command prepares the data (once, cached)
and runs both sides:

  scripts/bench/sparse_filter_bench.py [CACHE_DIR] [--rounds 2] [--threads 2] [--docs 30000]
      [--queries 1000] [--ef 64] [--only sparse,filtered] [--indexes none,keyword,tenant]
      [--quiver target/release/examples/sparse_filter_bench]

CACHE_DIR defaults to target/bench-data. Prints markdown tables for docs/benchmarks.md on stdout and writes
every raw JSON result to CACHE_DIR/sparse-filter-results.json.

Data (under CACHE_DIR):
  bm25-wordnet/  BM25 sparse vectors of every WordNet gloss but the last `--queries` (the documents) and
                 of the definitions of those last glosses (the queries). Documents are embedded by Qdrant's
                 own BM25 (`qdrant_edge.Bm25`: Unicode words, lower case, English stop words, Snowball
                 stemming, hashed term ids, k = 1.2, b = 0.75, avg_len = the corpus's mean length); each
                 query term weighs its IDF over the documents, so a dot product is the document's BM25
                 score and both engines index plain sparse vectors (no modifier). CSR arrays:
                 doc_indptr (i64), doc_indices (u32), doc_values (f32), the same for q_*.
  filtered-wordnet/ the first --docs MiniLM gloss embeddings of minilm-wordnet/ (prepare_data.py) with a
                 keyword `tag` per point drawn at random: "p1" for 1 % of the points, "p10" for 10 %,
                 "p50" for 50 %, "rest" for the others (tags.npy: 0, 1, 2, 3), and its queries.

Each side runs in its own process (`sparse_filter_bench` for Quiver, this script's `edge` mode for Qdrant
Edge), alternating, `--rounds` times; each process times its queries best of two and writes the ids it
found; recall@10 is computed here for both from those ids, against exact results computed with numpy /
scipy. A returned id counts as a hit when its exact score is at least the exact 10th best score (BM25
scores tie often), so recall is never lowered by the order of equal scores.

Both sides use one segment holding all points, HNSW m = 16, ef_construct = 100 and the same `--ef` at
search time, the search run on the calling thread ("1 thread": queries one after another) and from
`--threads` threads. Qdrant Edge gets its defaults otherwise (full_scan_threshold 10,000 KB, which makes
it scan exactly when a filter's estimated cardinality is small; payload-aware extra HNSW links when the
field is indexed before the graph is built); Quiver gets the same threshold in points (6,666 of 384 dims),
as its server gives a collection created without one, and value graphs (`payload_m` unset: m) for an
indexed field.
Filtered runs use three setups (`--indexes`): `none` (no payload index), `keyword` (a keyword index on
`tag`, created before the points) and `tenant`, Qdrant's multitenancy setting: the keyword index, `m` 0
(no graph over the whole segment), `payload_m` 16 (a graph, or on Qdrant's side payload-aware links, per
tag value) and `full_scan_threshold` 1,000 KB (666 points of 384 dims), so p10 and p50 walk their
value's graph and p1 is scanned.
"""

import argparse
import json
import os
import subprocess
import sys
import time

import numpy as np

K = 10
TAGS = ["p1", "p10", "p50", "rest"]
SELECTIVITY = {"p1": 0.01, "p10": 0.10, "p50": 0.50}


def log(msg):
    print(f"[sparse-filter] {msg}", file=sys.stderr, flush=True)


def save(d, name, arr):
    np.save(os.path.join(d, name + ".npy"), arr)


def load(d, name):
    return np.load(os.path.join(d, name + ".npy"))


def fresh(d, meta):
    try:
        with open(os.path.join(d, "meta.json")) as f:
            return json.load(f) == meta
    except (OSError, ValueError):
        return False


def finish(d, meta):
    with open(os.path.join(d, "meta.json"), "w") as f:
        json.dump(meta, f, indent=1)


# --- data ------------------------------------------------------------------------------------------


def csr(vectors):
    indptr = np.zeros(len(vectors) + 1, dtype=np.int64)
    indptr[1:] = np.cumsum([len(v.indices) for v in vectors])
    indices = np.fromiter((i for v in vectors for i in v.indices), dtype=np.uint32, count=indptr[-1])
    values = np.fromiter((x for v in vectors for x in v.values), dtype=np.float32, count=indptr[-1])
    return indptr, indices, values


def prepare_sparse(cache, nq):
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import prepare_data
    import qdrant_edge as qe

    d = os.path.join(cache, "bm25-wordnet")
    meta = {"queries": nq, "k": K, "version": 1}
    if fresh(d, meta):
        return d
    os.makedirs(d, exist_ok=True)
    texts = prepare_data.wordnet_glosses(cache)
    docs, held = texts[:-nq], texts[-nq:]
    # Document lengths in Qdrant's tokens: with k = 1, b = 0 a term's value is 2·tf / (tf + 1).
    probe = qe.Bm25(qe.Bm25Config(k=1.0, b=0.0))
    lengths = []
    for t in docs:
        v = np.asarray(probe.embed_document(t).values, dtype=np.float64)
        lengths.append(float((v / (2.0 - v)).sum()))
    avg_len = float(np.mean(lengths))
    bm25 = qe.Bm25(qe.Bm25Config(k=1.2, b=0.75, avg_len=avg_len))
    doc_vecs = [bm25.embed_document(t) for t in docs]
    # A query: the definition part of a held-out gloss (before the examples), its distinct terms.
    q_terms = [bm25.embed_query(t.split(";")[0]) for t in held]
    di, dx, dv = csr(doc_vecs)
    df = {}
    for term in dx.tolist():
        df[term] = df.get(term, 0) + 1
    n = len(docs)
    q_vecs = []
    for q in q_terms:
        pairs = sorted((i, np.log(1.0 + (n - df[i] + 0.5) / (df[i] + 0.5))) for i in q.indices if i in df)
        q_vecs.append(qe.SparseVector([p[0] for p in pairs], [float(p[1]) for p in pairs]))
    qi, qx, qv = csr(q_vecs)
    for name, arr in (("doc_indptr", di), ("doc_indices", dx), ("doc_values", dv), ("q_indptr", qi),
                      ("q_indices", qx), ("q_values", qv)):
        save(d, name, arr)
    gt, kth = exact_sparse(di, dx, dv, qi, qx, qv)
    save(d, "gt", gt)
    save(d, "gt_kth", kth)
    with open(os.path.join(d, "texts.json"), "w") as f:
        json.dump({"docs_first": docs[:3], "queries_first": [t.split(";")[0] for t in held[:5]],
                   "avg_len": avg_len, "mean_doc_terms": float(np.diff(di).mean()),
                   "mean_query_terms": float(np.diff(qi).mean())}, f, indent=1)
    finish(d, meta)
    log(f"bm25-wordnet: {n} documents, {nq} queries, avg_len {avg_len:.1f}")
    return d


def sparse_scores(arrays):
    """Exact scores of queries (rows of the query CSR) against every document."""
    from scipy.sparse import csr_matrix

    di, dx, dv, qi, qx, qv = arrays
    # Hashed term ids span 2^32: map them to the columns of the terms that occur.
    vocab, inv = np.unique(np.concatenate([dx, qx]), return_inverse=True)
    docs = csr_matrix((dv, inv[:len(dx)], di), shape=(len(di) - 1, len(vocab)))
    qs = csr_matrix((qv, inv[len(dx):], qi), shape=(len(qi) - 1, len(vocab)))
    docs_t = docs.T.tocsr()
    return lambda rows: (qs[rows] @ docs_t).toarray()


def exact_sparse(di, dx, dv, qi, qx, qv):
    score = sparse_scores((di, dx, dv, qi, qx, qv))
    nq = len(qi) - 1
    gt = np.full((nq, K), -1, dtype=np.int64)
    kth = np.zeros(nq, dtype=np.float32)
    for s in range(0, nq, 100):
        block = score(np.arange(s, min(s + 100, nq)))
        for r, row in enumerate(block):
            top = np.argsort(-row, kind="stable")[:K]
            top = top[row[top] > 0]
            gt[s + r, :len(top)] = top
            kth[s + r] = row[top[-1]] if len(top) == K else 0.0
    return gt, kth


def minilm_vectors(cache, n, nq):
    """The first n gloss embeddings and nq held-out query embeddings of prepare_data.py's minilm-wordnet
    (documents are its first glosses, queries the glosses after its 100,000 documents). Taken from its
    files when they are there; otherwise embedded here, in chunks saved as they finish."""
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import prepare_data

    src = os.path.join(cache, "minilm-wordnet")
    try:
        with open(os.path.join(src, "meta.json")) as f:
            meta = json.load(f)
        if meta["glosses"] >= n and meta["queries"] >= nq and meta["glosses"] == 100_000:
            base = np.load(os.path.join(src, "base.npy"), mmap_mode="r")[:n]
            return np.ascontiguousarray(base), np.load(os.path.join(src, "queries.npy"))[:nq]
    except (OSError, ValueError, KeyError):
        pass
    texts = prepare_data.wordnet_glosses(cache)
    d = os.path.join(cache, "filtered-wordnet")
    model = None
    out = []
    for start, stop in [(s, min(s + prepare_data.CHUNK, n)) for s in range(0, n, prepare_data.CHUNK)] + \
            [(100_000, 100_000 + nq)]:
        name = f"part-{start:07d}-{stop:07d}.npy"
        # prepare_data.py's own chunks hold the same glosses when their bounds agree.
        have = [p for p in (os.path.join(d, name), os.path.join(src, name)) if os.path.exists(p)]
        if have:
            out.append(np.load(have[0]))
            continue
        if model is None:
            model = prepare_data.minilm()
        e = model.encode(texts[start:stop], batch_size=64, normalize_embeddings=True,
                         convert_to_numpy=True, show_progress_bar=False).astype(np.float32)
        np.save(os.path.join(d, name + ".tmp.npy"), e)
        os.replace(os.path.join(d, name + ".tmp.npy"), os.path.join(d, name))
        log(f"filtered-wordnet: embedded glosses {start}..{stop}")
        out.append(e)
    return np.concatenate(out[:-1]), out[-1]


def prepare_filtered(cache, n, nq):
    d = os.path.join(cache, "filtered-wordnet")
    meta = {"docs": n, "queries": nq, "k": K, "version": 1}
    if fresh(d, meta):
        return d
    os.makedirs(d, exist_ok=True)
    base, queries = minilm_vectors(cache, n, nq)
    base = np.ascontiguousarray(base, dtype=np.float32)
    queries = np.ascontiguousarray(queries, dtype=np.float32)
    u = np.random.default_rng(21).random(n)
    tags = np.where(u < 0.01, 0, np.where(u < 0.11, 1, np.where(u < 0.61, 2, 3))).astype(np.int32)
    save(d, "base", base)
    save(d, "queries", queries)
    save(d, "tags", tags)
    scores = queries @ base.T
    for code, tag in enumerate(TAGS[:3]):
        masked = np.where(tags[None, :] == code, scores, -np.inf)
        top = np.argsort(-masked, axis=1, kind="stable")[:, :K]
        save(d, f"gt_{tag}", top.astype(np.int64))
        save(d, f"gt_kth_{tag}", np.take_along_axis(masked, top[:, -1:], axis=1)[:, 0].astype(np.float32))
    for p in os.listdir(d):
        if p.startswith("part-"):
            os.remove(os.path.join(d, p))
    finish(d, meta)
    log(f"filtered-wordnet: {n} documents, {nq} queries, tag counts {np.bincount(tags).tolist()}")
    return d


# --- recall ----------------------------------------------------------------------------------------


def recall(ids, gt, kth, exact_score):
    """Mean over queries of |hits| / |truth|, where a returned id is a hit when it is in the exact top
    k or scores (exactly) at least the k-th best."""
    total, hits = 0, 0
    for q, (found, truth) in enumerate(zip(ids, gt)):
        truth = [int(t) for t in truth if t >= 0]
        if not truth:
            continue
        found = [int(f) for f in found if f >= 0][:K]
        tset = set(truth)
        extra = [f for f in found if f not in tset]
        ok = len(found) - len(extra)
        if extra and len(truth) == K:
            s = exact_score(q, extra)
            ok += int(np.sum(s >= kth[q] - 1e-4 * max(1.0, abs(float(kth[q])))))
        hits += min(ok, len(truth))
        total += len(truth)
    return hits / max(total, 1)


# --- Qdrant Edge -------------------------------------------------------------------------------------


def best_of_two(f):
    best, out = float("inf"), None
    for _ in range(2):
        t = time.perf_counter()
        out = f()
        best = min(best, time.perf_counter() - t)
    return best, out


def timed_queries(shard, requests, threads):
    from concurrent.futures import ThreadPoolExecutor

    def one(r):
        return [int(h.id) for h in shard.query(r)]

    single, ids = best_of_two(lambda: [one(r) for r in requests])
    with ThreadPoolExecutor(threads) as pool:
        chunks = [requests[i::threads] for i in range(threads)]
        many, _ = best_of_two(lambda: list(pool.map(lambda c: [one(r) for r in c], chunks)))
    return {"qps_1": len(requests) / single, "qps_threads": len(requests) / many}, ids


def edge_shard(path, config):
    import shutil

    import qdrant_edge as qe

    shutil.rmtree(path, ignore_errors=True)
    os.makedirs(path)
    return qe.EdgeShard.create(path, config), qe


def edge_sparse(a):
    import qdrant_edge as qe

    d = a.dir
    di, dx, dv = load(d, "doc_indptr"), load(d, "doc_indices"), load(d, "doc_values")
    qi, qx, qv = load(d, "q_indptr"), load(d, "q_indices"), load(d, "q_values")
    n = len(di) - 1
    config = qe.EdgeConfig(
        vectors={}, sparse_vectors={"bm25": qe.EdgeSparseVectorParams()},
        optimizers=qe.EdgeOptimizersConfig(default_segment_number=1, indexing_threshold=1,
                                           max_segment_size=2**31),
        max_search_threads=1, wal_enabled=False)
    shard, _ = edge_shard(os.path.join(a.work, "edge-sparse"), config)
    t = time.perf_counter()
    for s in range(0, n, 1000):
        pts = [qe.Point(id=i, vector={"bm25": qe.SparseVector(dx[di[i]:di[i + 1]].tolist(),
                                                              dv[di[i]:di[i + 1]].tolist())})
               for i in range(s, min(s + 1000, n))]
        shard.update(qe.UpdateOperation.upsert_points(pts))
    upsert_s = time.perf_counter() - t
    t = time.perf_counter()
    shard.optimize()
    build_s = time.perf_counter() - t
    requests = [qe.QueryRequest(limit=K, query=qe.Query.Nearest(
        qe.SparseVector(qx[qi[j]:qi[j + 1]].tolist(), qv[qi[j]:qi[j + 1]].tolist()), using="bm25"),
        with_payload=False, with_vector=False) for j in range(len(qi) - 1)]
    row, ids = timed_queries(shard, requests, a.threads)
    shard.close()
    return {"upsert_s": upsert_s, "build_s": build_s, **row}, ids


def edge_filtered(a):
    import qdrant_edge as qe

    d = a.dir
    base, queries, tags = load(d, "base"), load(d, "queries"), load(d, "tags")
    n, dim = base.shape
    if a.index == "tenant":
        # Qdrant's multitenancy setting: no graph over the shard, payload-aware links per tag value.
        hnsw = qe.HnswIndexConfig(m=0, payload_m=16, ef_construct=100, full_scan_threshold=1_000,
                                  max_indexing_threads=a.threads)
    else:
        hnsw = qe.HnswIndexConfig(m=16, ef_construct=100, full_scan_threshold=10_000,
                                  max_indexing_threads=a.threads)
    config = qe.EdgeConfig(
        vectors=qe.EdgeVectorParams(size=dim, distance=qe.Distance.Cosine),
        hnsw_config=hnsw,
        optimizers=qe.EdgeOptimizersConfig(default_segment_number=1, indexing_threshold=1,
                                           max_segment_size=2**31),
        max_search_threads=1, wal_enabled=False)
    shard, _ = edge_shard(os.path.join(a.work, f"edge-filtered-{a.index}"), config)
    if a.index != "none":
        shard.update(qe.UpdateOperation.create_field_index("tag", qe.PayloadSchemaType.Keyword))
    t = time.perf_counter()
    for s in range(0, n, 1000):
        rows = base[s:s + 1000].tolist()
        shard.update(qe.UpdateOperation.upsert_points(
            [qe.Point(id=s + i, vector=r, payload={"tag": TAGS[tags[s + i]]}) for i, r in enumerate(rows)]))
    upsert_s = time.perf_counter() - t
    t = time.perf_counter()
    shard.optimize()
    build_s = time.perf_counter() - t
    out = {"upsert_s": upsert_s, "build_s": build_s, "rows": {}}
    ids = {}
    params = qe.SearchParams(hnsw_ef=a.ef)
    qlist = queries.tolist()
    for tag in SELECTIVITY:
        flt = qe.Filter(must=[qe.FieldCondition(key="tag", match=qe.MatchValue(tag))])
        requests = [qe.QueryRequest(limit=K, query=qe.Query.Nearest(q), filter=flt, params=params,
                                    with_payload=False, with_vector=False) for q in qlist]
        out["rows"][tag], ids[tag] = timed_queries(shard, requests, a.threads)
    shard.close()
    return out, ids


def edge_main(a):
    if a.mode == "sparse":
        out, ids = edge_sparse(a)
        np.save(os.path.join(a.out, "ids.npy"), pad(ids))
    else:
        out, ids = edge_filtered(a)
        for tag, v in ids.items():
            np.save(os.path.join(a.out, f"ids_{tag}.npy"), pad(v))
    from importlib.metadata import version

    out["version"] = version("qdrant-edge-py")
    json.dump(out, sys.stdout)
    print()


def pad(ids):
    arr = np.full((len(ids), K), -1, dtype=np.int64)
    for i, r in enumerate(ids):
        arr[i, :len(r[:K])] = r[:K]
    return arr


# --- driver ----------------------------------------------------------------------------------------


def run_side(cmd):
    log(" ".join(cmd))
    p = subprocess.run(["nice", "-n", "10", *cmd], capture_output=True, text=True)
    if p.returncode != 0:
        sys.exit(f"{cmd[0]} failed ({p.returncode}):\n{p.stderr[-3000:]}")
    return json.loads(p.stdout.strip().splitlines()[-1])


def best(runs):
    """Best QPS of each field over the rounds; build and upsert times: the least."""
    out = dict(runs[0])
    for r in runs[1:]:
        for key, v in r.items():
            if key.startswith("qps"):
                out[key] = max(out[key], v)
            elif key.endswith("_s") and isinstance(v, (int, float)):
                out[key] = min(out[key], v)
    return out


def bench_sparse(a, results):
    d = prepare_sparse(a.cache, a.queries)
    di, dx, dv = load(d, "doc_indptr"), load(d, "doc_indices"), load(d, "doc_values")
    qi, qx, qv = load(d, "q_indptr"), load(d, "q_indices"), load(d, "q_values")
    gt, kth = load(d, "gt"), load(d, "gt_kth")
    score = sparse_scores((di, dx, dv, qi, qx, qv))
    cache = {}

    def exact(q, ids):
        if q not in cache:
            cache.clear()
            cache[q] = score(np.array([q]))[0]
        return cache[q][ids]

    runs = {"quiver": [], "qdrant-edge": []}
    for r in range(a.rounds):
        for side in (("quiver", "qdrant-edge") if r % 2 == 0 else ("qdrant-edge", "quiver")):
            out_dir = os.path.join(a.work, f"{side}-sparse")
            os.makedirs(out_dir, exist_ok=True)
            if side == "quiver":
                cmd = [a.quiver, "sparse", d, "--threads", str(a.threads), "--work", a.work, "--out", out_dir]
            else:
                cmd = [sys.executable, __file__, "edge", "sparse", d, "--threads", str(a.threads),
                       "--work", a.work, "--out", out_dir]
            res = run_side(cmd)
            res["recall"] = recall(np.load(os.path.join(out_dir, "ids.npy")), gt, kth, exact)
            runs[side].append(res)
            log(f"sparse round {r}: {side} {json.dumps(res)}")
    results["sparse"] = {"documents": len(di) - 1, "queries": len(qi) - 1,
                         "mean_doc_terms": float(np.diff(di).mean()),
                         "mean_query_terms": float(np.diff(qi).mean()), "runs": runs}
    rows = []
    for side, rs in runs.items():
        b = best(rs)
        rows.append((side, b))
    print(f"\nSparse (BM25) top {K}, {len(di) - 1:,} WordNet glosses, {len(qi) - 1:,} queries "
          f"(mean {np.diff(qi).mean():.1f} terms; documents mean {np.diff(di).mean():.1f}), "
          f"best of {a.rounds}:\n")
    print(f"| engine | recall@10 | QPS 1 thread | QPS {a.threads} threads | upsert s | index build s |")
    print("|---|---|---|---|---|---|")
    for side, b in rows:
        print(f"| {side} {b.get('version', '')} | {b['recall']:.4f} | {b['qps_1']:,.0f} | "
              f"{b['qps_threads']:,.0f} | {b['upsert_s']:.1f} | {b['build_s']:.1f} |")
    q, e = rows[0][1], rows[1][1]
    print(f"\nQuiver / Qdrant Edge QPS: {q['qps_1'] / e['qps_1']:.2f}x (1 thread), "
          f"{q['qps_threads'] / e['qps_threads']:.2f}x ({a.threads} threads)")


def bench_filtered(a, results):
    d = prepare_filtered(a.cache, a.docs, a.queries)
    base, queries = load(d, "base"), load(d, "queries")

    def exact_for(tag):
        return lambda q, ids: base[ids] @ queries[q]

    runs = {}
    indexes = a.indexes.split(",")
    for index in indexes:
        for r in range(a.rounds):
            for side in (("quiver", "qdrant-edge") if r % 2 == 0 else ("qdrant-edge", "quiver")):
                out_dir = os.path.join(a.work, f"{side}-filtered-{index}")
                os.makedirs(out_dir, exist_ok=True)
                common = [d, "--threads", str(a.threads), "--work", a.work, "--out", out_dir,
                          "--index", index, "--ef", str(a.ef)]
                if side == "quiver":
                    cmd = [a.quiver, "filtered", *common]
                else:
                    cmd = [sys.executable, __file__, "edge", "filtered", *common]
                res = run_side(cmd)
                for tag, row in res["rows"].items():
                    ids = np.load(os.path.join(out_dir, f"ids_{tag}.npy"))
                    row["recall"] = recall(ids, load(d, f"gt_{tag}"), load(d, f"gt_kth_{tag}"),
                                           exact_for(tag))
                runs.setdefault((side, index), []).append(res)
                log(f"filtered round {r} index {index}: {side} {json.dumps(res)}")
    results["filtered"] = {"documents": base.shape[0], "queries": len(queries), "ef": a.ef,
                           "runs": {f"{s}/{i}": v for (s, i), v in runs.items()}}
    print(f"\nFiltered dense top {K} (keyword match on `tag`), {base.shape[0]:,} MiniLM gloss vectors, "
          f"{len(queries):,} queries, ef {a.ef}, best of {a.rounds}:\n")
    print(f"| engine | payload index | selectivity | recall@10 | QPS 1 thread | QPS {a.threads} threads |")
    print("|---|---|---|---|---|---|")
    summary = {}
    for (side, index), rs in runs.items():
        for tag, sel in SELECTIVITY.items():
            rows = [r["rows"][tag] for r in rs]
            b = best(rows)
            b["recall"] = rows[0]["recall"]
            summary[(side, index, tag)] = b
            print(f"| {side} | {index} | {sel:.0%} | {b['recall']:.4f} | {b['qps_1']:,.0f} | "
                  f"{b['qps_threads']:,.0f} |")
    print("\nQuiver / Qdrant Edge QPS (1 thread):")
    for index in indexes:
        ratios = [summary[("quiver", index, t)]["qps_1"] / summary[("qdrant-edge", index, t)]["qps_1"]
                  for t in SELECTIVITY]
        print(f"- index {index}: " + ", ".join(f"{SELECTIVITY[t]:.0%} {x:.2f}x"
                                                for t, x in zip(SELECTIVITY, ratios)))
    builds = {f"{s}/{i}": best(rs).get("build_s") for (s, i), rs in runs.items()}
    print("\nIndex build seconds: " + ", ".join(f"{k} {v:.1f}" for k, v in builds.items()))


def main():
    if len(sys.argv) > 1 and sys.argv[1] == "edge":
        ap = argparse.ArgumentParser()
        ap.add_argument("edge")
        ap.add_argument("mode", choices=["sparse", "filtered"])
        ap.add_argument("dir")
        ap.add_argument("--threads", type=int, default=2)
        ap.add_argument("--work", required=True)
        ap.add_argument("--out", required=True)
        ap.add_argument("--index", choices=["none", "keyword", "tenant"], default="none")
        ap.add_argument("--ef", type=int, default=64)
        edge_main(ap.parse_args())
        return
    ap = argparse.ArgumentParser()
    ap.add_argument("cache", nargs="?", default="target/bench-data")
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--docs", type=int, default=30_000)
    ap.add_argument("--queries", type=int, default=1000)
    ap.add_argument("--ef", type=int, default=64)
    ap.add_argument("--only", default="sparse,filtered")
    ap.add_argument("--indexes", default="none,keyword,tenant",
                    help="filtered: payload index setups to run (none, keyword, tenant)")
    ap.add_argument("--quiver", default="target/release/examples/sparse_filter_bench")
    ap.add_argument("--work", default=None)
    a = ap.parse_args()
    if a.work is None:
        import tempfile

        a.work = tempfile.mkdtemp(prefix="quiver-sparse-filter-")
    if not os.access(a.quiver, os.X_OK):
        sys.exit(f"{a.quiver} is missing: cargo build --release -p quiver-benches --example sparse_filter_bench")
    results = {"threads": a.threads, "rounds": a.rounds}
    only = a.only.split(",")
    if "sparse" in only:
        bench_sparse(a, results)
    if "filtered" in only:
        bench_filtered(a, results)
    with open(os.path.join(a.cache, "sparse-filter-results.json"), "w") as f:
        json.dump(results, f, indent=1)


if __name__ == "__main__":
    main()
