#!/usr/bin/env python3
"""Reference preprocessing times per image for docs/benchmarks.md: PIL decode + convert("RGB"),
then transformers' Qwen2-VL image processor with the torchvision backend (what jina loads) and
with the PIL backend, on one thread. Prints one JSON line per image, like
`cargo run --release -p quiver-benches --example image_bench -- preprocess FILES...`.

Usage: python scripts/bench/image_preprocess.py [--reps N] FILES...
Needs the packages of scripts/fixtures/requirements.txt.
"""

import argparse
import json
import os
import time

import torch
from PIL import Image
from transformers import Qwen2VLImageProcessor, Qwen2VLImageProcessorPil

MEAN = [0.48145466, 0.4578275, 0.40821073]
STD = [0.26862954, 0.26130258, 0.27577711]


def per_call_ms(fn, reps):
    fn()  # warm-up
    t = time.perf_counter()
    for _ in range(reps):
        fn()
    return (time.perf_counter() - t) * 1e3 / reps


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--reps", type=int, default=10)
    ap.add_argument("files", nargs="+")
    args = ap.parse_args()
    torch.set_num_threads(1)  # the Rust preprocessing is single-threaded
    kw = dict(min_pixels=3136, max_pixels=602112, image_mean=MEAN, image_std=STD)
    tv, pil = Qwen2VLImageProcessor(**kw), Qwen2VLImageProcessorPil(**kw)
    for path in args.files:
        with open(path, "rb") as f:
            data = f.read()

        def decode():
            import io
            return Image.open(io.BytesIO(data)).convert("RGB")

        img = decode()
        row = {
            "impl": "python",
            "file": os.path.basename(path),
            "width": img.width,
            "height": img.height,
            "decode_ms": round(per_call_ms(decode, args.reps), 3),
            "torchvision_ms": round(per_call_ms(lambda: tv(images=[img], return_tensors="pt"), args.reps), 3),
            "pil_ms": round(per_call_ms(lambda: pil(images=[img], return_tensors="pt"), args.reps), 3),
        }
        print(json.dumps(row))


if __name__ == "__main__":
    main()
