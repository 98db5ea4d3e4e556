#!/usr/bin/env python3
"""`quiver ingest` throughput against the server's own batched encoder rate, and against
sentence-transformers, on the same texts in one run (issue 23's throughput goal: ingest at >= 85 % of
the encoder's batched rate).

Two corpora (`--corpus`):
- `wordnet`: the first `--docs` WordNet glosses (scripts/bench/prepare_data.py's corpus, from the
  Debian package wordnet-base). Each gloss is short: one chunk.
- `debian`: the first `--docs` Debian package descriptions (short and long description, paragraphs
  kept) of at least `--min-words` words, in package order, from the archive's English translation
  index (`Translation-en`, fetched by `apt-get update` with English descriptions switched on). Many
  are longer than the model's 256 tokens, so ingest chunks them.

Starts `target/release/quiver serve --model minilm=<all-MiniLM-L6-v2>` over a fresh data directory,
then:

1. ingest: `quiver ingest` of the documents as one JSON Lines file into a collection bound to the
   model (chunked at the model's limit, as the route does), documents/s and chunks/s end to end;
2. encoder: the chunk texts that ingest stored (read back by scroll; for glosses, the glosses) through
   `/embed`, `--batch` inputs per request, two requests in flight (what the batching worker sees from
   a busy client), texts/s: the same texts ingest embedded;
3. sentence-transformers: `encode` of the same chunk texts at batch 32 in process, texts/s.

A first, untimed ingest into another collection warms the server up. Both sides use the same thread
count. Prints a Markdown table; the goal compares ingest's chunks/s with the encoder's texts/s.

Usage: python scripts/bench/ingest_throughput.py [--corpus wordnet|debian] [--docs 3000] [--batch 64]
       [--threads 2] [--min-words 120]
Needs target/release/quiver, the model (scripts/fetch-test-assets.sh), sentence-transformers
(scripts/bench/requirements.txt) and apt-get (for wordnet-base and the description index).
"""

import argparse
import concurrent.futures
import http.client
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from prepare_data import wordnet_glosses  # noqa: E402


