# Copyright: sovstack developers
# Apache License 2.0
"""The options of sovstack.cloud.container: how each is normalized from the task's
parameters, read back from an engine's inspect data, compared, and turned into the
engine's create (or update) request.

Pure code, without the engine: the module and the unit tests share it.

Comparison rule: an option given in the task is compared with the running container, after
normalization (engine defaults, lists that are really sets, units). An option not given means
"the engine's default" and is not compared with the container; that it was given before and is
no longer given is seen from the definition the module records in a label at creation.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import shlex
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Collection, Iterable

DEFINITION_LABEL = "sovstack.definition"  # the normalized options the container was made from
INTERNAL_LABELS = (DEFINITION_LABEL,)
# Environment variables an engine sets by itself (podman: container, HOSTNAME, HOME).
ENGINE_ENV = ("container", "HOSTNAME", "HOME", "TERM")

# The capabilities a container has by default: Docker's, and Podman's (containers.conf).
DOCKER_DEFAULT_CAPS = (
    "AUDIT_WRITE",
    "CHOWN",
    "DAC_OVERRIDE",
    "FOWNER",
    "FSETID",
    "KILL",
    "MKNOD",
    "NET_BIND_SERVICE",
    "NET_RAW",
    "SETFCAP",
    "SETGID",
    "SETPCAP",
    "SETUID",
    "SYS_CHROOT",
)
PODMAN_DEFAULT_CAPS = (
    "CHOWN",
    "DAC_OVERRIDE",
    "FOWNER",
    "FSETID",
    "KILL",
    "NET_BIND_SERVICE",
    "SETFCAP",
    "SETGID",
    "SETPCAP",
    "SETUID",
    "SYS_CHROOT",
)
ENGINE_DEFAULT_CAPS = {"docker": DOCKER_DEFAULT_CAPS, "podman": PODMAN_DEFAULT_CAPS}

_UNITS = {"": 1, "b": 1, "k": 1024, "m": 1024**2, "g": 1024**3, "t": 1024**4}
_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ns|us|ms|s|m|h)")
_DURATION_NS = {"ns": 1, "us": 10**3, "ms": 10**6, "s": 10**9, "m": 60 * 10**9, "h": 3600 * 10**9}


class OptionError(ValueError):
    """A task parameter that cannot be right; the message names the option and the fix."""


# -- normalizers ------------------------------------------------------------------------


def to_bytes(value: int | str | None, option: str) -> int | None:
    """512m, 1g, 1048576 -> bytes."""
    if value is None:
        return None
    if isinstance(value, int):
        return value
    match = re.fullmatch(r"\s*(\d+)\s*([bkmgt]?)b?\s*", str(value).lower())
    if not match:
        raise OptionError(f"{option}: {value!r} is not a size (use a number of bytes, or 512m, 2g)")
    return int(match.group(1)) * _UNITS[match.group(2)]


def to_ns(value: float | str | None, option: str) -> int | None:
    """30s, 1m30s, 500ms, or a number of seconds -> nanoseconds."""
    if value is None:
        return None
    if isinstance(value, (int, float)):
        return int(value * 10**9)
    text = str(value).strip()
    if re.fullmatch(r"\d+(\.\d+)?", text):
        return int(float(text) * 10**9)
    parts = _DURATION.findall(text)
    if not parts or "".join(n + u for n, u in parts) != text:
        raise OptionError(f"{option}: {value!r} is not a duration (use 30s, 1m30s, 500ms)")
    return int(sum(float(n) * _DURATION_NS[u] for n, u in parts))


def to_argv(value: str | Iterable[Any] | None) -> list[str] | None:
    """A command as a list: a string is split like a shell would."""
    if value is None:
        return None
    if isinstance(value, str):
        return shlex.split(value)
    return [str(v) for v in value]


def cap_name(cap: str) -> str:
    cap = str(cap).strip().upper()
    return cap[4:] if cap.startswith("CAP_") else cap


PROPAGATIONS = ("rprivate", "private", "rshared", "shared", "rslave", "slave")
DEFAULT_PROPAGATION = "rprivate"  # both engines' default for a bind mount
_VOLUME_OPTIONS = {
    "ro",
    "rw",
    "z",
    "Z",
    "rbind",
    "bind",
    "nosuid",
    "nodev",
    "noexec",
    "exec",
    "suid",
    "dev",
    "nocopy",
    *PROPAGATIONS,
}


def parse_volume(spec: str) -> tuple[str, ...]:
    """'src:dst[:opts]' -> (src, dst, 'ro'|'rw'), or (src, dst, mode, propagation) when the
    mount propagation is not the engines' default (rprivate); other engine-added flags are dropped."""
    parts = str(spec).split(":")
    if len(parts) < 2 or len(parts) > 3 or not parts[0] or not parts[1].startswith("/"):
        raise OptionError(
            f"volumes: {spec!r} is not SOURCE:/container/path[:ro|rw[,PROPAGATION]] "
            "(SOURCE an absolute path or a volume name)"
        )
    opts = set(parts[2].split(",")) if len(parts) == 3 else set()
    unknown = opts - _VOLUME_OPTIONS
    if unknown:
        raise OptionError(f"volumes: {spec!r} has unknown options {', '.join(sorted(unknown))}")
    propagation = sorted(opts & set(PROPAGATIONS))
    if len(propagation) > 1:
        raise OptionError(f"volumes: {spec!r} has more than one mount propagation ({', '.join(propagation)})")
    volume: tuple[str, ...] = (
        parts[0].rstrip("/") or "/",
        parts[1].rstrip("/") or "/",
        "ro" if "ro" in opts else "rw",
    )
    if propagation and propagation[0] != DEFAULT_PROPAGATION:
        volume = (*volume, propagation[0])
    return volume


