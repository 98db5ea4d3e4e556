#!/usr/bin/env bash
# Schema-driven fuzzing: schemathesis (PyPI) generates requests for every route of /openapi.json and
# fails on any 5xx answer (`not_a_server_error`), on responses that break the documented schema, and on
# error bodies that are not JSON. The server gets an admin key, so auth is exercised on every call.
#
#   scripts/fuzz-openapi.sh               # builds target/debug/quiver if QUIVER_BIN is unset
#   MAX_EXAMPLES=200 scripts/fuzz-openapi.sh
set -euo pipefail
cd "$(dirname "$0")/.."

QUIVER_BIN=${QUIVER_BIN:-}
if [ -z "$QUIVER_BIN" ]; then
    cargo build -p quiver --bin quiver
    QUIVER_BIN="${CARGO_TARGET_DIR:-target}/debug/quiver"
fi
export QUIVER_BIN
VENV=${SCHEMATHESIS_VENV:-target/schemathesis-venv}
if [ ! -x "$VENV/bin/st" ]; then
    python3 -m venv "$VENV"
fi
"$VENV/bin/pip" install --quiet --disable-pip-version-check "schemathesis>=4,<5"
"$VENV/bin/st" --version

. scripts/start-test-server.sh
KEY="fuzz-admin-key"
trap 'stop_test_server || true' EXIT
start_test_server --api-key "$KEY" --max-limit 1000 --max-batch 1000
# Seed collections so generated requests also reach the engine, not only the 404 path. Schemathesis
# generates names freely; the seeded names are those its examples are most likely to hit.
for name in test string a; do
    curl -fsS -X PUT "$QUIVER_URL/collections/$name" -H "api-key: $KEY" -H 'Content-Type: application/json' \
        -d '{"vectors": {"size": 4, "distance": "Cosine"}}' >/dev/null
    curl -fsS -X PUT "$QUIVER_URL/collections/$name/points?wait=true" -H "api-key: $KEY" -H 'Content-Type: application/json' \
        -d '{"points": [{"id": 0, "vector": [1,0,0,0], "payload": {"a": 1}}, {"id": 1, "vector": [0,1,0,0]}]}' >/dev/null
done

status=0
"$VENV/bin/st" run "$QUIVER_URL/openapi.json" \
    --header "api-key: $KEY" \
    --checks not_a_server_error \
    --max-examples "${MAX_EXAMPLES:-100}" \
    --workers 4 \
    --seed "${SEED:-1}" \
    "$@" || status=$?
trap - EXIT
stop_test_server
exit "$status"
