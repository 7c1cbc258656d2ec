#!/usr/bin/python
# Copyright: sovstack developers
# Apache License 2.0
"""Ensure an image on Docker or Podman: pulled by tag or digest, removed, or unused ones pruned."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: image
short_description: Pull an image by tag or digest, remove it, or prune the images no container uses
version_added: "0.1.0"
description:
  - C(present) pulls the image from its registry when the engine does not have it (or, with
    O(pull=always), pulls again to follow a tag that moved) and returns its id and digest.
  - C(absent) removes it. C(pruned) removes every image that no container uses.
  - An image that is not in its registry fails the task naming both.
options:
  name:
    description: Image by tag or digest, C(registry:5000/keystone:2024.1) or C(registry:5000/keystone@sha256:...). Required unless O(state=pruned).
    type: str
  state:
    description: C(present), C(absent) or C(pruned).
    type: str
    choices: [present, absent, pruned]
    default: present
  pull:
    description: C(missing) pulls only when the engine lacks the image; C(always) pulls on every run.
    type: str
    choices: [missing, always]
    default: missing
  archive:
    description:
      - Path on the host of an image archive (C(docker save) format) to load O(name) from,
        instead of pulling it, when the engine lacks it or holds another build under that
        name (its id differs from the archive's). For images that cannot come from a
        registry, such as the registry's own. O(name) must be a tag the archive holds.
    type: path
  registry_username:
    description: User for the registry, when it requires one.
    type: str
  registry_password:
    description: Password for the registry. Never logged.
    type: str
  ca_cert:
    description:
      - PEM text of the CA of the registry's TLS certificate. Installed where the engine looks for
        it (C(/etc/docker/certs.d/REGISTRY/ca.crt) or C(/etc/containers/certs.d/REGISTRY/ca.crt)).
    type: str
attributes:
  check_mode:
    support: full
    description: Reports whether the image would be pulled, removed or pruned.
  diff_mode:
    support: full
    description: Shows the image id before and after.
extends_documentation_fragment:
  - sovstack.cloud.engine
author:
  - sovstack developers
"""  # noqa: E501 - option descriptions are kept verbatim, one YAML line each

EXAMPLES = r"""
- name: Pull keystone by the digest from the lock file
  sovstack.cloud.image:
    name: "{{ sovstack_registry }}/keystone@{{ sovstack_images.keystone }}"
  register: keystone_image

- name: From a registry with its own CA and a password
  sovstack.cloud.image:
    name: registry.example.org:5000/keystone:2024.1
    registry_username: sovstack
    registry_password: "{{ registry_password }}"
    ca_cert: "{{ lookup('file', 'registry-ca.pem') }}"

- name: The registry's own image, from an archive copied to the host
  sovstack.cloud.image:
    name: sovstack/registry:3f2a9c0d1e2b4a5c
    archive: /var/lib/sovstack/images/registry.tar

- name: Free the disk of images no container uses
  sovstack.cloud.image:
    state: pruned
"""

RETURN = r"""
image:
  description: The image (id, tags, digests); empty when absent.
  returned: always
  type: dict
  contains:
    id:
      description: Image id.
      type: str
    tags:
      description: Its tags.
      type: list
      elements: str
    digests:
      description: Its registry digests (C(repo@sha256:...)).
      type: list
      elements: str
digest:
  description: The registry digest of O(name) (C(sha256:...)), when the engine knows it.
  returned: when state is present
  type: str
removed:
  description: Image ids removed (C(pruned) and C(absent)).
  returned: always
  type: list
  elements: str
"""

import json
import os
import tarfile
from typing import Any

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.sovstack.cloud.plugins.module_utils.engine import (
    ENGINE_ARGS,
    APIError,
    EngineError,
    connect,
    inspect_image,
    pull_image,
    registry_of,
    split_reference,
)

CERT_DIRS = {"docker": "/etc/docker/certs.d", "podman": "/etc/containers/certs.d"}


def summary(info: dict[str, Any] | None) -> dict[str, Any]:
    if not info:
        return {}
    return {
        "id": info["Id"],
        "tags": sorted(info.get("RepoTags") or []),
        "digests": sorted(info.get("RepoDigests") or []),
    }


def digest_of(info: dict[str, Any] | None, name: str) -> str | None:
    repository, _, digest = split_reference(name)
    if digest:
        return digest
    for entry in (info or {}).get("RepoDigests") or []:
        repo, _, found = entry.partition("@")
        if repo == repository or repo.endswith("/" + repository):
            return found
    return None


def install_ca(module: AnsibleModule, registry: str) -> bool:
    """Write the registry's CA where the engine reads it; True when it changed."""
    path = os.path.join(CERT_DIRS[module.params["engine"]], registry, "ca.crt")
    text = module.params["ca_cert"].strip() + "\n"
    if os.path.exists(path):
        with open(path) as handle:
            if handle.read() == text:
                return False
    if not module.check_mode:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w") as handle:
            handle.write(text)
        os.chmod(path, 0o644)
    return True


