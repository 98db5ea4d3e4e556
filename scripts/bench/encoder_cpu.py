#!/usr/bin/env python3
"""CPU throughput of Quiver's jina-v4 text encoder against PyTorch on the same random config.

Builds a random checkpoint in the jina layout (default: hidden 512, 8 layers, 8 heads / 2 KV heads,
intermediate 2752, three r=4 LoRAs) with scripts/fixtures/make_tiny_jina.py, times stock
transformers' Qwen2.5-VL text model plus jina's heads in PyTorch (f32, LoRA merged, sdpa), then runs
the Rust example `encode_bench` on the same shapes (unmerged and merged LoRA). Both sides use
all cores of the machine. Prints a Markdown table.

Usage: python scripts/bench/encoder_cpu.py [--iters 3] [--shapes 16x128,4x512,1x2048] [--json OUT]
--json also writes the rows and the configuration as one JSON object (scripts/bench/run-all.sh).
Needs the packages of scripts/fixtures/requirements.txt and cargo. QUIVER_BENCH_PROFILE picks the
cargo profile for the Rust side (default release; `dev` compiles dependencies such as candle and
gemm at opt-level 3 too, see the workspace Cargo.toml).
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))


def torch_bench(model_dir, shapes, iters):
    import torch
    from transformers import Qwen2_5_VLConfig, Qwen2_5_VLForConditionalGeneration

    with open(os.path.join(model_dir, "config.v5.json")) as f:
        raw = json.load(f)
    cfg = Qwen2_5_VLConfig(text_config=raw["text_config"], vision_config=raw["vision_config"],
                           image_token_id=raw["image_token_id"], video_token_id=raw["video_token_id"],
                           vision_start_token_id=raw["vision_start_token_id"],
                           vision_end_token_id=raw["vision_end_token_id"])
    model = Qwen2_5_VLForConditionalGeneration(cfg).eval().float()
    lm = model.model.language_model
    proj = torch.nn.Linear(cfg.text_config.hidden_size, raw["multi_vector_projector_dim"])
    gen = torch.Generator().manual_seed(0)
    rows = []
    for b, l in shapes:
        ids = torch.randint(3, cfg.text_config.vocab_size - 10, (b, l), generator=gen)
        mask = torch.ones(b, l, dtype=torch.long)
        pos = (mask.cumsum(-1) - 1).unsqueeze(0).expand(3, -1, -1)

        def step():
            h = lm(input_ids=ids, attention_mask=mask, position_ids=pos, use_cache=False).last_hidden_state
            m = mask.unsqueeze(-1).float()
            single = torch.nn.functional.normalize((h * m).sum(1) / m.sum(1), dim=-1)
            multi = torch.nn.functional.normalize(proj(h), dim=-1) * m
            return single, multi

        with torch.inference_mode():
            step()
            t = time.perf_counter()
            for _ in range(iters):
                step()
            per = (time.perf_counter() - t) / iters
        rows.append({"impl": "pytorch", "lora": "merged", "dtype": "F32", "batch": b, "len": l,
                     "ms_per_batch": round(per * 1e3, 1), "tokens_per_s": round(b * l / per)})
    return rows, torch.__version__, torch.get_num_threads()


def candle_bench(model_dir, shapes, iters, merge):
    profile = os.environ.get("QUIVER_BENCH_PROFILE", "release")
    cmd = ["cargo", "run", "--profile", profile, "-q", "-p", "quiver-benches", "--example", "encode_bench", "--",
           model_dir, "--iters", str(iters), "--shapes", ",".join(f"{b}x{l}" for b, l in shapes)]
    if merge:
        cmd += ["--merge", "retrieval"]
    out = subprocess.run(cmd, cwd=ROOT, check=True, capture_output=True, text=True).stdout
    return [json.loads(line) for line in out.splitlines() if line.startswith("{")]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--iters", type=int, default=3)
    ap.add_argument("--shapes", default="16x128,4x512,1x2048")
    ap.add_argument("--hidden", type=int, default=512)
    ap.add_argument("--layers", type=int, default=8)
    ap.add_argument("--json", help="also write the results here as JSON")
    args = ap.parse_args()
    shapes = [tuple(int(x) for x in s.split("x")) for s in args.shapes.split(",")]
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run([sys.executable, os.path.join(ROOT, "scripts", "fixtures", "make_tiny_jina.py"), tmp,
                        "--hidden", str(args.hidden), "--layers", str(args.layers), "--heads", "8",
                        "--kv-heads", "2", "--intermediate", str(args.hidden * 43 // 8), "--no-goldens"],
                       check=True, capture_output=True)
        rows, torch_version, threads = torch_bench(tmp, shapes, args.iters)
        rows += candle_bench(tmp, shapes, args.iters, merge=False)
        rows += candle_bench(tmp, shapes, args.iters, merge=True)
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"hidden": args.hidden, "layers": args.layers, "heads": 8, "kv_heads": 2,
                       "intermediate": args.hidden * 43 // 8, "torch": torch_version, "torch_threads": threads,
                       "cores": os.cpu_count(), "rows": rows}, f)
    print(f"config: hidden {args.hidden}, {args.layers} layers, 8 heads / 2 KV heads, f32, CPU "
          f"({os.cpu_count()} cores, torch {torch_version} with {threads} threads)\n")
    print("| impl | LoRA | batch × len | ms / batch | tokens/s |")
    print("|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['impl']} | {r['lora']} | {r['batch']} × {r['len']} | {r['ms_per_batch']} | {r['tokens_per_s']} |")


if __name__ == "__main__":
    main()
