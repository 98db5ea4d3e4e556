#!/usr/bin/env python3
"""The GPU check of Quiver's image path and of the server end to end (driven by
`scripts/gpu-check.sh --serving`).

Three parts, one table and one JSON report:

1. image parity: `quiver debug-encoder` embeds a 224, a 448 and a 756-pixel square and one very
   wide image (2800x140) for each task adapter through both of Quiver's image paths: the fused one
   (the vision tower on the varlen attention kernel, the image prompts packed through the fused
   decoder: `--vision-pass varlen --text-pass packed`, the GPU's default) and the generic one
   (batched matmuls per run of windows, prompts padded on candle's ops: `--vision-pass segments
   --text-pass padded`); each is compared with the reference (dense cosine >= 0.999, every
   per-token cosine >= 0.99):
     --reference torch    transformers' Qwen2.5-VL (sdpa, the model dtype) on the same images,
                          jina's image prompt, heads and task LoRA (forward hooks, unmerged);
     --reference goldens  the transformers outputs committed with the tiny fixture
                          (tests/fixtures/jina-tiny/goldens.vision.*), for testing on a CPU.
2. image speed: 448 px x 1 (latency), 448 px x 8 and 756 px x 8 (items/s) and peak memory, Quiver
   against PyTorch (transformers, sdpa, bf16, the same checkpoint) on the same GPU in the same run;
   a timed call goes from the encoded PNG files in memory to vectors on the host on both sides
   (decode, resize, normalise, patchify, vision tower, decoder, heads); the generic path is timed
   beside the fused one. Quiver's own batched text
   throughput at 32 x 200 tokens is timed too: the serving goal is measured against it.
3. serving: `quiver serve --model jina=DIR --device DEVICE`, a collection bound to the model (a
   256-d prefix HNSW over the 2048-d vector, which rescores, and the 128-d token vectors; the
   sizes follow the model), 16 clients ingest generated passages (100-300 words) and generated
   images of mixed sizes through the HTTP API (upserts of documents and base64 image objects), then
   16 clients send text queries (`?timings=true`). Reports ingest items/s, query p50/p99 (client
   side), the share of the server's query time spent embedding (`embed_ms / total_ms`), and the
   GPU's utilisation sampled by nvidia-smi. Each phase stops submitting at its time limit (the
   report says how many items went through), so the check fits its device budget.

Exits 1 when a parity check fails or a step breaks; the speed goals are reported, not enforced. The
helpers are plain Python (no numpy), so the CPU test (scripts/gpu_serving_check_test.py) runs with a
bare python3.
"""

import argparse
import base64
import json
import math
import os
import random
import socket
import struct
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
import zlib


sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import gpu_check  # noqa: E402  (the text check: cosine, compare, the torch reference, tables)

# The image parity set: name -> (width, height).
PARITY_IMAGES = {"224": (224, 224), "448": (448, 448), "756": (756, 756), "wide": (2800, 140)}
# Timed image batches, SIDExBATCH (square images of SIDE pixels).
IMAGE_SHAPES = "448x1,448x8,756x8"
# The issue's goals, each (shape, what, bound) as Quiver/PyTorch ratios.
IMAGE_GOALS = [("448x1", "latency", 0.5), ("448x8", "throughput", 3.0), ("756x8", "throughput", 3.0)]
# Serving goals: ingest of text passages >= 80 % of the encoder's own batched throughput, p99 <= 50 ms.
INGEST_SHARE_MIN = 0.8
QUERY_P99_MAX_MS = 50.0
# The encoder's own batched text throughput, timed beside the images (passages are 100-300 words),
# BATCHxTOKENS.
TEXT_REFERENCE_SHAPE = "32x200"
# Image sizes the serving phase ingests (width, height): variable sizes share forward passes.
SERVING_IMAGE_SIZES = [(224, 224), (448, 448), (336, 560), (756, 420), (448, 224)]

WORDS = ("vector search engine index graph query point payload segment shard cosine distance token "
         "image model batch server client latency memory throughput window attention layer matrix "
         "river mountain city harbour forest valley bridge market library garden station museum "
         "quiet bright ancient modern northern southern distant early late small large").split()


# ---------------------------------------------------------------------------------------------
# Generated inputs


