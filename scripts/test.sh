#!/usr/bin/env bash
# The test command the README gives and CI runs: fetches the small test assets, runs the Rust test
# suite, then the end-to-end checks against a real server.
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n==> %s\n' "$*"; }

if [ -x scripts/fetch-test-assets.sh ]; then
    step "fetching test assets"
    scripts/fetch-test-assets.sh
fi

step "cargo test"
cargo test --workspace --locked

for e2e in scripts/run-qdrant-client-test.sh scripts/run-openai-client-test.sh tests/readme_examples.sh \
    scripts/run-ui-test.sh; do
    if [ -x "$e2e" ]; then
        step "$e2e"
        "$e2e"
    fi
done

# The GPU check's comparison and table logic, on the CPU with the tiny fixture (the GPU run itself
# needs a GPU machine: scripts/gpu-check.sh there).
step "scripts/gpu_check_test.py and scripts/gpu-check.sh --device cpu"
python3 scripts/gpu_check_test.py
scripts/gpu-check.sh --device cpu
step "scripts/gpu_serving_check_test.py and scripts/gpu-check.sh --serving --device cpu"
python3 scripts/gpu_serving_check_test.py
scripts/gpu-check.sh --serving --device cpu
