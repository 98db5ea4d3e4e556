#!/usr/bin/env bash
# Load time and short-query latency of a full-size random jina-embeddings-v4 text checkpoint on CPU:
# the Qwen2.5-VL-3B decoder (36 layers, hidden 2048, 16 heads / 2 KV heads, MLP 11008, vocabulary
# 151,936, bf16 on disk as the real checkpoint) with three r=32 LoRA adapters, loaded by the same code
# that loads the real checkpoint. The vision tower is the tiny one: the text path never reads it.
#
# Usage: scripts/bench/encoder_full_size.sh [DIR]      (needs ~7 GB disk in DIR, ~13 GB RAM)
# PYTHON: an interpreter with scripts/fixtures/requirements.txt installed (default python3).
set -euo pipefail
cd "$(dirname "$0")/../.."
PY=${PYTHON:-python3}
DIR=${1:-$(mktemp -d)}
if [ ! -f "$DIR/model.safetensors.index.json" ]; then
    t0=$(date +%s)
    "$PY" scripts/fixtures/make_tiny_jina.py "$DIR" --hidden 2048 --layers 36 --heads 16 --kv-heads 2 \
        --intermediate 11008 --vocab 151936 --lora-rank 32 --dtype bfloat16 --no-goldens
    echo "checkpoint written in $(( $(date +%s) - t0 )) s: $(du -sh "$DIR" | cut -f1)"
fi
cargo build --release -q -p quiver-benches --example encode_bench
bin="${CARGO_TARGET_DIR:-target}/release/examples/encode_bench"
# Three fresh processes: the first load may read from disk, later ones from the page cache.
for run in 1 2 3; do
    "$bin" "$DIR" --shapes 1x16,1x64,8x64 --iters 2
done
