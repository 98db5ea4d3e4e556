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


def last_level_cache_bytes():
    """Size of the highest cache level of CPU 0 (sysfs), or None."""
    best = None
    for d in sorted(os.listdir("/sys/devices/system/cpu/cpu0/cache")) if os.path.isdir(
            "/sys/devices/system/cpu/cpu0/cache") else []:
        base = os.path.join("/sys/devices/system/cpu/cpu0/cache", d)
        try:
            with open(os.path.join(base, "level")) as f:
                level = int(f.read())
            with open(os.path.join(base, "size")) as f:
                size = f.read().strip()
        except (OSError, ValueError):
            continue
        mult = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}.get(size[-1:], 1)
        value = int(size.rstrip("KMG")) * mult
        if best is None or level > best[0]:
            best = (level, value)
    return best[1] if best else None


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
    "llc_bytes": last_level_cache_bytes(),
    "kernel": platform.release(),
    "loadavg_start": list(os.getloadavg()),
    "date_utc": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
    "rustc": version(["rustc", "--version"]),
    "python": platform.python_version(),
}))
