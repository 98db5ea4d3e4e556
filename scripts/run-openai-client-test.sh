#!/usr/bin/env bash
# Runs tests/openai_client_scenario.py (the official openai client from PyPI, unchanged) against a fresh
# `quiver serve` that serves the tiny random jina-v4 fixture. The virtualenv is cached in
# target/openai-client-venv.
#
#   scripts/run-openai-client-test.sh            # builds target/debug/quiver if QUIVER_BIN is unset
set -euo pipefail
cd "$(dirname "$0")/.."

QUIVER_BIN=${QUIVER_BIN:-}
if [ -z "$QUIVER_BIN" ]; then
    cargo build -p quiver --bin quiver
    QUIVER_BIN="${CARGO_TARGET_DIR:-target}/debug/quiver"
fi
VENV=${OPENAI_CLIENT_VENV:-target/openai-client-venv}
if [ ! -x "$VENV/bin/python" ]; then
    python3 -m venv "$VENV"
fi
"$VENV/bin/pip" install --quiet --disable-pip-version-check "openai>=1.50,<3"
"$VENV/bin/python" -c 'import importlib.metadata as m; print("openai", m.version("openai"))'

. scripts/start-test-server.sh
trap 'stop_test_server || true' EXIT
# all-MiniLM-L6-v2 comes from scripts/fetch-test-assets.sh (the README's test command runs it first).
MINILM=target/test-assets/all-MiniLM-L6-v2
if [ ! -f "$MINILM/model.safetensors" ]; then
    echo "$MINILM is missing: run scripts/fetch-test-assets.sh first" >&2
    exit 1
fi
start_test_server --model "jina-tiny=tests/fixtures/jina-tiny" --model "minilm=$MINILM"
"$VENV/bin/python" tests/openai_client_scenario.py "$QUIVER_URL" jina-tiny minilm
trap - EXIT
stop_test_server
