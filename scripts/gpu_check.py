#!/usr/bin/env python3
"""The GPU check of Quiver's jina-embeddings-v4 text path (driven by scripts/gpu-check.sh).

Runs `quiver debug-encoder` on a checkpoint twice, with packed batches (on a GPU: the fused kernels)
and with padded batches (on a GPU: candle's generic ops; on a CPU the padded pass is the CPU one and
the packed pass runs the fused kernels' CPU twins), and compares both with a reference:

  --reference torch    transformers' Qwen2.5-VL (sdpa attention, the model dtype) with jina's heads
                       and the task LoRA applied unmerged by forward hooks, in this process (needs
                       torch, transformers, safetensors); it is also timed on the same device, and
                       its peak memory (torch.cuda.max_memory_allocated) set against Quiver's (the
                       CUDA memory pool's high-water mark): both count tensors, weights included.
  --reference goldens  the transformers outputs committed with the tiny fixture
                       (tests/fixtures/jina-tiny/goldens.*), for testing this script on a CPU
                       without torch; no reference timings then.

Parity: cosine of the dense vector >= 0.999 and of every per-token vector >= 0.99, per text length
and task adapter. Prints one table (parity, timings and ratios, peak memory, launches, goals) and
writes it as JSON (--json). Exits 1 when a parity check fails or a run breaks; the speed and memory
goals are reported, not enforced.

The comparison and table code is plain Python (no numpy), so the CPU test runs with a bare python3.
"""

import argparse
import array
import json
import math
import os
import random
import struct
import subprocess
import sys
import time

DENSE_MIN = 0.999
TOKEN_MIN = 0.99
# Goals of the issue, each (shape, what, bound): Quiver/reference ratios.
GOALS = [
    ("1x32", "latency", 0.5),
    ("32x128", "throughput", 1.5),
    ("32x512", "throughput", 1.5),
    ("32x512", "memory", 1.0),
]


# ---------------------------------------------------------------------------------------------
# Comparison and table (shared by every mode, tested by scripts/gpu_check_test.py)


def cosine(a, b):
    dot = sum(x * y for x, y in zip(a, b))
    na = math.sqrt(sum(x * x for x in a))
    nb = math.sqrt(sum(y * y for y in b))
    if na == 0.0 or nb == 0.0:
        return 0.0
    return dot / (na * nb)


def compare(ours, ref):
    """Cosines of one input: ours/ref are {"dense": [..], "multi": [[..], ..]}."""
    if len(ours["dense"]) != len(ref["dense"]):
        raise ValueError(f"dense sizes differ: {len(ours['dense'])} vs {len(ref['dense'])}")
    if len(ours["multi"]) != len(ref["multi"]):
        raise ValueError(f"token counts differ: {len(ours['multi'])} vs {len(ref['multi'])}")
    tokens = [cosine(a, b) for a, b in zip(ours["multi"], ref["multi"])]
    dense = cosine(ours["dense"], ref["dense"])
    worst = min(tokens) if tokens else float("nan")
    return {"dense": dense, "min_token": worst,
            "ok": dense >= DENSE_MIN and bool(tokens) and worst >= TOKEN_MIN}


def ratio(num, den):
    if num is None or den is None or den == 0:
        return None
    return num / den


def timing_rows(quiver, padded, reference):
    """One row per shape: Quiver's packed and padded times and the reference's, with ratios."""
    by_name = lambda rows: {r["name"]: r for r in rows or []}
    g, r = by_name(padded), by_name(reference)
    out = []
    for q in quiver:
        name = q["name"]
        gq, rq = g.get(name), r.get(name)
        out.append({
            "shape": name,
            "batch": q["batch"],
            "tokens": q["tokens"],
            "quiver_ms": q["median_ms"],
            "quiver_items_per_s": q["items_per_s"],
            "padded_ms": gq["median_ms"] if gq else None,
            "reference_ms": rq["median_ms"] if rq else None,
            "reference_items_per_s": rq["items_per_s"] if rq else None,
            # < 1 is faster than the reference.
            "latency_ratio": ratio(q["median_ms"], rq["median_ms"] if rq else None),
            # > 1 is more items per second than the reference.
            "throughput_ratio": ratio(q["items_per_s"], rq["items_per_s"] if rq else None),
            "launches": q.get("launches"),
            "quiver_peak_bytes": q.get("peak_bytes"),
            "reference_peak_bytes": rq.get("peak_bytes") if rq else None,
            "memory_ratio": ratio(q.get("peak_bytes"), rq.get("peak_bytes") if rq else None),
        })
    return out


