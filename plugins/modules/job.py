#!/usr/bin/python
# Copyright: sovstack developers
# Apache License 2.0
"""Run a one-shot container to completion on Docker or Podman, again only when its inputs change."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: job
short_description: Run a one-shot container to completion, again only when its definition or inputs change
version_added: "0.2.0"
description:
  - Runs a one-shot job (database creation, C(db_sync), C(keystone-manage bootstrap), ceph key
    creation, C(nova-manage cell_v2) steps) in a container on the host's engine, waits until it
    exits, checks its exit code and returns its output. The container has the same option model as
    M(sovstack.cloud.container) (image, command, environment, volumes, user, network_mode,
    capabilities, devices, namespaces, ...), and is removed after the run, also when it fails.
  - The job runs again only when its inputs change. After a successful run, a hash of its
    definition (every option, with the image's id) and a hash of O(inputs) are recorded on the host
    in O(state_dir)/KEY.json; a run with the same definition and inputs reports C(changed=false)
    and runs nothing. O(force=true) runs it anyway. A failed run records nothing (and forgets the
    previous record), so it runs again next time.
  - A job container left behind by a run that was killed (C(sovstack-job-KEY)) is removed before
    the next run.
  - Secrets go in O(environment) or in a file mounted through O(volumes), never in O(command) or
    O(entrypoint) (the command line shows in C(ps) and in the engine's inspect data). Every value of
    O(environment) is a secret to Ansible (no_log); it never appears in the result or in an error
    message, and Ansible masks it wherever it would appear, the job's output included. A
    non-secret setting that must stay readable in the output goes in O(command).
options:
  key:
    description:
      - The job's name, unique on the host (C(keystone_db_sync), C(nova_cell_v2_map_cell0)).
        Letters, digits, C(_), C(.) and C(-). The record is O(state_dir)/KEY.json, the container
        C(sovstack-job-KEY).
    type: str
    required: true
  image:
    description: Image by tag or digest.
    type: str
    required: true
  environment:
    description:
      - Environment variables, every value a secret (no_log); the place for passwords, with a
        file mounted through O(volumes).
    type: dict
  inputs:
    description:
      - What else the job's result depends on, as a string the caller makes, for example a hash of
        the configuration files the job reads, or the image digest. A changed O(inputs) runs the
        job again. Only its hash is recorded.
    type: str
  force:
    description: Run the job even when its definition and inputs are those of the last successful run.
    type: bool
    default: false
  job_timeout:
    description: Seconds the job may run; then it is killed and removed, and the task fails.
    type: int
    default: 600
  state_dir:
    description: Where the module records each job's last successful run on the host.
    type: path
    default: /var/lib/sovstack/jobs
attributes:
  check_mode:
    support: full
    description: Reports whether the job would run (RV(reason), RV(actions)); runs and changes nothing.
  diff_mode:
    support: none
    description: A job has no before and after to show; RV(reason) says why it runs.
extends_documentation_fragment:
  - sovstack.cloud.engine
  - sovstack.cloud.container_options
notes:
  - The job's output (RV(stdout), RV(stderr)) is returned up to its last 256 KiB each, and is kept
    in the run's events; the values of O(environment) are masked in it.
author:
  - sovstack developers
"""

EXAMPLES = r"""
- name: Keystone's database schema, again only when the image or the config changed
  sovstack.cloud.job:
    key: keystone_db_sync
    image: "{{ sovstack_registry }}/keystone@sha256:0123..."
    command: [keystone-manage, db_sync]
    user: keystone
    volumes:
      - /etc/sovstack/keystone:/etc/keystone:ro
    inputs: "{{ keystone_config_hash }}"

- name: A database and its user; the password by environment, never on the command line
  sovstack.cloud.job:
    key: keystone_database
    image: "{{ sovstack_registry }}/mariadb@sha256:4567..."
    network_mode: host
    # the SQL goes in on stdin from the shell's printf builtin, the root password in MYSQL_PWD:
    # neither is on a command line
    command:
      - /bin/sh
      - -c
      - >-
        printf "CREATE DATABASE IF NOT EXISTS keystone;
        CREATE USER IF NOT EXISTS 'keystone'@'%%' IDENTIFIED BY '%s';
        GRANT ALL ON keystone.* TO 'keystone'@'%%';" "$KEYSTONE_DB_PASSWORD"
        | mariadb -h "$DB_HOST" -u root
    environment:
      DB_HOST: "{{ sovstack_vip_address }}"
      MYSQL_PWD: "{{ mariadb_root_password }}"
      KEYSTONE_DB_PASSWORD: "{{ keystone_database_password }}"
  register: keystone_database

- name: Ceph key creation with the host's network and the cluster's config mounted
  sovstack.cloud.job:
    key: ceph_client_glance_key
    image: "{{ sovstack_registry }}/ceph@sha256:89ab..."
    engine: podman
    network_mode: host
    command: [ceph, auth, get-or-create, client.glance, mon, "profile rbd", osd, "profile rbd pool=images"]
    volumes:
      - /etc/ceph:/etc/ceph:ro
"""

