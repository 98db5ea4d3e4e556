#!/usr/bin/env python3
"""all-MiniLM-L6-v2 on CPU: sentence-transformers (PyTorch) against Quiver's encoder, on WordNet glosses.

Both sides embed the same 32 glosses, tokenizer included: batch 1 (one call per gloss) and batch 32 (one
call), best of three; PyTorch pads a batch to its longest text, Quiver packs it without padding. Quiver
runs in process through the example `text_bench` (`Encoder::encode_texts`, RAYON_NUM_THREADS threads),
which also prints its vector for a probe sentence, compared here with sentence-transformers' (cosine).

Usage: encoder_minilm.py --text-bench BIN --data CACHE --threads N --json OUT
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import prepare_data  # noqa: E402


def best_of(n, f):
    best = float("inf")
    for _ in range(n):
        t = time.perf_counter()
        f()
        best = min(best, time.perf_counter() - t)
    return best


def quiver_text_bench(bin_path, model_dir, texts, threads, probe):
    """Runs the text_bench example: (probe vector, {batch: seconds for all texts}), or raises."""
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "texts.json")
        with open(path, "w") as f:
            json.dump(texts, f)
        env = dict(os.environ, RAYON_NUM_THREADS=str(threads))
        p = subprocess.run([bin_path, model_dir, path, "--batches", "1,32", "--iters", "3", "--probe", probe],
                           capture_output=True, text=True, env=env)
    if p.returncode != 0:
        sys.exit(f"text_bench failed: {p.stderr.strip()}")
    rows = [json.loads(line) for line in p.stdout.splitlines() if line.startswith("{")]
    vector = next(r["vector"] for r in rows if "vector" in r)
    return vector, {r["batch"]: r["seconds"] for r in rows if "batch" in r}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--text-bench", required=True)
    ap.add_argument("--data", required=True)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--json", required=True)
    a = ap.parse_args()

    import numpy as np
    import torch

    torch.set_num_threads(a.threads)
    model = prepare_data.minilm()
    model_dir = prepare_data.minilm_dir()
    texts = prepare_data.wordnet_glosses(a.data)[:32]
    ntok = sum(len(model.tokenizer(t, truncation=True, max_length=256)["input_ids"]) for t in texts)

    with torch.inference_mode():
        model.encode(texts[:4])
        b1 = best_of(3, lambda: [model.encode([t], batch_size=1) for t in texts])
        b32 = best_of(3, lambda: model.encode(texts, batch_size=32))
    out = {"model": "all-MiniLM-L6-v2", "texts": len(texts), "tokens": ntok, "threads": a.threads,
           "torch": torch.__version__,
           "pytorch": {"batch1_tokens_per_s": ntok / b1, "batch32_tokens_per_s": ntok / b32}}

    probe = "A man is eating food."
    vector, seconds = quiver_text_bench(a.text_bench, model_dir, texts, a.threads, probe)
    want = model.encode([probe], normalize_embeddings=True)[0]
    v = np.asarray(vector, dtype=np.float32)
    cos = float(v @ want / (np.linalg.norm(v) * np.linalg.norm(want)))
    out["quiver"] = {"available": True, "probe_cosine_vs_pytorch": cos, "dim": int(v.shape[0]),
                     "batch1_tokens_per_s": ntok / seconds[1], "batch32_tokens_per_s": ntok / seconds[32]}
    with open(a.json, "w") as f:
        json.dump(out, f)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
