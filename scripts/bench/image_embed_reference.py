#!/usr/bin/env python3
"""Images per second of stock transformers on a checkpoint written by make_tiny_jina.py, the baseline
for `image_bench embed` in docs/benchmarks.md. Per image: the torchvision processor, the Qwen2.5-VL
forward (vision tower + decoder, no LoRA: the base weights) and the jina heads, in f32, one image per
call, with torch's default thread count.

Usage: python scripts/bench/image_embed_reference.py MODEL_DIR [--iters N] FILES...
"""

import argparse
import json
import os
import time

import torch
from PIL import Image
from transformers import Qwen2_5_VLForConditionalGeneration, Qwen2VLImageProcessor

MEAN = [0.48145466, 0.4578275, 0.40821073]
STD = [0.26862954, 0.26130258, 0.27577711]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("model")
    ap.add_argument("--iters", type=int, default=1)
    ap.add_argument("files", nargs="+")
    args = ap.parse_args()
    model = Qwen2_5_VLForConditionalGeneration.from_pretrained(args.model, dtype=torch.float32).eval()
    cfg = model.config
    proc = Qwen2VLImageProcessor(min_pixels=3136, max_pixels=602112, image_mean=MEAN, image_std=STD)
    images = [Image.open(f).convert("RGB") for f in args.files]

    def embed(img):
        enc = proc(images=[img], return_tensors="pt")
        n = int(enc["image_grid_thw"].prod()) // 4
        ids = torch.tensor([[1, 10, 11, cfg.vision_start_token_id] + [cfg.image_token_id] * n
                            + [cfg.vision_end_token_id, 20, 21, 22, 23, 2, 11]])
        mm = (ids == cfg.image_token_id).int()
        am = torch.ones_like(ids)
        with torch.no_grad():
            pos, _ = model.model.get_rope_index(ids, mm_token_type_ids=mm, image_grid_thw=enc["image_grid_thw"],
                                                attention_mask=am)
            h = model.model(input_ids=ids, attention_mask=am, pixel_values=enc["pixel_values"],
                            image_grid_thw=enc["image_grid_thw"], mm_token_type_ids=mm, position_ids=pos,
                            use_cache=False).last_hidden_state
            return torch.nn.functional.normalize(h[0, 3:4 + n + 1].mean(0), dim=-1)

    embed(images[0])  # warm-up
    t, cpu = time.perf_counter(), time.process_time()
    for _ in range(args.iters):
        for img in images:
            embed(img)
    s, cpu = time.perf_counter() - t, time.process_time() - cpu
    print(json.dumps({"impl": "transformers", "model": os.path.basename(os.path.normpath(args.model)),
                      "batch": 1, "images": len(images) * args.iters,
                      "images_per_s": round(len(images) * args.iters / s, 2),
                      "cpu_ms_per_image": round(cpu * 1e3 / (len(images) * args.iters))}))


if __name__ == "__main__":
    main()
