# Copyright: sovstack developers
# Apache License 2.0
"""A container on Docker or Podman as sovstack's modules ensure it: created, started, stopped,
healthy or absent, recreated only when its definition changed. Used by the container module
(one container) and the service_host module (every container of a service on a host)."""

from __future__ import annotations

import json
import os
import time
from typing import TYPE_CHECKING, Any

from ansible_collections.sovstack.cloud.plugins.module_utils import container_options as opts
from ansible_collections.sovstack.cloud.plugins.module_utils.engine import (
    ENGINE_ARGS,
    APIError,
    NotFound,
    describe,
    ensure_image,
    health_of,
    inspect_image,
    instant,
    log_tail,
    podman_default_ulimits,
    run_boundary,
    stamped_before,
)

if TYPE_CHECKING:
    from collections.abc import Callable

    from ansible.module_utils.basic import AnsibleModule
    from docker import APIClient

# The options of one container, as the container module takes them (without the engine's).
CONTAINER_ARGS: dict[str, dict[str, Any]] = dict(
    name=dict(type="str", required=True),
    state=dict(
        type="str", default="started", choices=["started", "stopped", "absent", "restarted", "healthy"]
    ),
    **opts.DEFINITION_ARGS,
    healthcheck=dict(
        type="dict",
        options=dict(
            test=dict(type="raw", required=True),
            interval=dict(type="str"),
            timeout=dict(type="str"),
            retries=dict(type="int"),
            start_period=dict(type="str"),
        ),
    ),
    restart_policy=dict(type="str", choices=["no", "on-failure", "always", "unless-stopped"]),
    stop_timeout=dict(type="int"),
    config_hash=dict(type="str"),
    recreate=dict(type="bool", default=False),
    healthy_timeout=dict(type="int", default=120),
    state_dir=dict(type="path", default="/var/lib/sovstack/containers"),
)
ARGS = dict(**CONTAINER_ARGS, **ENGINE_ARGS)


UNIT_DIR = "/etc/systemd/system"