def png_bytes(width, height, seed):
    """A deterministic RGB PNG: smooth gradients plus seeded noise, so no two seeds give the same
    pixels and a resize has structure to keep. Pure Python (zlib), no imaging library."""
    rng = random.Random(seed)
    a, b, c = rng.randrange(1, 7), rng.randrange(1, 7), rng.randrange(256)
    noise = bytes(rng.randrange(32) for _ in range(4099))
    raw = bytearray()
    for y in range(height):
        raw.append(0)  # filter type: none
        base = (y * b + c) & 255
        row = bytearray(3 * width)
        for x in range(width):
            n = noise[(x * 7 + y * 13) % 4099]
            row[3 * x] = (x * a + base + n) & 255
            row[3 * x + 1] = (x * 255 // max(width - 1, 1) + n) & 255
            row[3 * x + 2] = (base * 2 + x + n) & 255
        raw += row

    def chunk(kind, data):
        return (struct.pack(">I", len(data)) + kind + data
                + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(bytes(raw), 6))
            + chunk(b"IEND", b""))


def passage(rng, min_words=100, max_words=300):
    return " ".join(rng.choice(WORDS) for _ in range(rng.randint(min_words, max_words))) + "."


def query_text(rng):
    return " ".join(rng.choice(WORDS) for _ in range(rng.randint(3, 12)))


# ---------------------------------------------------------------------------------------------
# Numbers and tables (tested by scripts/gpu_serving_check_test.py)


def percentile(values, q):
    """Linear interpolation between closest ranks (numpy's default); None for no values."""
    if not values:
        return None
    v = sorted(values)
    pos = (len(v) - 1) * q / 100.0
    lo, hi = math.floor(pos), math.ceil(pos)
    return v[lo] + (v[hi] - v[lo]) * (pos - lo)


def parse_nvidia_smi(text):
    """Samples of `nvidia-smi --query-gpu=utilization.gpu,memory.used --format=csv,noheader,nounits`:
    [(util %, memory MiB)], lines that do not parse skipped."""
    out = []
    for line in text.splitlines():
        parts = [p.strip() for p in line.split(",")]
        if len(parts) < 2:
            continue
        try:
            out.append((float(parts[0]), float(parts[1])))
        except ValueError:
            continue
    return out


def parse_metrics(text, model="jina"):
    """The encoder counters of one model from Quiver's Prometheus text: {metric: value}."""
    out = {}
    label = f'{{model="{model}"}}'
    for line in text.splitlines():
        if line.startswith("quiver_encoder_") and label in line:
            name, _, value = line.partition(label)
            try:
                out[name] = float(value.strip())
            except ValueError:
                continue
    return out


def counter_delta(before, after):
    """Tokens embedded and worker-busy seconds between two /metrics snapshots (None if absent)."""
    def d(k):
        return after[k] - before[k] if k in before and k in after else None
    return {"tokens": d("quiver_encoder_tokens_total"), "worker_busy_s": d("quiver_encoder_busy_seconds_total")}


def utilisation_summary(samples):
    if not samples:
        return None
    utils = [u for u, _ in samples]
    return {"samples": len(samples), "mean_util_pct": sum(utils) / len(utils),
            "p50_util_pct": percentile(utils, 50), "max_memory_mib": max(m for _, m in samples)}


def image_parity_rows(cases, fused, generic, reference):
    """One row per case: the worst dense and per-token cosines of each of Quiver's paths."""
    rows = []
    for name in cases:
        if len(fused[name]) != len(reference[name]) or (generic and len(generic[name]) != len(reference[name])):
            raise ValueError(f"{name}: row counts differ from the reference")
        entry = {"case": name}
        for label, ours in (("fused", fused), ("generic", generic)):
            if not ours:
                continue
            cs = [gpu_check.compare(o, r) for o, r in zip(ours[name], reference[name])]
            entry[label] = {"dense": min(c["dense"] for c in cs), "min_token": min(c["min_token"] for c in cs),
                            "ok": all(c["ok"] for c in cs)}
        entry["ok"] = entry["fused"]["ok"] and ("generic" not in entry or entry["generic"]["ok"])
        rows.append(entry)
    return rows


def image_timing_rows(fused, generic, reference):
    by_name = lambda rows: {r["name"]: r for r in rows or []}
    s, r = by_name(generic), by_name(reference)
    out = []
    for q in fused:
        sq, rq = s.get(q["name"]), r.get(q["name"])
        out.append({
            "shape": q["name"], "batch": q["batch"], "tokens": q.get("tokens"),
            "quiver_ms": q["median_ms"], "quiver_items_per_s": q["items_per_s"],
            "generic_ms": sq["median_ms"] if sq else None,
            "reference_ms": rq["median_ms"] if rq else None,
            "reference_items_per_s": rq["items_per_s"] if rq else None,
            "latency_ratio": gpu_check.ratio(q["median_ms"], rq["median_ms"] if rq else None),
            "throughput_ratio": gpu_check.ratio(q["items_per_s"], rq["items_per_s"] if rq else None),
            "quiver_peak_bytes": q.get("peak_bytes"),
            "reference_peak_bytes": rq.get("peak_bytes") if rq else None,
            "memory_ratio": gpu_check.ratio(q.get("peak_bytes"), rq.get("peak_bytes") if rq else None),
        })
    return out


