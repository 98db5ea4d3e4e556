#!/usr/bin/env python3
"""Short-query embedding latency over HTTP against sentence-transformers, on the CPU.

Starts `target/release/quiver serve --model minilm=<all-MiniLM-L6-v2>` on a free port (over a fresh
data directory, as scripts/start-test-server.sh does), then measures, one request at a time over one
keep-alive connection (http.client):

- `/healthz` (the HTTP floor);
- `/embed` with a 3-token input (one word: [CLS] word [SEP]), a 7-token query, and eight one-word
  inputs in one request: p50/p99 over `--requests` requests each, after warm-up;
- batch-32 throughput: `/embed` with 32 inputs per request, short texts (5 to 10 words) and long ones
  (about 100 words).

In the same run the same inputs go through sentence-transformers in process
(`SentenceTransformer.encode`, batch 1 for the single inputs, one call of all the inputs for the
eight one-word inputs and the batch-32 rows). Both sides use the same thread count
(RAYON_NUM_THREADS for the server, torch.set_num_threads). Prints a Markdown table.

Usage: python scripts/bench/embed_latency.py [--threads 2] [--requests 300] [--batch-requests 20]
       [--loop-short SECONDS]   (only Quiver: loop on the 7-token query for that long, for a profiler)
Needs target/release/quiver (cargo build --release -p quiver --bin quiver), the model
(scripts/fetch-test-assets.sh) and sentence-transformers with torch (scripts/bench/requirements.txt).
"""

import argparse
import http.client
import json
import os
import random
import re
import shutil
import subprocess
import sys
import tempfile
import time

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
WORDS = (
    "the a vector search engine stores embeddings of documents and images so that similar items "
    "are found quickly when a user asks a question about rust python databases cooking travel music "
    "history science weather football markets cats dogs cities rivers mountains quietly rapidly "
    "yesterday tomorrow because although while under over between without"
).split()
# [CLS] hello [SEP]: 3 tokens.
TINY = "hello"
# [CLS] why is the sky blue [SEP]: 7 tokens.
QUERY = "why is the sky blue"
EIGHT = ["cat", "dog", "river", "music", "city", "rain", "bread", "train"]


def texts(n, lo, hi, seed):
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        k = rng.randint(lo, hi)
        out.append(" ".join(rng.choice(WORDS) for _ in range(k)).capitalize() + ".")
    return out


SHORT32 = texts(32, 5, 10, 1)
LONG32 = texts(32, 95, 105, 2)


def pct(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(p / 100 * (len(xs) - 1))))]


class Server:
    def __init__(self, binary, model, threads):
        self.tmp = tempfile.mkdtemp()
        self.log_path = os.path.join(self.tmp, "server.log")
        env = dict(os.environ, RAYON_NUM_THREADS=str(threads))
        self.log = open(self.log_path, "w")
        self.proc = subprocess.Popen(
            [binary, "--data-dir", os.path.join(self.tmp, "data"), "--log", "info", "serve",
             "--host", "127.0.0.1", "--port", "0", "--model", f"minilm={model}"],
            stdout=subprocess.DEVNULL, stderr=self.log, env=env)
        self.host, self.port = None, None
        deadline = time.time() + 120
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise SystemExit("quiver exited before it was ready:\n" + open(self.log_path).read())
            if self.port is None:
                m = re.search(r"listening on http://([0-9.]+):([0-9]+)", open(self.log_path).read())
                if m:
                    self.host, self.port = m.group(1), int(m.group(2))
            if self.port is not None:
                try:
                    status, _ = self.request("GET", "/readyz")
                    if status == 200:
                        return
                except OSError:
                    pass
                self.conn = None
            time.sleep(0.1)
        raise SystemExit("quiver not ready after 120 s:\n" + open(self.log_path).read())

    conn = None

    def request(self, method, path, body=None):
        if self.conn is None:
            self.conn = http.client.HTTPConnection(self.host, self.port, timeout=120)
        headers = {"Content-Type": "application/json"} if body is not None else {}
        self.conn.request(method, path, body=body, headers=headers)
        resp = self.conn.getresponse()
        data = resp.read()
        return resp.status, data

    def stop(self):
        if self.conn is not None:
            self.conn.close()
        self.proc.terminate()
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        self.log.close()
        shutil.rmtree(self.tmp, ignore_errors=True)


def embed_body(inputs):
    return json.dumps({"inputs": inputs}).encode()


def time_calls(call, n, warmup):
    for _ in range(warmup):
        call()
    out = []
    for _ in range(n):
        t = time.perf_counter()
        call()
        out.append((time.perf_counter() - t) * 1000)
    return out


