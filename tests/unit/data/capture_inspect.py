"""Make tests/unit/data/inspect-*.json from a real engine: create a container with the module
on a rig host, keep the engine's own inspect data of it and of its image beside the task.

    python tests/unit/data/capture_inspect.py INVENTORY ENGINE PARAMS.json OUT.json

PARAMS.json holds the container module's parameters (with `name`); the container is removed
afterwards. Run it with the venv that has ansible (the rig's inventory reaches node1).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path


def ansible(inventory: str, module: str, args: str) -> dict:
    proc = subprocess.run(
        ["ansible", "-i", inventory, "node1", "-m", module, "-a", args],
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, "ANSIBLE_CALLBACK_RESULT_FORMAT": "json", "ANSIBLE_NOCOLOR": "1"},
    )
    _, _, rest = proc.stdout.partition("node1 | ")
    if rest.startswith("CHANGED | rc=0 >>\n"):  # the command module's ad-hoc form: its stdout
        return {"stdout": rest.partition(">>\n")[2]}
    result, _ = json.JSONDecoder().raw_decode(rest[rest.index("{") :])
    if result.get("failed") or result.get("rc", 0) != 0:
        raise SystemExit(f"{module} failed: {result.get('msg')} {result.get('stderr', '')}")
    return result


# What the modules see: the engine's Docker-compatible API through the docker SDK (podman's own
# `podman inspect` differs from it: no Sysctls, no DeviceCgroupRules there, for one).
INSPECT = """
import docker, json, sys
engine, kind, name = sys.argv[1:]
url = {"docker": "unix:///var/run/docker.sock", "podman": "unix:///run/podman/podman.sock"}[engine]
print(json.dumps(getattr(docker.APIClient(base_url=url, version="auto"), "inspect_" + kind)(name)))
"""


def inspect(inventory: str, engine: str, kind: str, name: str) -> dict:
    args = {"argv": ["python3", "-c", INSPECT, engine, kind, name]}
    return json.loads(ansible(inventory, "command", json.dumps(args))["stdout"])


def main() -> None:
    inventory, engine, params_path, out = sys.argv[1:5]
    params = json.loads(Path(params_path).read_text())
    ansible(inventory, "sovstack.cloud.container", json.dumps({**params, "engine": engine}))
    try:
        container = inspect(inventory, engine, "container", params["name"])
        image = inspect(inventory, engine, "image", container["Image"])
    finally:
        ansible(
            inventory,
            "sovstack.cloud.container",
            json.dumps({"name": params["name"], "state": "absent", "engine": engine}),
        )
    data = {"engine": engine, "params": params, "container": container, "image": image}
    Path(out).write_text(json.dumps(data, indent=1, sort_keys=True) + "\n")


if __name__ == "__main__":
    main()