def volume_bind(volume: tuple[str, ...] | list[str]) -> str:
    """A parsed volume back as the engine's bind string (SOURCE:/path:mode[,propagation])."""
    return f"{volume[0]}:{volume[1]}:{','.join(volume[2:])}"


def parse_device(spec: str | dict[str, Any]) -> tuple[str, str, str | None]:
    """'/dev/x[:/dev/y[:rwm]]' -> (host, container, perms)."""
    if isinstance(spec, dict):
        host = spec.get("PathOnHost") or spec.get("path_on_host")
        # podman reports no permissions (""): None, matched by the paths alone
        perms = spec.get("CgroupPermissions", spec.get("cgroup_permissions", "rwm"))
        return (host, spec.get("PathInContainer") or spec.get("path_in_container") or host, perms or None)
    parts = str(spec).split(":")
    if not parts[0].startswith("/dev/") or len(parts) > 3:
        raise OptionError(f"devices: {spec!r} is not /dev/HOST[:/dev/CONTAINER[:rwm]]")
    host = parts[0]
    container = parts[1] if len(parts) > 1 and parts[1] else host
    perms = parts[2] if len(parts) > 2 else "rwm"
    if not perms or set(perms) - set("rwm"):
        raise OptionError(f"devices: {spec!r} has permissions other than r, w, m")
    return (host, container, "".join(c for c in "rwm" if c in perms))


def parse_tmpfs(spec: str) -> tuple[str, str]:
    """'/path[:opts]' -> (path, sorted options the task asked for)."""
    path, _, opts = str(spec).partition(":")
    if not path.startswith("/"):
        raise OptionError(f"tmpfs: {spec!r} is not /path[:options]")
    return path, ",".join(sorted(o for o in opts.split(",") if o))


def parse_ulimit(spec: str | dict[str, Any]) -> tuple[str, int, int]:
    """'nofile=1024:2048' or {'name':..., 'soft':..., 'hard':...} -> (name, soft, hard)."""
    if isinstance(spec, dict):
        soft = int(spec["soft"])
        return (ulimit_name(spec["name"]), soft, int(spec.get("hard", soft)))
    name, _, limits = str(spec).partition("=")
    soft, _, hard = limits.partition(":")
    try:
        return (ulimit_name(name), int(soft), int(hard or soft))
    except ValueError:
        raise OptionError(f"ulimits: {spec!r} is not NAME=SOFT[:HARD]") from None


def with_default_ulimits(ulimits: list[dict[str, Any]], defaults: Iterable[str]) -> list[dict[str, Any]]:
    """The ulimits of a create request (Name/Soft/Hard) and, for each name they leave out, the
    engine's default (NAME=SOFT[:HARD] strings): Docker's merge, done for Podman."""
    named = {ulimit_name(u["Name"]) for u in ulimits}
    added = []
    for spec in defaults:
        name, soft, hard = parse_ulimit(spec)
        if name not in named:
            named.add(name)
            added.append({"Name": name, "Soft": soft, "Hard": hard})
    return [*ulimits, *added]


