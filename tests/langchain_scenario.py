"""Drives a running Quiver server with LangChain's QdrantVectorStore (langchain-qdrant from PyPI,
unchanged) in HYBRID retrieval mode, and checks every answer against rankings computed here.

Dense vectors come from the server's own embedding route (`/v1/embeddings`, all-MiniLM-L6-v2), sparse
vectors from a small hashed BM25 written below, so nothing is downloaded and every expected result
is computed independently: the dense ranking by cosine over the same vectors with numpy, the sparse
ranking by dot product, and their fusion by Qdrant's reciprocal rank fusion (the default query
LangChain sends: two prefetches of k hits each, then `{"fusion": "rrf"}`, score 1 / (k + rank) with
Qdrant's k = 2 and rank counted from 0).

Usage: python tests/langchain_scenario.py http://127.0.0.1:PORT [API_KEY] MODEL
Exits non-zero on the first mismatch; prints "N passed, 0 failed" at the end.
"""

import json
import re
import sys
import urllib.request
import uuid
import warnings
import zlib

import numpy as np
from langchain_core.embeddings import Embeddings
from langchain_qdrant import QdrantVectorStore, RetrievalMode
from langchain_qdrant.sparse_embeddings import SparseEmbeddings, SparseVector
from qdrant_client import QdrantClient, models

COLLECTION = "langchain_hybrid"
RRF_K = 2

passed = 0


def check(name, condition, detail=""):
    global passed
    if not condition:
        print(f"FAILED: {name} {detail}", file=sys.stderr)
        print(f"{passed} passed, 1 failed")
        sys.exit(1)
    passed += 1
    print(f"ok: {name}")


class ServerEmbeddings(Embeddings):
    """Dense embeddings from Quiver's OpenAI-compatible route; remembers every vector it returned."""

    def __init__(self, url, key, model):
        self.url, self.key, self.model = url, key, model
        self.seen = {}

    def _embed(self, texts):
        req = urllib.request.Request(
            f"{self.url}/v1/embeddings", data=json.dumps({"model": self.model, "input": texts}).encode(),
            headers={"Content-Type": "application/json", **({"api-key": self.key} if self.key else {})})
        with urllib.request.urlopen(req, timeout=60) as r:
            data = json.load(r)["data"]
        out = [d["embedding"] for d in sorted(data, key=lambda d: d["index"])]
        for t, v in zip(texts, out):
            self.seen[t] = np.asarray(v, dtype=np.float64)
        return out

    def embed_documents(self, texts):
        return self._embed(list(texts))

    def embed_query(self, text):
        return self._embed([text])[0]


STOP = {"a", "an", "and", "the", "of", "in", "on", "to", "is", "are", "for", "with", "its", "it", "that"}


def terms(text):
    return [t for t in re.findall(r"[a-z0-9]+", text.lower()) if t not in STOP]


def term_id(term):
    return zlib.crc32(term.encode())


class HashedBm25(SparseEmbeddings):
    """BM25 term weights (k1 = 1.2, b = 0.75, a fixed average length) on CRC-32 term ids; a query
    weighs each of its distinct terms 1."""

    K1, B, AVG = 1.2, 0.75, 8.0

    def embed_documents(self, texts):
        out = []
        for t in texts:
            ts = terms(t)
            tf = {}
            for w in ts:
                tf[term_id(w)] = tf.get(term_id(w), 0) + 1
            norm = self.K1 * (1 - self.B + self.B * len(ts) / self.AVG)
            idx = sorted(tf)
            out.append(SparseVector(indices=idx, values=[tf[i] * (self.K1 + 1) / (tf[i] + norm) for i in idx]))
        return out

    def embed_query(self, text):
        idx = sorted({term_id(w) for w in terms(text)})
        return SparseVector(indices=idx, values=[1.0] * len(idx))


DOCS = [
    ("The cheetah is the fastest land animal and hunts gazelles on the savanna", "animals", 1),
    ("Elephants live in herds led by the oldest female", "animals", 2),
    ("A hummingbird beats its wings up to eighty times per second", "animals", 3),
    ("Octopuses have three hearts and blue blood", "animals", 4),
    ("Wolves hunt in packs across the snowy forest", "animals", 5),
    ("Rust guarantees memory safety without a garbage collector", "code", 6),
    ("Python lists grow by over-allocating their backing array", "code", 7),
    ("A hash map gives constant time lookups on average", "code", 8),
    ("Binary search halves the sorted range at every step", "code", 9),
    ("Garbage collection pauses can hurt tail latency in servers", "code", 10),
    ("Sourdough bread rises slowly with wild yeast", "food", 11),
    ("Espresso is brewed by forcing hot water through fine coffee grounds", "food", 12),
    ("Fresh pasta needs only flour, eggs and a little salt", "food", 13),
    ("Dark chocolate contains more cocoa and less sugar", "food", 14),
    ("The fastest way to cook rice is in a pressure cooker", "food", 15),
]
MORE = [
    ("Penguins cannot fly but swim fast under the ice", "animals", 16),
    ("A B-tree keeps keys sorted for fast range scans on disk", "code", 17),
    ("Green tea is steamed or pan fired right after picking", "food", 18),
]