def start_server(model_dir, threads, data_dir):
    env = dict(os.environ, RAYON_NUM_THREADS=str(threads), QUIVER_LOG="warn")
    proc = subprocess.Popen(
        [os.path.join(ROOT, "target/release/quiver"), "--data-dir", data_dir, "serve", "--port", "0",
         "--model", f"minilm={model_dir}"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
    port = None
    for line in proc.stdout:
        m = re.search(r"listening on http://[^:]+:(\d+)", line)
        if m:
            port = int(m.group(1))
            break
    if port is None:
        sys.exit("the server did not start")
    for _ in range(600):
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
        try:
            conn.request("GET", "/readyz")
            if conn.getresponse().status == 200:
                return proc, port
        except OSError:
            pass
        time.sleep(0.1)
    sys.exit("the server did not become ready")


def translation_index_files():
    # Debian's images switch description downloads off; these options switch English back on.
    opts = ["-o", "Acquire::Languages=environment", "-o", "Acquire::Languages::=en"]
    query = ["indextargets", "--format", "$(FILENAME)", "Identifier: Translations"]

    def listed():
        out = subprocess.run(["apt-get", *opts, *query], capture_output=True, text=True).stdout
        return [f for f in out.split() if os.path.exists(f)]

    files = listed()
    if not files:
        log("fetching the English description index with apt-get update")
        subprocess.run(["apt-get", *opts, "update", "-qq"], check=True)
        files = listed()
    if not files:
        sys.exit("apt-get found no English description index (Translation-en)")
    return files


def debian_descriptions(count, min_words):
    """Package descriptions as documents: `package: short description`, then the long description
    with its paragraphs (Debian marks a blank line as " .")."""
    docs = []
    for path in translation_index_files():
        text = subprocess.run(["/usr/lib/apt/apt-helper", "cat-file", path], check=True,
                              capture_output=True, text=True).stdout
        for stanza in text.split("\n\n"):
            package, lines = None, []
            for line in stanza.splitlines():
                if line.startswith("Package: "):
                    package = line[len("Package: "):].strip()
                elif line.startswith("Description-en: "):
                    lines = [line[len("Description-en: "):].strip()]
                elif line.startswith(" ") and lines:
                    lines.append("" if line.strip() == "." else line.strip())
            if not package or len(lines) < 2:
                continue
            body = "\n".join(lines[1:])
            paragraphs = [" ".join(p.split()) for p in body.split("\n\n") if p.strip()]
            doc = f"{package}: {lines[0]}\n\n" + "\n\n".join(paragraphs)
            if len(doc.split()) >= min_words:
                docs.append((package, doc))
        if len(docs) >= count:
            break
    docs.sort()
    return [d for _, d in docs[:count]]


def log(msg):
    print(msg, file=sys.stderr, flush=True)


def post(port, path, body, method="POST"):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=600)
    conn.request(method, path, json.dumps(body), {"content-type": "application/json"})
    resp = conn.getresponse()
    data = resp.read()
    if resp.status != 200:
        sys.exit(f"{method} {path}: {resp.status} {data[:300]}")
    return json.loads(data)


def ingest(port, collection, jsonl):
    started = time.perf_counter()
    out = subprocess.run(
        [os.path.join(ROOT, "target/release/quiver"), "ingest", "--url", f"http://127.0.0.1:{port}",
         "--collection", collection, jsonl],
        capture_output=True, text=True, env=dict(os.environ, QUIVER_LOG="warn"))
    elapsed = time.perf_counter() - started
    if out.returncode != 0:
        sys.exit(f"quiver ingest failed: {out.stderr[-2000:]}")
    return elapsed, (out.stdout + out.stderr).strip().splitlines()[-1]


def chunk_texts(port, collection):
    texts, offset = [], None
    while True:
        body = {"limit": 1000, "with_payload": ["text"], "with_vector": False}
        if offset is not None:
            body["offset"] = offset
        page = post(port, f"/collections/{collection}/points/scroll", body)["result"]
        for p in page["points"]:
            texts.append(p["payload"]["text"])
        offset = page.get("next_page_offset")
        if offset is None:
            return texts


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--corpus", choices=["wordnet", "debian"], default="wordnet")
    ap.add_argument("--docs", type=int, default=3000)
    ap.add_argument("--min-words", type=int, default=120)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--cache", default=os.path.join(ROOT, "target/bench-data"))
    args = ap.parse_args()
    model_dir = os.path.join(ROOT, "target/test-assets/all-MiniLM-L6-v2")
    if args.corpus == "wordnet":
        docs = wordnet_glosses(args.cache)[: args.docs]
        what = f"{len(docs)} WordNet glosses"
    else:
        docs = debian_descriptions(args.docs, args.min_words)
        words = sorted(len(d.split()) for d in docs)
        what = (f"{len(docs)} Debian package descriptions of {args.min_words}+ words (median "
                f"{words[len(words) // 2]}, max {words[-1]} words)")
    work = tempfile.mkdtemp(prefix="quiver-ingest-bench-")
    try:
        jsonl = os.path.join(work, "docs.jsonl")
        with open(jsonl, "w") as f:
            for i, t in enumerate(docs):
                f.write(json.dumps({"id": i, "text": t}) + "\n")
        proc, port = start_server(model_dir, args.threads, os.path.join(work, "data"))
        try:
            for name in ("warmup", "docs"):
                post(port, f"/collections/{name}", {
                    "vectors": {"size": 384, "distance": "Cosine"},
                    "embedding": {"": {"model": "minilm", "store_text": True}}}, method="PUT")
            ingest(port, "warmup", jsonl)
            elapsed, summary = ingest(port, "docs", jsonl)
            texts = chunk_texts(port, "docs")
            docs_rate, chunks_rate = len(docs) / elapsed, len(texts) / elapsed

            # The encoder's batched rate over the same chunk texts, two requests in flight.
            batches = [texts[i: i + args.batch] for i in range(0, len(texts), args.batch)]
            started = time.perf_counter()
            with concurrent.futures.ThreadPoolExecutor(2) as pool:
                list(pool.map(lambda b: post(port, "/embed", {"inputs": b, "model": "minilm"}), batches))
            encoder = len(texts) / (time.perf_counter() - started)
        finally:
            proc.terminate()
            proc.wait(timeout=60)
    finally:
        shutil.rmtree(work, ignore_errors=True)

    import torch
    from sentence_transformers import SentenceTransformer
    torch.set_num_threads(args.threads)
    st = SentenceTransformer(model_dir, device="cpu")
    st.encode(texts[:64], batch_size=32)
    started = time.perf_counter()
    st.encode(texts, batch_size=32)
    peer = len(texts) / (time.perf_counter() - started)

    load = os.getloadavg()
    print(f"{what}: {len(texts)} chunks; {args.threads} threads each side; load average at the end "
          f"{load[0]:.2f}; torch {torch.__version__}")
    print(f"quiver ingest: {summary}\n")
    print("| path | chunks (texts)/s | vs the server's encoder | vs sentence-transformers | documents/s |")
    print("|---|---|---|---|---|")
    print(f"| server encoder (`/embed`, {args.batch} per request, 2 in flight) | {encoder:.1f} | 1 | "
          f"{encoder / peer:.2f} | |")
    print(f"| `quiver ingest` (end to end) | {chunks_rate:.1f} | {chunks_rate / encoder:.2f} | "
          f"{chunks_rate / peer:.2f} | {docs_rate:.1f} |")
    print(f"| sentence-transformers `encode`, batch 32 | {peer:.1f} | {peer / encoder:.2f} | 1 | |")


if __name__ == "__main__":
    main()