def goals(rows):
    """The issue's goals against the timing rows; `met` is None where a number is missing."""
    by_shape = {r["shape"]: r for r in rows}
    out = []
    for shape, what, bound in GOALS:
        row = by_shape.get(shape)
        key = {"latency": "latency_ratio", "throughput": "throughput_ratio", "memory": "memory_ratio"}[what]
        value = row[key] if row else None
        if value is None:
            met = None
        elif what == "throughput":
            met = value >= bound
        else:
            met = value <= bound
        sign = ">=" if what == "throughput" else "<="
        out.append({"shape": shape, "what": what, "goal": f"{sign} {bound}x reference", "ratio": value, "met": met})
    return out


def fmt(x, spec=".3f", none="-"):
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return none
    return format(x, spec)


def gib(b):
    return None if b is None else b / 2**30


def render(report):
    """The table printed at the end of a run."""
    lines = []
    h = report["header"]
    lines.append(f"Quiver jina-embeddings-v4 text path on {h['device']} ({h['dtype']}), reference: {h['reference']}")
    lines.append("")
    lines.append(f"parity (cosine; pass: dense >= {DENSE_MIN}, every token >= {TOKEN_MIN})")
    cols = ["case", "packed dense", "packed min tok", "padded dense", "padded min tok", "pass"]
    table = []
    for p in report["parity"]:
        f, g = p["packed"], p.get("padded")
        table.append([p["case"], fmt(f["dense"], ".6f"), fmt(f["min_token"], ".6f"),
                      fmt(g["dense"], ".6f") if g else "-", fmt(g["min_token"], ".6f") if g else "-",
                      "yes" if p["ok"] else "NO"])
    lines += grid(cols, table)
    lines.append("")
    lines.append("timing (median of the timed calls: token ids on the host to vectors on the host)")
    cols = ["shape", "quiver ms", "padded ms", "ref ms", "quiver/ref", "quiver items/s", "ref items/s",
            "ratio", "launches", "quiver GiB", "ref GiB", "mem ratio"]
    table = []
    for r in report["timing"]:
        table.append([r["shape"], fmt(r["quiver_ms"], ".2f"), fmt(r["padded_ms"], ".2f"),
                      fmt(r["reference_ms"], ".2f"), fmt(r["latency_ratio"], ".2f"),
                      fmt(r["quiver_items_per_s"], ".1f"), fmt(r["reference_items_per_s"], ".1f"),
                      fmt(r["throughput_ratio"], ".2f"), fmt(r["launches"], "d"),
                      fmt(gib(r["quiver_peak_bytes"]), ".2f"), fmt(gib(r["reference_peak_bytes"]), ".2f"),
                      fmt(r["memory_ratio"], ".2f")])
    lines += grid(cols, table)
    lines.append("")
    lines.append("goals (same device, same run)")
    table = [[g["shape"], g["what"], g["goal"], fmt(g["ratio"], ".2f"),
              {True: "met", False: "MISSED", None: "-"}[g["met"]]] for g in report["goals"]]
    lines += grid(["shape", "what", "goal", "ratio", "status"], table)
    lines.append("")
    lines.append(f"parity: {'PASS' if report['parity_ok'] else 'FAIL'}")
    return "\n".join(lines)


