# Copyright: sovstack developers
# Apache License 2.0
"""The container engine behind sovstack's modules: Docker, or Podman through its
Docker-compatible API, both spoken through the `docker` Python SDK."""

from __future__ import annotations

import glob
import os
import re
import time
import traceback
from datetime import datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ansible.module_utils.basic import AnsibleModule
    from docker import APIClient

try:
    import docker
    import docker.errors
    from docker.errors import APIError, DockerException, ImageNotFound, NotFound

    HAS_DOCKER = True
    DOCKER_IMPORT_ERROR = None
except ImportError:  # reported by require_sdk(), on the host where the module runs
    HAS_DOCKER = False
    DOCKER_IMPORT_ERROR = traceback.format_exc()
    APIError = DockerException = ImageNotFound = NotFound = Exception

SOCKETS = {
    "docker": "unix:///var/run/docker.sock",
    "podman": "unix:///run/podman/podman.sock",
}
START_HINT = {
    "docker": "start it (systemctl start docker) or run `sovstack bootstrap`",
    "podman": "start its API socket (systemctl start podman.socket) or run `sovstack bootstrap`",
}

ENGINE_ARGS = dict(
    engine=dict(type="str", choices=["docker", "podman"], default="docker"),
    engine_url=dict(type="str"),
    timeout=dict(type="int", default=120),
)


# Podman's containers.conf files, in the order it reads them (a later one overrides).
PODMAN_CONF = ("/usr/share/containers/containers.conf", "/etc/containers/containers.conf")
PODMAN_CONF_DIR = "/etc/containers/containers.conf.d"
_ULIMITS_RE = re.compile(r"^\s*default_ulimits\s*=\s*\[(.*?)\]", re.MULTILINE | re.DOTALL)
_SECTION_RE = re.compile(r"^\s*\[([^\]]+)\]\s*$", re.MULTILINE)


def podman_default_ulimits(paths: list[str] | None = None) -> list[str]:
    """The default_ulimits of podman's containers.conf files on this host (NAME=SOFT:HARD),
    the last file that sets them winning; [] when none does.

    Podman applies them only to a container that names no ulimit of its own: one that names
    any gets podman's built-in 1048576 for nofile and nproc instead, which a host whose root
    may not raise its hard limits (no CAP_SYS_RESOURCE, or lower limits) cannot set, and then
    no container starts ("setrlimit RLIMIT_NPROC: Operation not permitted"). Docker merges the
    daemon's defaults with the container's own, name by name; the container module does the
    same on podman with these."""
    if paths is None:
        paths = [*PODMAN_CONF, *sorted(glob.glob(os.path.join(PODMAN_CONF_DIR, "*.conf")))]
    found: list[str] = []
    for path in paths:
        try:
            with open(path) as handle:
                text = "\n".join(line.split("#", 1)[0] for line in handle.read().splitlines())
        except OSError:
            continue
        # only the [containers] table holds default_ulimits
        sections = _SECTION_RE.split(text)
        for name, body in zip(sections[1::2], sections[2::2], strict=True):
            if name.strip() != "containers":
                continue
            match = _ULIMITS_RE.search(body)
            if match:
                found = re.findall(r"[\"']([^\"']+)[\"']", match.group(1))
    return found


class EngineError(Exception):
    """An engine failure with a message that names the cause and the fix."""


# Podman answers an inspect of a container whose process is exiting at that moment with a
# 500 ("read /proc/PID/cgroup: no such process"): it read the state of a process that was
# gone by then. Asked again, it reports the exited container.
INSPECT_TRIES = 5
INSPECT_PAUSE = 0.2


def vanished_process(exc: Exception) -> bool:
    """Whether an engine error is podman's race with a container's exiting process."""
    if getattr(exc, "status_code", None) != 500:
        return False
    text = str(getattr(exc, "explanation", None) or exc)
    return "no such process" in text


