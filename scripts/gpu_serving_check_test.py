#!/usr/bin/env python3
"""Tests of scripts/gpu_serving_check.py's helpers, tables and goals on made-up numbers (no GPU, no
torch), and of its load phases against a tiny HTTP server on loopback. The end-to-end CPU run
(`scripts/gpu-check.sh --serving --device cpu`) checks the same code on the tiny fixture through
`quiver debug-encoder` and `quiver serve`."""

import http.server
import json
import os
import struct
import sys
import threading
import unittest
import zlib

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import gpu_serving_check as s  # noqa: E402


def row(dense, multi):
    return {"dense": dense, "multi": multi}


def phase(items, seconds, latencies=(), embed=(), total=(), errors=0, stopped=False, tokens=None, busy=None):
    return {"clients": 4, "items": items, "requests": len(latencies) + errors, "errors": errors,
            "seconds": seconds, "stopped_at_limit": stopped, "latencies_ms": list(latencies),
            "embed_ms": list(embed), "server_total_ms": list(total), "tokens": tokens, "worker_busy_s": busy}


class Inputs(unittest.TestCase):
    def test_png_is_valid_and_seeded(self):
        png = s.png_bytes(5, 3, seed=7)
        self.assertEqual(png[:8], b"\x89PNG\r\n\x1a\n")
        w, h = struct.unpack(">II", png[16:24])
        self.assertEqual((w, h), (5, 3))
        # IDAT holds one filter byte and 3 values per pixel per row.
        at = png.index(b"IDAT")
        n = struct.unpack(">I", png[at - 4:at])[0]
        raw = zlib.decompress(png[at + 4:at + 4 + n])
        self.assertEqual(len(raw), 3 * (1 + 3 * 5))
        self.assertEqual(png, s.png_bytes(5, 3, seed=7))
        self.assertNotEqual(png, s.png_bytes(5, 3, seed=8))

    def test_passages_have_the_asked_word_counts(self):
        import random
        rng = random.Random(1)
        lens = [len(s.passage(rng).split()) for _ in range(200)]
        self.assertGreaterEqual(min(lens), 100)
        self.assertLessEqual(max(lens), 300)
        self.assertGreater(max(lens) - min(lens), 100)

    def test_pairs(self):
        self.assertEqual(s.parse_pairs("448x1,756X8"), [("448x1", 448, 1), ("756X8", 756, 8)])


class Numbers(unittest.TestCase):
    def test_percentile_interpolates_like_numpy(self):
        v = list(range(1, 101))
        self.assertAlmostEqual(s.percentile(v, 50), 50.5)
        self.assertAlmostEqual(s.percentile(v, 99), 99.01)
        self.assertEqual(s.percentile([3.0], 99), 3.0)
        self.assertIsNone(s.percentile([], 50))

    def test_nvidia_smi_samples(self):
        text = "87, 40000\n 93 , 41000\nN/A, 1\n\n100, 39000\n"
        samples = s.parse_nvidia_smi(text)
        self.assertEqual(samples, [(87.0, 40000.0), (93.0, 41000.0), (100.0, 39000.0)])
        u = s.utilisation_summary(samples)
        self.assertAlmostEqual(u["mean_util_pct"], 280 / 3)
        self.assertEqual(u["max_memory_mib"], 41000.0)
        self.assertIsNone(s.utilisation_summary([]))

    def test_metrics_of_one_model_and_deltas(self):
        text = ("# HELP quiver_encoder_tokens_total Tokens\n"
                'quiver_encoder_tokens_total{model="jina"} 1200\n'
                'quiver_encoder_tokens_total{model="other"} 7\n'
                'quiver_encoder_busy_seconds_total{model="jina"} 2.5\n'
                'quiver_model_ready{model="jina"} 1\n')
        m = s.parse_metrics(text)
        self.assertEqual(m, {"quiver_encoder_tokens_total": 1200.0, "quiver_encoder_busy_seconds_total": 2.5})
        after = {"quiver_encoder_tokens_total": 2000.0, "quiver_encoder_busy_seconds_total": 4.0}
        self.assertEqual(s.counter_delta(m, after), {"tokens": 800.0, "worker_busy_s": 1.5})
        self.assertEqual(s.counter_delta({}, after), {"tokens": None, "worker_busy_s": None})


