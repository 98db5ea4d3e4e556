#!/usr/bin/env bash
# Builds the CUDA `quiver` binary on a machine without a GPU, then a stripped, xz-compressed copy that
# is small enough to carry to a GPU machine.
#
#   scripts/build-cuda.sh              # target/release/quiver (--features cuda) and target/cuda/quiver.xz
#
# The CUDA 13.0 toolkit comes from PyPI wheels in an ignored virtualenv (.venv-cuda); the driver's
# libcuda, which no wheel ships, is replaced at link time by a stub defining every cu* symbol cudarc
# declares. Compute capability 9.0 (H100, H200): candle's kernels and Quiver's own
# (encoder/kernels/*.cu, compiled by encoder/build.rs) are built for sm_90a as PTX, which the driver
# JIT-compiles at first use.
#
# At run time the binary needs libcuda.so.1 (from the NVIDIA driver) and the CUDA 13 runtime libraries
# libcudart.so.13, libcublas.so.13, libcublasLt.so.13 and libcurand.so.10, found through the normal
# loader search (LD_LIBRARY_PATH, ldconfig). PyTorch's cu13 wheels ship them:
#   export LD_LIBRARY_PATH=$(python3 -c 'import nvidia,os;print(os.path.join(list(nvidia.__path__)[0],"cu13","lib"))')
# Without them the binary does not start (the libraries are linked, not opened on demand).
#
# Environment: PYTHON (default python3) makes the virtualenv; CUDA_VENV (default .venv-cuda) is where.
set -euo pipefail
cd "$(dirname "$0")/.."

PY=${PYTHON:-python3}
VENV=${CUDA_VENV:-.venv-cuda}
TARGET=${CARGO_TARGET_DIR:-target}

step() { printf '\n==> %s\n' "$*"; }

# 13.0 exactly: the GPU machines run driver 580, which cannot load PTX from a newer nvcc.
WHEELS=(
    nvidia-cuda-nvcc==13.0.88 nvidia-cuda-crt==13.0.88 nvidia-nvvm==13.0.88
    nvidia-cuda-runtime==13.0.96 nvidia-cuda-cccl==13.0.85
    nvidia-cublas==13.0.2.14 nvidia-curand==10.4.0.35 nvidia-cuda-nvrtc==13.0.88
)

if [ ! -x "$VENV/bin/python" ]; then
    step "creating $VENV"
    "$PY" -m venv "$VENV"
fi
if ! "$VENV/bin/python" -m pip show nvidia-cuda-nvcc >/dev/null 2>&1; then
    step "installing the CUDA 13.0 toolkit wheels"
    "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check --no-deps "${WHEELS[@]}"
fi
C=$("$VENV/bin/python" -c 'import nvidia,os;print(os.path.join(list(nvidia.__path__)[0],"cu13"))')
C=$(cd "$C" && pwd)

step "linker names and the libcuda stub in $C/lib"
# The wheels ship versioned libraries only; the linker looks for the unversioned names.
(cd "$C/lib" && for l in cublas cublasLt cudart nvrtc; do ln -sf "lib$l.so.13" "lib$l.so"; done &&
    ln -sf libcurand.so.10 libcurand.so)
CUDARC=$(cargo metadata --format-version 1 --locked --features quiver/cuda 2>/dev/null |
    "$VENV/bin/python" -c 'import json,sys,os
pkgs=json.load(sys.stdin)["packages"]
print(next(os.path.dirname(p["manifest_path"]) for p in pkgs if p["name"]=="cudarc"))')
STUB_SRC="$TARGET/cuda/libcuda_stub.c"
mkdir -p "$TARGET/cuda" "$C/lib/stubs"
grep -ohE '^\s+(pub )?fn cu[A-Za-z0-9_]+\(' "$CUDARC/src/driver/sys/mod.rs" |
    sed -E 's/^\s+(pub )?fn //; s/\(//' | sort -u | sed 's/.*/int &(void){return 999;}/' >"$STUB_SRC"
if [ ! -s "$STUB_SRC" ]; then
    echo "no cu* symbols found in $CUDARC/src/driver/sys/mod.rs" >&2
    exit 1
fi
gcc -shared -fPIC -Wl,-soname,libcuda.so.1 -o "$C/lib/stubs/libcuda.so" "$STUB_SRC"

export CUDA_HOME=$C CUDA_ROOT=$C CUDA_PATH=$C NVCC=$C/bin/nvcc CUDA_COMPUTE_CAP=90
export PATH=$C/bin:$PATH
"$NVCC" --version | tail -2

step "cargo build --release -p quiver --features cuda"
started=$(date +%s)
# cudarc's build script finds lib/ and lib/stubs under CUDA_HOME.
cargo build --release --locked -p quiver --features cuda
echo "built in $(($(date +%s) - started)) s"

step "stripped, compressed copy"
strip -o "$TARGET/cuda/quiver" "$TARGET/release/quiver"
xz -T0 -6 -c "$TARGET/cuda/quiver" >"$TARGET/cuda/quiver.xz.tmp"
mv "$TARGET/cuda/quiver.xz.tmp" "$TARGET/cuda/quiver.xz"
ls -l "$TARGET/release/quiver" "$TARGET/cuda/quiver" "$TARGET/cuda/quiver.xz"
# What the binary will look for at run time.
readelf -d "$TARGET/release/quiver" | grep NEEDED