if HAS_DOCKER:

    class Client(docker.APIClient):
        """docker's low-level client, asking again when podman's inspect of a container
        raced with its exiting process (vanished_process)."""

        def inspect_container(self, container: Any) -> Any:
            for attempt in range(1, INSPECT_TRIES + 1):
                try:
                    return super().inspect_container(container)
                except APIError as exc:
                    if attempt == INSPECT_TRIES or not vanished_process(exc):
                        raise
                    time.sleep(INSPECT_PAUSE)
            raise AssertionError("unreachable")


def require_sdk(module: AnsibleModule) -> None:
    if not HAS_DOCKER:
        module.fail_json(
            msg="the Python docker SDK is missing on this host: install python3-docker "
            "(or run `sovstack bootstrap`)",
            exception=DOCKER_IMPORT_ERROR,
        )


def connect(module: AnsibleModule) -> APIClient:
    """A low-level client of the engine named in the module's parameters; fails the task
    with the cause and the fix when the engine does not answer."""
    require_sdk(module)
    engine = module.params["engine"]
    url = module.params.get("engine_url") or SOCKETS[engine]
    if url.startswith("unix://") and not os.path.exists(url[len("unix://") :]):
        module.fail_json(msg=f"{engine} is not running on this host (no socket {url}): {START_HINT[engine]}")
    try:
        # version="auto" asks the engine for its API version: that request is the liveness check
        client = Client(base_url=url, version="auto", timeout=module.params["timeout"])
    except DockerException as exc:
        module.fail_json(msg=f"{engine} does not answer at {url} ({exc}): {START_HINT[engine]}")
    return client


def registry_of(image: str) -> str | None:
    """The registry host of an image reference, or None for an unqualified name."""
    first, sep, _ = image.partition("/")
    if sep and ("." in first or ":" in first or first == "localhost"):
        return first
    return None


def split_reference(image: str) -> tuple[str, str | None, str | None]:
    """(repository, tag, digest) of an image reference; tag defaults to latest when no digest."""
    repository, _, digest = image.partition("@")
    tag = None
    last = repository.rsplit("/", 1)[-1]
    if ":" in last:
        repository, tag = repository.rsplit(":", 1)
    if not digest and not tag:
        tag = "latest"
    return repository, tag, digest or None


def inspect_image(client: APIClient, image: str) -> dict[str, Any] | None:
    try:
        return client.inspect_image(image)
    except NotFound:
        return None


def pull_image(client: APIClient, image: str, auth: dict[str, str] | None = None) -> dict[str, Any]:
    """Pull an image; raise EngineError naming the image and its registry when it is not there."""
    repository, tag, digest = split_reference(image)
    registry = registry_of(image) or "the default registry"
    try:
        # Errors can come as an HTTP status or inside the progress stream.
        for line in client.pull(repository, tag=digest or tag, auth_config=auth, stream=True, decode=True):
            if isinstance(line, dict) and line.get("error"):
                raise APIError(line["error"])
    except (APIError, DockerException) as exc:
        text = str(exc)
        if "not found" in text.lower() or "manifest unknown" in text.lower() or "404" in text:
            raise EngineError(
                f"image {image} is not in registry {registry}: build and push it "
                "(sovstack images build --push), or fix the image name"
            ) from None
        raise EngineError(f"pulling image {image} from {registry} failed: {text}") from None
    found = inspect_image(client, image)
    if found is None:
        raise EngineError(f"image {image} was pulled but the engine does not list it")
    return found


def ensure_image(client: APIClient, image: str, pull: str, check: bool) -> tuple[dict[str, Any], bool]:
    """The image's inspect data under a module's `pull` rule (never, missing, always), and
    whether a missing image was (in check mode: would be) pulled. Check mode pulls nothing: the
    data is then a stand-in whose Id says so."""
    info = None if pull == "always" else inspect_image(client, image)
    if info is not None:
        return info, False
    if pull == "never":
        raise EngineError(f"image {image} is not on this host and pull is never: load or pull it first")
    if check and pull == "missing":
        return {"Id": "(pulled) " + image, "Config": {}}, True
    return pull_image(client, image), pull == "missing"