def quiver_call(server, path, body=None, expect=None):
    method = "GET" if body is None else "POST"

    def call():
        status, data = server.request(method, path, body)
        if status != 200:
            raise SystemExit(f"{path}: {status} {data[:300]!r}")
        if expect is not None and len(json.loads(data)) != expect:
            raise SystemExit(f"{path}: expected {expect} vectors")
    return call


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--binary", default=os.path.join(ROOT, "target/release/quiver"))
    ap.add_argument("--model", default=os.path.join(ROOT, "target/test-assets/all-MiniLM-L6-v2"))
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--requests", type=int, default=300)
    ap.add_argument("--warmup", type=int, default=30)
    ap.add_argument("--batch-requests", type=int, default=20)
    ap.add_argument("--loop-short", type=float, default=0.0)
    args = ap.parse_args()

    load = os.getloadavg()
    server = Server(args.binary, args.model, args.threads)
    try:
        if args.loop_short > 0:
            call = quiver_call(server, "/embed", embed_body(QUERY), expect=1)
            print(f"quiver pid {server.proc.pid}: looping on the 7-token query for {args.loop_short} s",
                  flush=True)
            end = time.time() + args.loop_short
            n = 0
            while time.time() < end:
                call()
                n += 1
            print(f"{n} requests, {args.loop_short * 1000 / n:.2f} ms each")
            return
        rows = {}
        rows["healthz"] = time_calls(quiver_call(server, "/healthz"), args.requests, args.warmup)
        for name, inputs, n in [("tiny", TINY, 1), ("query", QUERY, 1), ("eight", EIGHT, 8)]:
            rows[name] = time_calls(quiver_call(server, "/embed", embed_body(inputs), expect=n),
                                    args.requests, args.warmup)
        for name, batch in [("short32", SHORT32), ("long32", LONG32)]:
            rows[name] = time_calls(quiver_call(server, "/embed", embed_body(batch), expect=32),
                                    args.batch_requests, 3)
    finally:
        server.stop()

    import sentence_transformers
    import torch
    from sentence_transformers import SentenceTransformer

    torch.set_num_threads(args.threads)
    st = SentenceTransformer(args.model, device="cpu")
    tok = st.tokenizer
    ntok = {name: len(tok(t)["input_ids"]) for name, t in [("tiny", TINY), ("query", QUERY)]}
    ntok_short = sum(len(tok(t)["input_ids"]) for t in SHORT32) / 32
    ntok_long = sum(len(tok(t)["input_ids"]) for t in LONG32) / 32
    st_rows = {}
    with torch.inference_mode():
        for name, inputs in [("tiny", [TINY]), ("query", [QUERY]), ("eight", EIGHT)]:
            st_rows[name] = time_calls(
                lambda: st.encode(inputs, batch_size=len(inputs), convert_to_numpy=True),
                args.requests, args.warmup)
        for name, batch in [("short32", SHORT32), ("long32", LONG32)]:
            st_rows[name] = time_calls(
                lambda: st.encode(batch, batch_size=32, convert_to_numpy=True),
                args.batch_requests, 3)

    print(f"{args.threads} threads each side; load average at start {load[0]:.2f}, {load[1]:.2f}, "
          f"{load[2]:.2f}; {os.cpu_count()} CPUs; torch {torch.__version__}, "
          f"sentence-transformers {sentence_transformers.__version__}; {args.requests} requests per "
          f"latency row, {args.batch_requests} per batch-32 row\n")
    print("| input | Quiver /embed p50 ms | p99 ms | sentence-transformers p50 ms | p99 ms | "
          "p50 ratio (ST / Quiver) |")
    print("|---|---|---|---|---|---|")
    h = rows["healthz"]
    print(f"| `/healthz` (no model) | {pct(h, 50):.2f} | {pct(h, 99):.2f} | – | – | – |")
    labels = {"tiny": f"1 input, {ntok['tiny']} tokens", "query": f"1 query, {ntok['query']} tokens",
              "eight": "8 one-word inputs, 3 tokens each"}
    for name in ["tiny", "query", "eight"]:
        q, s = rows[name], st_rows[name]
        print(f"| {labels[name]} | {pct(q, 50):.2f} | {pct(q, 99):.2f} | {pct(s, 50):.2f} | "
              f"{pct(s, 99):.2f} | {pct(s, 50) / pct(q, 50):.2f} |")
    print()
    print("| batch of 32 | Quiver /embed texts/s | sentence-transformers texts/s | ratio (Quiver / ST) |")
    print("|---|---|---|---|")
    for name, label in [("short32", f"short (5–10 words, {ntok_short:.1f} tokens avg)"),
                        ("long32", f"long (95–105 words, {ntok_long:.1f} tokens avg)")]:
        q = 32 * 1000 / pct(rows[name], 50)
        s = 32 * 1000 / pct(st_rows[name], 50)
        print(f"| {label} | {q:.0f} | {s:.0f} | {q / s:.2f} |")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
