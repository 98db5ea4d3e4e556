#!/usr/bin/env bash
# Durability fault injection: runs `quiver debug-workload` (random upserts, deletes, seals, vacuums and
# snapshots on one collection) and kills it with SIGKILL at a random moment, N times; after each kill the
# data directory must reopen with every acknowledged write intact and the latest snapshot must restore.
#
# Usage: scripts/fault-injection.sh [CYCLES] [SEED]     (default 200 cycles, seed 11)
# Prints: fault injection: cycles=N seed=S acknowledged_writes=A lost=L   (L must be 0)
set -euo pipefail
cd "$(dirname "$0")/.."
cycles="${1:-200}"
seed="${2:-11}"
QUIVER_FAULT_CYCLES="$cycles" QUIVER_FAULT_SEED="$seed" \
    cargo test --release -p quiver --test it -- --nocapture --exact \
    snapshot::fault_injection_sigkill_loses_no_acknowledged_write 2>&1 | grep -E "fault injection:|cycle [0-9]+|panicked|test result"
