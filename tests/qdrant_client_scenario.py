"""Drives a running Quiver server with the official qdrant-client, unchanged, and checks every answer
against exact results computed here with numpy.

Usage: python tests/qdrant_client_scenario.py http://127.0.0.1:PORT [API_KEY [DATA_DIR]]
Exits non-zero on the first mismatch; prints "N passed, 0 failed" at the end.
"""

import hashlib
import io
import json
import pathlib
import os
import sys
import urllib.request
import uuid
import warnings

import numpy as np
from qdrant_client import QdrantClient, models
from qdrant_client.http.exceptions import UnexpectedResponse

DIM = 8
TOK_DIM = 4
N = 120
RNG = np.random.default_rng(7)
VECTORS = RNG.normal(size=(N, DIM)).astype(np.float32)
TOKENS = [RNG.normal(size=(2 + i % 4, TOK_DIM)).astype(np.float32) for i in range(N)]
UUIDS = [str(uuid.UUID(int=RNG.integers(1, 2**63).item())) for _ in range(10)]

passed = 0


def check(name, condition, detail=""):
    global passed
    if not condition:
        print(f"FAILED: {name} {detail}", file=sys.stderr)
        print(f"{passed} passed, 1 failed")
        sys.exit(1)
    passed += 1
    print(f"ok: {name}")


def group(i):
    return ["a", "b", "c"][i % 3]


def normalize(m):
    return m / np.linalg.norm(m, axis=-1, keepdims=True)


def top_k(scores, ids, k):
    order = sorted(range(len(ids)), key=lambda j: (-scores[j], str(ids[j])))
    return [ids[j] for j in order[:k]]


def max_sim(q, doc):
    return float((q @ doc.T).max(axis=1).sum())