class Report(unittest.TestCase):
    def test_image_parity_needs_both_passes(self):
        ref = {"a": [row([1.0, 0.0], [[1.0, 0.0]])]}
        good = {"a": [row([1.0, 0.0], [[1.0, 0.0]])]}
        bad = {"a": [row([0.0, 1.0], [[1.0, 0.0]])]}
        self.assertTrue(s.image_parity_rows(["a"], good, good, ref)[0]["ok"])
        self.assertFalse(s.image_parity_rows(["a"], good, bad, ref)[0]["ok"])
        self.assertFalse(s.image_parity_rows(["a"], bad, good, ref)[0]["ok"])
        with self.assertRaises(ValueError):
            s.image_parity_rows(["a"], {"a": []}, good, ref)

    def test_image_goals(self):
        quiver = [{"name": "448x1", "batch": 1, "median_ms": 40.0, "items_per_s": 25.0},
                  {"name": "448x8", "batch": 8, "median_ms": 100.0, "items_per_s": 80.0},
                  {"name": "756x8", "batch": 8, "median_ms": 300.0, "items_per_s": 26.7}]
        torch = [{"name": "448x1", "batch": 1, "median_ms": 123.0, "items_per_s": 8.1},
                 {"name": "448x8", "batch": 8, "median_ms": 300.0, "items_per_s": 26.7},
                 {"name": "756x8", "batch": 8, "median_ms": 600.0, "items_per_s": 13.4}]
        rows = s.image_timing_rows(quiver, None, torch)
        goals = {g["shape"]: g for g in s.image_goals(rows)}
        self.assertTrue(goals["448x1"]["met"])  # 40/123 <= 0.5
        self.assertAlmostEqual(goals["448x8"]["ratio"], 80.0 / 26.7)
        self.assertFalse(goals["448x8"]["met"])  # 2.996 < 3
        self.assertFalse(goals["756x8"]["met"])
        # Without a reference nothing is judged.
        self.assertTrue(all(g["met"] is None for g in s.image_goals(s.image_timing_rows(quiver, None, None))))

    def test_serving_summary_and_goals(self):
        phases = {
            "ingest_text": phase(800, 10.0, latencies=[5.0] * 10, tokens=160000, busy=9.0),
            "ingest_images": phase(40, 4.0, latencies=[9.0] * 5),
            "queries": phase(100, 2.0, latencies=[float(i) for i in range(1, 101)],
                             embed=[3.0] * 100, total=[4.0] * 100),
        }
        # 16,000 tokens/s over HTTP against 18,000 tokens/s in the encoder's own batches.
        out = s.serving_summary(phases, 18000.0, None, "32x200")
        t = out["phases"]["ingest_text"]
        self.assertAlmostEqual(t["items_per_s"], 80.0)
        self.assertAlmostEqual(t["tokens_per_s"], 16000.0)
        self.assertAlmostEqual(t["worker_busy_share"], 0.9)
        self.assertIsNone(out["phases"]["queries"]["tokens_per_s"])
        self.assertAlmostEqual(out["ingest_share_of_encoder"], 16000.0 / 18000.0)
        q = out["phases"]["queries"]
        self.assertAlmostEqual(q["p50_ms"], 50.5)
        self.assertAlmostEqual(q["p99_ms"], 99.01)
        self.assertAlmostEqual(q["embed_share"], 0.75)
        self.assertAlmostEqual(q["search_share"], 0.25)
        goals = out["goals"]
        self.assertTrue(goals[0]["met"])  # 0.889 >= 0.8
        self.assertFalse(goals[1]["met"])  # 99 ms > 50 ms
        self.assertNotIn("latencies_ms", out["phases"]["ingest_text"])
        # The input was not changed (the summary copies).
        self.assertIn("latencies_ms", phases["queries"])
        # No encoder reference: the ingest goal is not judged.
        self.assertIsNone(s.serving_summary(phases, None, None)["goals"][0]["met"])

    def test_render_holds_every_part(self):
        report = {
            "header": {"device": "Cuda(0)", "dtype": "bf16", "reference": "torch"},
            "image_parity": [{"case": "448/code", "fused": {"dense": 0.9999, "min_token": 0.995, "ok": True},
                              "generic": {"dense": 0.9998, "min_token": 0.994, "ok": True}, "ok": True}],
            "parity_ok": True,
            "image_timing": s.image_timing_rows(
                [{"name": "448x1", "batch": 1, "median_ms": 40.0, "items_per_s": 25.0, "peak_bytes": 2**30}],
                [{"name": "448x1", "batch": 1, "median_ms": 45.0, "items_per_s": 22.0}],
                [{"name": "448x1", "batch": 1, "median_ms": 123.0, "items_per_s": 8.1, "peak_bytes": 2**31}]),
        }
        report["image_goals"] = s.image_goals(report["image_timing"])
        report["serving"] = s.serving_summary({
            "ingest_text": phase(10, 1.0, latencies=[1.0]),
            "ingest_images": phase(2, 1.0, latencies=[1.0]),
            "queries": phase(3, 1.0, latencies=[1.0, 2.0, 3.0], embed=[1.0], total=[2.0]),
        }, 12.0, {"samples": 5, "mean_util_pct": 91.0, "p50_util_pct": 93.0, "max_memory_mib": 20000.0})
        text = s.render(report)
        for needle in ("448/code", "0.999900", "448x1", "123.00", "0.33", "ingest_text", "queries",
                       "mean 91 %", "parity: PASS", "query p99"):
            self.assertIn(needle, text)


