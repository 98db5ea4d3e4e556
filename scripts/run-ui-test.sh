#!/usr/bin/env bash
# End-to-end test of the search page (`/ui/`) in a headless Chromium: starts `quiver serve` with the tiny
# random jina-v4 fixture and an API key, creates a funnel collection (small, full and token vectors)
# and an empty one, ingests a few texts and images with `quiver ingest`, then runs
# tests/ui/search_page.test.mjs (playwright-core from tests/ui/package-lock.json). Screenshots go to
# target/ui-test/.
#
#   scripts/run-ui-test.sh        # builds target/debug/quiver if QUIVER_BIN is unset
# Needs Chromium (CHROMIUM, default: chromium on PATH) and npm.
set -euo pipefail
cd "$(dirname "$0")/.."

CHROMIUM=${CHROMIUM:-$(command -v chromium || true)}
if [ -z "$CHROMIUM" ]; then
    echo "chromium is required for the search page test (apt-get install chromium)" >&2
    exit 1
fi
QUIVER_BIN=${QUIVER_BIN:-}
if [ -z "$QUIVER_BIN" ]; then
    cargo build -p quiver --bin quiver
    QUIVER_BIN="${CARGO_TARGET_DIR:-target}/debug/quiver"
fi
if [ ! -d tests/ui/node_modules/playwright-core ]; then
    (cd tests/ui && npm ci --no-audit --no-fund)
fi
"$CHROMIUM" --version 2>/dev/null || true

ARTEFACTS=${UI_ARTEFACTS:-target/ui-test}
rm -rf "$ARTEFACTS"
mkdir -p "$ARTEFACTS"
ARTEFACTS=$(cd "$ARTEFACTS" && pwd)
KEY="ui-test-$RANDOM$RANDOM"

# The corpus directory is the server's --image-dir, so the page can show image hits.
CORPUS=$(mktemp -d)
. scripts/start-test-server.sh
trap 'stop_test_server || true; rm -rf "$CORPUS"' EXIT
start_test_server --model "tiny=tests/fixtures/jina-tiny" --api-key "$KEY" --image-dir "$CORPUS"

put() {
    curl -fsS -X PUT -H "api-key: $KEY" -H 'content-type: application/json' -d "$2" "$QUIVER_URL$1" >/dev/null
}
# The Matryoshka funnel layout: a small vector with a graph, the full vector without one, and token
# vectors for MaxSim.
put /collections/docs '{"vectors": {
    "small": {"size": 16, "distance": "Cosine"},
    "full": {"size": 64, "distance": "Cosine", "hnsw_config": {"m": 0}},
    "colbert": {"size": 16, "distance": "Cosine",
                "multivector_config": {"comparator": "max_sim", "token_store": {"keep_originals": true}}}}}'
put /collections/empty '{"vectors": {"size": 32, "distance": "Cosine"}}'
# The same funnel with the vectors bound to the model: the page sends plain queries and the server
# runs its default funnel (HNSW on the 16-d prefix of the 64-d vector, rescore, MaxSim).
put /collections/bound '{"vectors": {
    "dense": {"size": 64, "distance": "Cosine"},
    "colbert": {"size": 16, "distance": "Cosine", "multivector_config": {"comparator": "max_sim"}}},
    "embedding": {"dense": {"model": "tiny", "dims": 16}, "colbert": {"model": "tiny"}}}'

i=0
while IFS= read -r line; do
    i=$((i + 1))
    printf '%s\n' "$line" >"$CORPUS/doc$i.txt"
done <<'DOCS'
Berlin is the capital of Germany.
Paris is the capital of France.
The quick brown fox jumps over the lazy dog.
def sort(xs): return sorted(xs)
Rain is expected in Berlin tomorrow.
Bread is baked in an oven.
DOCS
cp tests/fixtures/jina-tiny/images/a.png tests/fixtures/jina-tiny/images/b.png \
    tests/fixtures/jina-tiny/images/c.png "$CORPUS/"
"$QUIVER_BIN" ingest --url "$QUIVER_URL" --api-key "$KEY" --collection docs "$CORPUS"
"$QUIVER_BIN" ingest --url "$QUIVER_URL" --api-key "$KEY" --collection bound "$CORPUS"
# A dense vector beside a BM25 sparse one, for the hybrid mode.
put /collections/hybrid '{"vectors": {"dense": {"size": 64, "distance": "Cosine"}},
    "sparse_vectors": {"bm25": {"modifier": "idf"}}}'
points='['
i=0
for text in "Berlin is the capital of Germany." "Paris is the capital of France." \
    "The quick brown fox jumps over the lazy dog." "Rain is expected in Berlin tomorrow." \
    "Bread is baked in an oven." "A fox hunts at night."; do
    i=$((i + 1))
    [ "$i" -gt 1 ] && points+=','
    points+="{\"id\": $i, \"payload\": {\"text\": \"$text\"}, \"vector\": {
        \"dense\": {\"text\": \"$text\", \"model\": \"tiny\"},
        \"bm25\": {\"text\": \"$text\", \"model\": \"qdrant/bm25\"}}}"
done
put '/collections/hybrid/points?wait=true' "{\"points\": $points]}"
# Two documents cut into several chunks each, for "one result per document".
put /collections/manuals '{"vectors": {"dense": {"size": 64, "distance": "Cosine"}},
    "embedding": {"dense": {"model": "tiny"}}}'
curl -fsS -X POST -H "api-key: $KEY" -H 'content-type: application/json' \
    "$QUIVER_URL/collections/manuals/documents" -d '{"documents": [
    {"id": "oven.md", "text": "Preheat the oven to 200 degrees.\n\nBake the bread for forty minutes.\n\nLet it cool on a rack before slicing it.\n\nClean the oven once a month."},
    {"id": "garden.md", "text": "Water the tomatoes every morning.\n\nPick the beans when they are young.\n\nCover the lettuce when frost is expected."}],
    "chunking": {"max_tokens": 12}}' >/dev/null

QUIVER_URL="$QUIVER_URL" QUIVER_API_KEY="$KEY" QUIVER_PID="$QUIVER_PID" CHROMIUM="$CHROMIUM" \
    UI_ARTEFACTS="$ARTEFACTS" IMAGE_QUERY="$CORPUS/b.png" IMAGE_DROP="$CORPUS/c.png" \
    node tests/ui/search_page.test.mjs
# The test stops the server itself (the unreachable-server case); this reaps it and checks its exit.
trap - EXIT
stop_test_server
rm -rf "$CORPUS"
