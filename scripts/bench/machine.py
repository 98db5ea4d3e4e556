#!/usr/bin/env python3
"""Describes the machine a benchmark ran on, as JSON on stdout (CPU, cores, memory, load, versions)."""

import json
import os
import platform
import subprocess
import time


def cpu_model():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def cpu_flags():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("flags"):
                    flags = set(line.split(":", 1)[1].split())
                    return [x for x in ("avx2", "fma", "avx512f") if x in flags]
    except OSError:
        pass
    return []


def mem_total_gib():
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemTotal:"):
                    return int(line.split()[1]) / (1 << 20)
    except OSError:
        pass
    return None


def version(cmd):
    try:
        return subprocess.run(cmd, capture_output=True, text=True).stdout.strip()
    except OSError:
        return None


print(json.dumps({
    "cpu": cpu_model(),
    "simd": cpu_flags(),
    "cores": os.cpu_count(),
    "mem_gib": mem_total_gib(),
    "kernel": platform.release(),
    "loadavg_start": list(os.getloadavg()),
    "date_utc": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
    "rustc": version(["rustc", "--version"]),
    "python": platform.python_version(),
}))
