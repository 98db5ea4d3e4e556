#!/usr/bin/env bash
# The GPU check of the jina-embeddings-v4 text path: parity of Quiver against transformers, Quiver's
# speed and memory against PyTorch's on the same GPU in the same run, one table (and JSON).
#
# On the GPU machine (PyTorch, transformers and the CUDA 13 runtime libraries in its python3; no
# network, no Rust), with the binary built here by scripts/build-cuda.sh and carried as
# target/cuda/quiver.xz:
#
#   scripts/gpu-check.sh                         # writes a full-size random checkpoint, then checks
#   scripts/gpu-check.sh --model DIR             # an existing checkpoint (the real one, say)
#   scripts/gpu-check.sh --device cpu            # the same comparison and table logic on a CPU: the
#                                                # tiny fixture against its transformers goldens
#                                                # (what CI runs; no torch needed)
#   scripts/gpu-check.sh --serving               # the image path and the server end to end instead:
#                                                # scripts/gpu_serving_check.py (its header says what)
#   scripts/gpu-check.sh --serving --device cpu  # that one's logic on the tiny fixture (CI)
#
# Steps on cuda: (1) scripts/fixtures/make_tiny_jina.py writes a random checkpoint in the real layout
# (36 layers, hidden 2048, 16 heads over 2 KV heads, MLP 11008, vocabulary 151,936, three r=32 LoRA
# adapters, bf16; the vision tower is the tiny one, the text path never reads it) on the GPU;
# (2) `quiver debug-encoder` embeds texts of 1, 32, 512 and 4,096 tokens for each task adapter,
# packed on the fused kernels and padded on candle's generic ops, and times 1x32, 32x128, 32x512 and
# 128x256; (3) scripts/gpu_check.py runs transformers (sdpa, bf16, LoRA unmerged) on the same inputs
# and shapes and prints the table. Budget: under 8 minutes on an H200, checkpoint included.
#
# With --serving: (1) the same checkpoint writer makes a full-size checkpoint whose vision tower is
# full-size too (32 blocks, hidden 1280, 16 heads); (2) scripts/gpu_serving_check.py checks image
# parity (224, 448, 756 px and a 2800x140 image, both vision attention paths) against transformers,
# times 448x1, 448x8 and 756x8 images against PyTorch, then runs `quiver serve --device cuda` with a
# bound funnel collection, 16 clients ingesting passages and images and then sending queries, with
# nvidia-smi sampling the GPU. Each serving phase stops at its time limit (--ingest-seconds 200,
# --image-seconds 60, --query-seconds 90), so the whole check stays within about 10 minutes on an
# H100, checkpoint included; the report says how many items each phase got through.
#
# Options: --device cuda|cuda:N|cpu, --model DIR, --quiver BIN, --serving, --json FILE (default:
# $OUT/gpu-check.json, or gpu-serving-check.json with --serving, when OUT is set, else under target/);
# anything after `--` goes to the Python driver (--shapes, --lengths, --iters, --passages, ...).
set -euo pipefail
cd "$(dirname "$0")/.."

DEVICE=cuda
MODEL=
QUIVER=${QUIVER_BIN:-}
JSON=
SERVING=
EXTRA=()
while [ $# -gt 0 ]; do
    case "$1" in
    --device) DEVICE=$2; shift 2 ;;
    --model) MODEL=$2; shift 2 ;;
    --quiver) QUIVER=$2; shift 2 ;;
    --json) JSON=$2; shift 2 ;;
    --serving) SERVING=1; shift ;;
    --) shift; EXTRA=("$@"); break ;;
    *) echo "gpu-check: unknown option $1 (see the header of $0)" >&2; exit 2 ;;
    esac
done
WORK=${GPU_CHECK_WORK:-/tmp/quiver-gpu-check}
mkdir -p "$WORK"
NAME=gpu-check
[ -n "$SERVING" ] && NAME=gpu-serving-check
if [ -z "$JSON" ]; then
    if [ -n "${OUT:-}" ]; then JSON=$OUT/$NAME.json; else JSON=target/$NAME.json; fi
fi
mkdir -p "$(dirname "$JSON")"
started=$(date +%s)
step() { printf '\n==> %s (%d s)\n' "$*" $(($(date +%s) - started)) >&2; }

