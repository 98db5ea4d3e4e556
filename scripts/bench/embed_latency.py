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
       [--binary PATH] [--serve-arg ARG ...]

A/B mode (only Quiver, no sentence-transformers): `--variant "NAME BINARY [SERVE_ARG ...]"` (one
quoted argument), given two or more times, starts each variant in turn, `--rounds` times,
alternating (A B A B ...), so that the load of a shared machine falls on all of them alike. Each round measures the latency rows (and the
batch-32 rows unless `--no-batch`) with a fresh server; the table pools the rounds and lists each
round's p50 of the 7-token query. It also prints the cosine between each variant's vector of every
input and the first variant's (e.g. for `--cpu-f16-weights`).

    python scripts/bench/embed_latency.py --rounds 3 --variant "base /tmp/quiver-base"
        --variant "new target/release/quiver"
        --variant "new-f16 target/release/quiver --cpu-f16-weights"      (one command line)
Needs target/release/quiver (cargo build --release -p quiver --bin quiver), the model
(scripts/fetch-test-assets.sh) and sentence-transformers with torch (scripts/bench/requirements.txt).
"""

import argparse
import http.client
import json
import os
import random
import re
import shlex
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
    def __init__(self, binary, model, threads, extra=()):
        self.tmp = tempfile.mkdtemp()
        self.log_path = os.path.join(self.tmp, "server.log")
        env = dict(os.environ, RAYON_NUM_THREADS=str(threads))
        self.log = open(self.log_path, "w")
        self.proc = subprocess.Popen(
            [binary, "--data-dir", os.path.join(self.tmp, "data"), "--log", "info", "serve",
             "--host", "127.0.0.1", "--port", "0", "--model", f"minilm={model}", *extra],
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
    ap.add_argument("--serve-arg", action="append", default=[],
                    help="an extra argument for `quiver serve` (repeat for several)")
    ap.add_argument("--variant", action="append", metavar='"NAME BINARY [SERVE_ARG ...]"',
                    help="A/B mode: a server variant to time, one quoted argument (give two or more)")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--no-batch", action="store_true", help="A/B mode: skip the batch-32 rows")
    args = ap.parse_args()
    if args.variant:
        return compare(args)

    load = os.getloadavg()
    server = Server(args.binary, args.model, args.threads, args.serve_arg)
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


def cosine(a, b):
    dot = sum(x * y for x, y in zip(a, b))
    na = sum(x * x for x in a) ** 0.5
    nb = sum(x * x for x in b) ** 0.5
    return dot / (na * nb)


def cpu_seconds(pid):
    """User + system CPU time of a process (all its threads), from /proc (Linux)."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def compare(args):
    """A/B mode: the variants in turn, `--rounds` times, Quiver only."""
    variants = []
    for v in args.variant:
        v = shlex.split(v)
        if len(v) < 2:
            raise SystemExit("--variant needs NAME BINARY [SERVE_ARG ...]")
        variants.append((v[0], v[1], v[2:]))
    cases = [("tiny", TINY, 1), ("query", QUERY, 1), ("eight", EIGHT, 8)]
    batches = [] if args.no_batch else [("short32", SHORT32), ("long32", LONG32)]
    times = {name: {} for name, _, _ in variants}
    round_p50 = {name: [] for name, _, _ in variants}
    cpu = {name: {} for name, _, _ in variants}
    loads = []
    vectors = {}
    for r in range(args.rounds):
        for name, binary, extra in variants:
            loads.append(os.getloadavg()[0])
            server = Server(binary, args.model, args.threads, extra)
            try:
                t = times[name]
                t.setdefault("healthz", []).extend(
                    time_calls(quiver_call(server, "/healthz"), args.requests, args.warmup))
                for case, inputs, n in cases:
                    call = quiver_call(server, "/embed", embed_body(inputs), expect=n)
                    for _ in range(args.warmup):
                        call()
                    c0 = cpu_seconds(server.proc.pid)
                    q = time_calls(call, args.requests, 0)
                    cpu[name].setdefault(case, []).append(
                        (cpu_seconds(server.proc.pid) - c0) * 1000 / args.requests)
                    t.setdefault(case, []).extend(q)
                    if case == "query":
                        round_p50[name].append(pct(q, 50))
                for case, batch in batches:
                    t.setdefault(case, []).extend(
                        time_calls(quiver_call(server, "/embed", embed_body(batch), expect=32),
                                   args.batch_requests, 3))
                print(f"round {r + 1}, {name}: load {loads[-1]:.2f}; p10 / p50 ms: "
                      + ", ".join(f"{c} {pct(t[c][-args.requests:], 10):.2f} / "
                                  f"{pct(t[c][-args.requests:], 50):.2f}"
                                  for c, _, _ in cases)
                      + "; server CPU ms per request: "
                      + ", ".join(f"{c} {cpu[name][c][-1]:.2f}" for c, _, _ in cases), flush=True)
                if r == 0:
                    _, data = server.request("POST", "/embed",
                                             embed_body([TINY, QUERY] + EIGHT + SHORT32 + LONG32))
                    vectors[name] = json.loads(data)
            finally:
                server.stop()
    print(f"A/B: {args.rounds} rounds, variants alternating; {args.threads} threads; "
          f"{args.requests} requests per latency row per round; load average (1 min) at each "
          f"server start: {', '.join(f'{x:.2f}' for x in loads)}; {os.cpu_count()} CPUs\n")
    print("| variant | `/healthz` p50 | 3 tokens p50 / p99 ms | 7 tokens p50 / p99 ms | "
          "8 × 3 tokens p50 / p99 ms | 7 tokens p50 per round | 7 tokens p10 ms | short32 texts/s | "
          "long32 texts/s |")
    print("|---|---|---|---|---|---|---|---|---|")
    for name, _, _ in variants:
        t = times[name]
        cells = [f"{pct(t['healthz'], 50):.2f}"]
        cells += [f"{pct(t[c], 50):.2f} / {pct(t[c], 99):.2f}" for c, _, _ in cases]
        cells.append(", ".join(f"{x:.2f}" for x in round_p50[name]))
        cells.append(f"{pct(t['query'], 10):.2f}")
        cells += [f"{32 * 1000 / pct(t[c], 50):.0f}" if c in t else "–"
                  for c in ("short32", "long32")]
        print(f"| {name} | " + " | ".join(cells) + " |")
    print("\nServer CPU time (user + system, all threads) per request, mean over the rounds: less "
          "sensitive than wall time to other processes holding the cores.\n")
    print("| variant | 3 tokens CPU ms | 7 tokens CPU ms | 8 × 3 tokens CPU ms |")
    print("|---|---|---|---|")
    for name, _, _ in variants:
        print(f"| {name} | " + " | ".join(
            f"{sum(cpu[name][c]) / len(cpu[name][c]):.2f}" for c, _, _ in cases) + " |")
    first = variants[0][0]
    for name, _, _ in variants[1:]:
        cs = [cosine(a, b) for a, b in zip(vectors[first], vectors[name])]
        print(f"\n{name} vs {first}: cosine of the {len(cs)} vectors (every input above): "
              f"min {min(cs):.7f}, mean {sum(cs) / len(cs):.7f}")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