def ulimit_name(name: str) -> str:
    """nofile, NOFILE and podman's RLIMIT_NOFILE are one ulimit."""
    name = str(name).strip().lower()
    return name[len("rlimit_") :] if name.startswith("rlimit_") else name


def effective_caps(default: Iterable[str], add: Iterable[str], drop: Iterable[str]) -> list[str]:
    """The capabilities a container ends up with, from the engine's default set."""
    drop = set(drop)
    caps = set() if "ALL" in drop else set(default) - drop
    add = set(add)
    if "ALL" in add:
        return ["ALL"]
    return sorted(caps | add)


def env_dict(items: Iterable[str] | None) -> dict[str, str]:
    result: dict[str, str] = {}
    for item in items or []:
        key, _, value = item.partition("=")
        result[key] = value
    return result


def healthcheck_of(value: dict[str, Any] | None) -> dict[str, Any] | None:
    """The task's healthcheck -> engine form (Test list and nanosecond durations)."""
    if value is None:
        return None
    test = value.get("test")
    if isinstance(test, str):
        test = ["CMD-SHELL", test]
    elif test is not None:
        test = [str(t) for t in test]
        if test and test[0] not in ("CMD", "CMD-SHELL", "NONE"):
            test = ["CMD", *test]
    if not test:
        raise OptionError("healthcheck: test is required (a shell command, or a list)")
    result: dict[str, Any] = {"Test": test}
    for key, engine_key in (
        ("interval", "Interval"),
        ("timeout", "Timeout"),
        ("start_period", "StartPeriod"),
    ):
        if value.get(key) is not None:
            result[engine_key] = to_ns(value[key], "healthcheck." + key)
    if value.get("retries") is not None:
        result["Retries"] = int(value["retries"])
    return result


_CGROUP_RULE = re.compile(r"([abc]) (\d+|\*):(\d+|\*) ([rwm]{1,3})")


def parse_cgroup_rule(rule: str) -> str:
    """'c 10:200 rwm' (type a, b or c; major:minor, numbers or *; permissions) -> normalized."""
    match = _CGROUP_RULE.fullmatch(" ".join(str(rule).split()))
    if not match or len(set(match.group(4))) != len(match.group(4)):
        raise OptionError(
            f"device_cgroup_rules: {rule!r} is not TYPE MAJOR:MINOR PERMISSIONS "
            "(for example 'c 10:200 rwm' or 'a *:* rwm')"
        )
    kind, major, minor, perms = match.groups()
    return f"{kind} {major}:{minor} {''.join(c for c in 'rwm' if c in perms)}"


def sysctls_of(value: dict[str, Any]) -> dict[str, str]:
    """{'net.ipv4.ip_forward': 1} -> {'net.ipv4.ip_forward': '1'}."""
    result: dict[str, str] = {}
    for key, item in value.items():
        name = str(key).strip()
        if not re.fullmatch(r"[a-z][a-z0-9_]*(\.[A-Za-z0-9_/-]+)+", name):
            raise OptionError(f"sysctls: {key!r} is not a sysctl name (for example net.ipv4.ip_forward)")
        if item is None or isinstance(item, (dict, list)):
            raise OptionError(f"sysctls: {key}: give a value (a string or a number)")
        result[name] = str(int(item)) if isinstance(item, bool) else str(item)
    return result


# -- the options --------------------------------------------------------------------------


