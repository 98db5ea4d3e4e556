#!/usr/bin/env python3
"""Tests of scripts/gpu_check.py's comparison, goals and table, on made-up numbers (no GPU, no
torch). The end-to-end CPU run (`scripts/gpu-check.sh --device cpu`) checks the same code on real
outputs of the tiny fixture."""

import math
import os
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import gpu_check as g  # noqa: E402


def row(dense, multi):
    return {"dense": dense, "multi": multi}


class Compare(unittest.TestCase):
    def test_cosines_and_thresholds(self):
        ref = row([1.0, 0.0], [[1.0, 0.0], [0.0, 1.0]])
        same = g.compare(row([2.0, 0.0], [[3.0, 0.0], [0.0, 0.5]]), ref)
        self.assertAlmostEqual(same["dense"], 1.0)
        self.assertAlmostEqual(same["min_token"], 1.0)
        self.assertTrue(same["ok"])
        # One token off by 45 degrees fails the per-token bound, the dense vector still passes.
        off = g.compare(row([1.0, 0.001], [[1.0, 0.0], [1.0, 1.0]]), ref)
        self.assertGreater(off["dense"], g.DENSE_MIN)
        self.assertAlmostEqual(off["min_token"], math.sqrt(0.5), places=6)
        self.assertFalse(off["ok"])
        # A dense cosine just under 0.999 fails.
        c = math.cos(math.acos(0.999) * 1.01)
        dense = g.compare(row([c, math.sqrt(1 - c * c)], [[1.0, 0.0], [0.0, 1.0]]), ref)
        self.assertLess(dense["dense"], g.DENSE_MIN)
        self.assertFalse(dense["ok"])

    def test_shapes_must_agree(self):
        ref = row([1.0, 0.0], [[1.0, 0.0]])
        with self.assertRaises(ValueError):
            g.compare(row([1.0], [[1.0, 0.0]]), ref)
        with self.assertRaises(ValueError):
            g.compare(row([1.0, 0.0], []), ref)

    def test_zero_vectors_do_not_pass(self):
        self.assertEqual(g.cosine([0.0, 0.0], [1.0, 0.0]), 0.0)


def timing(name, b, t, ms, peak=None, launches=None):
    return {"name": name, "batch": b, "tokens": t, "median_ms": ms, "items_per_s": b / (ms / 1e3),
            "peak_bytes": peak, "launches": launches}


class Report(unittest.TestCase):
    def report(self, packed_dense=1.0):
        ref = {"L1/a": [row([1.0, 0.0], [[1.0, 0.0]])]}
        packed = {"L1/a": [row([packed_dense, math.sqrt(max(0.0, 1 - packed_dense ** 2))], [[1.0, 0.0]])]}
        padded = {"L1/a": [row([1.0, 0.0], [[1.0, 0.0]])]}
        quiver = [timing("1x32", 1, 32, 8.0, 9 * 2**30, 620), timing("32x128", 32, 128, 40.0, 9 * 2**30, 620),
                  timing("32x512", 32, 512, 150.0, 9 * 2**30, 640)]
        ref_t = [timing("1x32", 1, 32, 20.0, 8 * 2**30), timing("32x128", 32, 128, 56.0, 8 * 2**30),
                 timing("32x512", 32, 512, 215.0, 10 * 2**30)]
        header = {"device": "Cuda(0)", "dtype": "bf16", "reference": "torch"}
        return g.build_report(header, ["L1/a"], packed, padded, ref, quiver, quiver, ref_t)

    def test_ratios_and_goals(self):
        r = self.report()
        self.assertTrue(r["parity_ok"])
        rows = {x["shape"]: x for x in r["timing"]}
        self.assertAlmostEqual(rows["1x32"]["latency_ratio"], 0.4)
        self.assertAlmostEqual(rows["32x128"]["throughput_ratio"], 56.0 / 40.0)
        self.assertAlmostEqual(rows["32x512"]["memory_ratio"], 0.9)
        goals = {(x["shape"], x["what"]): x["met"] for x in r["goals"]}
        self.assertEqual(goals[("1x32", "latency")], True)
        self.assertEqual(goals[("32x128", "throughput")], False)  # 1.4x < 1.5x
        self.assertEqual(goals[("32x512", "throughput")], False)  # 1.43x
        self.assertEqual(goals[("32x512", "memory")], True)
        text = g.render(r)
        self.assertIn("parity: PASS", text)
        self.assertIn("MISSED", text)
        self.assertIn("0.40", text)  # the 1x32 latency ratio
        self.assertIn("620", text)

    def test_a_parity_failure_fails_the_report(self):
        r = self.report(packed_dense=0.99)
        self.assertFalse(r["parity_ok"])
        self.assertFalse(r["parity"][0]["ok"])
        self.assertIn("parity: FAIL", g.render(r))
        self.assertIn("NO", g.render(r))

    def test_missing_reference_numbers_leave_goals_open(self):
        quiver = [timing("1x32", 1, 32, 8.0)]
        rows = g.timing_rows(quiver, None, None)
        self.assertIsNone(rows[0]["latency_ratio"])
        self.assertTrue(all(x["met"] is None for x in g.goals(rows)))

    def test_row_counts_must_match(self):
        with self.assertRaises(ValueError):
            g.build_report({}, ["a"], {"a": []}, None, {"a": [row([1.0], [[1.0]])]}, [], None, None)


class Parsing(unittest.TestCase):
    def test_shapes(self):
        self.assertEqual(g.parse_shapes("1x32,32X512"), [("1x32", 1, 32), ("32X512", 32, 512)])


if __name__ == "__main__":
    unittest.main()
