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
    result = json.loads(rest[rest.index("{") :])
    if result.get("failed") or result.get("rc", 0) != 0:
        raise SystemExit(f"{module} failed: {result.get('msg')} {result.get('stderr', '')}")
    return result


def main() -> None:
    inventory, engine, params_path, out = sys.argv[1:5]
    params = json.loads(Path(params_path).read_text())
    ansible(inventory, "sovstack.cloud.container", json.dumps({**params, "engine": engine}))
    try:
        container = json.loads(ansible(inventory, "command", f"{engine} inspect {params['name']}")["stdout"])[
            0
        ]
        image = json.loads(
            ansible(inventory, "command", f"{engine} image inspect {container['Image']}")["stdout"]
        )[0]
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