def desired(params: dict[str, Any], image_info: dict[str, Any], engine: str = "docker") -> dict[str, Any]:
    """Every option the task gives, normalized; absent options are left out."""
    want: dict[str, Any] = {}
    want["image"] = image_info["Id"]
    if params.get("command") is not None:
        want["command"] = to_argv(params["command"])
    if params.get("entrypoint") is not None:
        want["entrypoint"] = to_argv(params["entrypoint"])
    if params.get("environment") is not None:
        want["environment"] = {str(k): "" if v is None else str(v) for k, v in params["environment"].items()}
    if params.get("volumes") is not None:
        want["volumes"] = sorted(parse_volume(v) for v in params["volumes"])
    if params.get("tmpfs") is not None:
        want["tmpfs"] = sorted(parse_tmpfs(t) for t in params["tmpfs"])
    for key in ("network_mode", "pid_mode", "ipc_mode", "cgroupns_mode", "user", "restart_policy"):
        if params.get(key) is not None:
            want[key] = str(params[key])
    if params.get("network_mode") is not None:
        want["network_mode"] = _network_mode(params["network_mode"])
    if params.get("cap_add") is not None:
        want["cap_add"] = sorted({cap_name(c) for c in params["cap_add"]})
    if params.get("cap_drop") is not None:
        want["cap_drop"] = sorted({cap_name(c) for c in params["cap_drop"]})
    if "cap_add" in want or "cap_drop" in want:
        want["capabilities"] = effective_caps(
            ENGINE_DEFAULT_CAPS[engine], want.get("cap_add", []), want.get("cap_drop", [])
        )
    if params.get("devices") is not None:
        want["devices"] = sorted((parse_device(d) for d in params["devices"]), key=lambda d: d[:2])
    if params.get("device_cgroup_rules") is not None:
        want["device_cgroup_rules"] = sorted({parse_cgroup_rule(r) for r in params["device_cgroup_rules"]})
    if params.get("sysctls") is not None:
        want["sysctls"] = sysctls_of(params["sysctls"])
    if params.get("security_opt") is not None:
        want["security_opt"] = sorted({str(s).replace("=", ":", 1) for s in params["security_opt"]})
    want["privileged"] = bool(params.get("privileged"))
    if params.get("ulimits") is not None:
        want["ulimits"] = sorted(parse_ulimit(u) for u in params["ulimits"])
    if params.get("labels") is not None:
        want["labels"] = {str(k): str(v) for k, v in params["labels"].items()}
    if params.get("healthcheck") is not None:
        want["healthcheck"] = healthcheck_of(params["healthcheck"])
    if params.get("stop_timeout") is not None:
        want["stop_timeout"] = int(params["stop_timeout"])
    # Resource limits are always compared: not given is no limit (0).
    want["memory"] = to_bytes(params.get("memory"), "memory") or 0
    want["memory_reservation"] = to_bytes(params.get("memory_reservation"), "memory_reservation") or 0
    want["cpu_shares"] = int(params.get("cpu_shares") or 0)
    want["cpus"] = round(float(params.get("cpus") or 0) * 100000)
    want["cpuset_cpus"] = str(params.get("cpuset_cpus") or "")
    return want


# Options an engine does not report truly: Podman 4's Docker-compatible inspect shows
# IpcMode "shareable" for a container in the host's IPC namespace, and no CgroupnsMode, Sysctls
# or DeviceCgroupRules. They are compared with the recorded definition only.
UNREADABLE = {"podman": ("ipc_mode", "cgroupns_mode", "sysctls", "device_cgroup_rules")}

# Options changed in place on a running container (docker update); all others recreate it.
UPDATABLE = ("memory", "memory_reservation", "cpu_shares", "cpus", "cpuset_cpus")


def _network_mode(mode: str | None) -> str:
    mode = str(mode)
    return "bridge" if mode in ("default", "") else mode


def _restart_policy(name: str | None) -> str:
    return "no" if name in (None, "") else name


