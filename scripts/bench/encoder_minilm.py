#!/usr/bin/env python3
"""all-MiniLM-L6-v2 on CPU: sentence-transformers (PyTorch) against `quiver embed`, on WordNet glosses.

PyTorch: tokens/s at batch 1 (32 glosses one at a time) and batch 32 (one call), best of three.
Quiver: only when `quiver embed --model DIR` loads the BERT checkpoint (this build may not have a BERT
encoder). Then its vector for a probe sentence is compared with sentence-transformers' (cosine), and its
batch-32 throughput is measured end to end through the CLI with the model load subtracted:
wall(1 + 32 texts) − wall(1 text), best of three each. The CLI has no batch-1 mode worth timing (every
call loads the model), so batch 1 is PyTorch-only until an encoder example covers BERT.

Usage: encoder_minilm.py --quiver BIN --data CACHE --threads N --json OUT
"""

import argparse
import json
import os
import subprocess
import sys
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


def quiver_embed(bin_path, model_dir, texts):
    t = time.perf_counter()
    p = subprocess.run([bin_path, "embed", "--model", model_dir, *texts], capture_output=True, text=True)
    wall = time.perf_counter() - t
    if p.returncode != 0:
        last = (p.stderr.strip().splitlines() or ["(no message)"])[-1]
        return None, wall, last
    return [json.loads(line) for line in p.stdout.splitlines() if line.startswith("{")], wall, None


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--quiver", required=True)
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
    got, _, err = quiver_embed(a.quiver, model_dir, [probe])
    if got is None:
        out["quiver"] = {"available": False, "reason": err}
    else:
        want = model.encode([probe], normalize_embeddings=True)[0]
        v = np.asarray(got[0]["dense"], dtype=np.float32)
        cos = float(v @ want / (np.linalg.norm(v) * np.linalg.norm(want)))
        one = min(quiver_embed(a.quiver, model_dir, [probe])[1] for _ in range(3))
        many = min(quiver_embed(a.quiver, model_dir, [probe, *texts])[1] for _ in range(3))
        out["quiver"] = {"available": True, "probe_cosine_vs_pytorch": cos, "dim": int(v.shape[0]),
                         "batch32_cli_tokens_per_s": ntok / max(many - one, 1e-9)}
    with open(a.json, "w") as f:
        json.dump(out, f)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