if [ "$DEVICE" = cpu ]; then
    if [ -z "$QUIVER" ]; then
        cargo build -q -p quiver --bin quiver
        QUIVER="${CARGO_TARGET_DIR:-target}/debug/quiver"
    fi
    MODEL=${MODEL:-tests/fixtures/jina-tiny}
    step "CPU check on $MODEL against its transformers goldens"
    if [ -n "$SERVING" ]; then
        # Small counts and sizes: the logic, not the speed.
        exec python3 scripts/gpu_serving_check.py --quiver "$QUIVER" --model "$MODEL" --device cpu \
            --reference goldens --image-shapes 56x1,112x2 --text-shape 4x16 --warmup 0 --iters 1 \
            --clients 4 --passages 40 --passages-per-request 4 --images 8 --images-per-request 2 \
            --image-pool 4 --queries 24 --work "$WORK/serving" --json "$JSON" "${EXTRA[@]}"
    fi
    exec python3 scripts/gpu_check.py --quiver "$QUIVER" --model "$MODEL" --device cpu \
        --reference goldens --shapes 1x8,4x16 --iters 3 --work "$WORK/run" --json "$JSON" "${EXTRA[@]}"
fi

step "GPU"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true
python3 -c 'import torch, transformers; print("torch", torch.__version__, "transformers", transformers.__version__, "cuda", torch.cuda.is_available())'
# The CUDA 13 runtime libraries the binary links (cudart, cublas, cublasLt, curand) come with
# PyTorch's cu13 wheels; the driver provides libcuda.
CU13=$(python3 -c 'import nvidia,os;print(os.path.join(list(nvidia.__path__)[0],"cu13","lib"))')
export LD_LIBRARY_PATH=$CU13${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}

if [ -z "$QUIVER" ]; then
    if [ -f target/cuda/quiver.xz ]; then
        QUIVER=$WORK/quiver
        # Python's lzma, so the machine needs no xz.
        python3 -c 'import lzma, shutil, sys; shutil.copyfileobj(lzma.open(sys.argv[1]), open(sys.argv[2], "wb"))' \
            target/cuda/quiver.xz "$QUIVER"
        chmod +x "$QUIVER"
    elif [ -x target/release/quiver ]; then
        QUIVER=target/release/quiver
    else
        echo "gpu-check: no binary: run scripts/build-cuda.sh first (it writes target/cuda/quiver.xz)" >&2
        exit 1
    fi
fi
"$QUIVER" --version >/dev/null 2>&1 || "$QUIVER" --help >/dev/null || {
    echo "gpu-check: $QUIVER does not start (missing CUDA libraries? LD_LIBRARY_PATH=$LD_LIBRARY_PATH)" >&2
    ldd "$QUIVER" | grep -i "not found" >&2 || true
    exit 1
}

if [ -z "$MODEL" ]; then
    VISION=()
    MODEL=$WORK/jina-full
    if [ -n "$SERVING" ]; then
        # The image path reads the vision tower: full size here.
        VISION=(--vision-hidden 1280 --vision-depth 32 --vision-heads 16)
        MODEL=$WORK/jina-full-vision
    fi
    if [ ! -f "$MODEL/model.safetensors.index.json" ]; then
        step "writing a full-size random checkpoint to $MODEL"
        python3 scripts/fixtures/make_tiny_jina.py "$MODEL" --hidden 2048 --layers 36 --heads 16 --kv-heads 2 \
            --intermediate 11008 --vocab 151936 --lora-rank 32 --dtype bfloat16 --no-goldens --device cuda \
            "${VISION[@]}"
        du -sh "$MODEL" >&2
    fi
fi

if [ -n "$SERVING" ]; then
    step "checking images and serving with $QUIVER on $DEVICE"
    set +e
    PYTHONUNBUFFERED=1 python3 scripts/gpu_serving_check.py --quiver "$QUIVER" --model "$MODEL" \
        --device "$DEVICE" --reference torch --work "$WORK/serving" --json "$JSON" "${EXTRA[@]}"
    status=$?
    set -e
    step "done (exit $status; report in $JSON)"
    exit $status
fi

step "checking $QUIVER on $DEVICE"
set +e
PYTHONUNBUFFERED=1 python3 scripts/gpu_check.py --quiver "$QUIVER" --model "$MODEL" --device "$DEVICE" \
    --reference torch --work "$WORK/run" --json "$JSON" "${EXTRA[@]}"
status=$?
set -e
step "done (exit $status; report in $JSON)"
exit $status
