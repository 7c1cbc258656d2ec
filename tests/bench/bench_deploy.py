"""Benchmark: the control plane (HAProxy/keepalived, Galera, RabbitMQ, memcached, keystone)
deployed on a fresh 3-host rig of its own.

  setup        rig up, bootstrap, images (built if missing), registry, push, secrets
               (timed, not part of the figures below)
  first        the first `sovstack deploy`: prechecks, every container pulled and started,
               the Galera and RabbitMQ clusters formed, keystone bootstrapped
  no-change    the same deploy again: changed=0, nothing restarted
  reconfigure  one keystone setting changed: keystone restarts on each host, one at a time

Not a test: it prints figures.   .venv/bin/python tests/bench/bench_deploy.py [--keep]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
from collections import Counter
from pathlib import Path

from benchlib import BIN, sovstack

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "collections"))
from ansible_collections.sovstack.cloud.plugins.module_utils import catalog

RIG, SUBNET = "bench", "10.77.30.0/24"
CATALOG = catalog.load()
IMAGES = ",".join(catalog.images(CATALOG, list(CATALOG)))


def changed(stdout: str) -> int:
    return sum(int(n) for n in re.findall(r"^\s+\S+: ok=\d+ changed=(\d+)", stdout, re.MULTILINE))


def report(what: str, seconds: float, stdout: str) -> None:
    print(f"{what:54} {seconds:6.1f} s  ({changed(stdout)} changed)")


def tasks_per_service(stdout: str) -> Counter[str]:
    """Tasks that ran on a host (ok or changed, not skipped), by role, from the run's events."""
    directory = Path(stdout.splitlines()[0].split("(log: ", 1)[1].rstrip(")"))
    counts: Counter[str] = Counter()
    for path in (directory / "artifacts" / "run" / "job_events").glob("*.json"):
        event = json.loads(path.read_text())
        if event.get("event") == "runner_on_ok":
            counts[event["event_data"].get("role") or "(playbook)"] += 1
    return counts


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--keep", action="store_true", help="keep the rig (and its home) afterwards")
    args = parser.parse_args()
    home = Path(tempfile.mkdtemp(prefix="sovstack-bench-deploy-"))
    inventory = home / "rigs" / RIG / "inventory"
    try:
        setup = 0.0
        for step in (
            ("rig", "up", "--name", RIG, "--subnet", SUBNET),
            ("bootstrap", "-i", str(inventory)),
            ("images", "build", "--only", IMAGES + ",registry"),
            ("registry", "-i", str(inventory)),
            (
                "images",
                "push",
                "--registry",
                SUBNET.rsplit(".", 1)[0] + ".11:4000",
                "--insecure",
                "--only",
                IMAGES,
            ),
            ("secrets", "generate", "-i", str(inventory)),
        ):
            seconds, _ = sovstack(home, *step)
            setup += seconds
        print(f"{'setup (rig, bootstrap, images, registry, push, secrets)':54} {setup:6.1f} s")
        seconds, out = sovstack(home, "deploy", "-i", str(inventory))
        report("first deploy", seconds, out)
        seconds, out = sovstack(home, "deploy", "-i", str(inventory))
        report("no-change deploy", seconds, out)
        counts = tasks_per_service(out)
        print(f"  tasks that ran on a host, no-change deploy: {sum(counts.values())}")
        for role, count in sorted(counts.items(), key=lambda item: -item[1]):
            print(f"    {role:20} {count:4}")
        (inventory / "group_vars" / "all" / "bench.yml").write_text("keystone_token_expiration: 7200\n")
        seconds, out = sovstack(home, "reconfigure", "-i", str(inventory))
        report("reconfigure (keystone token expiry)", seconds, out)
    finally:
        if not args.keep:
            subprocess.run(
                [str(BIN / "sovstack"), "rig", "down", "--name", RIG, "--keep-image"],
                env={**os.environ, "SOVSTACK_HOME": str(home)},
                capture_output=True,
                check=False,
            )
        else:
            print(f"kept: SOVSTACK_HOME={home}")


if __name__ == "__main__":
    main()
