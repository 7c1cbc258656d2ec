"""Benchmark: ensure 30 unchanged containers with sovstack.cloud.container and with
community.docker.docker_container (from the `ansible` package) on the same rig host, and print
both wall times and their ratio.

Not a test: it prints figures. Run as root with the venv's python, after
`.venv/bin/pip install ansible` (community.docker):
    .venv/bin/python tests/bench/bench_container.py [--runs 3] [--name benchc --subnet 10.77.21.0/24]
It runs from a fresh SOVSTACK_HOME: builds the registry image there (a second's work when the
engine has it already; the test registries are made from it), brings up a one-host rig
(docker), bootstraps it, and takes it down at the end.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
BIN = Path(sys.executable).parent
NAME, SUBNET = "benchc", "10.77.21.0/24"


def run(*argv: str) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(argv, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        sys.exit(f"{' '.join(argv[:3])} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-2000:]}")
    return proc


def playbook(inventory: Path, path: Path, *extra: str, unchanged: bool = False) -> float:
    start = time.monotonic()
    proc = run(str(BIN / "ansible-playbook"), "-i", str(inventory), str(path), *extra)
    elapsed = time.monotonic() - start
    recap = [line for line in proc.stdout.splitlines() if line.startswith("node1")][-1]
    if unchanged and "changed=0" not in recap:
        sys.exit(f"an unchanged run changed something: {recap}")
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3, help="timed unchanged runs of each (median)")
    parser.add_argument("--name", default=NAME, help=f"the rig's name (default {NAME})")
    parser.add_argument("--subnet", default=SUBNET, help=f"the rig's subnet (default {SUBNET})")
    args = parser.parse_args()
    os.environ["SOVSTACK_HOME"] = tempfile.mkdtemp(prefix="sovstack-bench-")
    sovstack = str(BIN / "sovstack")
    inventory = Path(os.environ["SOVSTACK_HOME"]) / "rigs" / args.name / "inventory"
    try:
        # The test registries (prepare_engines.yml) run sovstack's registry image, which the
        # registry role loads from $SOVSTACK_HOME/images/registry.tar.
        run(sovstack, "images", "build", "--only", "registry")
        run(sovstack, "rig", "up", "--name", args.name, "--subnet", args.subnet, "--hosts", "1")
        # the test registry on node1 (prepare_engines.yml) is plain HTTP
        registry = args.subnet.rsplit(".", 1)[0] + ".11:4000"
        run(
            sovstack,
            "bootstrap",
            "-i",
            str(inventory),
            "-e",
            f"sovstack_registry={registry}",
            "-e",
            "sovstack_registry_insecure=true",
        )
        playbook(inventory, HERE.parent / "integration" / "playbooks" / "prepare_engines.yml")
        figures = {}
        for impl in ("ours", "theirs"):
            first = playbook(inventory, HERE / "containers.yml", "-e", f"impl={impl}")
            times = []
            for _ in range(args.runs):
                elapsed = playbook(inventory, HERE / "containers.yml", "-e", f"impl={impl}", unchanged=True)
                times.append(elapsed)
            figures[impl] = (first, statistics.median(times), times)
        print(f"30 containers on one rig host (docker), {os.cpu_count()} cores, median of {args.runs} runs")
        for impl, label in (
            ("ours", "sovstack.cloud.container"),
            ("theirs", "community.docker.docker_container"),
        ):
            first, median, times = figures[impl]
            runs = ", ".join(f"{t:.1f}" for t in times)
            print(f"  {label:34} create {first:5.1f} s   unchanged {median:5.1f} s  ({runs})")
        ratio = figures["ours"][1] / figures["theirs"][1]
        print(f"  ratio ours/theirs, unchanged: {ratio:.2f}x")
    finally:
        subprocess.run(
            [sovstack, "rig", "down", "--name", args.name, "--keep-image"], capture_output=True, check=False
        )
        shutil.rmtree(os.environ["SOVSTACK_HOME"], ignore_errors=True)


if __name__ == "__main__":
    main()