def grid(cols, rows):
    widths = [max(len(str(c)), *(len(str(r[i])) for r in rows)) if rows else len(str(c)) for i, c in enumerate(cols)]
    line = lambda cells: "  ".join(str(c).ljust(w) for c, w in zip(cells, widths)).rstrip()
    return [line(cols), line(["-" * w for w in widths])] + [line(r) for r in rows]


def build_report(header, cases, packed, padded, reference, timing_packed, timing_padded, timing_ref):
    """Everything the table and the JSON hold. `packed`/`padded`/`reference` map case name to a
    list of {"dense", "multi"} rows; the Quiver timings are the packed pass's, with the padded
    pass's times beside them."""
    parity = []
    for name in cases:
        if len(packed[name]) != len(reference[name]) or (padded and len(padded[name]) != len(reference[name])):
            raise ValueError(f"{name}: row counts differ from the reference")
        f = [compare(o, r) for o, r in zip(packed[name], reference[name])]
        g = [compare(o, r) for o, r in zip(padded[name], reference[name])] if padded else None
        worst = lambda cs: {"dense": min(c["dense"] for c in cs), "min_token": min(c["min_token"] for c in cs),
                            "ok": all(c["ok"] for c in cs)}
        entry = {"case": name, "packed": worst(f)}
        if g is not None:
            entry["padded"] = worst(g)
        entry["ok"] = entry["packed"]["ok"] and (g is None or entry["padded"]["ok"])
        parity.append(entry)
    rows = timing_rows(timing_packed, timing_padded, timing_ref)
    return {
        "header": header,
        "parity": parity,
        "parity_ok": bool(parity) and all(p["ok"] for p in parity),
        "timing": rows,
        "goals": goals(rows),
    }


# ---------------------------------------------------------------------------------------------
# Quiver


def debug_encoder(binary, model, device, dtype, passes, request, out_dir, label, log):
    """Runs `quiver debug-encoder` with `passes` (extra flags) on `request`; returns its result.json and
    the flat f32 array its rows point into."""
    os.makedirs(out_dir, exist_ok=True)
    req_path = os.path.join(out_dir, "request.json")
    with open(req_path, "w") as f:
        json.dump(request, f)
    cmd = [binary, "debug-encoder", "--model", model, "--device", device, *passes,
           "--request", req_path, "--out", out_dir]
    if dtype:
        cmd += ["--dtype", dtype]
    log(f"$ {' '.join(cmd)}")
    started = time.time()
    subprocess.run(cmd, check=True)
    log(f"  {label}: {time.time() - started:.1f} s")
    with open(os.path.join(out_dir, "result.json")) as f:
        result = json.load(f)
    vec = array.array("f")
    with open(os.path.join(out_dir, "vectors.f32"), "rb") as f:
        vec.frombytes(f.read())
    if sys.byteorder != "little":
        vec.byteswap()
    return result, vec


def case_outputs(cases, vec):
    """Each parity case's rows as {"dense": [...], "multi": [[...], ...]}, by case name."""
    outputs = {}
    for case in cases:
        rows = []
        for row in case["rows"]:
            d, m = row["dense"], row["multi"]
            dense = vec[d["offset"]:d["offset"] + d["len"]].tolist()
            flat = vec[m["offset"]:m["offset"] + m["rows"] * m["dim"]]
            multi = [flat[i * m["dim"]:(i + 1) * m["dim"]].tolist() for i in range(m["rows"])]
            rows.append({"dense": dense, "multi": multi})
        outputs[case["name"]] = rows
    return outputs


def run_quiver(binary, model, device, dtype, text_pass, request, out_dir, log):
    result, vec = debug_encoder(binary, model, device, dtype, ["--text-pass", text_pass], request, out_dir,
                                text_pass, log)
    return result, case_outputs(result["parity"], vec)


# ---------------------------------------------------------------------------------------------
# References


