#!/usr/bin/env bash
# Runs the curl examples of the docs against a live `quiver serve`, so they stay true.
#
# Convention: a fenced block that opens with ```bash and whose first line is `# run-test` is executed;
# other blocks are not. Blocks of one file run in order, in one shell, against one fresh server (so a
# later block may use a collection an earlier one created). Examples address http://localhost:6333,
# which is rewritten (textually) to the test server's address. `curl` fails on any non-2xx status.
#
#   tests/readme_examples.sh                     # docs/api.md and README.md
#   tests/readme_examples.sh docs/api.md         # chosen files
set -euo pipefail
cd "$(dirname "$0")/.."

QUIVER_BIN=${QUIVER_BIN:-}
if [ -z "$QUIVER_BIN" ]; then
    cargo build -p quiver --bin quiver
    QUIVER_BIN="${CARGO_TARGET_DIR:-target}/debug/quiver"
fi
export QUIVER_BIN
files=("$@")
[ ${#files[@]} -eq 0 ] && files=(docs/api.md README.md)

. scripts/start-test-server.sh
trap 'stop_test_server || true' EXIT

total=0
failed=0
for file in "${files[@]}"; do
    [ -f "$file" ] || { echo "skip $file (missing)"; continue; }
    script=$(mktemp)
    count=$(python3 - "$file" "$script" <<'PY'
import re, sys
text = open(sys.argv[1], encoding="utf-8").read()
blocks = [b for b in re.findall(r"^```bash\n(.*?)^```", text, flags=re.S | re.M)
          if b.lstrip().startswith("# run-test")]
with open(sys.argv[2], "w") as out:
    out.write('set -euo pipefail\n')
    out.write('curl() { command curl --fail-with-body -sS "$@"; echo; }\n')
    for i, b in enumerate(blocks, 1):
        out.write(f'echo "--- {sys.argv[1]} example {i}"\n')
        out.write(b)
        out.write("\n")
print(len(blocks))
PY
)
    if [ "$count" -eq 0 ]; then
        echo "$file: no '# run-test' examples"
        rm -f "$script"
        continue
    fi
    start_test_server --model "jina-embeddings-v4=tests/fixtures/jina-tiny"
    # Literal substitution, so quoted URLs are rewritten too.
    sed -i "s#http://localhost:6333#$QUIVER_URL#g" "$script"
    total=$((total + count))
    if QUIVER_URL="$QUIVER_URL" bash "$script"; then
        echo "$file: $count examples passed"
    else
        echo "$file: an example failed (see above)" >&2
        failed=$((failed + 1))
    fi
    stop_test_server
    rm -f "$script"
done
trap - EXIT
echo "readme examples: $((total)) run, $failed files failed"
[ "$failed" -eq 0 ]