class Container:
    """One container on the host's engine: `params` are the container module's options
    (CONTAINER_ARGS, validated); failures end the module through `module.fail_json`."""

    def __init__(
        self, module: AnsibleModule, client: APIClient, params: dict[str, Any] | None = None
    ) -> None:
        self.module = module
        self.client = client
        self.params = module.params if params is None else params
        self.name = self.params["name"]
        self.engine = self.params["engine"]
        self.check = module.check_mode
        self.actions: list[str] = []
        self.diff: dict[str, dict[str, Any]] = {"before": {}, "after": {}}

    # -- engine calls ------------------------------------------------------------------

    def stop_timeout(self) -> int:
        """Seconds a stop or restart waits before SIGKILL: the task's, else the engine's 10."""
        return self.params.get("stop_timeout") or 10

    def inspect(self) -> dict[str, Any] | None:
        try:
            return self.client.inspect_container(self.name)
        except NotFound:
            return None

    def act(self, action: str, func: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        self.actions.append(action)
        if not self.check:
            return func(*args, **kwargs)
        return None

    # -- the image -----------------------------------------------------------------------

    def image(self) -> dict[str, Any]:
        info, pulled = ensure_image(self.client, self.params["image"], self.params["pull"], self.check)
        if pulled:
            self.actions.append("pull")
        return info

    # -- the definition ----------------------------------------------------------------

    def create(self, want: dict[str, Any], config_hash: str | None, action: str = "create") -> str | None:
        labels = dict(want.get("labels", {}))
        labels[opts.DEFINITION_LABEL] = opts.definition_label(want)
        host_args, container_args, extra_host = opts.create_request(self.params, want, labels)
        if self.engine == "podman" and host_args.get("ulimits"):
            host_args["ulimits"] = opts.with_default_ulimits(host_args["ulimits"], podman_default_ulimits())
        self.actions.append(action)
        if self.check:
            return None
        host_config = self.client.create_host_config(**host_args)
        host_config.update(extra_host)
        created = self.client.create_container(host_config=host_config, **container_args)
        self.write_hash(created["Id"], config_hash)
        return created["Id"]

    def remove(self, info: dict[str, Any]) -> None:
        if not self.check:
            self.client.remove_container(info["Id"], force=True, v=False)

    # -- config hash state ---------------------------------------------------------------

    def hash_path(self) -> str:
        return os.path.join(self.params["state_dir"], self.name + ".json")

    def read_hash(self, container_id: str) -> str | None:
        try:
            with open(self.hash_path()) as handle:
                data = json.load(handle)
        except (OSError, ValueError):
            return None
        return data.get("config_hash") if data.get("id") == container_id else None

    def write_hash(self, container_id: str, config_hash: str | None) -> None:
        if self.check or config_hash is None:
            return
        os.makedirs(self.params["state_dir"], mode=0o700, exist_ok=True)
        tmp = self.hash_path() + ".tmp"
        with open(tmp, "w") as handle:
            json.dump({"id": container_id, "config_hash": config_hash}, handle)
        os.replace(tmp, self.hash_path())

    # -- podman: come back after a reboot ----------------------------------------------

    def unit_name(self) -> str:
        return f"sovstack-container-{self.name}.service"

    def ensure_unit(self, enabled: bool) -> None:
        if self.engine != "podman" or not os.path.isdir("/run/systemd/system"):
            return
        path = os.path.join(UNIT_DIR, self.unit_name())
        link = os.path.join(UNIT_DIR, "multi-user.target.wants", self.unit_name())
        if enabled:
            stop = self.stop_timeout()
            text = (
                f"# Managed by sovstack.cloud.container: starts the podman container {self.name} at boot.\n"
                f"[Unit]\nDescription=sovstack container {self.name}\nWants=network-online.target\n"
                "After=network-online.target\n\n"
                "[Service]\nType=oneshot\nRemainAfterExit=yes\n"
                f"ExecStart=/usr/bin/podman start {self.name}\n"
                f"ExecStop=/usr/bin/podman stop -t {stop:d} {self.name}\n\n"
                "[Install]\nWantedBy=multi-user.target\n"
            )
            current = None
            if os.path.exists(path):
                with open(path) as handle:
                    current = handle.read()
            if current != text or not os.path.islink(link):
                self.actions.append("enable unit")
                if not self.check:
                    with open(path, "w") as handle:
                        handle.write(text)
                    os.makedirs(os.path.dirname(link), exist_ok=True)
                    if not os.path.islink(link):
                        os.symlink(path, link)
                    self.module.run_command(["systemctl", "daemon-reload"])
        elif os.path.exists(path) or os.path.islink(link):
            self.actions.append("disable unit")
            if not self.check:
                for item in (link, path):
                    if os.path.lexists(item):
                        os.unlink(item)
                self.module.run_command(["systemctl", "daemon-reload"])

    # -- states --------------------------------------------------------------------------

    def absent(self) -> list[str]:
        info = self.inspect()
        if info:
            self.diff["before"] = {"state": info["State"]["Status"]}
            self.diff["after"] = {"state": "absent"}
            self.actions.append("remove")
            self.remove(info)
            if not self.check and os.path.exists(self.hash_path()):
                os.unlink(self.hash_path())
        self.ensure_unit(False)
        return []

    def present(self, running: bool) -> tuple[list[str], str | None, bool]:
        params = self.params
        if not params.get("image"):
            self.module.fail_json(msg="image is required unless state is absent")
        try:
            opts.check_contradictions(params)
            opts.check_engine_support(params, params["engine"])
            image_info = self.image()
            want = opts.desired(params, image_info, self.engine)
            opts.check_bind_sources(want)
        except opts.OptionError as exc:
            self.module.fail_json(msg=str(exc))
        config_hash = params.get("config_hash")
        info = self.inspect()
        changed_options = []
        just_started = False
        if info is None:
            self.diff["before"] = {"state": "absent"}
            self.diff["after"] = {"state": "running" if running else "created"}
            container_id = self.create(want, config_hash)
        else:
            image_of_container = inspect_image(self.client, info["Image"]) or {}
            have = opts.current(info, image_of_container, self.engine)
            try:
                recorded = json.loads(info["Config"].get("Labels", {}).get(opts.DEFINITION_LABEL) or "null")
            except ValueError:
                recorded = None
            changed_options = opts.differences(want, have, recorded)
            for key in changed_options:
                self.diff["before"][key] = have.get(key)
                self.diff["after"][key] = want.get(key)
            container_id = info["Id"]
            recreate = params["recreate"] or any(k not in opts.UPDATABLE for k in changed_options)
            if not recreate and changed_options and not self.try_update(info, want, changed_options):
                recreate = True
            if recreate:
                self.remove(info)
                container_id = self.create(want, config_hash, action="recreate")
                info = None
            elif config_hash is not None and self.read_hash(container_id) != config_hash:
                self.diff["before"]["config_hash"] = self.read_hash(container_id)
                self.diff["after"]["config_hash"] = config_hash
                if info["State"]["Running"] and running:
                    self.act("restart", self.client.restart, container_id, timeout=self.stop_timeout())
                    just_started = True
                self.write_hash(container_id, config_hash)
        is_running = bool(info and info["State"]["Running"])
        if running and not is_running:
            if container_id is not None:
                self.act("start", self.client.start, container_id)
            else:
                self.actions.append("start")
            just_started = True
        if not running and is_running:
            self.act("stop", self.client.stop, container_id, timeout=self.stop_timeout())
        self.ensure_unit(running)
        return changed_options, container_id, just_started

    def try_update(self, info: dict[str, Any], want: dict[str, Any], changed: list[str]) -> bool:
        """Change resource limits in place; False where the engine cannot (then recreate)."""
        args = opts.update_request(want, changed)
        # Podman 4's Docker-compatible API has no update call, and `podman update` does not
        # record the new limits in the container's configuration: recreate there.
        if args is None or self.engine == "podman":
            return False
        self.actions.append("update")
        if self.check:
            return True
        try:
            self.client.update_container(info["Id"], **args)
            return True
        except APIError:
            self.actions.pop()
            return False

    def wait_healthy(self, container_id: str, fresh: bool) -> None:
        """Until the healthcheck passes; fails at once when the container exits or restarts
        (fresh: made by this task, so any restart counts), else after healthy_timeout."""
        timeout = self.params["healthy_timeout"]
        deadline = time.monotonic() + timeout
        restarts = None if not fresh else 0
        while True:
            info = self.client.inspect_container(container_id)
            state = info["State"]
            health = health_of(state)
            if not health:
                self.module.fail_json(msg=f"{self.name} has no healthcheck: give one, or use state started")
            count = int(info.get("RestartCount") or 0)
            restarts = count if restarts is None else restarts
            if count > restarts or state.get("Restarting"):
                # a container running again has its exit code reset: only one restarting has it
                code = f", last exit code {state.get('ExitCode')}" if state.get("Restarting") else ""
                # Its log goes on with the next run (begun, or beginning while the log is
                # read): show the lines of the run that exited (run_boundary).
                self.fail_unhealthy(
                    f"{self.name} restarted before it was healthy (restart count {count}{code}): "
                    "it fails, and its restart policy starts it again",
                    until=run_boundary(state),
                    exited=state.get("FinishedAt"),
                )
            if not state.get("Running"):
                self.fail_unhealthy(
                    f"{self.name} exited (code {state.get('ExitCode')}) before it was healthy"
                )
            status = health.get("Status")
            if status == "healthy":
                return
            if time.monotonic() > deadline:
                log = (health.get("Log") or [{}])[-1]
                self.fail_unhealthy(
                    f"{self.name} is not healthy after {timeout:d} s (status {status}, "
                    f"last check exit {log.get('ExitCode')}: {(log.get('Output') or '').strip()[:300]})"
                )
            time.sleep(0.5)

    def fail_unhealthy(self, msg: str, until: int | None = None, exited: str | None = None) -> None:
        """Fail with the container's last 20 log lines, in the message and as log_tail; with
        `until` (a started-again container's run_boundary), those of the run that exited."""
        if until is not None and self.engine == "podman":
            tail = self.podman_log_until(until)
        else:
            tail = log_tail(self.client, self.name, 20, until=until)
        text = "\n".join(tail) if tail else "(the log is empty)"
        which = (
            f"the last lines of the run that exited at {exited} "
            f"(every run: `{self.engine} logs --timestamps {self.name}`)"
            if until is not None
            else f"the last lines of its log (`{self.engine} logs --tail 20 {self.name}`)"
        )
        self.module.fail_json(
            msg=f"{msg}; {which}:\n{text}",
            log_tail=tail,
            actions=self.actions,
            container=self.summary(),
        )

    def podman_log_until(self, until: int) -> list[str]:
        """Podman 4's API stamps log lines to the second, too coarse to part two runs a few
        hundred ms apart: its command line stamps them finer (one stream each, merged here)."""
        rc, out, err = self.module.run_command(
            ["podman", "logs", "--timestamps", "--tail", "2000", self.name]
        )
        if rc != 0:
            return log_tail(self.client, self.name, 20)
        stamped = sorted(
            out.splitlines() + err.splitlines(), key=lambda line: instant(line.partition(" ")[0]) or 0
        )
        return stamped_before(stamped, until, 20)

    def summary(self) -> dict[str, Any]:
        info = None if self.check else self.inspect()
        return describe(info) if info else {}


def converge(container: Container, state: str) -> list[str]:
    """Bring the container to `state`; the options that differed. Its actions are in
    container.actions (none: nothing changed)."""
    client, check = container.client, container.check
    differing: list[str] = []
    if state == "absent":
        container.absent()
        return differing
    differing, container_id, just_started = container.present(running=state != "stopped")
    if state == "restarted" and not just_started and "recreate" not in container.actions:
        container.act("restart", client.restart, container_id, timeout=container.stop_timeout())
    if state == "healthy" and not check:
        container.wait_healthy(container_id, fresh=bool({"create", "recreate"} & set(container.actions)))
    return differing