RETURN = r"""
ran:
  description: Whether the job ran (in check mode, would run).
  returned: always
  type: bool
  sample: true
reason:
  description:
    - Why it ran, or did not. C(never run), C(definition changed), C(inputs changed), C(forced), or
      C(unchanged) (it did not run).
  returned: always
  type: str
  sample: inputs changed
actions:
  description: What was (in check mode, would be) done, in order, of C(pull), C(remove leftover), C(run).
  returned: always
  type: list
  elements: str
  sample: [remove leftover, run]
rc:
  description: The job's exit code; absent when it did not run.
  returned: when the job ran
  type: int
  sample: 0
stdout:
  description: The job's standard output (its last 256 KiB); empty when it did not run.
  returned: always
  type: str
  sample: "Bootstrapped the identity service"
stderr:
  description: The job's standard error (its last 256 KiB); empty when it did not run.
  returned: always
  type: str
log_tail:
  description: The last 20 lines of the job's output (stdout and stderr), when it failed.
  returned: failure
  type: list
  elements: str
container:
  description: The job container's name.
  returned: always
  type: str
  sample: sovstack-job-keystone_db_sync
duration:
  description: Seconds from the start of the container until it exited.
  returned: when the job ran
  type: float
  sample: 2.7
"""

import contextlib
import hashlib
import json
import os
import re
import time
from datetime import UTC, datetime
from typing import Any

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.sovstack.cloud.plugins.module_utils import container_options as opts
from ansible_collections.sovstack.cloud.plugins.module_utils.engine import (
    ENGINE_ARGS,
    APIError,
    EngineError,
    NotFound,
    connect,
    ensure_image,
    log_tail,
    podman_default_ulimits,
)

KEY = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,99}")
JOB_LABEL = "sovstack.job"
OUTPUT_LIMIT = 256 * 1024
POLL = 0.25
# states of a container that has not run yet, or runs (podman has configured and initialized)
WAITING = ("created", "configured", "initialized", "running", "restarting")


def output(raw: bytes | str) -> str:
    data = raw if isinstance(raw, bytes) else str(raw).encode()
    return data[-OUTPUT_LIMIT:].decode("utf-8", errors="replace")


