"""Benchmark: wall time of `sovstack rig up` (cold and warm), of bootstrap and of prechecks on 3 hosts.

Not a test: it prints figures. Run as root with the venv's python:
    .venv/bin/python tests/bench/bench_rig.py [--engine docker|podman] [--keep-image]
Cold with image build removes the rig host image first (only when no rig uses it).
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

NAME, SUBNET = "bench", "10.77.20.0/24"


def timed(label: str, *args: str) -> float:
    exe = shutil.which("sovstack", path=str(Path(sys.executable).parent)) or "sovstack"
    start = time.monotonic()
    proc = subprocess.run([exe, *args], capture_output=True, text=True, check=False)
    elapsed = time.monotonic() - start
    if proc.returncode != 0:
        sys.exit(f"{label} failed:\n{proc.stdout}\n{proc.stderr}")
    changed = sum(
        int(part.split("=")[1])
        for line in proc.stdout.splitlines()
        for part in line.split()
        if part.startswith("changed=")
    )
    extra = f"  (changed={changed})" if {"bootstrap", "prechecks"} & set(args) else ""
    if "image: " in proc.stdout and "(cached)" in proc.stdout and "image build" in label:
        extra = "  (image was cached: another rig uses it)"
    print(f"{label:42} {elapsed:7.1f} s{extra}", flush=True)
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--engine", choices=["docker", "podman"], default="docker")
    parser.add_argument("--keep-image", action="store_true", help="skip the cold build of the host image")
    args = parser.parse_args()
    os.environ["SOVSTACK_HOME"] = tempfile.mkdtemp(prefix="sovstack-bench-")
    up = ["rig", "up", "--name", NAME, "--subnet", SUBNET, "--engine", args.engine, "--hosts", "3"]
    down = ["rig", "down", "--name", NAME]
    inventory = Path(os.environ["SOVSTACK_HOME"]) / "rigs" / NAME / "inventory"
    print(f"sovstack rig benchmark: 3 hosts, engine {args.engine}, {os.cpu_count()} cores")
    try:
        if not args.keep_image:
            timed("rig down (removes the host image)", *down)
            timed("rig up, cold: image build + hosts", *up)
            timed("rig down --keep-image", *down, "--keep-image")
        timed("rig up, cold: cached image", *up)
        timed("rig up, warm: rig already up", *up)
        timed("bootstrap 3 hosts, first run", "bootstrap", "-i", str(inventory))
        timed("bootstrap 3 hosts, second run", "bootstrap", "-i", str(inventory))
        timed("prechecks 3 hosts", "prechecks", "-i", str(inventory))
    finally:
        timed("rig down --keep-image", *down, "--keep-image")
        shutil.rmtree(os.environ["SOVSTACK_HOME"], ignore_errors=True)


if __name__ == "__main__":
    main()
