#!/usr/bin/env bash
# Quiver against its peers, side by side, and docs/benchmarks.md regenerated from the results.
#
# Prepares the data once (cached in target/bench-data/), then runs each Quiver/peer pair back to back
# with the same thread count, each side in its own process, keeps the results as JSON in docs/bench/results/ (a step rerun replaces only its own files), renders the
# recall-QPS plots into docs/bench/ and replaces the generated block of docs/benchmarks.md.
#
# Usage: scripts/bench/run-all.sh            (run it under `nice -n 10` on a shared machine)
# Environment:
#   QUIVER_BENCH_THREADS   threads for every library (default 2)
#   QUIVER_BENCH_STEPS     comma list of steps (default: all)
#                          hnsw-fashion,hnsw-minilm,scan,plaid,encoder-jina,encoder-minilm
#   QUIVER_BENCH_EFS       ef values (default 10,20,40,80,160,320)
#   QUIVER_BENCH_FASHION_QUERIES / QUIVER_BENCH_GLOSS_QUERIES   test queries (default 1000 each)
#   QUIVER_BENCH_SCAN_QUERIES queries of the exact-scan step (default 200; each reads all base vectors)
#   QUIVER_BENCH_GLOSSES   indexed glosses (default 100000)
#   QUIVER_BENCH_TOKEN_DOCS documents of the token-store step (default 4000)
#   QUIVER_BENCH_PYTHON    an interpreter that already has scripts/bench/requirements.txt; without it a
#                          venv is made in target/bench-venv and the pinned requirements installed
#   QUIVER_FIXTURES_PYTHON an interpreter with scripts/fixtures/requirements.txt (transformers 5, for the
#                          jina step); without it a venv is made in target/bench-venv-fixtures
#   QUIVER_BENCH_NO_BUILD=1    use the release binaries already built instead of running cargo build
#   QUIVER_BENCH_REPORT_ONLY=1  only re-render the page from the existing results
set -euo pipefail
cd "$(dirname "$0")/../.."

THREADS=${QUIVER_BENCH_THREADS:-2}
STEPS=${QUIVER_BENCH_STEPS:-hnsw-fashion,hnsw-minilm,scan,plaid,encoder-jina,encoder-minilm}
EFS=${QUIVER_BENCH_EFS:-10,20,40,80,160,320}
SCAN_Q=${QUIVER_BENCH_SCAN_QUERIES:-200}
DATA=target/bench-data
# Results are committed, so that rerunning one step re-renders the page with the other steps' last
# results; indexes and graphs written on the way stay under target/.
RES=docs/bench/results
WORK=target/bench-work
TARGET=${CARGO_TARGET_DIR:-target}
mkdir -p "$DATA" "$RES" "$WORK"

if [ -n "${QUIVER_BENCH_PYTHON:-}" ]; then
    PY=$QUIVER_BENCH_PYTHON
else
    PY=target/bench-venv/bin/python
    if [ ! -f target/bench-venv/.requirements-installed ] \
        || ! cmp -s scripts/bench/requirements.txt target/bench-venv/.requirements-installed; then
        [ -x "$PY" ] || python3 -m venv target/bench-venv
        "$PY" -m pip install -q -r scripts/bench/requirements.txt
        cp scripts/bench/requirements.txt target/bench-venv/.requirements-installed
    fi
fi

# The jina step needs transformers 5 (Qwen2.5-VL), sentence-transformers above needs 4: two venvs.
fixtures_python() {
    if [ -n "${QUIVER_FIXTURES_PYTHON:-}" ]; then
        echo "$QUIVER_FIXTURES_PYTHON"
        return
    fi
    local venv=target/bench-venv-fixtures
    if [ ! -f $venv/.requirements-installed ] \
        || ! cmp -s scripts/fixtures/requirements.txt $venv/.requirements-installed; then
        [ -x $venv/bin/python ] || python3 -m venv $venv
        $venv/bin/python -m pip install -q -r scripts/fixtures/requirements.txt >&2
        cp scripts/fixtures/requirements.txt $venv/.requirements-installed
    fi
    echo $venv/bin/python
}

build() {
    if [ "${QUIVER_BENCH_NO_BUILD:-0}" != 1 ]; then cargo build --release -q "$@"; fi
}

has() { case ",$STEPS," in *",$1,"*) return 0 ;; *) return 1 ;; esac; }