def main():
    url = sys.argv[1]
    key = sys.argv[2] if len(sys.argv) > 2 else None
    # The server's data directory, when the caller knows it (enables the file:// recover check).
    data_dir = sys.argv[3] if len(sys.argv) > 3 else None
    with warnings.catch_warnings():
        # An API key over plain HTTP warns; the test server is local.
        warnings.simplefilter("ignore")
        client = QdrantClient(url=url, api_key=key, check_compatibility=False, timeout=60)
    compatibility(url, key)

    # --- collections -------------------------------------------------------------------------
    for name in ("single", "hybrid"):
        if client.collection_exists(name):
            client.delete_collection(name)
    check("create single", client.create_collection(
        "single",
        vectors_config=models.VectorParams(size=DIM, distance=models.Distance.COSINE),
        hnsw_config=models.HnswConfigDiff(m=16, ef_construct=100),
    ))
    check("create named with multivector", client.create_collection(
        "hybrid",
        vectors_config={
            "dense": models.VectorParams(size=DIM, distance=models.Distance.DOT),
            "colbert": models.VectorParams(
                size=TOK_DIM,
                distance=models.Distance.DOT,
                multivector_config=models.MultiVectorConfig(
                    comparator=models.MultiVectorComparator.MAX_SIM
                ),
            ),
        },
    ))
    try:
        client.create_collection(
            "single", vectors_config=models.VectorParams(size=DIM, distance=models.Distance.COSINE)
        )
        check("duplicate create fails", False)
    except UnexpectedResponse as e:
        check("duplicate create is 409", e.status_code == 409, str(e))
    check("exists", client.collection_exists("single"))
    names = sorted(c.name for c in client.get_collections().collections)
    check("list", names == ["hybrid", "single"], str(names))
    info = client.get_collection("hybrid")
    check("info parses", info.config.params.vectors["colbert"].multivector_config is not None)

    # --- upsert: int ids as a list of points, UUID ids in the batch form ---------------------
    ids = list(range(N - len(UUIDS))) + UUIDS
    payload = [{"group": group(i), "rank": i} for i in range(N)]
    int_part = N - len(UUIDS)
    result = client.upsert("single", wait=True, points=[
        models.PointStruct(id=ids[i], vector=VECTORS[i].tolist(), payload=payload[i])
        for i in range(int_part)
    ])
    check("upsert list", result.status == models.UpdateStatus.COMPLETED)
    client.upsert("single", points=models.Batch(
        ids=UUIDS,
        vectors=VECTORS[int_part:].tolist(),
        payloads=payload[int_part:],
    ))
    client.upsert("hybrid", points=[
        models.PointStruct(
            id=ids[i],
            vector={"dense": VECTORS[i].tolist(), "colbert": TOKENS[i].tolist()},
            payload=payload[i],
        )
        for i in range(N)
    ])
    check("count all", client.count("single", exact=True).count == N)
    check("count hybrid", client.count("hybrid").count == N)

    # --- retrieve, scroll, count ---------------------------------------------------------------
    got = client.retrieve("single", ids=[5, UUIDS[3], 10**9], with_vectors=True)
    check("retrieve finds existing ids only", [p.id for p in got] == [5, UUIDS[3]], str(got))
    v5 = normalize(VECTORS[5])
    check("retrieve returns normalised cosine vector", np.allclose(got[0].vector, v5, atol=1e-5))
    check("retrieve payload", got[1].payload == payload[int_part + 3])
    got = client.retrieve("hybrid", ids=[7], with_vectors=["colbert"])
    check("retrieve named multivector",
          np.allclose(np.array(got[0].vector["colbert"]), TOKENS[7], atol=1e-6))

    group_b = models.Filter(must=[models.FieldCondition(key="group", match=models.MatchValue(value="b"))])
    seen, offset = [], None
    while True:
        points, offset = client.scroll("single", scroll_filter=group_b, limit=7, offset=offset)
        seen += [p.id for p in points]
        if offset is None:
            break
    expected_b = [ids[i] for i in range(N) if group(i) == "b"]
    check("scroll pages with filter", sorted(map(str, seen)) == sorted(map(str, expected_b)))
    check("scroll ints before uuids, ascending",
          [s for s in seen if isinstance(s, int)] == sorted(s for s in seen if isinstance(s, int)))
    rng_filter = models.Filter(must=[models.FieldCondition(key="rank", range=models.Range(gte=10, lt=40))],
                               must_not=[models.HasIdCondition(has_id=[12, 13])])
    check("count with range filter", client.count("single", count_filter=rng_filter).count == 28)

    # --- payload indexes -------------------------------------------------------------------------
    res = client.create_payload_index("single", "group", field_schema=models.PayloadSchemaType.KEYWORD,
                                      wait=True)
    check("create_payload_index", res.status == models.UpdateStatus.COMPLETED, str(res))
    client.create_payload_index("single", "rank", field_schema=models.IntegerIndexParams(
        type=models.IntegerIndexType.INTEGER, range=False))
    schema = client.get_collection("single").payload_schema
    check("payload_schema lists the indexes with their points",
          schema["group"].data_type == models.PayloadSchemaType.KEYWORD and schema["group"].points == N
          and schema["rank"].points == N and schema["rank"].params.range is False, str(schema))
    check("an indexed filter answers as before",
          client.count("single", count_filter=group_b).count == len(expected_b))
    client.delete_payload_index("single", "rank", wait=True)
    check("delete_payload_index", list(client.get_collection("single").payload_schema) == ["group"])

    # --- search: query_points against exact cosine --------------------------------------------
    q = RNG.normal(size=DIM).astype(np.float32)
    cos = normalize(VECTORS) @ normalize(q)
    res = client.query_points("single", query=q.tolist(), limit=10, search_params=models.SearchParams(exact=True))
    check("query_points exact top-10", [p.id for p in res.points] == top_k(cos, ids, 10))
    check("query_points scores", np.allclose([p.score for p in res.points], sorted(cos, reverse=True)[:10], atol=1e-4))
    res = client.query_points("single", query=q.tolist(), limit=10)
    overlap = len(set(map(str, (p.id for p in res.points))) & set(map(str, top_k(cos, ids, 10))))
    check("query_points default (index) recall", overlap >= 9, str(overlap))
    in_b = [i for i in range(N) if group(i) == "b"]
    res = client.query_points("single", query=q.tolist(), query_filter=group_b, limit=5, with_payload=True)
    check("query_points with filter", [p.id for p in res.points] == top_k(cos[in_b], [ids[i] for i in in_b], 5))
    check("filtered hits carry payload", all(p.payload["group"] == "b" for p in res.points))
    res = client.query_points("single", query=17, limit=3)
    own = normalize(VECTORS) @ normalize(VECTORS[17])
    # As in Qdrant, the point queried by is left out of its own hits.
    check("query by point id leaves the point out",
          [p.id for p in res.points] == [i for i in top_k(own, ids, 4) if i != 17][:3])

    batch = client.query_batch_points("single", requests=[
        models.QueryRequest(query=q.tolist(), limit=3),
        models.QueryRequest(query=VECTORS[2].tolist(), limit=1, filter=group_b),
    ])
    check("query batch", [p.id for p in batch[0].points] == top_k(cos, ids, 3)
          and len(batch[1].points) == 1)

    # --- prefetch on the dense vector, MaxSim rerank on the multivector -----------------------
    qd = RNG.normal(size=DIM).astype(np.float32)
    qt = RNG.normal(size=(3, TOK_DIM)).astype(np.float32)
    dense_scores = VECTORS @ qd
    candidates = top_k(dense_scores, list(range(N)), 30)
    rerank = [max_sim(qt, TOKENS[i]) for i in candidates]
    expected = [ids[i] for i in top_k(rerank, candidates, 5)]
    res = client.query_points(
        "hybrid",
        prefetch=models.Prefetch(query=qd.tolist(), using="dense", limit=30),
        query=qt.tolist(),
        using="colbert",
        limit=5,
    )
    check("prefetch + max_sim rerank", [p.id for p in res.points] == expected,
          f"{[p.id for p in res.points]} != {expected}")
    check("rerank scores are MaxSim", abs(res.points[0].score - max(rerank)) < 1e-3)
    all_ms = [max_sim(qt, TOKENS[i]) for i in range(N)]
    res = client.query_points("hybrid", query=qt.tolist(), using="colbert", limit=5)
    check("max_sim over the whole collection", [p.id for p in res.points] == top_k(all_ms, ids, 5))

    # --- conditional upserts, exact floats, nested payload paths ----------------------------------
    conditional(client)

    # --- payload updates ------------------------------------------------------------------------
    client.set_payload("single", payload={"flag": True}, points=[1, 2])
    client.overwrite_payload("single", payload={"only": 1}, points=[3])
    client.delete_payload("single", keys=["rank"], points=[1])
    client.clear_payload("single", points_selector=models.PointIdsList(points=[4]))
    got = {p.id: p.payload for p in client.retrieve("single", ids=[1, 2, 3, 4])}
    check("set payload", got[2] == {"group": group(2), "rank": 2, "flag": True}, str(got[2]))
    check("delete payload keys", got[1] == {"group": group(1), "flag": True}, str(got[1]))
    check("overwrite payload", got[3] == {"only": 1}, str(got[3]))
    check("clear payload", got[4] == {}, str(got[4]))
    flagged = models.Filter(must=[models.FieldCondition(key="flag", match=models.MatchValue(value=True))])
    check("filter on a set payload", client.count("single", count_filter=flagged).count == 2)

    # --- snapshots: create, list, download, restore by name, by file:// and by upload ---------------
    before = [(p.id, p.score) for p in client.query_points("single", query=q.tolist(), limit=10).points]
    snap = client.create_snapshot("single")
    check("create_snapshot", snap.name.endswith(".snapshot") and len(snap.checksum or "") == 64, str(snap))
    listed = client.list_snapshots("single")
    check("list_snapshots", [(s.name, s.size, s.checksum) for s in listed] == [(snap.name, snap.size, snap.checksum)],
          str(listed))
    request = urllib.request.Request(f"{url}/collections/single/snapshots/{snap.name}", headers={"api-key": key or ""})
    with urllib.request.urlopen(request) as response:
        archive = response.read()
        length = int(response.headers["Content-Length"])
    check("download snapshot", length == len(archive) == snap.size
          and hashlib.sha256(archive).hexdigest() == snap.checksum)
    check("recover_snapshot by name", client.recover_snapshot("single_copy", location=snap.name,
                                                              checksum=snap.checksum))
    copy = [(p.id, p.score) for p in client.query_points("single_copy", query=q.tolist(), limit=10).points]
    check("recovered copy answers the same", copy == before, f"{copy} vs {before}")
    if data_dir:
        path = os.path.join(data_dir, "snapshots", "single", snap.name)
        check("recover_snapshot by file://", client.recover_snapshot("single_copy2", location=f"file://{path}"))
        check("file:// copy counts", client.count("single_copy2").count == N)
    uploaded = client.http.snapshots_api.recover_from_uploaded_snapshot(
        "single_upload", wait=True, checksum=snap.checksum, snapshot=io.BytesIO(archive))
    check("recover from upload", uploaded.result is True, str(uploaded))
    got = [(p.id, p.score) for p in client.query_points("single_upload", query=q.tolist(), limit=10).points]
    check("uploaded copy answers the same", got == before)
    damaged = bytearray(archive)
    damaged[len(damaged) // 2] ^= 1
    try:
        client.http.snapshots_api.recover_from_uploaded_snapshot(
            "single_upload", wait=True, snapshot=io.BytesIO(bytes(damaged)))
        check("damaged upload fails", False)
    except UnexpectedResponse as e:
        check("damaged upload is 400", e.status_code == 400, str(e))
    check("damaged upload changed nothing", client.count("single_upload").count == N)
    try:
        client.recover_snapshot("single_copy", location="http://169.254.169.254/latest/x.snapshot")
        check("remote location refused", False)
    except UnexpectedResponse as e:
        check("remote location is 400", e.status_code == 400, str(e))
    check("delete_snapshot", client.delete_snapshot("single", snap.name) is True)
    check("snapshot list empty", client.list_snapshots("single") == [])
    full = client.create_full_snapshot()
    check("full snapshot", [s.name for s in client.list_full_snapshots()] == [full.name])
    check("delete full snapshot", client.delete_full_snapshot(full.name) is True)
    for name in ("single_copy", "single_copy2", "single_upload"):
        if client.collection_exists(name):
            client.delete_collection(name)

    # --- errors --------------------------------------------------------------------------------
    try:
        client.query_points("single", query=[1.0, 2.0], limit=3)
        check("wrong dimension fails", False)
    except UnexpectedResponse as e:
        check("wrong dimension is 400", e.status_code == 400, str(e))

    # --- delete points, then the collections -----------------------------------------------------
    client.delete("single", points_selector=models.PointIdsList(points=[0, UUIDS[0]]))
    check("delete by ids", client.count("single").count == N - 2)
    client.delete("single", points_selector=models.FilterSelector(filter=group_b))
    # Point 4 (group b) had its payload cleared above, so the filter no longer matches it.
    remaining = N - 2 - len([i for i in in_b if ids[i] not in (0, UUIDS[0], 4)])
    check("delete by filter", client.count("single").count == remaining)
    res = client.query_points("single", query=q.tolist(), limit=N)
    check("deleted points are not found", all(p.payload is None or p.payload.get("group") != "b"
                                              for p in client.retrieve("single", ids=[p.id for p in res.points])))
    check("delete collection", client.delete_collection("single"))
    check("deleted collection is gone", not client.collection_exists("single"))
    check("delete hybrid", client.delete_collection("hybrid"))

    # --- aliases -------------------------------------------------------------------------------
    aliases(client)

    # --- sparse vectors and hybrid (RRF) queries -------------------------------------------------
    sparse_and_hybrid(client, url, key)

    # --- groups ----------------------------------------------------------------------------------
    groups_section(client, url, key)

    # --- server-side BM25 through the client's Document, hybrid with RRF -------------------------
    bm25_section(url, key)

    # --- recommend, discover, context ------------------------------------------------------------
    examples_section(client)

    # --- update and delete named vectors, batch updates ------------------------------------------
    vectors_and_batch_section(client)

    # --- collection settings changed after creation ---------------------------------------------
    collection_update_section(client)

    # --- telemetry, Qdrant's metric names, optimizations ----------------------------------------
    telemetry_section(url, key)

    # --- filter conditions -----------------------------------------------------------------------
    filter_conditions_section(client)

    # --- facets and order_by ---------------------------------------------------------------------
    facet_and_order_by_section(client)

    # --- distance matrix, sample, mmr, lookup_from ----------------------------------------------
    matrix_sample_mmr_section(client)

    # --- formula queries (score boosting) --------------------------------------------------------
    formula_section(client)

    # --- server-side inference (the server runs the tiny jina fixture as "tiny") ---------------
    if os.environ.get("QUIVER_SCENARIO_MODEL"):
        inference(url, key, os.environ["QUIVER_SCENARIO_MODEL"])

    print(f"{passed} passed, 0 failed")


def matrix_sample_mmr_section(client):
    """search_matrix_pairs / search_matrix_offsets, SampleQuery, NearestQuery with Mmr and
    lookup_from, checked against numpy on a Cosine collection."""
    for name in ("matrix", "matrix_src"):
        if client.collection_exists(name):
            client.delete_collection(name)
    n = 40
    client.create_collection(
        "matrix", vectors_config=models.VectorParams(size=DIM, distance=models.Distance.COSINE))
    vecs = RNG.normal(size=(n, DIM)).astype(np.float32)
    unit = normalize(vecs)
    client.upsert("matrix", points=[
        models.PointStruct(id=i, vector=vecs[i].tolist(), payload={"g": i % 2}) for i in range(n)])
    even = models.Filter(must=[models.FieldCondition(key="g", match=models.MatchValue(value=0))])

    def neighbours(a, sampled, k):
        others = [b for b in sampled if b != a]
        return top_k([float(unit[a] @ unit[b]) for b in others], others, k)

    res = client.search_matrix_pairs("matrix", query_filter=even, sample=8, limit=3)
    sampled = sorted({p.a for p in res.pairs})
    check("matrix pairs sample", len(sampled) == 8 and all(a % 2 == 0 for a in sampled), f"{sampled}")
    ok = all([p.b for p in res.pairs if p.a == a] == neighbours(a, sampled, 3) for a in sampled)
    check("matrix pairs neighbours", ok, f"{res.pairs[:6]}")
    ok = all(abs(p.score - float(unit[p.a] @ unit[p.b])) < 1e-4 for p in res.pairs)
    check("matrix pairs scores", ok)
    off = client.search_matrix_offsets("matrix", query_filter=even, sample=100, limit=2)
    ids = list(off.ids)
    check("matrix offsets ids", ids == list(range(0, n, 2)), f"{ids}")
    triples = [(ids[r], ids[c], s) for r, c, s in zip(off.offsets_row, off.offsets_col, off.scores)]
    ok = all([b for a2, b, _ in triples if a2 == a] == neighbours(a, ids, 2) for a in ids)
    check("matrix offsets neighbours", ok)
    pairs = client.search_matrix_pairs("matrix", query_filter=even, sample=100, limit=2)
    same = [(p.a, p.b) for p in pairs.pairs] == [(a, b) for a, b, _ in triples]
    check("matrix pairs and offsets agree", same)

    res = client.query_points("matrix", query=models.SampleQuery(sample=models.Sample.RANDOM),
                              query_filter=even, limit=5)
    got = [p.id for p in res.points]
    check("sample random", len(set(got)) == 5 and all(i % 2 == 0 for i in got)
          and all(p.score == 0 for p in res.points), f"{got}")

    q = RNG.normal(size=DIM).astype(np.float32)
    qu = q / np.linalg.norm(q)
    diversity, candidates, limit = 0.6, 15, 5
    rel = unit @ qu
    pool = top_k(rel.tolist(), list(range(n)), candidates)
    selected = [pool.pop(0)]
    while len(selected) < limit:
        def mmr_score(c):
            return (1 - diversity) * rel[c] - diversity * max(float(unit[c] @ unit[s]) for s in selected)
        best = max(pool, key=lambda c: (mmr_score(c), -pool.index(c)))
        pool.remove(best)
        selected.append(best)
    res = client.query_points("matrix", query=models.NearestQuery(
        nearest=q.tolist(), mmr=models.Mmr(diversity=diversity, candidates_limit=candidates)),
        limit=limit)
    check("mmr selection", [p.id for p in res.points] == selected, f"{[p.id for p in res.points]} != {selected}")
    check("mmr scores are similarities",
          np.allclose([p.score for p in res.points], [rel[i] for i in selected], atol=1e-4))

    client.create_collection("matrix_src", vectors_config={
        "v": models.VectorParams(size=DIM, distance=models.Distance.DOT)})
    other = RNG.normal(size=(3, DIM)).astype(np.float32)
    client.upsert("matrix_src", points=[
        models.PointStruct(id=i, vector={"v": other[i].tolist()}) for i in range(3)])
    lookup = models.LookupLocation(collection="matrix_src", vector="v")
    looked = client.query_points("matrix", query=1, lookup_from=lookup, limit=5)
    direct = client.query_points("matrix", query=other[1].tolist(), limit=5)
    check("lookup_from query", [p.id for p in looked.points] == [p.id for p in direct.points])
    reco = client.query_points("matrix", query=models.RecommendQuery(
        recommend=models.RecommendInput(positive=[0, 2])), lookup_from=lookup, limit=5)
    want = top_k((unit @ normalize(normalize(other[0]) + normalize(other[2]))).tolist(),
                 list(range(n)), 5)
    check("lookup_from recommend", [p.id for p in reco.points] == want,
          f"{[p.id for p in reco.points]} != {want}")
    try:
        client.query_points("matrix", query=7, lookup_from=lookup, limit=5)
        check("lookup_from missing point is a 404", False)
    except UnexpectedResponse as e:
        check("lookup_from missing point is a 404", e.status_code == 404, f"{e.status_code}")
    client.delete_collection("matrix")
    client.delete_collection("matrix_src")


def formula_section(client):
    """FormulaQuery over two prefetches: both prefetches' scores, a condition, a payload number with a
    default and a Gaussian decay of a geo distance, checked against numpy; then Qdrant's 400 for a
    variable with no value."""
    if client.collection_exists("formula"):
        client.delete_collection("formula")
    client.create_collection(
        "formula", vectors_config=models.VectorParams(size=DIM, distance=models.Distance.DOT))
    n = 40
    vecs = RNG.normal(size=(n, DIM)).astype(np.float32)
    tags = ["h1", "h2", "h3"]
    payloads = []
    for i in range(n):
        p = {"tag": tags[i % 3], "loc": {"lat": 52.0 + 0.01 * i, "lon": 13.0}}
        if i % 4:
            p["price"] = float(i)
        payloads.append(p)
    client.upsert("formula", points=[
        models.PointStruct(id=i, vector=vecs[i].tolist(), payload=payloads[i]) for i in range(n)])
    q0, q1 = RNG.normal(size=DIM).astype(np.float32), RNG.normal(size=DIM).astype(np.float32)

    def top(q, k):
        s = vecs @ q
        return {i: float(s[i]) for i in sorted(range(n), key=lambda i: -s[i])[:k]}

    first, second = top(q0, 15), top(q1, 10)

    def haversine(lat1, lon1, lat2, lon2):
        lat1, lon1, lat2, lon2 = map(np.radians, (lat1, lon1, lat2, lon2))
        h = np.sin((lat2 - lat1) / 2) ** 2 + np.cos(lat1) * np.cos(lat2) * np.sin((lon2 - lon1) / 2) ** 2
        return 2 * np.arcsin(np.sqrt(h)) * 6371008.8

    def boost(i):
        p = payloads[i]
        dist = haversine(52.0, 13.0, p["loc"]["lat"], p["loc"]["lon"])
        gauss = np.exp(np.log(0.5) / 10000.0 ** 2 * dist ** 2)
        return (first.get(i, 0.0) + 0.5 * (p["tag"] in ("h1", "h2")) + 2.0 * second.get(i, 0.0)
                + p.get("price", 1.0) / 8.0 + gauss)

    formula = models.FormulaQuery(
        formula=models.SumExpression(sum=[
            "$score",
            models.MultExpression(mult=[0.5, models.FieldCondition(
                key="tag", match=models.MatchAny(any=["h1", "h2"]))]),
            models.MultExpression(mult=["$score[1]", 2.0]),
            models.DivExpression(div=models.DivParams(left="price", right=8.0)),
            models.GaussDecayExpression(gauss_decay=models.DecayParamsExpression(
                x=models.GeoDistance(geo_distance=models.GeoDistanceParams(
                    origin=models.GeoPoint(lat=52.0, lon=13.0), to="loc")),
                scale=10000.0)),
        ]),
        defaults={"price": 1.0})
    prefetch = [models.Prefetch(query=q0.tolist(), limit=15), models.Prefetch(query=q1.tolist(), limit=10)]
    res = client.query_points("formula", prefetch=prefetch, query=formula, limit=8)
    union = set(first) | set(second)
    want = sorted(union, key=lambda i: -boost(i))[:8]
    check("formula order", [p.id for p in res.points] == want, f"{[p.id for p in res.points]} != {want}")
    check("formula scores", np.allclose([p.score for p in res.points], [boost(i) for i in want],
                                        atol=1e-4), f"{[p.score for p in res.points]}")
    try:
        client.query_points("formula", prefetch=prefetch, query=models.FormulaQuery(
            formula=models.SumExpression(sum=["$score", "price"])), limit=3)
        check("formula without a default fails", False)
    except UnexpectedResponse as e:
        check("formula without a default is 400", e.status_code == 400 and "price" in str(e), str(e))
    client.delete_collection("formula")


def compatibility(url, key):
    """The client's version check passes: no 'incompatible' warning on connect."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        QdrantClient(url=url, api_key=key, timeout=60).get_collections()
    complaints = [str(w.message) for w in caught
                  if "incompatible" in str(w.message) or "server version" in str(w.message)]
    check("client version check passes", complaints == [], str(complaints))


def aliases(client):
    """update_collection_aliases (create, switch, rename, delete), the listings, search by alias."""
    for name in ("alias_a", "alias_b"):
        if client.collection_exists(name):
            client.delete_collection(name)
        client.create_collection(name, vectors_config=models.VectorParams(size=2, distance=models.Distance.DOT))
    client.upsert("alias_a", points=[models.PointStruct(id=1, vector=[1, 0])])
    client.upsert("alias_b", points=[models.PointStruct(id=2, vector=[1, 0])])
    check("create alias", client.update_collection_aliases(change_aliases_operations=[
        models.CreateAliasOperation(create_alias=models.CreateAlias(collection_name="alias_a", alias_name="live")),
    ]))
    check("query by alias", [p.id for p in client.query_points("live", query=[1, 0]).points] == [1])
    client.update_collection_aliases(change_aliases_operations=[
        models.DeleteAliasOperation(delete_alias=models.DeleteAlias(alias_name="live")),
        models.CreateAliasOperation(create_alias=models.CreateAlias(collection_name="alias_b", alias_name="live")),
        models.CreateAliasOperation(create_alias=models.CreateAlias(collection_name="alias_a", alias_name="old")),
        models.RenameAliasOperation(rename_alias=models.RenameAlias(old_alias_name="old", new_alias_name="prev")),
    ])
    check("switched alias", [p.id for p in client.query_points("live", query=[1, 0]).points] == [2])
    got = sorted((a.alias_name, a.collection_name) for a in client.get_aliases().aliases)
    check("get_aliases", got == [("live", "alias_b"), ("prev", "alias_a")], str(got))
    got = [a.alias_name for a in client.get_collection_aliases("alias_a").aliases]
    check("get_collection_aliases", got == ["prev"], str(got))
    try:
        client.update_collection_aliases(change_aliases_operations=[
            models.CreateAliasOperation(create_alias=models.CreateAlias(collection_name="nope", alias_name="x")),
        ])
        check("alias of a missing collection fails", False)
    except UnexpectedResponse as e:
        check("alias of a missing collection is 404", e.status_code == 404, str(e))
    client.delete_collection("alias_b")
    client.delete_collection("alias_a")
    check("deleting collections drops their aliases", client.get_aliases().aliases == [])


def conditional(client):
    """update_filter / update_mode, shortest-float vectors, nested with_payload and set_payload keys."""
    if client.collection_exists("cond"):
        client.delete_collection("cond")
    client.create_collection("cond", vectors_config=models.VectorParams(size=3, distance=models.Distance.DOT))
    client.upsert("cond", points=[
        models.PointStruct(id=1, vector=[0.05, 0.1, -0.3], payload={"v": 1, "c": {"name": "x", "code": 7}}),
        models.PointStruct(id=2, vector=[1, 0, 0], payload={"v": 2}),
    ])
    got = client.retrieve("cond", ids=[1], with_vectors=True)[0]
    check("vectors read back as the floats sent", got.vector == [0.05, 0.1, -0.3], str(got.vector))
    only_v1 = models.Filter(must=[models.FieldCondition(key="v", match=models.MatchValue(value=1))])
    client.upsert("cond", update_filter=only_v1, points=[
        models.PointStruct(id=1, vector=[0, 1, 0], payload={"v": 10}),
        models.PointStruct(id=2, vector=[0, 1, 0], payload={"v": 20}),
    ])
    got = {p.id: p.payload for p in client.retrieve("cond", ids=[1, 2])}
    check("update_filter replaces only matching points", got == {1: {"v": 10}, 2: {"v": 2}}, str(got))
    if hasattr(models, "UpdateMode"):
        client.upsert("cond", update_mode=models.UpdateMode.INSERT_ONLY, points=[
            models.PointStruct(id=1, vector=[1, 1, 1], payload={"v": 11}),
            models.PointStruct(id=3, vector=[1, 1, 1], payload={"v": 30}),
        ])
        got = {p.id: p.payload for p in client.retrieve("cond", ids=[1, 3])}
        check("insert_only leaves existing points", got == {1: {"v": 10}, 3: {"v": 30}}, str(got))
    client.set_payload("cond", payload={"arr": [{"b": {"x": 1}}, {"b": {"x": 2}}]}, points=[2])
    client.set_payload("cond", payload={"y": 3}, key="arr[0].b", points=[2])
    got = client.retrieve("cond", ids=[2])[0].payload
    check("set_payload key walks array elements", got["arr"] == [{"b": {"x": 1, "y": 3}}, {"b": {"x": 2}}],
          str(got))
    client.overwrite_payload("cond", payload={"c": {"name": "x", "code": 7}, "v": 1}, points=[1])
    got = client.retrieve("cond", ids=[1], with_payload=models.PayloadSelectorInclude(include=["c.name"]))[0]
    check("with_payload includes nested paths", got.payload == {"c": {"name": "x"}}, str(got.payload))
    client.delete_collection("cond")

def facet_and_order_by_section(client):
    """client.facet against counts computed here, and order_by in scroll (OrderBy) and in
    query_points (OrderByQuery) over integer, float and datetime indexes, sealed segments included."""
    if client.collection_exists("faceted"):
        client.delete_collection("faceted")
    client.create_collection(
        "faceted", vectors_config=models.VectorParams(size=2, distance=models.Distance.DOT))
    for field, schema in (("color", models.PayloadSchemaType.KEYWORD),
                          ("rank", models.PayloadSchemaType.INTEGER),
                          ("price", models.PayloadSchemaType.FLOAT),
                          ("day", models.PayloadSchemaType.DATETIME)):
        client.create_payload_index("faceted", field, field_schema=schema, wait=True)
    colors = ["red", "green", "blue"]
    payloads = []
    for i in range(30):
        color = colors[i % 3] if i % 5 else [colors[i % 3], "gold", colors[i % 3]]
        payloads.append({"color": color, "rank": (i * 7) % 13, "price": i * 0.75 - 4.0,
                         "day": f"2024-02-{1 + (i * 11) % 29:02d}T08:00:00Z"})
    client.upsert("faceted", points=[
        models.PointStruct(id=i, vector=[1.0, float(i)], payload=payloads[i]) for i in range(30)])

    counts = {}
    for p in payloads:
        for v in set(p["color"] if isinstance(p["color"], list) else [p["color"]]):
            counts[v] = counts.get(v, 0) + 1
    want = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
    res = client.facet("faceted", key="color", limit=10)
    got = [(h.value, h.count) for h in res.hits]
    check("facet counts", got == want, f"{got} != {want}")
    res = client.facet("faceted", key="rank", limit=2, exact=True,
                       facet_filter=models.Filter(must=[models.FieldCondition(
                           key="color", match=models.MatchValue(value="red"))]))
    ranks = {}
    for p in payloads:
        if p["color"] == "red" or (isinstance(p["color"], list) and "red" in p["color"]):
            ranks[p["rank"]] = ranks.get(p["rank"], 0) + 1
    want = sorted(ranks.items(), key=lambda kv: (-kv[1], kv[0]))[:2]
    got = [(h.value, h.count) for h in res.hits]
    check("facet with filter and limit", got == want, f"{got} != {want}")
    try:
        client.facet("faceted", key="price")
        check("facet without a keyword/integer/bool index fails", False)
    except Exception as e:
        check("facet without a keyword/integer/bool index is refused", "index" in str(e), str(e))

    def order(key, desc=False, start=None):
        pairs = [(payloads[i][key], i) for i in range(30)]
        if start is not None:
            pairs = [p for p in pairs if (p[0] <= start if desc else p[0] >= start)]
        return [i for _, i in sorted(pairs, reverse=desc)][:10]

    for key, desc, start in (("rank", False, None), ("rank", True, 6), ("price", True, None),
                             ("price", False, 2.5), ("day", True, None)):
        order_by = models.OrderBy(key=key, direction=models.Direction.DESC if desc else models.Direction.ASC,
                                  start_from=start)
        points, next_offset = client.scroll("faceted", limit=10, order_by=order_by)
        got = [p.id for p in points]
        check(f"scroll order_by {key} {'desc' if desc else 'asc'} from {start}",
              got == order(key, desc, start) and next_offset is None, f"{got} {next_offset}")
        check(f"scroll order_value {key}", all(p.order_value is not None for p in points))
        res = client.query_points("faceted", query=models.OrderByQuery(order_by=order_by), limit=10)
        got = [p.id for p in res.points]
        check(f"query OrderByQuery {key}", got == order(key, desc, start), str(got))
    try:
        client.scroll("faceted", order_by="color")
        check("order_by without a range index fails", False)
    except Exception as e:
        check("order_by without a range index is refused", "range index" in str(e), str(e))
    client.delete_collection("faceted")

def collection_update_section(client):
    """update_collection with optimizers_config, hnsw_config, vectors_config, quantization and
    metadata; get_collection shows each change, merged as Qdrant merges it; a bad update is a 400."""
    name = "updated"
    if client.collection_exists(name):
        client.delete_collection(name)
    client.create_collection(
        name,
        vectors_config={
            "dense": models.VectorParams(size=4, distance=models.Distance.COSINE,
                                         hnsw_config=models.HnswConfigDiff(m=8)),
            "raw": models.VectorParams(size=4, distance=models.Distance.DOT),
        },
        on_disk_payload=False,
        metadata={"owner": "search", "stage": "draft"},
    )
    info = client.get_collection(name)
    check("on_disk_payload reads back as set", info.config.params.on_disk_payload is False,
          str(info.config.params))
    check("vector hnsw_config reads back as set",
          info.config.params.vectors["dense"].hnsw_config == models.HnswConfigDiff(m=8),
          str(info.config.params.vectors["dense"].hnsw_config))
    client.upsert(name, points=[
        models.PointStruct(id=i, vector={"dense": [1.0, float(i), 0.0, 0.0], "raw": [0.0, 1.0, 0.0, float(i)]})
        for i in range(10)])
    check("update collection", client.update_collection(
        name,
        optimizers_config=models.OptimizersConfigDiff(deleted_threshold=0.4, indexing_threshold=5000),
        hnsw_config=models.HnswConfigDiff(m=20, ef_construct=128),
        vectors_config={
            "dense": models.VectorParamsDiff(hnsw_config=models.HnswConfigDiff(ef_construct=64), on_disk=True),
            "raw": models.VectorParamsDiff(quantization_config=models.ScalarQuantization(
                scalar=models.ScalarQuantizationConfig(type=models.ScalarType.INT8, always_ram=True))),
        },
        collection_params=models.CollectionParamsDiff(on_disk_payload=True),
        metadata={"stage": "live", "version": 3},
    ))
    config = client.get_collection(name).config
    check("optimizers_config updated", config.optimizer_config.deleted_threshold == 0.4
          and config.optimizer_config.indexing_threshold == 5000, str(config.optimizer_config))
    check("hnsw_config updated", config.hnsw_config.m == 20 and config.hnsw_config.ef_construct == 128,
          str(config.hnsw_config))
    dense = config.params.vectors["dense"]
    check("vector hnsw_config merged", dense.hnsw_config == models.HnswConfigDiff(m=8, ef_construct=64),
          str(dense.hnsw_config))
    check("vector on_disk updated", dense.on_disk is True, str(dense))
    raw = config.params.vectors["raw"]
    check("vector quantization updated", raw.quantization_config is not None
          and raw.quantization_config.scalar.always_ram is True, str(raw))
    check("on_disk_payload updated", config.params.on_disk_payload is True, str(config.params))
    check("metadata merged", config.metadata == {"owner": "search", "stage": "live", "version": 3},
          str(config.metadata))
    client.update_collection(name, metadata={"owner": None})
    check("metadata key removed by null",
          client.get_collection(name).config.metadata == {"stage": "live", "version": 3})
    client.update_collection(name, quantization_config=models.Disabled.DISABLED,
                             vectors_config={"raw": models.VectorParamsDiff(
                                 quantization_config=models.Disabled.DISABLED)})
    config = client.get_collection(name).config
    check("quantization disabled", config.params.vectors["raw"].quantization_config is None
          and config.quantization_config is None, str(config))
    res = client.query_points(name, query=[1.0, 9.0, 0.0, 0.0], using="dense", limit=1)
    check("points searchable after update", res.points[0].id == 9, str(res.points))
    try:
        client.update_collection(name, collection_params=models.CollectionParamsDiff(replication_factor=3))
        check("replication_factor update fails", False)
    except UnexpectedResponse as e:
        check("replication_factor update is 400", e.status_code == 400 and "replication_factor" in str(e), str(e))
    # Strict mode: limits are stored, shown and applied.
    check("strict mode update", client.update_collection(
        name, strict_mode_config=models.StrictModeConfig(enabled=True, max_query_limit=5)))
    shown = client.get_collection(name).config.strict_mode_config
    check("strict mode shown", shown is not None and shown.enabled and shown.max_query_limit == 5,
          str(shown))
    try:
        client.query_points(name, query=[1.0, 9.0, 0.0, 0.0], using="dense", limit=6)
        check("a query over max_query_limit fails", False)
    except UnexpectedResponse as e:
        check("a query over max_query_limit is 403", e.status_code == 403 and "limit" in str(e), str(e))
    # A rate limit: one read a minute passes, the next is Qdrant's 429 with Retry-After (the client
    # raises its ResourceExhaustedResponse there, not UnexpectedResponse).
    client.update_collection(name, strict_mode_config=models.StrictModeConfig(read_rate_limit=1))
    check("strict mode rate limit shown",
          client.get_collection(name).config.strict_mode_config.read_rate_limit == 1)
    client.count(name, exact=False)
    try:
        client.count(name, exact=False)
        check("a read over read_rate_limit fails", False)
    except Exception as e:  # noqa: BLE001 - the client's 429 exception type varies by version
        check("a read over read_rate_limit is refused with a retry time",
              "Read rate limit exceeded" in str(e) and getattr(e, "retry_after_s", 60) >= 1, repr(e))
    # Writes have their own bucket: upserting still works.
    client.update_collection(name, strict_mode_config=models.StrictModeConfig(
        write_rate_limit=100, max_payload_index_count=50))
    res = client.upsert(name, points=[models.PointStruct(
        id=9, vector={"dense": [1.0, 9.0, 0.0, 0.0], "raw": [0.0, 1.0, 0.0, 9.0]})], wait=True)
    check("writes pass while reads are limited", res.status == models.UpdateStatus.COMPLETED, str(res))
    client.update_collection(name, strict_mode_config=models.StrictModeConfig(enabled=False))

    # Named vectors added to and deleted from the existing collection.
    added = client.create_vector_name(name, "title", models.DenseVectorNameConfig(
        dense=models.DenseVectorConfig(size=2, distance=models.Distance.COSINE)))
    check("create_vector_name", added.status == models.UpdateStatus.COMPLETED, str(added))
    client.create_vector_name(name, "keywords", models.SparseVectorNameConfig(
        sparse=models.SparseVectorConfig(modifier=models.Modifier.IDF)))
    config = client.get_collection(name).config
    check("added vectors read back", config.params.vectors["title"].size == 2
          and config.params.sparse_vectors["keywords"].modifier == models.Modifier.IDF, str(config.params))
    old = client.retrieve(name, ids=[3], with_vectors=True)[0]
    check("existing points have no added vector", set(old.vector) == {"dense", "raw"}, str(old.vector))
    client.upsert(name, points=[models.PointStruct(id=100, vector={
        "dense": [0.0, 0.0, 1.0, 0.0], "raw": [0.0, 0.0, 1.0, 0.0], "title": [1.0, 0.0],
        "keywords": models.SparseVector(indices=[5], values=[1.0])})])
    res = client.query_points(name, query=[1.0, 0.0], using="title", limit=5)
    check("search on an added vector", [p.id for p in res.points] == [100], str(res.points))
    client.delete_vector_name(name, "title")
    check("deleted vector is gone", "title" not in client.get_collection(name).config.params.vectors)
    got = client.retrieve(name, ids=[100], with_vectors=True)[0]
    check("deleted vector is not returned", set(got.vector) == {"dense", "raw", "keywords"}, str(got.vector))
    try:
        client.query_points(name, query=[1.0, 0.0], using="title", limit=5)
        check("search on a deleted vector fails", False)
    except UnexpectedResponse as e:
        check("search on a deleted vector is 400", e.status_code == 400, str(e))
    client.delete_collection(name)


def sparse_and_hybrid(client, url, key):
    """Sparse vectors beside a dense one, a sparse query with `using`, IDF, the legacy search with a
    NamedSparseVector, and an RRF hybrid query, each checked against an answer computed here."""
    rng = np.random.default_rng(11)
    n = 40
    dense = rng.standard_normal((n, 4)).astype(np.float32)
    sparse = []
    for _ in range(n):
        dims = sorted(rng.choice(30, size=int(rng.integers(1, 6)), replace=False).tolist())
        sparse.append((dims, rng.uniform(0.1, 2.0, len(dims)).astype(np.float32).tolist()))
    client.create_collection(
        "sparse", vectors_config={"dense": models.VectorParams(size=4, distance=models.Distance.DOT)},
        sparse_vectors_config={
            "text": models.SparseVectorParams(index=models.SparseIndexParams(on_disk=True)),
            "idf": models.SparseVectorParams(modifier=models.Modifier.IDF)})
    info = client.get_collection("sparse")
    check("sparse config reads back", info.config.params.sparse_vectors["idf"].modifier == models.Modifier.IDF,
          str(info.config.params.sparse_vectors))
    client.upsert("sparse", points=[
        models.PointStruct(id=i, vector={
            "dense": dense[i].tolist(),
            "text": models.SparseVector(indices=sparse[i][0], values=sparse[i][1]),
            "idf": models.SparseVector(indices=sparse[i][0], values=sparse[i][1])})
        for i in range(n)])
    got = client.retrieve("sparse", ids=[3], with_vectors=True)[0].vector["text"]
    check("retrieve sparse vector", got.indices == sparse[3][0]
          and np.allclose(got.values, sparse[3][1], atol=1e-6), str(got))

    q_dims, q_vals = [1, 5, 9, 17], [1.0, 0.5, 2.0, 1.5]

    def sparse_scores(weights):
        out = {}
        for i, (dims, vals) in enumerate(sparse):
            shared = [(weights[d], v) for d, v in zip(dims, vals) if d in weights]
            if shared:
                out[i] = sum(w * v for w, v in shared)
        return out

    def ranked(scores, k):
        return [i for i, _ in sorted(scores.items(), key=lambda kv: (-kv[1], kv[0]))][:k]

    plain = sparse_scores(dict(zip(q_dims, q_vals)))
    query = models.SparseVector(indices=q_dims, values=q_vals)
    res = client.query_points("sparse", query=query, using="text", limit=8)
    check("sparse query_points", [p.id for p in res.points] == ranked(plain, 8),
          f"{[p.id for p in res.points]} vs {ranked(plain, 8)}")
    check("sparse scores are dot products",
          np.allclose([p.score for p in res.points], [plain[i] for i in ranked(plain, 8)], atol=1e-4))
    # Recent qdrant-client releases dropped the legacy search (and NamedSparseVector): its body as JSON.
    named = {"name": "text", "vector": {"indices": q_dims, "values": q_vals}}
    legacy = post_json(url, key, "/collections/sparse/points/search", {"vector": named, "limit": 5})
    check("legacy search with NamedSparseVector", [p["id"] for p in legacy["result"]] == ranked(plain, 5),
          str(legacy))
    df = {d: sum(d in dims for dims, _ in sparse) for d in q_dims}
    idf = {d: float(np.log((n - df[d] + 0.5) / (df[d] + 0.5) + 1.0)) for d in q_dims}
    weighted = sparse_scores({d: v * idf[d] for d, v in zip(q_dims, q_vals)})
    res = client.query_points("sparse", query=query, using="idf", limit=8)
    check("idf modifier weighs the query", [p.id for p in res.points] == ranked(weighted, 8),
          f"{[p.id for p in res.points]} vs {ranked(weighted, 8)}")

    dq = rng.standard_normal(4).astype(np.float32)
    dense_top = [int(i) for i in np.argsort(-(dense @ dq), kind="stable")[:10]]
    sparse_top = ranked(plain, 10)
    rrf = {}
    for lst in (dense_top, sparse_top):
        for pos, i in enumerate(lst):
            rrf[i] = rrf.get(i, 0.0) + 1.0 / (pos + 2)
    res = client.query_points("sparse", prefetch=[
        models.Prefetch(query=dq.tolist(), using="dense", limit=10),
        models.Prefetch(query=query, using="text", limit=10)],
        query=models.FusionQuery(fusion=models.Fusion.RRF), limit=5)
    check("RRF hybrid query", [p.id for p in res.points] == ranked(rrf, 5),
          f"{[p.id for p in res.points]} vs {ranked(rrf, 5)}")
    check("RRF scores", np.allclose([p.score for p in res.points], [rrf[i] for i in ranked(rrf, 5)], atol=1e-5))
    res = client.query_points("sparse", prefetch=[
        models.Prefetch(query=dq.tolist(), using="dense", limit=10),
        models.Prefetch(query=query, using="text", limit=10)],
        query=models.FusionQuery(fusion=models.Fusion.DBSF), limit=5)
    check("DBSF hybrid query", len(res.points) == 5 and res.points[0].score >= res.points[-1].score)
    try:
        client.upsert("sparse", points=[models.PointStruct(id=99, vector={
            "text": models.SparseVector(indices=[1, 1], values=[1.0, 2.0])})])
        check("duplicate sparse indices fail", False)
    except UnexpectedResponse as e:
        check("duplicate sparse indices are 400", e.status_code == 400 and "text" in str(e), str(e))
    check("delete sparse collection", client.delete_collection("sparse"))


def bm25_section(url, key):
    """models.Document(model="qdrant/bm25") in upserts and queries (the client's server-side inference
    mode), keyword ranking, and a dense + BM25 hybrid fused by RRF against RRF of the two lists."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        client = QdrantClient(url=url, api_key=key, check_compatibility=False, timeout=60,
                              cloud_inference=True)
    if client.collection_exists("lexical"):
        client.delete_collection("lexical")
    client.create_collection(
        "lexical", vectors_config={"dense": models.VectorParams(size=4, distance=models.Distance.DOT)},
        sparse_vectors_config={"bm25": models.SparseVectorParams(modifier=models.Modifier.IDF)})
    texts = ["The quick brown fox jumps over the lazy dog.", "A fox hunts at night.",
             "Berlin is the capital of Germany.", "Bread is baked in an oven.",
             "Dogs and foxes are related.", "The capital of France is Paris."]
    dense = RNG.normal(size=(len(texts), 4)).astype(np.float32)
    client.upsert("lexical", points=[
        models.PointStruct(id=i, payload={"text": t}, vector={
            "dense": dense[i].tolist(), "bm25": models.Document(text=t, model="qdrant/bm25")})
        for i, t in enumerate(texts)])
    keyword = client.query_points("lexical", query=models.Document(text="fox", model="qdrant/bm25"),
                                  using="bm25", limit=10)
    # "foxes" stems to "fox" too; the other texts share no token with the query.
    check("BM25 Document query finds the texts with the word", sorted(p.id for p in keyword.points) ==
          [0, 1, 4], str([(p.id, p.score) for p in keyword.points]))
    check("BM25 ranks the short text first", keyword.points[0].id == 1,
          str([(p.id, p.score) for p in keyword.points]))
    dq = RNG.normal(size=4).astype(np.float32)
    dense_list = [p.id for p in client.query_points("lexical", query=dq.tolist(), using="dense",
                                                      limit=6).points]
    sparse_list = [p.id for p in keyword.points]
    rrf = {}
    for lst in (dense_list, sparse_list):
        for pos, i in enumerate(lst):
            rrf[i] = rrf.get(i, 0.0) + 1.0 / (pos + 2)
    want = sorted(rrf, key=lambda i: (-rrf[i], i))[:3]
    res = client.query_points("lexical", prefetch=[
        models.Prefetch(query=dq.tolist(), using="dense", limit=6),
        models.Prefetch(query=models.Document(text="fox", model="qdrant/bm25"), using="bm25", limit=6)],
        query=models.FusionQuery(fusion=models.Fusion.RRF), limit=3)
    check("dense + BM25 hybrid (RRF)", np.allclose([p.score for p in res.points],
                                                   [rrf[i] for i in want], atol=1e-6),
          f"{[(p.id, p.score) for p in res.points]} vs {[(i, rrf[i]) for i in want]}")
    client.delete_collection("lexical")