def pid(n):
    return str(uuid.UUID(int=n))


def ranking(scores, k):
    """Ids by score, best first, the first k (scores are real-valued: ties are not expected)."""
    return [i for i, _ in sorted(scores.items(), key=lambda kv: -kv[1])[:k]]


def expected_hybrid(live, dense, sparse, query, k, keep=lambda meta: True):
    """RRF of the dense and sparse top k over the live documents that pass `keep`."""
    q = np.asarray(dense.embed_query(query))
    qs = sparse.embed_query(query)
    qterms = dict(zip(qs.indices, qs.values))
    dense_scores, sparse_scores = {}, {}
    for i, (text, meta) in live.items():
        if not keep(meta):
            continue
        v = dense.seen[text]
        dense_scores[i] = float(v @ q / (np.linalg.norm(v) * np.linalg.norm(q)))
        d = sparse.embed_documents([text])[0]
        shared = [qterms[t] * x for t, x in zip(d.indices, d.values) if t in qterms]
        if shared:
            sparse_scores[i] = sum(shared)
    fused = {}
    for ranked in (ranking(dense_scores, k), ranking(sparse_scores, k)):
        for pos, i in enumerate(ranked):
            fused[i] = fused.get(i, 0.0) + 1.0 / (RRF_K + pos)
    return sorted(fused.items(), key=lambda kv: -kv[1])[:k], dense_scores, sparse_scores


def same_hits(name, got, want):
    """got, want: [(id, score)]. Scores agree in order; ids agree wherever the score is not tied."""
    check(f"{name}: {len(want)} hits", len(got) == len(want), f"{got} vs {want}")
    for (gi, gs), (wi, ws) in zip(got, want):
        check(f"{name}: score {ws:.4f}", abs(gs - ws) < 1e-4, f"{got} vs {want}")
    by_score = {}
    for i, s in want:
        by_score.setdefault(round(s, 4), set()).add(i)
    got_by_score = {}
    for i, s in got:
        got_by_score.setdefault(round(s, 4), set()).add(i)
    check(f"{name}: ids", by_score == got_by_score, f"{got} vs {want}")


