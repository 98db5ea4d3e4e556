#!/usr/bin/env bash
# HNSW build comparison, alternating: Quiver's builder, a second Quiver binary (e.g. one built from an
# older commit), hnswlib and Qdrant Edge, one after another on the same data, ROUNDS times. Each prints
# one line (build wall time, build CPU time, peak RSS, recall@10 and 1-thread QPS per ef); the JSON of
# every run stays in target/build-rounds/.
#
# Usage: scripts/bench/build_rounds.sh NAME METRIC [ROUNDS] [EFS]
#   NAME    a data set prepared by prepare_data.py under target/bench-data (fashion-mnist, minilm-wordnet)
#   METRIC  euclid | cosine
# Environment:
#   QUIVER_PEER_BENCH       the peer_bench binary to measure (default target/release/examples/peer_bench)
#   QUIVER_PEER_BENCH_BASE  a second peer_bench to compare against (skipped when unset)
#   QUIVER_BENCH_PYTHON     interpreter with scripts/bench/requirements.txt (default target/bench-venv)
#   QUIVER_BENCH_THREADS    build threads for every library (default 2)
set -euo pipefail
cd "$(dirname "$0")/../.."
name=$1 metric=$2 rounds=${3:-2} efs=${4:-10,20,40,80,160}
D=target/bench-data/$name
PY=${QUIVER_BENCH_PYTHON:-target/bench-venv/bin/python}
NEW=${QUIVER_PEER_BENCH:-target/release/examples/peer_bench}
BASE=${QUIVER_PEER_BENCH_BASE:-}
T=${QUIVER_BENCH_THREADS:-2}
OUT=target/build-rounds
mkdir -p "$OUT"
for round in $(seq 1 "$rounds"); do
    for lib in quiver base hnswlib qdrant-edge; do
        out=$OUT/$name-$lib-$round.json
        load=$(cut -d' ' -f1 /proc/loadavg)
        case $lib in
            quiver) "$NEW" hnsw "$D" --metric "$metric" --efs "$efs" --threads "$T" --work "$OUT/work-q" > "$out" ;;
            base)
                [ -n "$BASE" ] || continue
                "$BASE" hnsw "$D" --metric "$metric" --efs "$efs" --threads "$T" --work "$OUT/work-b" > "$out" ;;
            *) "$PY" scripts/bench/peers.py hnsw "$D" --lib "$lib" --metric "$metric" --efs "$efs" \
                   --threads "$T" --work "$OUT/work-$lib" > "$out" ;;
        esac
        "$PY" - "$out" "$lib" "$load" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
cpu = r.get("build_cpu_s")
peak = r.get("build_peak_rss_mib")
print(f"{sys.argv[2]:12} load {sys.argv[3]:>5}  build {r['build_s']:6.1f} s  cpu "
      f"{'-' if cpu is None else f'{cpu:6.1f}'} s  peak RSS {r['peak_rss_mib']:5.0f} MiB"
      + (f"  build peak {peak:.0f} MiB over {r['vector_mib']:.0f} MiB of vectors" if peak else "")
      + "  " + " ".join(f"{x['ef']}:{x['recall']:.4f}/{x['qps_1']:.0f}" for x in r["rows"]), flush=True)
PY
    done
done
