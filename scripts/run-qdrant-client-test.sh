#!/usr/bin/env bash
# Runs tests/qdrant_client_scenario.py (the official qdrant-client from PyPI, unchanged) and
# tests/langchain_scenario.py (LangChain's QdrantVectorStore in hybrid mode, langchain-qdrant from PyPI,
# unchanged) against a fresh `quiver serve`. The virtualenv is cached in target/qdrant-client-venv.
#
#   scripts/run-qdrant-client-test.sh            # builds target/debug/quiver if QUIVER_BIN is unset
#   QUIVER_BIN=target/release/quiver scripts/run-qdrant-client-test.sh
set -euo pipefail
cd "$(dirname "$0")/.."

QUIVER_BIN=${QUIVER_BIN:-}
if [ -z "$QUIVER_BIN" ]; then
    cargo build -p quiver --bin quiver
    QUIVER_BIN="${CARGO_TARGET_DIR:-target}/debug/quiver"
fi
VENV=${QDRANT_CLIENT_VENV:-target/qdrant-client-venv}
if [ ! -x "$VENV/bin/python" ]; then
    python3 -m venv "$VENV"
fi
"$VENV/bin/pip" install --quiet --disable-pip-version-check "qdrant-client>=1.17,<2" "numpy>=1.26" \
    langchain-qdrant==1.1.0 langchain-core==1.8.3
"$VENV/bin/python" -c 'import importlib.metadata as m; print(*(f"{p} {m.version(p)}" for p in ("qdrant-client", "langchain-qdrant")))'

. scripts/start-test-server.sh
KEY="scenario-admin-key"
trap 'stop_test_server || true' EXIT
# all-MiniLM-L6-v2 comes from scripts/fetch-test-assets.sh (the README's test command runs it first).
MINILM=target/test-assets/all-MiniLM-L6-v2
if [ ! -f "$MINILM/model.safetensors" ]; then
    echo "$MINILM is missing: run scripts/fetch-test-assets.sh first" >&2
    exit 1
fi
start_test_server --api-key "$KEY" --model "tiny=tests/fixtures/jina-tiny" --model "minilm=$MINILM"
QUIVER_SCENARIO_MODEL=tiny QUIVER_SCENARIO_MINILM=minilm \
    "$VENV/bin/python" tests/qdrant_client_scenario.py "$QUIVER_URL" "$KEY" "$QUIVER_TMP/data"
"$VENV/bin/python" tests/langchain_scenario.py "$QUIVER_URL" "$KEY" minilm
trap - EXIT
stop_test_server