# One line per step: which step, when, and the load average around it (the machine may be shared).
note() {
    "$PY" - "$RES/steps.jsonl" "$@" <<'EOF'
import json, os, sys, time
path, step, phase = sys.argv[1:4]
with open(path, "a") as f:
    f.write(json.dumps({"step": step, "phase": phase, "time": time.time(),
                        "loadavg": list(os.getloadavg())}) + "\n")
EOF
}

if [ "${QUIVER_BENCH_REPORT_ONLY:-0}" != 1 ]; then
    "$PY" scripts/bench/machine.py > "$RES/machine.json"
    echo "== building the Quiver benchmark binaries (release)"
    build -p quiver-benches --example peer_bench
    PEER=$TARGET/release/examples/peer_bench

    echo "== preparing data (cached in $DATA)"
    need=""
    if has hnsw-fashion || has scan; then need="$need,fashion"; fi
    if has hnsw-minilm || has scan; then need="$need,minilm"; fi
    if has plaid; then need="$need,tokens"; fi
    "$PY" scripts/bench/prepare_data.py "$DATA" --only "${need#,}" \
        --fashion-queries "${QUIVER_BENCH_FASHION_QUERIES:-1000}" \
        --glosses "${QUIVER_BENCH_GLOSSES:-100000}" \
        --gloss-queries "${QUIVER_BENCH_GLOSS_QUERIES:-1000}" \
        --token-docs "${QUIVER_BENCH_TOKEN_DOCS:-4000}" --token-queries "${QUIVER_BENCH_TOKEN_QUERIES:-100}"

    hnsw_pair() { # name metric
        local name=$1 metric=$2 dir=$DATA/$1
        note "hnsw-$name" start
        for lib in quiver hnswlib faiss qdrant-edge; do
            echo "== HNSW $name: $lib ($THREADS threads)"
            if [ "$lib" = quiver ]; then
                "$PEER" hnsw "$dir" --metric "$metric" --efs "$EFS" --threads "$THREADS" \
                    --work "$WORK/quiver-$name" > "$RES/hnsw-$name-$lib.json"
            else
                "$PY" scripts/bench/peers.py hnsw "$dir" --lib "$lib" --metric "$metric" --efs "$EFS" \
                    --threads "$THREADS" --work "$WORK/$lib-$name" > "$RES/hnsw-$name-$lib.json"
            fi
        done
        note "hnsw-$name" end
    }
    if has hnsw-fashion; then hnsw_pair fashion-mnist euclid; fi
    if has hnsw-minilm; then hnsw_pair minilm-wordnet cosine; fi

    if has scan; then
        note scan start
        for pair in fashion-mnist:euclid minilm-wordnet:cosine; do
            name=${pair%%:*} metric=${pair##*:}
            echo "== exact scan $name: quiver, numpy"
            "$PEER" scan "$DATA/$name" --metric "$metric" --threads "$THREADS" --queries "$SCAN_Q" \
                > "$RES/scan-$name-quiver.json"
            "$PY" scripts/bench/peers.py scan "$DATA/$name" --metric "$metric" --threads "$THREADS" \
                --queries "$SCAN_Q" > "$RES/scan-$name-numpy.json"
        done
        note scan end
    fi

    if has plaid; then
        note plaid start
        echo "== token store: PLAID against exhaustive MaxSim"
        for nbits in 2 4; do
            # The sweep: ColBERT's own k = 10 setting (one cell per query token), then wider probes.
            "$PEER" plaid "$DATA/minilm-tokens" --nbits "$nbits" --threads "$THREADS" \
                --sweep "1,0.5,256;4,0.45,512;16,-1,1024" > "$RES/plaid-$nbits.json"
        done
        note plaid end
    fi

    if has encoder-jina; then
        note encoder-jina start
        echo "== encoder: mid-size random jina config, Quiver against PyTorch"
        build -p quiver-benches --example encode_bench
        "$(fixtures_python)" scripts/bench/encoder_cpu.py --shapes 1x128,32x128,1x2048 --iters 3 --json "$RES/encoder-jina.json"
        note encoder-jina end
    fi

    if has encoder-minilm; then
        note encoder-minilm start
        echo "== encoder: all-MiniLM-L6-v2, Quiver's encoder against sentence-transformers"
        build -p quiver-benches --example text_bench
        "$PY" scripts/bench/encoder_minilm.py --text-bench "$TARGET/release/examples/text_bench" \
            --data "$DATA" --threads "$THREADS" --json "$RES/encoder-minilm.json"
        note encoder-minilm end
    fi
fi

echo "== rendering docs/benchmarks.md and docs/bench/*.png"
"$PY" scripts/bench/report.py "$RES" --efs "$EFS"
