#!/usr/bin/env bash
# Durability fault injection: runs `quiver debug-workload` (random upserts, deletes, seals, vacuums and
# snapshots on one collection) and kills it with SIGKILL N times, half at random moments and half the
# instant a write is announced; after each kill the data directory must reopen with every acknowledged
# write intact, every point whole, and the latest snapshot must restore.
#
# Usage: scripts/fault-injection.sh [CYCLES] [SEED]     (default 200 cycles, seed 11)
# Prints: fault injection: cycles=N seed=S acknowledged_writes=A lost=L snapshots_restored=R kills_during=...
# (L must be 0; the test fails otherwise). CI runs the same test with 20 cycles.
set -euo pipefail
cd "$(dirname "$0")/.."
cycles="${1:-200}"
seed="${2:-11}"
QUIVER_FAULT_CYCLES="$cycles" QUIVER_FAULT_SEED="$seed" \
    cargo test --locked -p quiver --test it -- --nocapture --exact \
    snapshot::fault_injection_sigkill_loses_no_acknowledged_write 2>&1 |
    grep -E "fault injection:|cycle [0-9]+|panicked|test result"