def current(info: dict[str, Any], image_info: dict[str, Any] | None, engine: str) -> dict[str, Any]:
    """The same options, read back from the container's inspect data."""
    config = info.get("Config") or {}
    host = info.get("HostConfig") or {}
    have: dict[str, Any] = {"image": info.get("Image")}
    have["command"] = config.get("Cmd") or []
    have["entrypoint"] = config.get("Entrypoint") or []
    if isinstance(have["entrypoint"], str):
        have["entrypoint"] = [have["entrypoint"]]
    env = env_dict(config.get("Env"))
    image_env = env_dict((image_info or {}).get("Config", {}).get("Env"))
    # what the task set: the container's environment less the image's and the engine's own
    have["environment"] = {
        k: v for k, v in env.items() if not (k in image_env and image_env[k] == v) and k not in ENGINE_ENV
    }
    have["engine_environment"] = {k: v for k, v in env.items() if k in ENGINE_ENV}
    volumes: list[tuple[str, ...]] = []
    for bind in host.get("Binds") or []:
        with contextlib.suppress(OptionError):
            volumes.append(parse_volume(bind))
    for mount in info.get("Mounts") or []:
        # podman lists named volumes in Mounts only
        if mount.get("Type") == "volume" and mount.get("Name"):
            entry: tuple[str, ...] = (
                mount["Name"],
                mount["Destination"].rstrip("/") or "/",
                "rw" if mount.get("RW", True) else "ro",
            )
            if mount.get("Propagation") not in (None, "", DEFAULT_PROPAGATION):
                entry = (*entry, mount["Propagation"])
            if entry not in volumes:
                volumes.append(entry)
    have["volumes"] = sorted(set(volumes))
    have["tmpfs"] = sorted((path, opts or "") for path, opts in (host.get("Tmpfs") or {}).items())
    have["network_mode"] = _network_mode(host.get("NetworkMode"))
    have["pid_mode"] = host.get("PidMode") or ""
    have["ipc_mode"] = host.get("IpcMode") or ""
    have["cgroupns_mode"] = host.get("CgroupnsMode") or ""
    have["user"] = config.get("User") or ""
    have["restart_policy"] = _restart_policy((host.get("RestartPolicy") or {}).get("Name"))
    have["cap_add"] = sorted({cap_name(c) for c in host.get("CapAdd") or []})
    have["cap_drop"] = sorted({cap_name(c) for c in host.get("CapDrop") or []})
    # Both engines report CapAdd/CapDrop against Docker's default set (podman expands ALL).
    have["capabilities"] = effective_caps(DOCKER_DEFAULT_CAPS, have["cap_add"], have["cap_drop"])
    have["devices"] = sorted((parse_device(d) for d in host.get("Devices") or []), key=lambda d: d[:2])
    rules = set()
    for rule in host.get("DeviceCgroupRules") or []:
        with contextlib.suppress(OptionError):
            rules.add(parse_cgroup_rule(rule))
    have["device_cgroup_rules"] = sorted(rules)
    have["sysctls"] = {str(k): str(v) for k, v in (host.get("Sysctls") or {}).items()}
    have["security_opt"] = sorted({str(s).replace("=", ":", 1) for s in host.get("SecurityOpt") or []})
    have["privileged"] = bool(host.get("Privileged"))
    have["ulimits"] = sorted(
        (ulimit_name(u["Name"]), int(u["Soft"]), int(u["Hard"])) for u in host.get("Ulimits") or []
    )
    image_labels = (image_info or {}).get("Config", {}).get("Labels") or {}
    have["labels"] = {
        k: v
        for k, v in (config.get("Labels") or {}).items()
        if k not in INTERNAL_LABELS and not (k in image_labels and image_labels[k] == v)
    }
    health = config.get("Healthcheck")
    have["healthcheck"] = {k: v for k, v in health.items() if v not in (None, 0, [])} if health else None
    have["stop_timeout"] = config.get("StopTimeout")
    have["memory"] = host.get("Memory") or 0
    have["memory_reservation"] = host.get("MemoryReservation") or 0
    have["cpu_shares"] = host.get("CpuShares") or 0
    quota, period = host.get("CpuQuota") or 0, host.get("CpuPeriod") or 0
    have["cpus"] = (
        round(quota * 100000 / period)
        if quota > 0 and period
        else (round((host.get("NanoCpus") or 0) / 10000))
    )
    have["cpuset_cpus"] = host.get("CpusetCpus") or ""
    for key in UNREADABLE.get(engine, ()):
        del have[key]
    return have


def _matches(key: str, want: Any, have_all: dict[str, Any]) -> bool:
    """Whether the wanted value of key matches the container (have_all: current()'s result)."""
    have = have_all[key]
    if key == "volumes":
        return sorted(want) == sorted(have)
    if key == "tmpfs":
        # the engine adds mount options of its own; the ones asked for must be among them
        have_paths = dict(have)
        if sorted(p for p, _ in want) != sorted(have_paths):
            return False
        return all(set(filter(None, opts.split(","))) <= set(have_paths[p].split(",")) for p, opts in want)
    if key == "ulimits":
        # the engine adds default ulimits (podman's containers.conf); the ones asked for must be set
        have_by_name = {u[0]: u for u in have}
        return all(have_by_name.get(u[0]) == u for u in want)
    if key == "sysctls":
        # podman adds its default sysctls (containers.conf); the ones asked for must be set
        return all(have.get(k) == v for k, v in want.items())
    if key == "security_opt":
        # podman adds options of its own (label=disable and the like)
        return set(want) <= set(have)
    if key == "environment":
        # the task may name a variable the engine sets by itself (HOME, ...)
        env = {**have_all["engine_environment"], **have}
        return all(env.get(k) == v for k, v in want.items()) and all(k in want for k in have)
    if key == "healthcheck":
        return all(have and have.get(k) == v for k, v in want.items())
    if key == "devices":
        return len(want) == len(have) and all(
            (h[0], h[1]) == (w[0], w[1]) and h[2] in (None, w[2]) for w, h in zip(want, have, strict=True)
        )
    if key == "privileged":
        return bool(want) == bool(have)
    return want == have