def groups_section(client, url, key):
    """query_points_groups (and the legacy search/groups, which this client no longer wraps) against groups built from an exact numpy ranking, and
    with_lookup into a second collection."""
    for name in ("grouped", "grouped_docs"):
        if client.collection_exists(name):
            client.delete_collection(name)
    params = models.VectorParams(size=DIM, distance=models.Distance.DOT)
    client.create_collection("grouped", vectors_config=params)
    client.create_collection("grouped_docs", vectors_config=params)
    n = 90
    vecs = RNG.normal(size=(n, DIM)).astype(np.float32)
    # Uneven groups: doc k holds about k + 1 shares of the points.
    docs = [next(k for k in range(12) if (k + 1) * (k + 2) // 2 > (i * 31) % 78) for i in range(n)]
    client.upsert("grouped", points=[
        models.PointStruct(id=i, vector=vecs[i].tolist(), payload={"doc_id": docs[i], "i": i})
        for i in range(n)
    ])
    client.upsert("grouped_docs", points=[
        models.PointStruct(id=k, vector=[0.0] * DIM, payload={"title": f"doc {k}"}) for k in range(12)
    ])
    q = RNG.normal(size=DIM).astype(np.float32)
    order = sorted(range(n), key=lambda i: -float(vecs[i] @ q))

    def expected(groups, size):
        out = {}
        for i in order:
            hits = out.setdefault(docs[i], [])
            if len(hits) < size:
                hits.append(i)
        return list(out.items())[:groups]

    exact = models.SearchParams(exact=True)
    for groups, size in ((3, 2), (5, 1), (12, 4)):
        res = client.query_points_groups("grouped", query=q.tolist(), group_by="doc_id",
                                         group_size=size, limit=groups, search_params=exact)
        got = [(g.id, [h.id for h in g.hits]) for g in res.groups]
        check(f"query_points_groups {groups}x{size}", got == expected(groups, size),
              f"{got} != {expected(groups, size)}")
    res = client.query_points_groups("grouped", query=q.tolist(), group_by="doc_id", group_size=2,
                                     limit=3, with_payload=["i"], search_params=exact,
                                     with_lookup=models.WithLookup(collection="grouped_docs",
                                                                   with_payload=True))
    got = [(g.id, [h.id for h in g.hits]) for g in res.groups]
    check("groups with payload and lookup", got == expected(3, 2), str(got))
    check("groups payload", all(h.payload == {"i": h.id} for g in res.groups for h in g.hits))
    check("with_lookup", all(g.lookup is not None and g.lookup.payload == {"title": f"doc {g.id}"}
                             for g in res.groups), str([g.lookup for g in res.groups]))
    legacy = post_json(url, key, "/collections/grouped/points/search/groups", {
        "vector": q.tolist(), "group_by": "doc_id", "group_size": 2, "limit": 3,
        "params": {"exact": True}})
    parsed = models.GroupsResult(**legacy["result"])
    got = [(g.id, [h.id for h in g.hits]) for g in parsed.groups]
    check("legacy search/groups parses as GroupsResult", got == expected(3, 2), str(got))
    try:
        client.query_points_groups("grouped", query=q.tolist(), group_by="doc_id", group_size=0)
        check("group_size 0 fails", False)
    except Exception as e:  # the client may refuse it before sending
        check("group_size 0 is refused", "group_size" in str(e) or "422" in str(e), str(e))
    client.delete_collection("grouped")
    client.delete_collection("grouped_docs")


def examples_section(client):
    """RecommendQuery (three strategies), DiscoverQuery and ContextQuery against numpy rankings from
    Qdrant's formulas, on a Dot collection."""
    if client.collection_exists("examples"):
        client.delete_collection("examples")
    client.create_collection(
        "examples", vectors_config=models.VectorParams(size=DIM, distance=models.Distance.DOT))
    n = 50
    vecs = RNG.normal(size=(n, DIM)).astype(np.float32)
    client.upsert("examples", points=[
        models.PointStruct(id=i, vector=vecs[i].tolist(), payload={"i": i}) for i in range(n)])
    raw = RNG.normal(size=DIM).astype(np.float32)
    sig = lambda x: x / (1 + abs(x))  # noqa: E731
    scaled = lambda x: 0.5 * (sig(x) + 1)  # noqa: E731

    def ranked(exclude, score, k=5):
        order = sorted((i for i in range(n) if i not in exclude), key=lambda i: -score(vecs[i]))
        return order[:k]

    def best(v):
        p = max(float(v @ vecs[0]), float(v @ vecs[1]))
        q = float(v @ raw)
        return scaled(p) if p > q else -scaled(q)

    def ask(query):
        return [p.id for p in client.query_points("examples", query=query, limit=5).points]

    got = ask(models.RecommendQuery(recommend=models.RecommendInput(
        positive=[0, 1], negative=[raw.tolist()], strategy=models.RecommendStrategy.BEST_SCORE)))
    check("recommend best_score", got == ranked({0, 1}, best), f"{got}")
    got = ask(models.RecommendQuery(recommend=models.RecommendInput(
        positive=[0, 1], negative=[raw.tolist()], strategy=models.RecommendStrategy.SUM_SCORES)))
    check("recommend sum_scores",
          got == ranked({0, 1}, lambda v: float(v @ vecs[0] + v @ vecs[1] - v @ raw)), f"{got}")
    avg = vecs[0] + vecs[1] - raw
    got = ask(models.RecommendQuery(recommend=models.RecommendInput(positive=[0, 1],
                                                                    negative=[raw.tolist()])))
    check("recommend average_vector", got == ranked({0, 1}, lambda v: float(v @ avg)), f"{got}")

    pairs = [(6, 7), (8, 9)]

    def discover(v):
        rank = sum(1 if v @ vecs[p] > v @ vecs[q] else -1 for p, q in pairs)
        return rank + scaled(float(v @ vecs[5]))

    context = [models.ContextPair(positive=p, negative=q) for p, q in pairs]
    got = ask(models.DiscoverQuery(discover=models.DiscoverInput(target=5, context=context)))
    check("discover", got == ranked({5, 6, 7, 8, 9}, discover), f"{got}")
    res = client.query_points("examples", query=models.ContextQuery(context=context), limit=5)
    loss = lambda v: sum(sig(min(float(v @ vecs[p] - v @ vecs[q]) - 1.1920929e-07, 0.0))  # noqa: E731
                         for p, q in pairs)
    want = sorted((loss(vecs[i]) for i in range(n) if i not in {6, 7, 8, 9}), reverse=True)[:5]
    check("context scores", np.allclose([p.score for p in res.points], want, atol=1e-4),
          f"{[p.score for p in res.points]} != {want}")
    client.delete_collection("examples")

def filter_conditions_section(client):
    """values_count, geo radius / box / polygon, datetime ranges, has_vector, min_should, nested, the
    full-text matches and the is_empty / is_null forms, each checked through scroll, count and a
    filtered query against answers computed here; a malformed polygon is a 400."""
    import datetime as dt

    name = "filt"
    if client.collection_exists(name):
        client.delete_collection(name)
    client.create_collection(name, vectors_config={
        "image": models.VectorParams(size=2, distance=models.Distance.DOT),
        "text": models.VectorParams(size=2, distance=models.Distance.DOT),
    }, optimizers_config=models.OptimizersConfigDiff(default_segment_number=2))
    rng = np.random.default_rng(11)
    n = 60
    base = dt.datetime(2023, 1, 1, tzinfo=dt.timezone.utc)
    words = ["good", "cheap", "shoes", "boots", "red", "fast"]
    rows = []
    for i in range(n):
        lon, lat = float(rng.uniform(-10, 40)), float(rng.uniform(35, 65))
        when = base + dt.timedelta(days=int(i * 7), hours=int(i % 5))
        created = [when.strftime("%Y-%m-%dT%H:%M:%SZ"),
                   when.astimezone(dt.timezone(dt.timedelta(hours=2))).isoformat(),
                   when.strftime("%Y-%m-%dT%H:%M:%S"),
                   when.strftime("%Y-%m-%d %H:%M:%S")][i % 4]
        payload = {
            "location": {"lon": lon, "lat": lat} if i % 7 else [{"lon": lon, "lat": lat}],
            "tags": [f"t{j}" for j in range(i % 4)] if i % 9 else None,
            "created": created,
            "desc": " ".join(words[(i + j) % len(words)] for j in range(1 + i % 3)),
            "reviews": [{"stars": (i * (j + 1)) % 5 + 1, "verified": (i + j) % 2 == 0} for j in range(i % 3)],
        }
        vector = {}
        if i % 2 == 0:
            vector["image"] = rng.normal(size=2).tolist()
        if i % 3 == 0 or i % 2 == 1:
            vector["text"] = rng.normal(size=2).tolist()
        rows.append((lon, lat, when, payload, vector))
    client.upsert(name, points=[models.PointStruct(id=i, vector=r[4], payload=r[3]) for i, r in enumerate(rows)])

    def haversine(lon1, lat1, lon2, lat2):
        p1, p2 = np.radians(lat1), np.radians(lat2)
        h = np.sin((p2 - p1) / 2) ** 2 + np.cos(p1) * np.cos(p2) * np.sin(np.radians(lon2 - lon1) / 2) ** 2
        return 2 * np.arcsin(np.sqrt(h)) * 6371008.8

    def answers(flt):
        got = sorted(p.id for p in client.scroll(name, scroll_filter=flt, limit=1000)[0])
        count = client.count(name, count_filter=flt, exact=True).count
        hits = client.query_points(name, query=[1.0, 1.0], using="image", query_filter=flt, limit=1000,
                                   search_params=models.SearchParams(exact=True)).points
        return got, count, sorted(h.id for h in hits)

    def expect(label, flt, pred):
        want = [i for i in range(n) if pred(i, *rows[i])]
        got, count, searched = answers(flt)
        with_image = [i for i in want if "image" in rows[i][4]]
        check(f"filter: {label}", got == want and count == len(want) and searched == with_image,
              f"want {want}, scroll {got}, count {count}, search {searched}")
        return want

    def key_cond(key, **kw):
        return models.Filter(must=[models.FieldCondition(key=key, **kw)])

    def ntags(p):
        return len(p["tags"]) if p["tags"] is not None else 0

    expect("values_count gte 2", key_cond("tags", values_count=models.ValuesCount(gte=2)),
           lambda i, lon, lat, w, p, v: ntags(p) >= 2)
    expect("values_count lt 1 (null counts 0)", key_cond("tags", values_count=models.ValuesCount(lt=1)),
           lambda i, lon, lat, w, p, v: ntags(p) < 1)
    center = (13.4, 52.5)
    radius = 800_000.0
    expect("geo_radius", key_cond("location", geo_radius=models.GeoRadius(
        center=models.GeoPoint(lon=center[0], lat=center[1]), radius=radius)),
        lambda i, lon, lat, w, p, v: haversine(center[0], center[1], lon, lat) < radius)
    expect("geo_bounding_box", key_cond("location", geo_bounding_box=models.GeoBoundingBox(
        top_left=models.GeoPoint(lon=0, lat=55), bottom_right=models.GeoPoint(lon=20, lat=45))),
        lambda i, lon, lat, w, p, v: 0 < lon < 20 and 45 < lat < 55)

    def ring(x0, y0, x1, y1):
        return models.GeoLineString(points=[models.GeoPoint(lon=x, lat=y) for x, y in
                                            [(x0, y0), (x1, y0), (x1, y1), (x0, y1), (x0, y0)]])

    expect("geo_polygon with a hole", key_cond("location", geo_polygon=models.GeoPolygon(
        exterior=ring(-5, 40, 30, 60), interiors=[ring(5, 45, 15, 55)])),
        lambda i, lon, lat, w, p, v: -5 < lon < 30 and 40 < lat < 60 and not (5 <= lon <= 15 and 45 <= lat <= 55))
    lo, hi = base + dt.timedelta(days=60), base + dt.timedelta(days=200)
    expect("datetime range", key_cond("created", range=models.DatetimeRange(gte=lo, lt=hi.isoformat())),
           lambda i, lon, lat, w, p, v: lo <= w < hi)
    expect("has_vector text", models.Filter(must=[models.HasVectorCondition(has_vector="text")]),
           lambda i, lon, lat, w, p, v: "text" in v)
    expect("must_not has_vector image", models.Filter(must_not=[models.HasVectorCondition(has_vector="image")]),
           lambda i, lon, lat, w, p, v: "image" not in v)
    expect("min_should 2 of 3", models.Filter(min_should=models.MinShould(min_count=2, conditions=[
        models.FieldCondition(key="tags", values_count=models.ValuesCount(gte=2)),
        models.HasVectorCondition(has_vector="text"),
        models.FieldCondition(key="location", geo_bounding_box=models.GeoBoundingBox(
            top_left=models.GeoPoint(lon=0, lat=55), bottom_right=models.GeoPoint(lon=20, lat=45))),
    ])), lambda i, lon, lat, w, p, v: (ntags(p) >= 2) + ("text" in v) + (0 < lon < 20 and 45 < lat < 55) >= 2)
    expect("nested", models.Filter(must=[models.NestedCondition(nested=models.Nested(
        key="reviews", filter=models.Filter(must=[
            models.FieldCondition(key="stars", match=models.MatchValue(value=5)),
            models.FieldCondition(key="verified", match=models.MatchValue(value=True))])))]),
        lambda i, lon, lat, w, p, v: any(r["stars"] == 5 and r["verified"] for r in p["reviews"]))
    expect("match text (substring, no index)", key_cond("desc", match=models.MatchText(text="cheap shoes")),
           lambda i, lon, lat, w, p, v: "cheap shoes" in p["desc"])
    if hasattr(models, "MatchPhrase"):
        expect("match phrase (no index)", key_cond("desc", match=models.MatchPhrase(phrase="shoes boots")),
               lambda i, lon, lat, w, p, v: "shoes boots" in p["desc"])
    if hasattr(models, "MatchTextAny"):
        expect("match text_any (no index)", key_cond("desc", match=models.MatchTextAny(text_any="red fast")),
               lambda i, lon, lat, w, p, v: "red" in p["desc"] or "fast" in p["desc"])
    expect("is_empty", models.Filter(must=[models.IsEmptyCondition(is_empty=models.PayloadField(key="tags"))]),
           lambda i, lon, lat, w, p, v: ntags(p) == 0)
    expect("is_null", models.Filter(must=[models.IsNullCondition(is_null=models.PayloadField(key="tags"))]),
           lambda i, lon, lat, w, p, v: p["tags"] is None)
    if "is_empty" in getattr(models.FieldCondition, "model_fields", {}):
        expect("field is_empty false", key_cond("tags", is_empty=False),
               lambda i, lon, lat, w, p, v: ntags(p) > 0)

    # A text index: words in any order, any case.
    client.create_payload_index(name, "desc", field_schema=models.TextIndexParams(
        type=models.TextIndexType.TEXT, tokenizer=models.TokenizerType.WORD, lowercase=True))
    expect("match text under a text index", key_cond("desc", match=models.MatchText(text="SHOES cheap")),
           lambda i, lon, lat, w, p, v: {"shoes", "cheap"} <= set(p["desc"].split()))
    if hasattr(models, "MatchPhrase"):
        expect("match phrase under a text index", key_cond("desc", match=models.MatchPhrase(phrase="shoes boots")),
               lambda i, lon, lat, w, p, v: "shoes boots" in p["desc"])

    try:
        client.count(name, count_filter=key_cond("location", geo_polygon=models.GeoPolygon(
            exterior=models.GeoLineString(points=[models.GeoPoint(lon=x, lat=y)
                                                  for x, y in [(0, 0), (1, 0), (1, 1), (0, 1)]]))))
        check("an open polygon is refused", False)
    except UnexpectedResponse as e:
        check("an open polygon is a 400", e.status_code == 400 and "not closed" in str(e), str(e))
    client.delete_collection(name)


def post_json(url, key, path, body, method="POST"):
    request = urllib.request.Request(url + path, data=json.dumps(body).encode(), method=method,
                                     headers={"content-type": "application/json", "api-key": key or ""})
    with urllib.request.urlopen(request) as response:
        return json.loads(response.read())


def get_json(url, key, path):
    request = urllib.request.Request(url + path, headers={"api-key": key or ""})
    with urllib.request.urlopen(request) as response:
        return json.loads(response.read())


def get_text(url, key, path):
    request = urllib.request.Request(url + path, headers={"api-key": key or ""})
    with urllib.request.urlopen(request) as response:
        return response.read().decode()


def telemetry_section(url, key):
    """GET /telemetry, /metrics and /collections/{name}/optimizations over raw HTTP (the client has no
    wrapper for them), parsed with the client's models where it has them."""
    import time

    name = "telemetry"
    post_json(url, key, f"/collections/{name}", {"vectors": {"size": DIM, "distance": "Dot"},
                                                  "optimizers_config": {"segment_max_points": 40}},
              method="PUT")
    points = [{"id": i, "vector": VECTORS[i].tolist()} for i in range(N)]
    post_json(url, key, f"/collections/{name}/points?wait=true", {"points": points}, method="PUT")

    route = "GET /collections/{name}"
    def count(telemetry):
        stats = telemetry.requests.rest.responses.get(route, {}).get("200")
        return stats.count if stats else 0

    before = models.TelemetryData(**get_json(url, key, "/telemetry")["result"])
    for _ in range(3):
        get_json(url, key, f"/collections/{name}")
    after = models.TelemetryData(**get_json(url, key, "/telemetry")["result"])
    check("telemetry parses as the client's TelemetryData", after.app.name == "quiver")
    check("telemetry counts requests per route and status", count(after) - count(before) == 3,
          f"{count(before)} -> {count(after)}")
    stats = after.requests.rest.responses[route]["200"]
    check("telemetry durations are ordered",
          0 < stats.min_duration_micros <= stats.avg_duration_micros <= stats.max_duration_micros, str(stats))
    listed = len(get_json(url, key, "/collections")["result"]["collections"])
    check("telemetry counts collections", after.collections.number_of_collections == listed)
    check("details_level 0 lists no collections", after.collections.collections is None)

    full = models.TelemetryData(**get_json(url, key, "/telemetry?details_level=2")["result"])
    ours = [c for c in full.collections.collections
            if isinstance(c, models.CollectionTelemetry) and c.id == name]
    check("details_level 2 describes each collection", len(ours) == 1 and len(full.collections.collections) == listed)
    local = ours[0].shards[0].local
    check("telemetry counts a collection's points", local.num_points == N and local.num_vectors == N,
          str(local))
    level1 = models.TelemetryData(**get_json(url, key, "/telemetry?details_level=1")["result"])
    check("details_level 1 aggregates", all(isinstance(c, models.CollectionsAggregatedTelemetry)
                                            for c in level1.collections.collections))

    metrics = get_text(url, key, "/metrics")
    series = {}
    for line in metrics.splitlines():
        if line and not line.startswith("#"):
            label, _, value = line.rpartition(" ")
            series[label] = float(value)
    labels = '{method="GET",endpoint="/collections/{name}",status="200"}'
    check("metrics have Qdrant's rest_responses_total, equal to telemetry's count",
          series.get("rest_responses_total" + labels) == count(after),
          f'{series.get("rest_responses_total" + labels)} vs {count(after)}')
    check("metrics have Qdrant's collections_total", series.get("collections_total") == listed)
    check("metrics have Qdrant's app_info", any(k.startswith("app_info{") for k in series))
    check("metrics keep Quiver's names", any(k.startswith("quiver_http_requests_total{") for k in series))

    path = f"/collections/{name}/optimizations?with=completed,idle_segments,queued"
    # The seals write more sealed segments than a 2-CPU machine's merge target, so the merge
    # optimizer may follow them: wait until nothing runs or waits, then expect seals covering every
    # point and, at most, merges.
    def sealed(report):
        return sum(o.progress.done for o in report.completed if o.optimizer == "seal")

    for _ in range(300):
        report = models.OptimizationsResponse(**get_json(url, key, path)["result"])
        if sealed(report) == N and not report.running and not report.queued:
            break
        time.sleep(0.1)
    check("optimizations parse as the client's OptimizationsResponse, seals done",
          sealed(report) == N and not report.running
          and all(o.optimizer in ("seal", "merge") and o.progress.done == o.progress.total
                  for o in report.completed),
          str(report))
    check("optimizations list the sealed segments", sum(s.points_count for s in report.idle_segments) == N
          and report.summary.idle_segments == len(report.idle_segments), str(report.summary))
    post_json(url, key, f"/collections/{name}", {}, method="DELETE")


def inference(url, key, model):
    """Documents through qdrant-client's server-side inference mode, checked against /embed."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        client = QdrantClient(url=url, api_key=key, check_compatibility=False, timeout=60,
                              cloud_inference=True)
    texts = ["Berlin is the capital of Germany.", "Paris is the capital of France.",
             "Bread is baked in an oven.", "The fox jumps over the dog."]
    if client.collection_exists("docs"):
        client.delete_collection("docs")
    client.create_collection("docs", vectors_config={
        "dense": models.VectorParams(size=32, distance=models.Distance.COSINE)})
    client.upsert("docs", points=[
        models.PointStruct(id=i, vector={"dense": models.Document(text=t, model=model)},
                           payload={"text": t}) for i, t in enumerate(texts)])
    stored = client.retrieve("docs", ids=list(range(len(texts))), with_vectors=True)
    want = np.array(post_json(url, key, "/embed", {"inputs": texts, "prompt_name": "passage",
                                                   "dimensions": 32, "model": model}), dtype=np.float32)
    got = np.array([p.vector["dense"] for p in sorted(stored, key=lambda p: p.id)], dtype=np.float32)
    check("documents stored as their passage embeddings", np.abs(got - want).max() < 1e-5,
          np.abs(got - want).max())
    question = "Which city is the capital of Germany?"
    q = np.array(post_json(url, key, "/embed", {"inputs": question, "dimensions": 32,
                                                "model": model})[0], dtype=np.float32)
    expected = [int(i) for i in np.argsort(-(want @ q))[:3]]
    res = client.query_points("docs", query=models.Document(text=question, model=model),
                              using="dense", limit=3)
    check("Document query ranks by the query embedding", [p.id for p in res.points] == expected,
          f"{[p.id for p in res.points]} vs {expected}")
    try:
        client.query_points("docs", query=models.Document(text=question, model="no-such-model"),
                            using="dense", limit=3)
        check("unknown model fails", False)
    except UnexpectedResponse as e:
        check("unknown model is 404", e.status_code == 404, str(e))
    client.delete_collection("docs")

    # A collection bound to the model (Quiver's `embedding`, created over plain HTTP): the client's
    # models parse its info, a bare Document fills both vectors, and a plain Document query runs the
    # default funnel, whose answer here (4 points, default depths) is MaxSim over every point.
    post_json(url, key, "/collections/bound", {
        "vectors": {"dense": {"size": 64, "distance": "Cosine"},
                    "colbert": {"size": 16, "distance": "Cosine",
                                "multivector_config": {"comparator": "max_sim"}}},
        "embedding": {"dense": {"model": model, "dims": 16}, "colbert": {"model": model}}}, "PUT")
    info = client.get_collection("bound")
    check("bound collection info parses", set(info.config.params.vectors) == {"dense", "colbert"})
    client.upsert("bound", points=[models.PointStruct(id=i, vector=models.Document(text=t, model=model))
                                   for i, t in enumerate(texts)])
    stored = client.retrieve("bound", ids=[0], with_payload=True)
    check("bound collection keeps the text", stored[0].payload == {"text": texts[0]}, stored[0].payload)
    docs = post_json(url, key, "/embed_all", {"inputs": texts, "prompt_name": "passage", "model": model})
    query = np.array(post_json(url, key, "/embed_all", {"inputs": question, "model": model})[0],
                     dtype=np.float32)
    maxsim = [float((query @ np.array(d, dtype=np.float32).T).max(axis=1).sum()) for d in docs]
    expected = [int(i) for i in np.argsort(-np.array(maxsim))[:2]]
    res = client.query_points("bound", query=models.Document(text=question, model=model), limit=2)
    check("plain Document query runs the funnel", [p.id for p in res.points] == expected,
          f"{[p.id for p in res.points]} vs {expected}")
    client.delete_collection("bound")

    # The real all-MiniLM-L6-v2, when the server runs it too: a labelled set through Document objects.
    minilm = os.environ.get("QUIVER_SCENARIO_MINILM")
    if minilm:
        labelled = json.loads((pathlib.Path(__file__).parent / "fixtures" / "retrieval_set.json").read_text())
        client.create_collection("facts", vectors_config={
            "dense": models.VectorParams(size=384, distance=models.Distance.COSINE)})
        client.upsert("facts", points=[
            models.PointStruct(id=i, vector={"dense": models.Document(text=d, model=minilm)},
                               payload={"text": d}) for i, d in enumerate(labelled["documents"])])
        found = 0
        for q, want in labelled["queries"]:
            res = client.query_points("facts", query=models.Document(text=q, model=minilm),
                                      using="dense", limit=1)
            found += int(res.points[0].id == want)
        recall = found / len(labelled["queries"])
        check("MiniLM recall@1 through Document queries >= 0.8", recall >= 0.8, recall)
        client.delete_collection("facts")


def vectors_and_batch_section(client):
    """update_vectors keeps the other vectors and the payload; delete_vectors hides a point from
    searches on that vector only; batch_update_points applies its operations in order, and a bad
    one fails the whole batch, naming it, with nothing written."""
    name = "vb"
    if client.collection_exists(name):
        client.delete_collection(name)
    client.create_collection(
        name,
        vectors_config={
            "a": models.VectorParams(size=3, distance=models.Distance.DOT),
            "b": models.VectorParams(size=3, distance=models.Distance.DOT),
        },
        sparse_vectors_config={"s": models.SparseVectorParams()},
    )
    client.upsert(name, points=[
        models.PointStruct(id=i, payload={"k": i}, vector={
            "a": [float(i), 1.0, 0.0], "b": [1.0, float(i), 0.0],
            "s": models.SparseVector(indices=[i], values=[1.0])})
        for i in range(6)
    ])

    def found(using, query):
        res = client.query_points(name, query=query, using=using, limit=100)
        return sorted(p.id for p in res.points)

    def state():
        points, _ = client.scroll(name, limit=100, with_payload=True, with_vectors=True)
        return [(p.id, p.payload, p.vector) for p in points]

    res = client.update_vectors(name, points=[
        models.PointVectors(id=1, vector={"a": [7.0, 8.0, 9.0]}),
        models.PointVectors(id=2, vector={"s": models.SparseVector(indices=[40], values=[2.0])}),
    ])
    check("update_vectors completes", res.status == models.UpdateStatus.COMPLETED, str(res))
    got = client.retrieve(name, ids=[1], with_vectors=True)[0]
    check("update_vectors replaces the named vector", got.vector["a"] == [7.0, 8.0, 9.0], str(got.vector))
    check("update_vectors keeps the other vectors", got.vector["b"] == [1.0, 1.0, 0.0]
          and got.vector["s"].indices == [1], str(got.vector))
    check("update_vectors keeps the payload", got.payload == {"k": 1}, str(got.payload))
    got = client.retrieve(name, ids=[2], with_vectors=True)[0]
    check("update_vectors sets a sparse vector", got.vector["s"].indices == [40], str(got.vector))
    before = state()
    try:
        client.update_vectors(name, points=[models.PointVectors(id=99, vector={"a": [1.0, 1.0, 1.0]})])
        check("update_vectors of a missing point fails", False)
    except UnexpectedResponse as e:
        check("update_vectors of a missing point is 404", e.status_code == 404, str(e))
    try:
        client.update_vectors(name, points=[models.PointVectors(id=1, vector={"zzz": [1.0, 1.0, 1.0]})])
        check("update_vectors of an unknown name fails", False)
    except UnexpectedResponse as e:
        check("update_vectors of an unknown name is 400", e.status_code == 400 and "zzz" in str(e), str(e))
    check("failed update_vectors change nothing", state() == before)

    client.delete_vectors(name, vectors=["b"], points=[3])
    check("delete_vectors hides the point from searches on that vector",
          found("b", [1.0, 1.0, 1.0]) == [0, 1, 2, 4, 5], str(found("b", [1.0, 1.0, 1.0])))
    check("delete_vectors keeps the point in searches on another vector",
          found("a", [1.0, 1.0, 1.0]) == [0, 1, 2, 3, 4, 5])
    got = client.retrieve(name, ids=[3], with_vectors=True)[0]
    check("delete_vectors keeps the other vectors and the payload",
          sorted(got.vector) == ["a", "s"] and got.payload == {"k": 3}, str(got))
    client.delete_vectors(name, vectors=["a"], points=models.Filter(must=[
        models.FieldCondition(key="k", match=models.MatchValue(value=4))]))
    check("delete_vectors by filter", found("a", [1.0, 1.0, 1.0]) == [0, 1, 2, 3, 5])

    k_is = lambda v: models.Filter(must=[models.FieldCondition(key="k", match=models.MatchValue(value=v))])
    results = client.batch_update_points(name, update_operations=[
        models.UpsertOperation(upsert=models.PointsList(points=[
            models.PointStruct(id=10, vector={"a": [1.0, 0.0, 0.0], "b": [0.0, 1.0, 0.0]}, payload={"k": 10})])),
        models.SetPayloadOperation(set_payload=models.SetPayload(payload={"t": "new"}, filter=k_is(10))),
        models.OverwritePayloadOperation(overwrite_payload=models.SetPayload(payload={"k": 20}, points=[0])),
        models.UpdateVectorsOperation(update_vectors=models.UpdateVectors(points=[
            models.PointVectors(id=10, vector={"a": [3.0, 3.0, 3.0]})])),
        models.DeleteVectorsOperation(delete_vectors=models.DeleteVectors(points=[5], vector=["b"])),
        models.DeleteOperation(delete=models.FilterSelector(filter=k_is(20))),
        models.ClearPayloadOperation(clear_payload=models.PointIdsList(points=[1])),
        models.DeletePayloadOperation(delete_payload=models.DeletePayload(keys=["k"], points=[10])),
    ])
    check("batch answers one result per operation", len(results) == 8
          and all(r.status == models.UpdateStatus.COMPLETED for r in results), str(results))
    got = client.retrieve(name, ids=[10], with_vectors=True)[0]
    check("batch operations apply in order", got.payload == {"t": "new"}
          and got.vector == {"a": [3.0, 3.0, 3.0], "b": [0.0, 1.0, 0.0]}, str(got))
    check("batch delete by filter sees the earlier overwrite", client.retrieve(name, ids=[0]) == [])
    check("batch clear_payload", client.retrieve(name, ids=[1])[0].payload == {})
    check("batch delete_vectors", found("b", [1.0, 1.0, 1.0]) == [1, 2, 4, 10])

    before = state()
    try:
        client.batch_update_points(name, update_operations=[
            models.DeleteOperation(delete=models.PointIdsList(points=[1, 2])),
            models.UpdateVectorsOperation(update_vectors=models.UpdateVectors(points=[
                models.PointVectors(id=2, vector={"a": [1.0, 1.0, 1.0]})])),
        ])
        check("a batch with a bad operation fails", False)
    except UnexpectedResponse as e:
        check("a bad operation is named by its index", e.status_code == 404 and "operation 1" in str(e), str(e))
    check("a failed batch changes nothing", state() == before)
    client.delete_collection(name)


if __name__ == "__main__":
    main()