def image_goals(rows):
    by_shape = {r["shape"]: r for r in rows}
    out = []
    for shape, what, bound in IMAGE_GOALS:
        row = by_shape.get(shape)
        value = row["latency_ratio" if what == "latency" else "throughput_ratio"] if row else None
        met = None if value is None else (value >= bound if what == "throughput" else value <= bound)
        sign = ">=" if what == "throughput" else "<="
        out.append({"shape": shape, "what": what, "goal": f"{sign} {bound}x PyTorch", "ratio": value, "met": met})
    return out


def parse_pairs(spec):
    """"448x1,756x8" -> [("448x1", 448, 1), ("756x8", 756, 8)]."""
    out = []
    for part in spec.split(","):
        a, b = part.lower().split("x")
        out.append((part, int(a), int(b)))
    return out


def serving_summary(phases, text_reference_tokens_per_s, utilisation, text_shape=TEXT_REFERENCE_SHAPE):
    """phases: {"ingest_text": {...}, "ingest_images": {...}, "queries": {...}} as run_phase returns
    them, with "tokens" and "worker_busy_s" from the server's counters where known. Adds the derived
    numbers and the two serving goals. The ingest goal compares tokens per second (passages and the
    encoder's own batches differ in length): the HTTP ingest of passages against the encoder's own
    batched throughput on the same device."""
    out = {k: dict(v) for k, v in phases.items()}
    for p in out.values():
        p["items_per_s"] = p["items"] / p["seconds"] if p["seconds"] > 0 else None
        tokens = p.get("tokens")
        p["tokens_per_s"] = tokens / p["seconds"] if tokens is not None and p["seconds"] > 0 else None
        busy = p.get("worker_busy_s")
        p["worker_busy_share"] = busy / p["seconds"] if busy is not None and p["seconds"] > 0 else None
    q = out["queries"]
    lat = q.pop("latencies_ms")
    q["p50_ms"], q["p99_ms"] = percentile(lat, 50), percentile(lat, 99)
    embed, total = q.pop("embed_ms"), q.pop("server_total_ms")
    q["embed_share"] = sum(embed) / sum(total) if total and sum(total) > 0 else None
    q["search_share"] = None if q["embed_share"] is None else 1.0 - q["embed_share"]
    for p in out.values():
        p.pop("latencies_ms", None)
        p.pop("embed_ms", None)
        p.pop("server_total_ms", None)
    share = gpu_check.ratio(out["ingest_text"]["tokens_per_s"], text_reference_tokens_per_s)
    goals = [
        {"what": "ingest text tokens/s vs the encoder's own batched throughput",
         "goal": f">= {INGEST_SHARE_MIN:.0%}", "value": share,
         "met": None if share is None else share >= INGEST_SHARE_MIN},
        {"what": "query p99 at the clients", "goal": f"<= {QUERY_P99_MAX_MS:.0f} ms", "value": q["p99_ms"],
         "met": None if q["p99_ms"] is None else q["p99_ms"] <= QUERY_P99_MAX_MS},
    ]
    return {"phases": out, "encoder_text_shape": text_shape, "encoder_text_tokens_per_s": text_reference_tokens_per_s,
            "ingest_share_of_encoder": share, "gpu": utilisation, "goals": goals}