# Compared through another key: cap_add and cap_drop through the capabilities they make.
_THROUGH = {"cap_add": "capabilities", "cap_drop": "capabilities"}


def differences(want: dict[str, Any], have: dict[str, Any], recorded: dict[str, Any] | None) -> list[str]:
    """Options whose wanted value differs from the container, or from the definition the
    container was made from (an option dropped from the task). Resource limits are compared
    with the container only: they change in place, so the recorded definition leaves them out."""
    names: set[str] = set()
    for key in want:
        if key == "capabilities":
            continue
        through = _THROUGH.get(key, key)
        if through not in have:
            continue
        if not _matches(through, want.get(through), have):
            if through != key and recorded is not None and want.get(key) == recorded.get(key):
                continue  # the capabilities differ through the other of cap_add and cap_drop
            names.add(key)
    if recorded is not None:
        for key in set(want) | set(recorded):
            if key in ("image", "capabilities") or key in UPDATABLE:
                continue
            if _canonical(want.get(key)) != _canonical(recorded.get(key)):
                names.add(key)
    return sorted(names)


def _canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, default=list)


def definition_label(want: dict[str, Any]) -> str:
    """The normalized definition as a label value: without the image (compared by its id) and
    the resource limits (which change in place)."""
    return _canonical(
        {k: v for k, v in want.items() if k not in ("image", "capabilities") and k not in UPDATABLE}
    )


def definition_hash(want: dict[str, Any]) -> str:
    return hashlib.sha256(definition_label(want).encode()).hexdigest()


def check_engine_support(params: dict[str, Any], engine: str) -> None:
    """Options an engine's API would take and silently not apply."""
    if engine != "podman":
        return
    if params.get("cgroupns_mode") == "private":
        raise OptionError(
            "cgroupns_mode: private is not applied by Podman 4's Docker-compatible API (the container "
            "would share the host's cgroup namespace): leave cgroupns_mode out on podman, or use docker"
        )
    if params.get("device_cgroup_rules"):
        for rule in params["device_cgroup_rules"]:
            parse_cgroup_rule(rule)  # a malformed rule is named as such first
        raise OptionError(
            "device_cgroup_rules: not applied by Podman 4's Docker-compatible API (the device cgroup "
            "would refuse the devices): name each device in devices on podman, or use docker"
        )


def check_contradictions(params: dict[str, Any]) -> None:
    if params.get("privileged") and params.get("cap_drop"):
        raise OptionError(
            "privileged and cap_drop contradict each other: a privileged container keeps every "
            "capability; drop privileged (name the capabilities in cap_add) or drop cap_drop"
        )


