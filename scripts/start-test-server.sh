# Sourced by the test scripts: starts `quiver serve` on a free port over a fresh data directory.
# Sets QUIVER_URL, QUIVER_PID and QUIVER_TMP; `stop_test_server` stops it gracefully and checks the exit.
# Needs QUIVER_BIN (path to the binary); extra `serve` flags come from the arguments.

start_test_server() {
    QUIVER_TMP=$(mktemp -d)
    "$QUIVER_BIN" --data-dir "$QUIVER_TMP/data" --log info serve --host 127.0.0.1 --port 0 "$@" \
        2>"$QUIVER_TMP/server.log" &
    QUIVER_PID=$!
    QUIVER_URL=""
    for _ in $(seq 1 300); do
        QUIVER_URL=$(grep -o 'listening on http://[0-9.:]*' "$QUIVER_TMP/server.log" | head -n1 | sed 's/listening on //' || true)
        if [ -n "$QUIVER_URL" ] && curl -fsS "$QUIVER_URL/readyz" >/dev/null 2>&1; then
            return 0
        fi
        if ! kill -0 "$QUIVER_PID" 2>/dev/null; then
            echo "quiver exited before it was ready:" >&2
            cat "$QUIVER_TMP/server.log" >&2
            return 1
        fi
        sleep 0.1
    done
    echo "quiver not ready after 30 s:" >&2
    cat "$QUIVER_TMP/server.log" >&2
    return 1
}

stop_test_server() {
    local status=0
    if [ -n "${QUIVER_PID:-}" ] && kill -0 "$QUIVER_PID" 2>/dev/null; then
        kill -TERM "$QUIVER_PID"
        wait "$QUIVER_PID" || status=$?
        if [ "$status" -ne 0 ]; then
            echo "quiver exited with $status after SIGTERM; log:" >&2
            tail -n 50 "$QUIVER_TMP/server.log" >&2
        fi
    fi
    QUIVER_PID=""
    [ -n "${QUIVER_TMP:-}" ] && rm -rf "$QUIVER_TMP"
    return "$status"
}
