"""Benchmark: every service of the catalog (the control plane: HAProxy/keepalived, Galera,
RabbitMQ, memcached, keystone; the base layer: Ceph's monitors, managers and OSDs, libvirt,
Open vSwitch, OVN) deployed on a fresh
3-host rig of its own.

  setup        rig up, bootstrap, images (built if missing), registry, push, secrets
               (timed, not part of the figures below)
  first        the first `sovstack deploy`: prechecks, every container pulled and started,
               the Galera and RabbitMQ clusters formed, keystone bootstrapped
  no-change    the same deploy again: changed=0, nothing restarted; by role, the tasks that
               ran on a host and the module calls they made there (the round trips)
  by layer     of both deploys, the seconds of each catalog layer's services (from the run's
               progress lines: from a service's first role line to the next service's), and
               of each service of the base layer
  reconfigure  one keystone setting changed: keystone restarts on each host, one at a time

Not a test: it prints figures.   .venv/bin/python tests/bench/bench_deploy.py [--keep]
(--keep: the rig and the bench's home stay; without it both go.)
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
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


def seconds_by_layer(stdout: str, by: str = "layer") -> dict[str, float]:
    """Each layer's (BY "service": each service's) share of a deploy's wall time, from its
    progress lines. A role line of a service earlier in the catalog's order (keystone's
    database, made by the mariadb role) is part of the service that runs; a play line or the
    end closes the last service."""
    order = list(CATALOG)
    totals: dict[str, float] = {}
    current, since = None, 0.0
    for at, kind, name in re.findall(r"^\[\s*([\d.]+)s\]\s+(play|role|done)\s+(\S+)", stdout, re.MULTILINE):
        seconds = float(at)
        starts = (
            kind == "role"
            and name in CATALOG
            and (current is None or order.index(name) > order.index(current))
        )
        if current is not None and (starts or kind != "role"):
            layer = current if by == "service" else CATALOG[current]["layer"]
            totals[layer] = totals.get(layer, 0.0) + seconds - since
            current = None
        if starts:
            current, since = name, seconds
    return totals


def report_layers(what: str, stdout: str) -> None:
    for layer, seconds in seconds_by_layer(stdout).items():
        print(f"  {what}, layer {layer:36} {seconds:6.1f} s")
    for service, seconds in seconds_by_layer(stdout, by="service").items():
        if CATALOG[service]["layer"] == "base":
            print(f"    {what}, {service:38} {seconds:6.1f} s")


# Actions Ansible runs on the controller alone: no round trip to a host.
CONTROLLER_ACTIONS = {
    "set_fact",
    "assert",
    "include_tasks",
    "include_role",
    "import_tasks",
    "meta",
    "debug",
    "fail",
}
CONTROLLER_ACTIONS |= {"validate_argument_spec"}


def tasks_per_service(stdout: str) -> tuple[Counter[str], Counter[str]]:
    """From the run's events, by role: the tasks that ran on a host (ok or changed, not
    skipped), and the module calls they made on the hosts (each loop item one; the actions
    of the controller alone not counted)."""
    directory = Path(stdout.splitlines()[0].split("(log: ", 1)[1].rstrip(")"))
    tasks: Counter[str] = Counter()
    calls: Counter[str] = Counter()
    for path in (directory / "artifacts" / "run" / "job_events").glob("*.json"):
        event = json.loads(path.read_text())
        if event.get("event") != "runner_on_ok":
            continue
        data = event["event_data"]
        role = data.get("role") or "(playbook)"
        tasks[role] += 1
        if data.get("task_action", "").rsplit(".", 1)[-1] in CONTROLLER_ACTIONS:
            continue
        res = data.get("res") or {}
        items = res.get("results")
        calls[role] += len([r for r in items if not r.get("skipped")]) if items is not None else 1
    return tasks, calls


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
        report_layers("first deploy", out)
        seconds, out = sovstack(home, "deploy", "-i", str(inventory))
        report("no-change deploy", seconds, out)
        report_layers("no-change deploy", out)
        tasks, calls = tasks_per_service(out)
        print("  no-change deploy, by role: tasks that ran on a host, module calls on the hosts")
        for role, count in sorted(tasks.items(), key=lambda item: -item[1]):
            print(f"    {role:20} {count:4} {calls[role]:6}")
        print(f"    {'all':20} {sum(tasks.values()):4} {sum(calls.values()):6}")
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
            shutil.rmtree(home, ignore_errors=True)
        else:
            print(f"kept: SOVSTACK_HOME={home}")


if __name__ == "__main__":
    main()