def create_request(
    params: dict[str, Any], want: dict[str, Any], labels: dict[str, str]
) -> tuple[dict[str, Any], dict[str, Any], dict[str, str]]:
    """Keyword arguments for APIClient.create_host_config and create_container."""
    host: dict[str, Any] = {
        "binds": [volume_bind(v) for v in want.get("volumes", [])],
        "privileged": want["privileged"],
    }
    if "tmpfs" in want:
        host["tmpfs"] = {path: opts for path, opts in want["tmpfs"]}
    for key, arg in (("network_mode", "network_mode"), ("pid_mode", "pid_mode"), ("ipc_mode", "ipc_mode")):
        if key in want:
            host[arg] = want[key]
    if "cap_add" in want:
        host["cap_add"] = want["cap_add"]
    if "cap_drop" in want:
        host["cap_drop"] = want["cap_drop"]
    if "devices" in want:
        host["devices"] = [f"{path}:{target}:{perms}" for path, target, perms in want["devices"]]
    if "device_cgroup_rules" in want:
        host["device_cgroup_rules"] = want["device_cgroup_rules"]
    if "sysctls" in want:
        host["sysctls"] = want["sysctls"]
    if "security_opt" in want:
        host["security_opt"] = [s.replace(":", "=", 1) for s in want["security_opt"]]
    if "ulimits" in want:
        host["ulimits"] = [{"Name": n, "Soft": s, "Hard": h} for n, s, h in want["ulimits"]]
    if "restart_policy" in want:
        host["restart_policy"] = {"Name": want["restart_policy"]}
    if want.get("memory"):
        host["mem_limit"] = want["memory"]
    if want.get("memory_reservation"):
        host["mem_reservation"] = want["memory_reservation"]
    if want.get("cpu_shares"):
        host["cpu_shares"] = want["cpu_shares"]
    if want.get("cpus"):
        host["cpu_period"] = 100000
        host["cpu_quota"] = want["cpus"]
    if want.get("cpuset_cpus"):
        host["cpuset_cpus"] = want["cpuset_cpus"]
    container: dict[str, Any] = {
        "image": params["image"],
        "name": params["name"],
        "labels": labels,
        "detach": True,
    }
    if "command" in want:
        container["command"] = want["command"]
    if "entrypoint" in want:
        container["entrypoint"] = want["entrypoint"]
    if "environment" in want:
        container["environment"] = want["environment"]
    if "user" in want:
        container["user"] = want["user"]
    if "healthcheck" in want:
        container["healthcheck"] = dict(want["healthcheck"])
    if "stop_timeout" in want:
        container["stop_timeout"] = want["stop_timeout"]
    extra_host: dict[str, str] = {}
    if "cgroupns_mode" in want:
        extra_host["CgroupnsMode"] = want["cgroupns_mode"]
    return host, container, extra_host


def update_request(want: dict[str, Any], changed: Collection[str]) -> dict[str, Any] | None:
    """Keyword arguments for APIClient.update_container for the changed resource limits, or
    None where a limit is removed (an engine cannot lift a limit in place: recreate)."""
    if any(not want[key] for key in changed):
        return None
    args: dict[str, Any] = {}
    if "memory" in changed:
        args["mem_limit"] = want["memory"]
        args["memswap_limit"] = -1  # else the engine refuses a limit above the old swap limit
    if "memory_reservation" in changed:
        args["mem_reservation"] = want["memory_reservation"]
    if "cpu_shares" in changed:
        args["cpu_shares"] = want["cpu_shares"]
    if "cpus" in changed:
        args["cpu_period"] = 100000
        args["cpu_quota"] = want["cpus"]
    if "cpuset_cpus" in changed:
        args["cpuset_cpus"] = want["cpuset_cpus"]
    return args


def check_bind_sources(want: dict[str, Any]) -> None:
    """A bind source must exist on the host (the engines would make an empty directory)."""
    for volume in want.get("volumes", []):
        source, target = volume[0], volume[1]
        if source.startswith("/") and not os.path.exists(source):
            raise OptionError(
                f"volumes: bind source {source} (for {target}) does not exist on this host: "
                "create it first, or use a named volume"
            )


# The argument spec of a container's definition, shared by sovstack.cloud.container and
# sovstack.cloud.job; documented in the doc fragment sovstack.cloud.container_options.
DEFINITION_ARGS: dict[str, dict[str, Any]] = dict(
    image=dict(type="str"),
    pull=dict(type="str", default="missing", choices=["never", "missing", "always"]),
    command=dict(type="raw"),
    entrypoint=dict(type="raw"),
    environment=dict(type="dict"),
    volumes=dict(type="list", elements="str"),
    tmpfs=dict(type="list", elements="str"),
    network_mode=dict(type="str"),
    pid_mode=dict(type="str"),
    ipc_mode=dict(type="str"),
    cgroupns_mode=dict(type="str", choices=["host", "private"]),
    user=dict(type="str"),
    cap_add=dict(type="list", elements="str"),
    cap_drop=dict(type="list", elements="str"),
    devices=dict(type="list", elements="str"),
    device_cgroup_rules=dict(type="list", elements="str"),
    sysctls=dict(type="dict"),
    security_opt=dict(type="list", elements="str"),
    privileged=dict(type="bool", default=False),
    ulimits=dict(type="list", elements="str"),
    labels=dict(type="dict"),
    memory=dict(type="str"),
    memory_reservation=dict(type="str"),
    cpu_shares=dict(type="int"),
    cpus=dict(type="float"),
    cpuset_cpus=dict(type="str"),
)
