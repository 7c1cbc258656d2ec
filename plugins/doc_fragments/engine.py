# Copyright: sovstack developers
# Apache License 2.0
"""The options every container-engine module of sovstack.cloud shares."""

from __future__ import annotations


class ModuleDocFragment:
    DOCUMENTATION = r"""
options:
  engine:
    description: The container engine.
    type: str
    choices: [docker, podman]
    default: docker
  engine_url:
    description:
      - The engine's API, by default C(unix:///var/run/docker.sock) or C(unix:///run/podman/podman.sock).
    type: str
  timeout:
    description: Seconds one API call to the engine may take.
    type: int
    default: 120
requirements:
  - The Python docker SDK on the host (Debian package python3-docker).
"""