def render(report):
    f, grid = gpu_check.fmt, gpu_check.grid
    h = report["header"]
    lines = [f"Quiver images and serving on {h['device']} ({h['dtype']}), reference: {h['reference']}", ""]
    lines.append(f"image parity (cosine; pass: dense >= {gpu_check.DENSE_MIN}, every token >= {gpu_check.TOKEN_MIN})")
    table = []
    for p in report["image_parity"]:
        v, s = p["fused"], p.get("generic")
        table.append([p["case"], f(v["dense"], ".6f"), f(v["min_token"], ".6f"),
                      f(s["dense"], ".6f") if s else "-", f(s["min_token"], ".6f") if s else "-",
                      "yes" if p["ok"] else "NO"])
    lines += grid(["case", "fused dense", "fused min tok", "generic dense", "generic min tok", "pass"], table)
    if report["image_timing"]:
        lines += ["", "images (median of the timed calls: PNG bytes in memory to vectors on the host)"]
        table = [[r["shape"], f(r["quiver_ms"], ".2f"), f(r["generic_ms"], ".2f"), f(r["reference_ms"], ".2f"),
                  f(r["latency_ratio"], ".2f"), f(r["quiver_items_per_s"], ".1f"),
                  f(r["reference_items_per_s"], ".1f"), f(r["throughput_ratio"], ".2f"),
                  f(gpu_check.gib(r["quiver_peak_bytes"]), ".2f"), f(gpu_check.gib(r["reference_peak_bytes"]), ".2f"),
                  f(r["memory_ratio"], ".2f")] for r in report["image_timing"]]
        lines += grid(["shape", "quiver ms", "generic ms", "ref ms", "quiver/ref", "quiver items/s",
                       "ref items/s", "ratio", "quiver GiB", "ref GiB", "mem ratio"], table)
        table = [[g["shape"], g["what"], g["goal"], f(g["ratio"], ".2f"),
                  {True: "met", False: "MISSED", None: "-"}[g["met"]]] for g in report["image_goals"]]
        lines += ["", "image goals (same device, same run)"]
        lines += grid(["shape", "what", "goal", "ratio", "status"], table)
    s = report.get("serving")
    if s:
        lines += ["", "serving (HTTP, bound funnel collection)"]
        table = []
        for name, p in s["phases"].items():
            table.append([name, p["clients"], p["items"], p["requests"], p["errors"], f(p["seconds"], ".1f"),
                          f(p["items_per_s"], ".1f"), f(p["tokens_per_s"], ".0f"), f(p["worker_busy_share"], ".2f"),
                          "yes" if p["stopped_at_limit"] else "no",
                          f(p.get("p50_ms"), ".1f"), f(p.get("p99_ms"), ".1f"), f(p.get("embed_share"), ".2f")])
        lines += grid(["phase", "clients", "items", "requests", "errors", "s", "items/s", "tokens/s", "worker busy",
                       "time limit hit", "p50 ms", "p99 ms", "embed share"], table)
        gpu = s["gpu"]
        lines.append("gpu utilisation: " + ("not sampled (no nvidia-smi)" if not gpu else
                     f"mean {gpu['mean_util_pct']:.0f} %, p50 {gpu['p50_util_pct']:.0f} %, "
                     f"{gpu['samples']} samples, max memory {gpu['max_memory_mib']:.0f} MiB"))
        lines.append(f"encoder's own batched text throughput ({s['encoder_text_shape']}): "
                     f"{f(s['encoder_text_tokens_per_s'], '.0f')} tokens/s")
        table = [[g["what"], g["goal"], f(g["value"], ".3f"), {True: "met", False: "MISSED", None: "-"}[g["met"]]]
                 for g in s["goals"]]
        lines += grid(["serving goal", "goal", "value", "status"], table)
    lines += ["", f"parity: {'PASS' if report['parity_ok'] else 'FAIL'}"]
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------------
# Quiver's side


# Quiver's two image paths: (vision tower attention, decoder pass).
PATHS = {"fused": ("varlen", "packed"), "generic": ("segments", "padded")}


def run_debug_encoder(binary, model, device, dtype, path, request, out_dir, log):
    """Runs `quiver debug-encoder` on one of PATHS and reads its image parity rows back."""
    vision_pass, text_pass = PATHS[path]
    result, vec = gpu_check.debug_encoder(binary, model, device, dtype,
                                          ["--vision-pass", vision_pass, "--text-pass", text_pass],
                                          request, out_dir, path, log)
    return result, gpu_check.case_outputs(result["image_parity"], vec)


class Server:
    """`quiver serve` on a free loopback port with a fresh data directory."""

    def __init__(self, binary, model, device, data_dir, log_path, extra=()):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = open(log_path, "w")
        cmd = [binary, "serve", "--data-dir", data_dir, "--port", str(self.port), "--model", f"jina={model}",
               "--device", device, *extra]
        self.proc = subprocess.Popen(cmd, stdout=self.log, stderr=subprocess.STDOUT)

    def wait_ready(self, seconds):
        deadline = time.time() + seconds
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise SystemExit(f"quiver serve exited with {self.proc.returncode} (log: {self.log.name})")
            try:
                status, _ = http(self.url, "GET", "/collections", None, timeout=2)
                if status == 200:
                    return
            except OSError:
                pass
            time.sleep(0.5)
        raise SystemExit(f"quiver serve did not answer within {seconds} s (log: {self.log.name})")

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()


def http(base, method, path, body, timeout=120):
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(base + path, data=data, method=method,
                                 headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, json.loads(r.read() or b"null")
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read() or b"null")