def archive_image_id(module: AnsibleModule, archive: str, name: str) -> str:
    """The id of the image `name` in an archive (its manifest.json), without loading it."""
    try:
        with tarfile.open(archive) as tar:
            member = tar.extractfile("manifest.json")
            manifest = json.load(member) if member else []
    except (OSError, tarfile.TarError, KeyError, ValueError) as exc:
        module.fail_json(msg=f"cannot read the image archive {archive}: {exc}")
    for entry in manifest:
        if name in (entry.get("RepoTags") or []):
            config = entry["Config"]  # "<hex>.json" (docker) or "blobs/sha256/<hex>"
            return "sha256:" + config.rsplit("/", 1)[-1].removesuffix(".json")
    module.fail_json(msg=f"the archive {archive} does not hold {name}")
    raise AssertionError  # fail_json exits


def load_archive(module: AnsibleModule, client: Any, name: str, archive: str) -> dict[str, Any]:
    """Load an archive into the engine; the image `name` it must hold."""
    try:
        with open(archive, "rb") as data:
            for _ in client.load_image(data):
                pass
    except OSError as exc:
        module.fail_json(msg=f"cannot read the image archive {archive}: {exc}")
    except APIError as exc:
        module.fail_json(msg=f"loading {archive} failed: {exc}")
    info = inspect_image(client, name)
    if info is None:
        module.fail_json(msg=f"the archive {archive} does not hold {name}")
    return info


def main() -> None:
    module = AnsibleModule(
        argument_spec=dict(
            name=dict(type="str"),
            state=dict(type="str", choices=["present", "absent", "pruned"], default="present"),
            pull=dict(type="str", choices=["missing", "always"], default="missing"),
            registry_username=dict(type="str"),
            registry_password=dict(type="str", no_log=True),
            ca_cert=dict(type="str"),
            archive=dict(type="path"),
            **ENGINE_ARGS,
        ),
        mutually_exclusive=[("archive", "registry_username"), ("archive", "ca_cert")],
        required_if=[("state", "present", ["name"]), ("state", "absent", ["name"])],
        required_together=[("registry_username", "registry_password")],
        supports_check_mode=True,
    )
    client = connect(module)
    params = module.params
    state = params["state"]
    name = params["name"]
    changed = False
    removed = []
    result = {}

    if state == "pruned":
        used = {c["ImageID"] for c in client.containers(all=True)}
        for image in client.images():
            if image["Id"] in used:
                continue
            removed.append(image["Id"])
            if not module.check_mode:
                try:
                    # no container uses it, so force only lifts the refusal of an image with several tags
                    client.remove_image(image["Id"], force=True)
                except APIError as exc:
                    module.fail_json(msg=f"pruning image {image['Id']} failed: {exc}", removed=removed)
        module.exit_json(changed=bool(removed), removed=removed, image={})

    before = inspect_image(client, name)
    after = before
    if state == "absent":
        if before:
            changed = True
            removed.append(before["Id"])
            if not module.check_mode:
                try:
                    client.remove_image(name, force=False)
                except APIError as exc:
                    module.fail_json(msg=f"removing image {name} failed (a container may use it): {exc}")
            after = None
    else:
        registry = registry_of(name)
        if params.get("ca_cert"):
            if not registry:
                module.fail_json(msg=f"ca_cert needs a registry in the image name ({name} has none)")
            changed = install_ca(module, registry) or changed
        if params.get("archive"):
            if params["pull"] == "always":
                module.fail_json(msg="pull=always and archive do not go together: an archive is loaded once")
            # Loaded when the host lacks the image or holds another build under the same name.
            stale = before is None or before["Id"] != archive_image_id(module, params["archive"], name)
            if stale and not module.check_mode:
                after = load_archive(module, client, name, params["archive"])
            changed = changed or stale
        elif before is None or params["pull"] == "always":
            if module.check_mode:
                changed = changed or before is None
            else:
                auth = None
                if params.get("registry_username"):
                    auth = {"username": params["registry_username"], "password": params["registry_password"]}
                try:
                    after = pull_image(client, name, auth)
                except EngineError as exc:
                    module.fail_json(msg=str(exc))
                changed = changed or before is None or before["Id"] != after["Id"]
        result["digest"] = digest_of(after, name)
    result.update(changed=changed, image=summary(after), removed=removed)
    if module._diff:
        result["diff"] = dict(
            before=f"{before['Id'] if before else 'absent'}\n",
            after=f"{after['Id'] if after else ('(pulled)' if state == 'present' else 'absent')}\n",
        )
    module.exit_json(**result)


if __name__ == "__main__":
    main()
