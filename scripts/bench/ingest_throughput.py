#!/usr/bin/env python3
"""`quiver ingest` throughput against the server's own batched encoder rate, and against
sentence-transformers, on the same texts in one run (issue 23's throughput goal: ingest at >= 85 % of
the encoder's batched rate).

Takes the first `--docs` WordNet glosses (scripts/bench/prepare_data.py's corpus, from the Debian
package wordnet-base), starts `target/release/quiver serve --model minilm=<all-MiniLM-L6-v2>` over a
fresh data directory, then:

1. encoder: the glosses through `/embed`, `--batch` inputs per request, two requests in flight (what
   the batching worker sees from a busy client), texts/s;
2. ingest: `quiver ingest` of the same glosses as one JSON Lines file into a collection bound to the
   model (chunking as the route does; each gloss is one chunk), documents/s from its own summary;
3. sentence-transformers: `encode` of the same glosses at batch 32 in process, texts/s.

Both sides use the same thread count. Prints a Markdown table.

Usage: python scripts/bench/ingest_throughput.py [--docs 3000] [--batch 64] [--threads 2]
Needs target/release/quiver, the model (scripts/fetch-test-assets.sh), sentence-transformers
(scripts/bench/requirements.txt) and apt-get (for wordnet-base).
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


def post(port, path, body, method="POST"):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=600)
    conn.request(method, path, json.dumps(body), {"content-type": "application/json"})
    resp = conn.getresponse()
    data = resp.read()
    if resp.status != 200:
        sys.exit(f"{method} {path}: {resp.status} {data[:300]}")
    return json.loads(data)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--docs", type=int, default=3000)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--cache", default=os.path.join(ROOT, "target/bench-data"))
    args = ap.parse_args()
    model_dir = os.path.join(ROOT, "target/test-assets/all-MiniLM-L6-v2")
    texts = wordnet_glosses(args.cache)[: args.docs]
    work = tempfile.mkdtemp(prefix="quiver-ingest-bench-")
    try:
        jsonl = os.path.join(work, "glosses.jsonl")
        with open(jsonl, "w") as f:
            for i, t in enumerate(texts):
                f.write(json.dumps({"id": i, "text": t}) + "\n")
        proc, port = start_server(model_dir, args.threads, os.path.join(work, "data"))
        try:
            # Warm-up, then the encoder's batched rate with two requests in flight.
            post(port, "/embed", {"inputs": texts[: args.batch], "model": "minilm"})
            batches = [texts[i: i + args.batch] for i in range(0, len(texts), args.batch)]
            started = time.perf_counter()
            with concurrent.futures.ThreadPoolExecutor(2) as pool:
                list(pool.map(lambda b: post(port, "/embed", {"inputs": b, "model": "minilm"}), batches))
            encoder = len(texts) / (time.perf_counter() - started)

            post(port, "/collections/glosses", {
                "vectors": {"size": 384, "distance": "Cosine"},
                "embedding": {"": {"model": "minilm"}}}, method="PUT")
            started = time.perf_counter()
            out = subprocess.run(
                [os.path.join(ROOT, "target/release/quiver"), "ingest", "--url", f"http://127.0.0.1:{port}",
                 "--collection", "glosses", jsonl],
                capture_output=True, text=True, env=dict(os.environ, QUIVER_LOG="warn"))
            elapsed = time.perf_counter() - started
            if out.returncode != 0:
                sys.exit(f"quiver ingest failed: {out.stderr[-2000:]}")
            summary = (out.stdout + out.stderr).strip().splitlines()[-1]
            ingest = len(texts) / elapsed
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
    print(f"{len(texts)} WordNet glosses; {args.threads} threads each side; load average at the end "
          f"{load[0]:.2f}; torch {torch.__version__}")
    print(f"quiver ingest: {summary}\n")
    print("| path | texts/s | vs the server's encoder | vs sentence-transformers |")
    print("|---|---|---|---|")
    print(f"| server encoder (`/embed`, {args.batch} per request, 2 in flight) | {encoder:.1f} | 1 | "
          f"{encoder / peer:.2f} |")
    print(f"| `quiver ingest` (documents/s, end to end) | {ingest:.1f} | {ingest / encoder:.2f} | "
          f"{ingest / peer:.2f} |")
    print(f"| sentence-transformers `encode`, batch 32 | {peer:.1f} | {peer / encoder:.2f} | 1 |")


if __name__ == "__main__":
    main()