def main():
    url = sys.argv[1]
    key = sys.argv[2] if len(sys.argv) > 3 else None
    model = sys.argv[-1]
    dense = ServerEmbeddings(url, key, model)
    sparse = HashedBm25()
    with warnings.catch_warnings():
        # An API key over plain HTTP warns; the test server is local.
        warnings.simplefilter("ignore")
        client = QdrantClient(url=url, api_key=key, check_compatibility=False, timeout=60)
        if client.collection_exists(COLLECTION):
            client.delete_collection(COLLECTION)

        live = {pid(n): (text, {"topic": topic, "n": n}) for text, topic, n in DOCS}
        store = QdrantVectorStore.from_texts(
            [t for t, _, _ in DOCS], embedding=dense, sparse_embedding=sparse,
            metadatas=[{"topic": topic, "n": n} for _, topic, n in DOCS], ids=[pid(n) for *_, n in DOCS],
            url=url, port=None, api_key=key, collection_name=COLLECTION,
            retrieval_mode=RetrievalMode.HYBRID, timeout=60)

    # --- the collection LangChain created -----------------------------------------------------
    info = client.get_collection(COLLECTION)
    params = info.config.params
    check("dense vector: unnamed, 384-d, cosine",
          params.vectors.size == 384 and params.vectors.distance == models.Distance.COSINE, f"{params.vectors}")
    check("sparse vector langchain-sparse", set(params.sparse_vectors or {}) == {"langchain-sparse"},
          f"{params.sparse_vectors}")
    check("points from from_texts", client.count(COLLECTION, exact=True).count == len(DOCS))

    added = store.add_texts([t for t, _, _ in MORE], metadatas=[{"topic": t, "n": n} for _, t, n in MORE],
                            ids=[pid(n) for *_, n in MORE])
    check("add_texts returns the ids", added == [pid(n) for *_, n in MORE], f"{added}")
    live.update({pid(n): (text, {"topic": topic, "n": n}) for text, topic, n in MORE})
    check("points after add_texts", client.count(COLLECTION, exact=True).count == len(live))
    stored = client.retrieve(COLLECTION, [pid(16)], with_payload=True, with_vectors=True)[0]
    check("payload: page_content and metadata",
          stored.payload == {"page_content": MORE[0][0], "metadata": {"topic": "animals", "n": 16}},
          f"{stored.payload}")
    want_sparse = sparse.embed_documents([MORE[0][0]])[0]
    got_sparse = stored.vector["langchain-sparse"]
    check("stored sparse vector", got_sparse.indices == want_sparse.indices
          and np.allclose(got_sparse.values, want_sparse.values, atol=1e-6), f"{got_sparse}")

    # --- hybrid search ------------------------------------------------------------------------
    queries = ["which animal hunts fastest", "garbage collector memory", "how to brew coffee",
               "sorted keys range scan"]
    for q in queries:
        for k in (3, 5):
            want, _, _ = expected_hybrid(live, dense, sparse, q, k)
            got = store.similarity_search_with_score(q, k=k)
            same_hits(f"hybrid '{q}' k={k}", [(d.metadata["_id"], s) for d, s in got], want)
            check(f"hybrid '{q}' k={k}: documents", all(
                d.page_content == live[d.metadata["_id"]][0]
                and {m: d.metadata[m] for m in ("topic", "n")} == live[d.metadata["_id"]][1] for d, _ in got))
        docs = store.similarity_search(q, k=4)
        want, _, _ = expected_hybrid(live, dense, sparse, q, 4)
        check(f"similarity_search '{q}'", [d.metadata["_id"] for d in docs] == [i for i, _ in want]
              or len({s for _, s in want}) < len(want), f"{[d.metadata['_id'] for d in docs]} vs {want}")

    # --- with a metadata filter ---------------------------------------------------------------
    for topic in ("animals", "food"):
        flt = models.Filter(must=[models.FieldCondition(key="metadata.topic",
                                                        match=models.MatchValue(value=topic))])
        for q in ("fast", "hunts in the forest", "sugar and cocoa"):
            want, _, _ = expected_hybrid(live, dense, sparse, q, 4, keep=lambda m: m["topic"] == topic)
            got = store.similarity_search_with_score(q, k=4, filter=flt)
            same_hits(f"hybrid filtered topic={topic} '{q}'", [(d.metadata["_id"], s) for d, s in got], want)
            check(f"filtered topic={topic}: every hit matches",
                  all(d.metadata["topic"] == topic for d, _ in got))
    rng = models.Filter(must=[models.FieldCondition(key="metadata.n", range=models.Range(gte=6, lte=12))])
    want, _, _ = expected_hybrid(live, dense, sparse, "garbage collection", 3, keep=lambda m: 6 <= m["n"] <= 12)
    got = store.similarity_search_with_score("garbage collection", k=3, filter=rng)
    same_hits("hybrid with a range filter", [(d.metadata["_id"], s) for d, s in got], want)

    # --- each leg on its own: the same collection in DENSE and SPARSE mode ----------------------
    for mode in (RetrievalMode.DENSE, RetrievalMode.SPARSE):
        view = QdrantVectorStore(client=client, collection_name=COLLECTION, embedding=dense,
                                 sparse_embedding=sparse, retrieval_mode=mode)
        for q in queries[:2]:
            _, ds, ss = expected_hybrid(live, dense, sparse, q, 5)
            scores = ds if mode == RetrievalMode.DENSE else ss
            want = [(i, scores[i]) for i in ranking(scores, 5)]
            got = view.similarity_search_with_score(q, k=5)
            same_hits(f"{mode.value} '{q}'", [(d.metadata["_id"], s) for d, s in got], want)

    # --- delete by ids --------------------------------------------------------------------------
    q = "which animal hunts fastest"
    first = store.similarity_search(q, k=1)[0].metadata["_id"]
    check("delete by ids", store.delete(ids=[first, pid(2)]) is True)
    del live[first], live[pid(2)]
    check("points after delete", client.count(COLLECTION, exact=True).count == len(live))
    check("get_by_ids skips deleted ids",
          [d.metadata["_id"] for d in store.get_by_ids([first, pid(3)])] == [pid(3)])
    want, _, _ = expected_hybrid(live, dense, sparse, q, 5)
    got = store.similarity_search_with_score(q, k=5)
    same_hits("hybrid after delete", [(d.metadata["_id"], s) for d, s in got], want)
    check("deleted documents never come back", not {first, pid(2)} & {d.metadata["_id"] for d, _ in got})

    client.delete_collection(COLLECTION)
    print(f"{passed} passed, 0 failed")


if __name__ == "__main__":
    main()