class Phases(unittest.TestCase):
    """run_phase against a loopback server that answers like Quiver's query route."""

    @classmethod
    def setUpClass(cls):
        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                if body.get("query", {}).get("text") == "bad":
                    self.send_response(400)
                    payload = {"status": {"error": "bad"}}
                else:
                    self.send_response(200)
                    payload = {"result": {"points": []}, "timings": {"embed_ms": 1.5, "total_ms": 2.0}}
                data = json.dumps(payload).encode()
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *_):
                pass

        cls.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        cls.url = f"http://127.0.0.1:{cls.httpd.server_address[1]}"
        threading.Thread(target=cls.httpd.serve_forever, daemon=True).start()

    @classmethod
    def tearDownClass(cls):
        cls.httpd.shutdown()
        cls.httpd.server_close()

    def send(self, text):
        status, body = s.http(self.url, "POST", "/q", {"query": {"text": text}})
        if status != 200:
            return False, {"status": status}
        return True, body["timings"]

    def test_counts_errors_and_timings(self):
        jobs = [(1, "ok")] * 30 + [(1, "bad")] * 2
        logged = []
        p = s.run_phase("queries", 4, jobs, self.send, 60, logged.append)
        self.assertEqual((p["items"], p["requests"], p["errors"]), (30, 32, 2))
        self.assertEqual(len(p["latencies_ms"]), 30)
        self.assertEqual(p["embed_ms"], [1.5] * 30)
        self.assertFalse(p["stopped_at_limit"])
        self.assertEqual(len(logged), 3)  # two failures and the summary

    def test_time_limit_stops_submitting(self):
        jobs = [(2, "ok")] * 50
        p = s.run_phase("ingest", 2, jobs, self.send, 0.0, lambda _: None)
        self.assertTrue(p["stopped_at_limit"])
        self.assertLess(p["requests"], 50)
        self.assertEqual(p["items"], 2 * p["requests"])


if __name__ == "__main__":
    unittest.main()
