# Copyright: sovstack developers
# Apache License 2.0
"""Ceph's keys: a daemon's key derived from one of sovstack's secrets, and keyring files."""

from __future__ import annotations

import hashlib
import hmac
import uuid
from typing import Any

from ansible.errors import AnsibleFilterError
from ansible_collections.sovstack.cloud.plugins.module_utils import cephx

# A derived key's creation time: fixed, so that the same secret and name give the same key.
DERIVED_CREATED = 1_700_000_000


def _secret_bytes(key: str, what: str) -> bytes:
    try:
        return cephx.secret(key)
    except (ValueError, TypeError) as exc:
        raise AnsibleFilterError(
            f"{what}: not a Ceph key ({exc}): make one with `sovstack secrets generate`"
        ) from None


def cephx_derive(key: str, name: str) -> str:
    """The key of Ceph entity NAME (such as mgr.node1) derived from the Ceph key KEY: HMAC-SHA256
    of the name under the key's secret, its first 16 bytes, encoded as Ceph encodes a key."""
    secret = hmac.new(_secret_bytes(key, "cephx_derive"), name.encode(), hashlib.sha256).digest()
    return cephx.encode(secret[: cephx.SECRET_BYTES], DERIVED_CREATED * 10**9)


def ceph_keyring(entities: list[dict[str, Any]]) -> str:
    """A keyring file: each entity (C(name), C(key), C(caps) a mapping of service to capability)."""
    lines: list[str] = []
    for entity in entities:
        name, key = entity.get("name"), entity.get("key")
        if not name or not key:
            raise AnsibleFilterError("ceph_keyring: every entity needs a name and a key")
        _secret_bytes(key, f"ceph_keyring: {name}")
        lines += [f"[{name}]", f"\tkey = {key}"]
        lines += [f'\tcaps {kind} = "{cap}"' for kind, cap in sorted((entity.get("caps") or {}).items())]
    return "\n".join(lines) + "\n"


def ceph_entities_differ(entities: list[dict[str, Any]], current: dict[str, Any]) -> list:
    """The entities whose key or capabilities differ from the cluster's (C(ceph auth ls)'s
    entries by entity name), or that it does not have."""
    return [
        entity
        for entity in entities
        if entity["name"] not in current
        or current[entity["name"]].get("key") != entity["key"]
        or (current[entity["name"]].get("caps") or {}) != (entity.get("caps") or {})
    ]


def ceph_osd_uuid(osd: dict[str, Any], fsid: str, host: str) -> str:
    """The UUID of a host's OSD (C(index) in the host's list): the same for the same cluster,
    host and index, so that a second try to make it gets the same id from the monitors."""
    return str(uuid.uuid5(uuid.UUID(fsid), f"{host}/osd/{osd['index']}"))


def _pg_problems(status: dict[str, Any]) -> list[str]:
    """A placement group counts as active+clean also while it scrubs (active+clean+scrubbing)."""
    pgmap = status.get("pgmap") or {}
    total = int(pgmap.get("num_pgs", 0))
    states = {s.get("state_name", ""): int(s.get("count", 0)) for s in pgmap.get("pgs_by_state") or []}
    clean = sum(count for name, count in states.items() if {"active", "clean"} <= set(name.split("+")))
    if clean == total:
        return []
    others = ", ".join(
        f"{count} {name}"
        for name, count in sorted(states.items())
        if not {"active", "clean"} <= set(name.split("+"))
    )
    return [f"{total - clean} of {total} placement groups not active+clean ({others})"]


def ceph_health_problems(
    status: dict[str, Any], osds: int, allowed: list[str], only: str | None = None
) -> list[str]:
    """What keeps Ceph's health gate shut, from C(ceph status --format=json): a health other
    than HEALTH_OK with checks beyond ALLOWED, fewer than OSDS OSDs, an OSD down or out, a
    placement group not active+clean (ONLY C(pgs): just the last)."""
    if only == "pgs":
        return _pg_problems(status)
    problems = []
    health = status.get("health") or {}
    checks = sorted(set(health.get("checks") or {}) - set(allowed))
    if health.get("status") != "HEALTH_OK" and checks:
        problems.append(f"{health.get('status')}: {', '.join(checks)}")
    osdmap = status.get("osdmap") or {}
    osdmap = osdmap.get("osdmap", osdmap)
    total, up, inside = (int(osdmap.get(k, 0)) for k in ("num_osds", "num_up_osds", "num_in_osds"))
    if total < osds:
        problems.append(f"{total} OSDs, {osds} expected")
    if up < total or inside < total:
        problems.append(f"{total} OSDs: {up} up, {inside} in")
    return problems + _pg_problems(status)


def ceph_pool_commands(
    current: list[dict[str, Any]], pools: list[str], size: int, min_size: int, pg_num: int
) -> list[list[str]]:
    """The ceph commands (each its arguments) that make the POOLS as sovstack wants them, from
    C(ceph osd pool ls detail --format=json): each made, of SIZE replicas and MIN_SIZE,
    with the autoscaler on, for RBD. Nothing for a pool that already is."""
    by_name = {pool["pool_name"]: pool for pool in current}
    commands: list[list[str]] = []
    for name in pools:
        pool = by_name.get(name)
        if pool is None:
            commands.append(["osd", "pool", "create", name, str(pg_num), "replicated", "--autoscale-mode=on"])
            pool = {}
        elif pool.get("pg_autoscale_mode") != "on":
            commands.append(["osd", "pool", "set", name, "pg_autoscale_mode", "on"])
        if pool.get("size") != int(size):
            commands.append(["osd", "pool", "set", name, "size", str(size), "--yes-i-really-mean-it"])
        if pool.get("min_size") != int(min_size):
            commands.append(["osd", "pool", "set", name, "min_size", str(min_size)])
        if "rbd" not in (pool.get("application_metadata") or {}):
            commands.append(["osd", "pool", "application", "enable", name, "rbd"])
    return commands


# BlueStore's aio thread waits with io_pgetevents; the seccomp profile of podman 4.3
# (containers-common 0.50, Debian 12) refuses it (EPERM), and the OSD aborts.
OSD_SYSCALLS = ("io_pgetevents",)


def ceph_osd_seccomp(profile: dict[str, Any]) -> dict[str, Any]:
    """The engine's default seccomp profile with the system calls an OSD needs (OSD_SYSCALLS)
    allowed: taken out of every rule that refuses them, and allowed by a rule of their own."""
    rules = []
    for rule in profile.get("syscalls") or []:
        names = rule.get("names") or []
        if rule.get("action") != "SCMP_ACT_ALLOW" and any(name in OSD_SYSCALLS for name in names):
            names = [name for name in names if name not in OSD_SYSCALLS]
            if not names:
                continue
            rule = {**rule, "names": names}
        rules.append(rule)
    allowed = {
        n
        for r in rules
        if r.get("action") == "SCMP_ACT_ALLOW" and not r.get("args")
        for n in r.get("names") or []
    }
    missing = [name for name in OSD_SYSCALLS if name not in allowed]
    if missing:
        rules.append({"names": missing, "action": "SCMP_ACT_ALLOW"})
    return {**profile, "syscalls": rules}


class FilterModule:
    def filters(self) -> dict[str, Any]:
        return {
            "cephx_derive": cephx_derive,
            "ceph_keyring": ceph_keyring,
            "ceph_entities_differ": ceph_entities_differ,
            "ceph_osd_uuid": ceph_osd_uuid,
            "ceph_pool_commands": ceph_pool_commands,
            "ceph_osd_seccomp": ceph_osd_seccomp,
            "ceph_health_problems": ceph_health_problems,
        }