def read_safetensors(path):
    """{name: (shape, flat list of floats)} for the F32 tensors of a safetensors file."""
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
        data = f.read()
    out = {}
    for name, info in header.items():
        if name == "__metadata__" or info["dtype"] != "F32":
            continue
        a, b = info["data_offsets"]
        vals = array.array("f")
        vals.frombytes(data[a:b])
        if sys.byteorder != "little":
            vals.byteswap()
        out[name] = (info["shape"], vals)
    return out


def goldens_reference(fixture):
    """Parity cases from the tiny fixture's goldens: (cases, {case: [row]}), no timings."""
    with open(os.path.join(fixture, "goldens.json")) as f:
        manifest = json.load(f)
    tensors = read_safetensors(os.path.join(fixture, "goldens.safetensors"))
    cases, reference = [], {}
    for task in manifest["tasks"]:
        for case, spec in sorted(manifest["cases"].items()):
            if any(0 in m for m in spec["attention_mask"]):
                continue  # a padded pair; Quiver gets unpadded rows
            ids = spec["input_ids"][0]
            name = f"{case}/{task}"
            _, single = tensors[f"{task}/{case}/single"]
            shape, multi = tensors[f"{task}/{case}/multi"]
            dim = shape[-1]
            cases.append({"name": name, "task": task, "ids": [ids]})
            reference[name] = [{"dense": single.tolist(),
                                "multi": [multi[i * dim:(i + 1) * dim].tolist() for i in range(len(ids))]}]
    return cases, reference


