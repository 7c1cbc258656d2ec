"""Benchmark: parse time of a generated 500-host topology, in-process and through
`ansible-inventory --list` (the inventory plugin as Ansible runs it).

Not a test: it prints figures.  .venv/bin/python tests/bench/bench_topology.py [--hosts 500]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "collections"))
from ansible_collections.sovstack.cloud.plugins.module_utils import topology


def generate(hosts: int) -> dict:
    networks = {
        "management": {"cidr": "10.10.0.0/20", "gateway": "10.10.0.1", "vip": "10.10.0.10"},
        "storage": {"cidr": "10.20.0.0/20", "vlan": 20},
        "tunnel": {"cidr": "10.30.0.0/20", "vlan": 30},
    }
    roles = {}
    for i in range(1, hosts + 1):
        if i <= 3:
            roles[f"ctl{i}"] = {"index": i, "roles": ["control", "k8s"]}
        elif i <= 5:
            roles[f"net{i}"] = {"index": i, "roles": ["network"]}
        elif i <= hosts * 3 // 4:
            roles[f"cmp{i}"] = {"index": i, "roles": ["compute"]}
        else:
            roles[f"sto{i}"] = {"index": i, "roles": ["storage"]}
    return {
        "plugin": "sovstack.cloud.topology",
        "networks": networks,
        "hosts": roles,
        "vars": {"container_engine": "docker"},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hosts", type=int, default=500)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "topology.yml"
        path.write_text(yaml.safe_dump(generate(args.hosts), sort_keys=False))
        times = []
        for _ in range(args.runs):
            start = time.perf_counter()
            parsed = topology.load(str(path))
            for name in parsed.hosts:
                parsed.hostvars(name)
            times.append(time.perf_counter() - start)
        print(f"topology of {args.hosts} hosts, 3 networks, {os.cpu_count()} cores")
        print(
            f"  load + check + hostvars, in-process: "
            f"median {statistics.median(times) * 1000:.0f} ms of {args.runs}"
        )
        env = {**os.environ, "ANSIBLE_INVENTORY_ANY_UNPARSED_IS_FAILED": "True"}
        exe = str(Path(sys.executable).parent / "ansible-inventory")
        walls = []
        for _ in range(3):
            start = time.perf_counter()
            subprocess.run([exe, "-i", str(path), "--list"], capture_output=True, env=env, check=True)
            walls.append(time.perf_counter() - start)
        start = time.perf_counter()
        subprocess.run([exe, "-i", "localhost,", "--list"], capture_output=True, env=env, check=True)
        baseline = time.perf_counter() - start
        print(
            f"  ansible-inventory --list: median {statistics.median(walls):.2f} s of 3 "
            f"(ansible-inventory on one host: {baseline:.2f} s)"
        )


if __name__ == "__main__":
    main()