INSTANT = re.compile(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d+))?(Z|[+-]\d\d:\d\d)")


def instant(text: str) -> int | None:
    """An engine's RFC 3339 time (`2026-12-02T01:45:50.123456789Z`), in nanoseconds since the
    epoch; None when it is not one."""
    found = INSTANT.match(text)
    if not found:
        return None
    base, fraction, zone = found.groups()
    seconds = datetime.fromisoformat(base + ("+00:00" if zone == "Z" else zone)).timestamp()
    return int(seconds) * 1_000_000_000 + int((fraction or "0").ljust(9, "0")[:9])


def log_tail(client: APIClient, container: str, lines: int = 20, until: int | None = None) -> list[str]:
    """The last lines of a container's log (stdout and stderr); [] when the engine has none.

    With `until` (nanoseconds since the epoch: see `run_boundary`), the last lines logged
    before then: those of a run that ended, not of the run its restart policy began since."""
    try:
        # an engine applies `tail` before `until`: the lines are filtered here, from the log's end
        raw = client.logs(
            container,
            stdout=True,
            stderr=True,
            tail=lines if until is None else 2000,
            timestamps=until is not None,
        )
    except (APIError, DockerException):
        return []
    text = raw.decode("utf-8", errors="replace") if isinstance(raw, bytes) else str(raw)
    if until is None:
        return text.splitlines()[-lines:]
    return stamped_before(text.splitlines(), until, lines)


def stamped_before(stamped: list[str], until: int, lines: int = 20) -> list[str]:
    """The last lines, without their stamps, of log lines that each begin with an engine time
    (`logs --timestamps`) stamped before `until` (nanoseconds); when none is, the last lines."""
    kept = []
    for line in stamped:
        at, text = _stamp(line)
        if at is None or at < until:
            kept.append(text)
    return kept[-lines:] or [_stamp(line)[1] for line in stamped[-lines:]]


def _stamp(line: str) -> tuple[int | None, str]:
    """A `logs --timestamps` line as (its time in nanoseconds, its text); (None, the line)
    when it does not begin with a time."""
    stamp, _, rest = line.partition(" ")
    at = instant(stamp)
    return (at, rest) if at is not None else (None, line)


def run_boundary(state: dict[str, Any]) -> int | None:
    """Where the log of the run that exited last ends, in nanoseconds: halfway between its exit
    (FinishedAt) and the new start (StartedAt) when the container runs again, 50 ms after its
    exit while it has not started again (Docker 26 says Restarting then; its next run can
    begin before the log is read); None when it has not exited since it started. Measured on
    Docker: the new run's first lines are stamped a few ms before its StartedAt, the old run's
    last ones just before FinishedAt, and the restart policy waits at least 100 ms in between."""
    finished, started = instant(state.get("FinishedAt") or ""), instant(state.get("StartedAt") or "")
    if finished is None or started is None or finished <= 0:
        return None
    if finished >= started:
        return finished + 50_000_000
    return (finished + started) // 2


def health_of(state: dict[str, Any]) -> dict[str, Any]:
    """The health record of a container's State (Docker: Health; Podman 4 also: Healthcheck)."""
    return state.get("Health") or state.get("Healthcheck") or {}


def describe(info: dict[str, Any]) -> dict[str, Any]:
    """A container's inspect data, abridged to what modules return."""
    state = info.get("State") or {}
    config = info.get("Config") or {}
    return {
        "name": info["Name"].lstrip("/"),
        "id": info["Id"],
        "status": state.get("Status"),
        "running": bool(state.get("Running")),
        "health": health_of(state).get("Status") or "none",
        "image": config.get("Image"),
        "image_id": info["Image"],
        "started_at": state.get("StartedAt"),
        "restart_count": int(info.get("RestartCount") or 0),
        "labels": config.get("Labels") or {},
    }