class TorchReference:
    """transformers' Qwen2.5-VL with jina's heads, the task LoRA unmerged through forward hooks."""

    TARGETS = ["self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "self_attn.o_proj",
               "mlp.gate_proj", "mlp.up_proj", "mlp.down_proj"]

    def __init__(self, model_dir, device, dtype, log):
        import torch
        from safetensors import safe_open
        from transformers import Qwen2_5_VLConfig, Qwen2_5_VLForConditionalGeneration

        self.torch = torch
        self.device = torch.device(device)
        self.dtype = {"bf16": torch.bfloat16, "f32": torch.float32}[dtype]
        started = time.time()
        cfg_path = os.path.join(model_dir, "config.v5.json")
        if os.path.exists(cfg_path):
            with open(cfg_path) as f:
                cfg = Qwen2_5_VLConfig.from_dict(json.load(f))
        else:
            cfg = Qwen2_5_VLConfig.from_pretrained(model_dir)
        self.model = Qwen2_5_VLForConditionalGeneration.from_pretrained(
            model_dir, config=cfg, dtype=self.dtype, attn_implementation="sdpa", device_map=str(self.device)
        ).eval()
        with open(os.path.join(model_dir, "model.safetensors.index.json")) as f:
            weight_map = json.load(f)["weight_map"]
        # The shards use the legacy names (model.layers.*); make sure transformers mapped them
        # instead of leaving freshly initialised weights.
        text = self.model.model.language_model
        for key, param in (("model.layers.0.self_attn.q_proj.weight", text.layers[0].self_attn.q_proj.weight),
                           ("model.norm.weight", text.norm.weight)):
            with safe_open(os.path.join(model_dir, weight_map[key]), "pt") as f:
                stored = f.get_tensor(key).to(self.device, self.dtype)
            if not torch.equal(stored, param.detach()):
                raise SystemExit(f"reference: {key} was not loaded from the checkpoint")
        proj = {}
        for key in ("multi_vector_projector.weight", "multi_vector_projector.bias"):
            with safe_open(os.path.join(model_dir, weight_map[key]), "pt") as f:
                proj[key.rsplit(".", 1)[1]] = f.get_tensor(key).to(self.device, self.dtype)
        self.proj = proj
        with open(os.path.join(model_dir, "adapters", "adapter_config.json")) as f:
            ac = json.load(f)
        self.scaling = ac["lora_alpha"] / (math.sqrt(ac["r"]) if ac.get("use_rslora") else ac["r"])
        self.tasks = json.load(open(os.path.join(model_dir, "config.json"))).get(
            "task_names", ["retrieval", "text-matching", "code"])
        self.lora = {}
        with safe_open(os.path.join(model_dir, "adapters", "adapter_model.safetensors"), "pt") as f:
            for key in f.keys():
                self.lora[key] = f.get_tensor(key).to(self.device, self.dtype)
        self.task = None
        layers = self.model.model.language_model.layers
        prefix = "base_model.model.model.language_model.layers"
        if not any(k.startswith(prefix) for k in self.lora):
            prefix = "base_model.model.model.layers"
        self.hooks = []
        for i, layer in enumerate(layers):
            for mod in self.TARGETS:
                pre = f"{prefix}.{i}.{mod}"
                self.hooks.append(layer.get_submodule(mod).register_forward_hook(self._hook(pre)))
        log(f"  reference loaded in {time.time() - started:.1f} s")

    def _hook(self, pre):
        def hook(_module, inputs, output):
            if self.task is None:
                return output
            a = self.lora[f"{pre}.lora_A.{self.task}.weight"]
            b = self.lora[f"{pre}.lora_B.{self.task}.weight"]
            return output + self.scaling * ((inputs[0] @ a.T) @ b.T)
        return hook

    def embed(self, ids_rows, task):
        """Heads of jina-embeddings-v4 for equal-length rows (no padding): dense [B, H] and multi
        [B, L, P] as f32 tensors on the device."""
        torch = self.torch
        self.task = task
        ids = torch.tensor(ids_rows, device=self.device)
        b, l = ids.shape
        pos = torch.arange(l, device=self.device).view(1, 1, l).expand(3, b, l)
        with torch.no_grad():
            hidden = self.model.model(input_ids=ids, position_ids=pos, use_cache=False).last_hidden_state
            single = torch.nn.functional.normalize(hidden.float().mean(1), dim=-1)
            pre = "base_model.model.multi_vector_projector"
            mv = torch.nn.functional.linear(hidden, self.proj["weight"], self.proj["bias"])
            mv = mv + self.scaling * ((hidden @ self.lora[f"{pre}.lora_A.{task}.weight"].T)
                                      @ self.lora[f"{pre}.lora_B.{task}.weight"].T)
            multi = torch.nn.functional.normalize(mv.float(), dim=-1)
        return single, multi

    def parity(self, cases):
        out = {}
        for case in cases:
            single, multi = self.embed(case["ids"], case["task"])
            out[case["name"]] = [{"dense": single[i].cpu().tolist(), "multi": multi[i].cpu().tolist()}
                                 for i in range(len(case["ids"]))]
        return out

    def timing(self, shapes, task, seed, warmup, iters, vocab, log):
        torch = self.torch
        rng = random.Random(seed)
        rows = []
        for name, batch, tokens in shapes:
            ids = [[rng.randrange(vocab) for _ in range(tokens)] for _ in range(batch)]
            for _ in range(warmup):
                s, m = self.embed(ids, task)
                s.cpu(), m.cpu()
            if self.device.type == "cuda":
                torch.cuda.synchronize()
                torch.cuda.reset_peak_memory_stats()
            ms = []
            for _ in range(iters):
                t = time.perf_counter()
                s, m = self.embed(ids, task)
                s.cpu(), m.cpu()
                ms.append((time.perf_counter() - t) * 1e3)
            ms.sort()
            median = ms[len(ms) // 2]
            peak = torch.cuda.max_memory_allocated() if self.device.type == "cuda" else None
            log(f"  reference {name}: {median:.2f} ms")
            rows.append({"name": name, "batch": batch, "tokens": tokens, "median_ms": median,
                         "items_per_s": batch / (median / 1e3), "peak_bytes": peak})
        return rows

    def close(self):
        for h in self.hooks:
            h.remove()
        del self.model
        if self.device.type == "cuda":
            self.torch.cuda.empty_cache()


# ---------------------------------------------------------------------------------------------
# Driver


def parse_shapes(s):
    out = []
    for part in s.split(","):
        b, t = part.lower().split("x")
        out.append((part, int(b), int(t)))
    return out


def special_ids(model_dir):
    with open(os.path.join(model_dir, "config.json")) as f:
        cfg = json.load(f)
    found = set()
    for level in (cfg, cfg.get("text_config") or {}):
        for k, v in level.items():
            if k.endswith("_token_id") and isinstance(v, int):
                found.add(v)
    vocab = (cfg.get("text_config") or {}).get("vocab_size") or cfg["vocab_size"]
    return found, vocab


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quiver", required=True, help="the quiver binary")
    ap.add_argument("--model", required=True, help="checkpoint directory")
    ap.add_argument("--device", default="cuda", help="cuda, cuda:N or cpu")
    ap.add_argument("--dtype", default=None, help="f32 or bf16 (default: bf16 on cuda, f32 on cpu)")
    ap.add_argument("--reference", choices=["torch", "goldens"], default="torch")
    ap.add_argument("--lengths", default="1,32,512,4096", help="parity text lengths in tokens")
    ap.add_argument("--shapes", default="1x32,32x128,32x512,128x256", help="timed batches, BATCHxTOKENS")
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--iters", type=int, default=10)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--work", default=None, help="directory for Quiver's outputs (default: a temp dir)")
    ap.add_argument("--json", default=None, help="write the report here")
    args = ap.parse_args()

    def log(msg):
        print(msg, file=sys.stderr, flush=True)

    dtype = args.dtype or ("bf16" if args.device.startswith("cuda") else "f32")
    work = args.work or os.path.join("/tmp", f"gpu-check-{os.getpid()}")
    os.makedirs(work, exist_ok=True)
    started = time.time()

    if args.reference == "goldens":
        cases, reference = goldens_reference(args.model)
        torch_ref = None
    else:
        specials, vocab = special_ids(args.model)
        rng = random.Random(args.seed)
        pool = [i for i in range(min(vocab, 151643)) if i not in specials]
        cases = []
        with open(os.path.join(args.model, "config.json")) as f:
            tasks = json.load(f).get("task_names", ["retrieval", "text-matching", "code"])
        for n in [int(x) for x in args.lengths.split(",")]:
            ids = [rng.choice(pool) for _ in range(n)]
            for task in tasks:
                cases.append({"name": f"L{n}/{task}", "task": task, "ids": [ids]})
        reference = None
    shapes = parse_shapes(args.shapes)
    timing_req = [{"name": name, "batch": b, "tokens": t, "task": cases[0]["task"],
                   "warmup": args.warmup, "iters": args.iters} for name, b, t in shapes]
    request = {"parity": cases, "timing": timing_req, "seed": args.seed}

    q_packed, packed = run_quiver(args.quiver, args.model, args.device, dtype, "packed", request,
                                  os.path.join(work, "packed"), log)
    q_padded, padded = run_quiver(args.quiver, args.model, args.device, dtype, "padded", request,
                                  os.path.join(work, "padded"), log)
    timing_ref = None
    if args.reference == "torch":
        ref = TorchReference(args.model, args.device, dtype, log)
        reference = ref.parity(cases)
        _, vocab = special_ids(args.model)
        timing_ref = ref.timing(shapes, cases[0]["task"], args.seed, args.warmup, args.iters,
                                min(vocab, 150000), log)
        ref.close()

    if not q_packed["packed"] or q_padded["packed"]:
        raise SystemExit("debug-encoder did not run the text passes asked for")
    header = {"device": q_packed["device"], "dtype": dtype, "reference": args.reference,
              "model": os.path.abspath(args.model), "quiver_load_seconds": q_packed["load_seconds"],
              "quiver_weights_bytes": q_packed.get("weights_bytes"), "cuda_compiled": q_packed["cuda_compiled"]}
    report = build_report(header, [c["name"] for c in cases], packed, padded, reference,
                          q_packed["timing"], q_padded["timing"], timing_ref)
    report["seconds"] = time.time() - started
    print(render(report))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(report, f, indent=2)
    return 0 if report["parity_ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