class Job:
    def __init__(self, module: AnsibleModule, client: Any) -> None:
        self.module = module
        self.client = client
        self.params = module.params
        self.key = module.params["key"]
        self.name = f"sovstack-job-{self.key}"
        self.check = module.check_mode
        self.actions: list[str] = []
        self.result: dict[str, Any] = {"ran": False, "stdout": "", "stderr": "", "container": self.name}

    def fail(self, msg: str, **extra: Any) -> None:
        self.module.fail_json(msg=msg, actions=self.actions, **{**self.result, **extra})

    # -- the record of the last successful run ----------------------------------------

    def record_path(self) -> str:
        return os.path.join(self.params["state_dir"], self.key + ".json")

    def read_record(self) -> dict[str, Any] | None:
        try:
            with open(self.record_path()) as handle:
                data = json.load(handle)
        except FileNotFoundError:
            return None
        except (OSError, ValueError):
            return {}  # unreadable: run again, and write it anew
        return data if isinstance(data, dict) else {}

    def write_record(self, record: dict[str, Any]) -> None:
        os.makedirs(self.params["state_dir"], mode=0o700, exist_ok=True)
        tmp = self.record_path() + ".tmp"
        with open(tmp, "w") as handle:
            json.dump(record, handle, sort_keys=True)
        os.replace(tmp, self.record_path())

    def forget(self) -> None:
        if os.path.exists(self.record_path()):
            os.unlink(self.record_path())

    # -- the run ---------------------------------------------------------------------------

    def reason(self, record: dict[str, Any] | None, definition: str, inputs: str | None) -> str:
        if self.params["force"]:
            return "forced"
        if record is None:
            return "never run"
        if record.get("definition") != definition:
            return "definition changed"
        if record.get("inputs") != inputs:
            return "inputs changed"
        return "unchanged"

    def remove_leftover(self) -> None:
        try:
            self.client.inspect_container(self.name)
        except NotFound:
            return
        self.actions.append("remove leftover")
        if not self.check:
            self.client.remove_container(self.name, force=True, v=False)

    def run(self, want: dict[str, Any]) -> None:
        labels = {**want.get("labels", {}), JOB_LABEL: self.key}
        host_args, container_args, extra_host = opts.create_request(
            {**self.params, "name": self.name}, want, labels
        )
        if self.params["engine"] == "podman" and host_args.get("ulimits"):
            host_args["ulimits"] = opts.with_default_ulimits(host_args["ulimits"], podman_default_ulimits())
        host_config = self.client.create_host_config(**host_args)
        host_config.update(extra_host)
        created = self.client.create_container(host_config=host_config, **container_args)
        container_id = created["Id"]
        try:
            self.client.start(container_id)
            started = time.monotonic()
            deadline = started + self.params["job_timeout"]
            while True:
                state = self.client.inspect_container(container_id)["State"]
                if not state.get("Running") and state.get("Status") not in WAITING:
                    break
                if time.monotonic() > deadline:
                    tail = log_tail(self.client, container_id, 20)
                    self.fail(
                        f"job {self.key} did not finish within {self.params['job_timeout']:d} s "
                        "(job_timeout): it was killed and removed; the last lines of its output:\n"
                        + ("\n".join(tail) or "(no output)"),
                        log_tail=tail,
                    )
                time.sleep(POLL)
            self.result["duration"] = round(time.monotonic() - started, 2)
            self.result["rc"] = int(state.get("ExitCode") or 0)
            self.result["stdout"] = output(self.client.logs(container_id, stdout=True, stderr=False))
            self.result["stderr"] = output(self.client.logs(container_id, stdout=False, stderr=True))
            if self.result["rc"] != 0:
                tail = log_tail(self.client, container_id, 20)
                error = state.get("Error") or ""
                self.fail(
                    f"job {self.key} failed (exit code {self.result['rc']}"
                    + (f", {error}" if error else "")
                    + "); the last lines of its output:\n"
                    + ("\n".join(tail) or "(no output)"),
                    log_tail=tail,
                )
        finally:
            with contextlib.suppress(NotFound):
                self.client.remove_container(container_id, force=True, v=False)

    def ensure(self) -> None:
        params = self.params
        try:
            opts.check_contradictions(params)
            opts.check_engine_support(params, params["engine"])
            image_info, pulled = ensure_image(self.client, params["image"], params["pull"], self.check)
            if pulled:
                self.actions.append("pull")
            want = opts.desired(params, image_info, params["engine"])
            opts.check_bind_sources(want)
        except opts.OptionError as exc:
            self.fail(str(exc))
        definition = hashlib.sha256(json.dumps(want, sort_keys=True, default=list).encode()).hexdigest()
        inputs = None if params["inputs"] is None else hashlib.sha256(params["inputs"].encode()).hexdigest()
        reason = self.reason(self.read_record(), definition, inputs)
        self.result["reason"] = reason
        if reason == "unchanged":
            return
        self.result["ran"] = True
        self.remove_leftover()
        self.actions.append("run")
        if self.check:
            return
        self.forget()  # a run that fails or is killed is run again next time
        self.run(want)
        self.write_record(
            {
                "definition": definition,
                "inputs": inputs,
                "image": image_info["Id"],
                "rc": self.result["rc"],
                "finished_at": datetime.now(UTC).isoformat(timespec="seconds"),
            }
        )


def main() -> None:
    argument_spec = dict(
        key=dict(type="str", required=True, no_log=False),
        **opts.DEFINITION_ARGS,
        inputs=dict(type="str"),
        force=dict(type="bool", default=False),
        job_timeout=dict(type="int", default=600),
        state_dir=dict(type="path", default="/var/lib/sovstack/jobs"),
        **ENGINE_ARGS,
    )
    argument_spec["image"] = dict(type="str", required=True)
    # Every value is a secret: Ansible masks it in the result, the messages and the output.
    argument_spec["environment"] = dict(type="dict", no_log=True)
    module = AnsibleModule(argument_spec=argument_spec, supports_check_mode=True)
    if not KEY.fullmatch(module.params["key"]):
        module.fail_json(
            msg=f"key: {module.params['key']!r} is not a job name "
            "(letters, digits, _, . and -, starting with a letter or digit, at most 100)"
        )
    client = connect(module)
    job = Job(module, client)
    try:
        job.ensure()
    except EngineError as exc:
        job.fail(str(exc))
    except APIError as exc:
        job.fail(f"{module.params['engine']}: job {job.key}: {exc}")
    module.exit_json(changed=job.result["ran"], actions=job.actions, **job.result)


if __name__ == "__main__":
    main()
