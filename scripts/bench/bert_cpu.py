#!/usr/bin/env python3
"""CPU texts/s of Quiver's BERT sentence encoder against PyTorch sentence-transformers.

Both sides embed the same texts with all-MiniLM-L6-v2 (installed by scripts/fetch-test-assets.sh)
in f32, tokenizer included, at each batch size: the texts are cut into consecutive chunks of that
size and each chunk is one call (`SentenceTransformer.encode(chunk, batch_size=n)` / the Rust
example `text_bench`, `Encoder::encode_texts(chunk)`), so both pad each chunk to its longest text.
Both use the same number of threads (torch.set_num_threads / RAYON_NUM_THREADS). Prints a
Markdown table.

Usage: python scripts/bench/bert_cpu.py [--iters 3] [--texts 256] [--batches 1,32] [--threads N]
Needs sentence-transformers (with torch) and cargo. QUIVER_BENCH_PROFILE picks the cargo profile
(default release).
"""

import argparse
import json
import os
import random
import subprocess
import tempfile
import time

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
WORDS = (
    "the a vector search engine stores embeddings of documents and images so that similar items "
    "are found quickly when a user asks a question about rust python databases cooking travel music "
    "history science weather football markets cats dogs cities rivers mountains quietly rapidly "
    "yesterday tomorrow because although while under over between without"
).split()


def make_texts(n):
    """Deterministic sentences of 5 to 60 words (about 8 to 80 tokens)."""
    rng = random.Random(0)
    out = []
    for _ in range(n):
        k = rng.choice([5, 8, 12, 16, 24, 32, 60])
        words = [rng.choice(WORDS) for _ in range(k)]
        out.append(" ".join(words).capitalize() + ".")
    return out


def torch_bench(model_dir, texts, batches, iters, threads):
    import sentence_transformers
    import torch
    from sentence_transformers import SentenceTransformer

    torch.set_num_threads(threads)
    st = SentenceTransformer(model_dir, device="cpu")
    rows = []
    for b in batches:
        def run():
            for i in range(0, len(texts), b):
                st.encode(texts[i:i + b], batch_size=b, convert_to_numpy=True)

        with torch.inference_mode():
            run()
            t = time.perf_counter()
            for _ in range(iters):
                run()
            per = (time.perf_counter() - t) / iters
        rows.append({"impl": "pytorch", "batch": b, "texts": len(texts), "seconds": per,
                     "texts_per_s": len(texts) / per})
    return rows, f"torch {torch.__version__}, sentence-transformers {sentence_transformers.__version__}"


def quiver_bench(model_dir, texts_path, batches, iters, threads):
    profile = os.environ.get("QUIVER_BENCH_PROFILE", "release")
    cmd = ["cargo", "run", "--profile", profile, "-q", "-p", "quiver-benches", "--example", "text_bench", "--",
           model_dir, texts_path, "--iters", str(iters), "--batches", ",".join(map(str, batches))]
    env = dict(os.environ, RAYON_NUM_THREADS=str(threads))
    out = subprocess.run(cmd, cwd=ROOT, check=True, capture_output=True, text=True, env=env).stdout
    return [json.loads(line) for line in out.splitlines() if line.startswith("{")]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default=os.path.join(ROOT, "target/test-assets/all-MiniLM-L6-v2"))
    ap.add_argument("--iters", type=int, default=3)
    ap.add_argument("--texts", type=int, default=256)
    ap.add_argument("--batches", default="1,32")
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    args = ap.parse_args()
    batches = [int(b) for b in args.batches.split(",")]
    texts = make_texts(args.texts)
    with tempfile.TemporaryDirectory() as tmp:
        texts_path = os.path.join(tmp, "texts.json")
        with open(texts_path, "w") as f:
            json.dump(texts, f)
        # Quiver first so its build is not timed against PyTorch's warm caches.
        quiver = quiver_bench(args.model, texts_path, batches, args.iters, args.threads)
        pytorch, versions = torch_bench(args.model, texts, batches, args.iters, args.threads)
    print(f"{len(texts)} texts, {args.threads} threads, {versions}\n")
    print("| impl | batch | texts/s | vs PyTorch |")
    print("|---|---|---|---|")
    base = {r["batch"]: r["texts_per_s"] for r in pytorch}
    for r in pytorch + quiver:
        name = "PyTorch (sentence-transformers)" if r["impl"] == "pytorch" else "Quiver (candle)"
        print(f"| {name} | {r['batch']} | {r['texts_per_s']:.1f} | {r['texts_per_s'] / base[r['batch']]:.2f} |")


if __name__ == "__main__":
    main()