def metrics(base):
    req = urllib.request.Request(base + "/metrics")
    with urllib.request.urlopen(req, timeout=30) as r:
        return parse_metrics(r.read().decode())


def collection_config(model_dir):
    """The bound funnel collection for the model: a prefix HNSW (256-d when the model has that
    Matryoshka size) over the full dense vector, and the token vectors."""
    with open(os.path.join(model_dir, "config.json")) as f:
        cfg = json.load(f)
    hidden = (cfg.get("text_config") or {}).get("hidden_size") or cfg["hidden_size"]
    dims = cfg.get("matryoshka_dims") or [hidden]
    prefix = 256 if 256 in dims else min(dims)
    multi = cfg["multi_vector_projector_dim"]
    return {
        "vectors": {"dense": {"size": hidden, "distance": "Cosine"},
                    "colbert": {"size": multi, "distance": "Cosine", "multivector_config": {"comparator": "max_sim"}}},
        "embedding": {"dense": {"model": "jina", "dims": prefix}, "colbert": {"model": "jina"}},
    }


def run_phase(name, clients, jobs, send, seconds_limit, log):
    """Runs `jobs` (a list of (items, payload)) on `clients` threads, each taking the next job until
    none is left or the time limit passes. `send(payload)` returns (ok, extra) where extra may hold
    "embed_ms" and "total_ms". Returns the phase's counts and latencies."""
    lock = threading.Lock()
    state = {"next": 0, "items": 0, "requests": 0, "errors": 0, "stopped": False}
    latencies, embed_ms, total_ms = [], [], []
    started = time.perf_counter()

    def worker():
        while True:
            with lock:
                if state["next"] >= len(jobs):
                    return
                if time.perf_counter() - started > seconds_limit:
                    state["stopped"] = True
                    return
                items, payload = jobs[state["next"]]
                state["next"] += 1
            t = time.perf_counter()
            try:
                ok, extra = send(payload)
            except Exception as e:  # a broken connection counts as an error, the phase goes on
                ok, extra = False, {"error": str(e)}
            ms = (time.perf_counter() - t) * 1e3
            with lock:
                state["requests"] += 1
                if ok:
                    state["items"] += items
                    latencies.append(ms)
                    if "embed_ms" in extra:
                        embed_ms.append(extra["embed_ms"])
                        total_ms.append(extra["total_ms"])
                else:
                    state["errors"] += 1
                    if state["errors"] <= 3:
                        log(f"  {name}: request failed: {json.dumps(extra)[:300]}")

    threads = [threading.Thread(target=worker) for _ in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    seconds = time.perf_counter() - started
    log(f"  {name}: {state['items']} items in {state['requests']} requests, {state['errors']} errors, {seconds:.1f} s")
    return {"clients": clients, "items": state["items"], "requests": state["requests"], "errors": state["errors"],
            "seconds": seconds, "stopped_at_limit": state["stopped"], "latencies_ms": latencies,
            "embed_ms": embed_ms, "server_total_ms": total_ms}


class GpuSampler:
    """nvidia-smi sampling in the background (nothing when it is not installed)."""

    def __init__(self, interval_ms=200):
        self.proc = None
        try:
            self.proc = subprocess.Popen(
                ["nvidia-smi", "--query-gpu=utilization.gpu,memory.used", "--format=csv,noheader,nounits",
                 f"-lms={interval_ms}"], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        except OSError:
            self.proc = None

    def stop(self):
        if self.proc is None:
            return None
        self.proc.terminate()
        out, _ = self.proc.communicate(timeout=10)
        return utilisation_summary(parse_nvidia_smi(out))


def serving(args, log):
    rng = random.Random(args.seed)
    data_dir = os.path.join(args.work, "serve-data")
    subprocess.run(["rm", "-rf", data_dir], check=True)
    server = Server(args.quiver, args.model, args.device, data_dir, os.path.join(args.work, "serve.log"),
                    ["--max-concurrent-requests", str(max(512, 4 * args.clients))])
    try:
        server.wait_ready(args.server_start_seconds)
        status, body = http(server.url, "PUT", "/collections/serving", collection_config(args.model))
        if status != 200:
            raise SystemExit(f"creating the collection: {status} {body}")
        log(f"  collection ready ({server.url})")
        sampler = GpuSampler()

        def upsert(points):
            status, body = http(server.url, "PUT", "/collections/serving/points?wait=true", {"points": points})
            return status == 200, {} if status == 200 else {"status": status, "body": body}

        next_id = [0]

        def batched(make, count, per_request):
            jobs = []
            for start in range(0, count, per_request):
                points = []
                for _ in range(min(per_request, count - start)):
                    next_id[0] += 1
                    points.append({"id": next_id[0], "vector": make()})
                jobs.append((len(points), points))
            return jobs

        texts = batched(lambda: {"text": passage(rng)}, args.passages, args.passages_per_request)
        pool = [base64.b64encode(png_bytes(*SERVING_IMAGE_SIZES[i % len(SERVING_IMAGE_SIZES)], seed=1000 + i)).decode()
                for i in range(args.image_pool)]
        counter = iter(range(10**9))
        images = batched(lambda: {"image": pool[next(counter) % len(pool)]}, args.images, args.images_per_request)
        phases = {}

        def counted(name, jobs, send, seconds):
            before = metrics(server.url)
            p = run_phase(name, args.clients, jobs, send, seconds, log)
            p.update(counter_delta(before, metrics(server.url)))
            phases[name] = p

        log(f"  ingest: {args.passages} passages, {args.clients} clients")
        counted("ingest_text", texts, upsert, args.ingest_seconds)
        log(f"  ingest: {args.images} images, {args.clients} clients")
        counted("ingest_images", images, upsert, args.image_seconds)

        def query(text):
            status, body = http(server.url, "POST", "/collections/serving/points/query?timings=true",
                                {"query": {"text": text}, "limit": 10})
            if status != 200:
                return False, {"status": status, "body": body}
            # Quiver puts the timings beside the points, inside `result`.
            result = body.get("result") if isinstance(body.get("result"), dict) else {}
            t = result.get("timings") or body.get("timings") or {}
            extra = {}
            if "embed_ms" in t and "total_ms" in t:
                extra = {"embed_ms": t["embed_ms"], "total_ms": t["total_ms"]}
            return True, extra

        queries = [(1, query_text(rng)) for _ in range(args.queries)]
        log(f"  queries: {args.queries}, {args.clients} clients")
        counted("queries", queries, query, args.query_seconds)
        utilisation = sampler.stop()
    finally:
        server.stop()
    return phases, utilisation


# ---------------------------------------------------------------------------------------------
# References


def goldens_images(fixture):
    """Image parity cases from the tiny fixture's goldens: (cases, files, {case: [row]})."""
    with open(os.path.join(fixture, "goldens.vision.json")) as f:
        manifest = json.load(f)
    tensors = gpu_check.read_safetensors(os.path.join(fixture, "goldens.vision.safetensors"))
    cases, reference = [], {}
    for task in manifest["tasks"]:
        for name, img in sorted(manifest["images"].items()):
            case = f"{name}/{task}"
            _, single = tensors[f"{task}/img/{name}/single"]
            shape, multi = tensors[f"{task}/img/{name}/multi"]
            dim = shape[-1]
            rows = len(multi) // dim
            cases.append({"name": case, "task": task, "files": [os.path.abspath(os.path.join(fixture, img["file"]))]})
            reference[case] = [{"dense": single.tolist(),
                                "multi": [multi[i * dim:(i + 1) * dim].tolist() for i in range(rows)]}]
    return cases, reference


class TorchImageReference(gpu_check.TorchReference):
    """The text check's reference (transformers' Qwen2.5-VL, the LoRA through hooks) with jina's
    image path: the torchvision processor, the image prompt, M-RoPE from get_rope_index, the
    single vector pooled from <|vision_start|> to <|vision_end|>."""

    def __init__(self, model_dir, device, dtype, log):
        super().__init__(model_dir, device, dtype, log)
        from tokenizers import Tokenizer
        from transformers import Qwen2VLImageProcessor

        with open(os.path.join(model_dir, "preprocessor_config.json")) as f:
            pc = json.load(f)
        self.processor = Qwen2VLImageProcessor(min_pixels=pc["min_pixels"], max_pixels=pc["max_pixels"],
                                               image_mean=pc["image_mean"], image_std=pc["image_std"],
                                               patch_size=pc.get("patch_size", 14),
                                               temporal_patch_size=pc.get("temporal_patch_size", 2),
                                               merge_size=pc.get("merge_size", 2))
        self.merge = pc.get("merge_size", 2)
        cfg = self.model.config
        self.image_id, self.start_id, self.end_id = cfg.image_token_id, cfg.vision_start_token_id, cfg.vision_end_token_id
        tok = Tokenizer.from_file(os.path.join(model_dir, "tokenizer.json"))
        self.prefix = tok.encode("<|im_start|>user\n", add_special_tokens=False).ids + [self.start_id]
        self.suffix = [self.end_id] + tok.encode("Describe the image.<|im_end|>\n", add_special_tokens=False).ids

    def embed_images(self, blobs, task):
        """Dense [B, H] and multi [B, L, P] (f32, on the device) for equal-sized images."""
        import io

        from PIL import Image

        torch = self.torch
        self.task = task
        pils = [Image.open(io.BytesIO(b)).convert("RGB") for b in blobs]
        enc = self.processor(images=pils, return_tensors="pt")
        pv = enc["pixel_values"].to(self.device, self.dtype)
        thw = enc["image_grid_thw"].to(self.device)
        rows = []
        for g in thw.tolist():
            n = g[0] * g[1] * g[2] // (self.merge * self.merge)
            rows.append(self.prefix + [self.image_id] * n + self.suffix)
        if len({len(r) for r in rows}) != 1:
            raise ValueError("timed image batches must hold images of one size")
        ids = torch.tensor(rows, device=self.device)
        am = torch.ones_like(ids)
        mm = (ids == self.image_id).int()
        with torch.no_grad():
            pos, _ = self.model.model.get_rope_index(ids, mm_token_type_ids=mm, image_grid_thw=thw, attention_mask=am)
            hidden = self.model.model(input_ids=ids, attention_mask=am, pixel_values=pv, image_grid_thw=thw,
                                      mm_token_type_ids=mm, position_ids=pos, use_cache=False).last_hidden_state
            s, e = rows[0].index(self.start_id), rows[0].index(self.end_id)
            single = torch.nn.functional.normalize(hidden[:, s:e + 1].float().mean(1), dim=-1)
            pre = "base_model.model.multi_vector_projector"
            mv = torch.nn.functional.linear(hidden, self.proj["weight"], self.proj["bias"])
            mv = mv + self.scaling * ((hidden @ self.lora[f"{pre}.lora_A.{task}.weight"].T)
                                      @ self.lora[f"{pre}.lora_B.{task}.weight"].T)
            multi = torch.nn.functional.normalize(mv.float(), dim=-1)
        return single, multi

    def image_parity(self, cases):
        out = {}
        for case in cases:
            rows = []
            for path in case["files"]:  # one at a time: the sizes differ
                with open(path, "rb") as f:
                    single, multi = self.embed_images([f.read()], case["task"])
                rows.append({"dense": single[0].cpu().tolist(), "multi": multi[0].cpu().tolist()})
            out[case["name"]] = rows
        return out

    def image_timing(self, cases, warmup, iters, log):
        torch = self.torch
        rows = []
        for case in cases:
            blobs = []
            for path in case["files"]:
                with open(path, "rb") as f:
                    blobs.append(f.read())
            for _ in range(warmup):
                s, m = self.embed_images(blobs, case["task"])
                s.cpu(), m.cpu()
            if self.device.type == "cuda":
                torch.cuda.synchronize()
                torch.cuda.reset_peak_memory_stats()
            ms = []
            for _ in range(iters):
                t = time.perf_counter()
                s, m = self.embed_images(blobs, case["task"])
                s.cpu(), m.cpu()
                ms.append((time.perf_counter() - t) * 1e3)
            ms.sort()
            median = ms[len(ms) // 2]
            peak = torch.cuda.max_memory_allocated() if self.device.type == "cuda" else None
            log(f"  reference {case['name']}: {median:.2f} ms")
            rows.append({"name": case["name"], "batch": len(blobs), "median_ms": median,
                         "items_per_s": len(blobs) / (median / 1e3), "peak_bytes": peak})
        return rows


# ---------------------------------------------------------------------------------------------
# Driver


def write_images(work, specs):
    """specs: {name: (width, height, seed)} -> {name: path}."""
    os.makedirs(work, exist_ok=True)
    out = {}
    for name, (w, h, seed) in specs.items():
        path = os.path.join(work, f"{name}.png")
        if not os.path.exists(path):
            with open(path, "wb") as f:
                f.write(png_bytes(w, h, seed))
        out[name] = path
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quiver", required=True)
    ap.add_argument("--model", required=True)
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--dtype", default=None, help="f32 or bf16 (default: bf16 on cuda, f32 on cpu)")
    ap.add_argument("--reference", choices=["torch", "goldens"], default="torch")
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--iters", type=int, default=10)
    ap.add_argument("--image-shapes", default=IMAGE_SHAPES, help="timed image batches, SIDExBATCH")
    ap.add_argument("--text-shape", default=TEXT_REFERENCE_SHAPE,
                    help="the encoder's own batched text throughput the ingest goal is set against, BATCHxTOKENS")
    ap.add_argument("--no-image-timing", action="store_true", help="parity only")
    ap.add_argument("--no-serving", action="store_true")
    ap.add_argument("--clients", type=int, default=16)
    ap.add_argument("--passages", type=int, default=20000)
    ap.add_argument("--passages-per-request", type=int, default=16)
    ap.add_argument("--images", type=int, default=2000)
    ap.add_argument("--images-per-request", type=int, default=4)
    ap.add_argument("--image-pool", type=int, default=40, help="distinct generated images the ingest cycles through")
    ap.add_argument("--queries", type=int, default=5000)
    ap.add_argument("--ingest-seconds", type=float, default=200, help="stop submitting passages after this")
    ap.add_argument("--image-seconds", type=float, default=60)
    ap.add_argument("--query-seconds", type=float, default=90)
    ap.add_argument("--server-start-seconds", type=float, default=180)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--work", default=None)
    ap.add_argument("--json", default=None)
    args = ap.parse_args()

    def log(msg):
        print(msg, file=sys.stderr, flush=True)

    dtype = args.dtype or ("bf16" if args.device.startswith("cuda") else "f32")
    args.work = os.path.abspath(args.work or os.path.join("/tmp", f"gpu-serving-check-{os.getpid()}"))
    os.makedirs(args.work, exist_ok=True)
    started = time.time()

    with open(os.path.join(args.model, "config.json")) as f:
        tasks = json.load(f).get("task_names", ["retrieval", "text-matching", "code"])
    if args.reference == "goldens":
        cases, reference = goldens_images(args.model)
    else:
        paths = write_images(os.path.join(args.work, "images"),
                             {n: (w, h, i) for i, (n, (w, h)) in enumerate(PARITY_IMAGES.items())})
        cases = [{"name": f"{n}/{t}", "task": t, "files": [paths[n]]} for n in PARITY_IMAGES for t in tasks]
        reference = None
    timing_cases = []
    if not args.no_image_timing:
        for name, side, batch in parse_pairs(args.image_shapes):
            paths = write_images(os.path.join(args.work, "images"),
                                 {f"t{side}-{k}": (side, side, 100 + side + k) for k in range(batch)})
            timing_cases.append({"name": name, "task": tasks[0], "files": list(paths.values()),
                                 "warmup": args.warmup, "iters": args.iters})
    [(name, batch, tokens)] = parse_pairs(args.text_shape)
    request = {"image_parity": cases, "image_timing": timing_cases, "seed": args.seed,
               "timing": [] if args.no_image_timing else
               [{"name": name, "batch": batch, "tokens": tokens, "task": tasks[0],
                 "warmup": args.warmup, "iters": args.iters}]}
    q_fused, fused = run_debug_encoder(args.quiver, args.model, args.device, dtype, "fused", request,
                                       os.path.join(args.work, "fused"), log)
    # The generic path for parity and image timings (the text timing once is enough).
    q_generic, generic = run_debug_encoder(args.quiver, args.model, args.device, dtype, "generic",
                                           dict(request, timing=[]), os.path.join(args.work, "generic"), log)
    timing_ref = None
    if args.reference == "torch":
        ref = TorchImageReference(args.model, args.device, dtype, log)
        reference = ref.image_parity(cases)
        if timing_cases:
            timing_ref = ref.image_timing(timing_cases, args.warmup, args.iters, log)
        ref.close()
    parity = image_parity_rows([c["name"] for c in cases], fused, generic, reference)
    timing = image_timing_rows(q_fused["image_timing"], q_generic["image_timing"], timing_ref)
    report = {
        "header": {"device": q_fused["device"], "dtype": dtype, "reference": args.reference,
                   "model": os.path.abspath(args.model), "cuda_compiled": q_fused["cuda_compiled"]},
        "image_parity": parity,
        "parity_ok": bool(parity) and all(p["ok"] for p in parity),
        "image_timing": timing,
        "image_goals": image_goals(timing) if timing else [],
    }
    if not args.no_serving:
        text_ref = next((t["items_per_s"] * t["tokens"] for t in q_fused["timing"] if t["name"] == args.text_shape),
                        None)
        phases, utilisation = serving(args, log)
        report["serving"] = serving_summary(phases, text_ref, utilisation, args.text_shape)
        report["serving_ok"] = all(p["errors"] == 0 and p["items"] > 0 for p in phases.values())
    report["seconds"] = time.time() - started
    print(render(report))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(report, f, indent=2)
    return 0 if report["parity_ok"] and report.get("serving_ok", True) else 1


if __name__ == "__main__":
    sys.exit(main())
