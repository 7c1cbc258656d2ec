"""The Ceph filters: derived keys, keyrings, what to import, the pools' commands, the OSDs'
seccomp profile and the health gate's reading of `ceph status`."""

from __future__ import annotations

import base64
import json
import struct

import pytest
from ansible.errors import AnsibleFilterError
from ansible_collections.sovstack.cloud.plugins.filter import ceph

from sovstack.secrets import make_cephx_key


def test_a_derived_key_is_a_ceph_key_the_same_for_the_same_name_and_another_for_another():
    seed = make_cephx_key()
    key = ceph.cephx_derive(seed, "mgr.node1")
    raw = base64.b64decode(key)
    assert struct.unpack("<HIIH", raw[:12])[0::3] == (1, 16) and len(raw) == 28
    assert ceph.cephx_derive(seed, "mgr.node1") == key
    assert ceph.cephx_derive(seed, "mgr.node2") != key
    assert ceph.cephx_derive(make_cephx_key(), "mgr.node1") != key
    with pytest.raises(AnsibleFilterError, match="not a Ceph key"):
        ceph.cephx_derive("c2hvcnQ=", "mgr.node1")


def test_a_keyring_has_each_entity_its_key_and_caps():
    key = make_cephx_key()
    text = ceph.ceph_keyring(
        [
            {
                "name": "client.glance",
                "key": key,
                "caps": {"osd": "profile rbd pool=images", "mon": "profile rbd"},
            }
        ]
    )
    assert (
        text == f"[client.glance]\n\tkey = {key}\n"
        '\tcaps mon = "profile rbd"\n\tcaps osd = "profile rbd pool=images"\n'
    )
    with pytest.raises(AnsibleFilterError, match=r"client\.x: not a Ceph key"):
        ceph.ceph_keyring([{"name": "client.x", "key": "plain"}])


def test_only_entities_missing_or_with_another_key_or_caps_are_imported():
    a, b, c = make_cephx_key(), make_cephx_key(), make_cephx_key()
    wanted = [
        {"name": "client.a", "key": a, "caps": {"mon": "profile rbd"}},
        {"name": "client.b", "key": b, "caps": {"mon": "profile rbd"}},
        {"name": "client.c", "key": c, "caps": {"mon": "profile rbd"}},
        {"name": "client.d", "key": c, "caps": {}},
    ]
    current = {
        "client.a": {"entity": "client.a", "key": a, "caps": {"mon": "profile rbd"}},
        "client.b": {"entity": "client.b", "key": a, "caps": {"mon": "profile rbd"}},
        "client.c": {"entity": "client.c", "key": c, "caps": {"mon": "allow *"}},
    }
    assert [e["name"] for e in ceph.ceph_entities_differ(wanted, current)] == [
        "client.b",
        "client.c",
        "client.d",
    ]


def test_pools_are_made_and_set_only_where_they_differ():
    current = [
        {
            "pool_name": "images",
            "size": 3,
            "min_size": 2,
            "pg_autoscale_mode": "on",
            "application_metadata": {"rbd": {}},
        },
        {
            "pool_name": "vms",
            "size": 2,
            "min_size": 2,
            "pg_autoscale_mode": "warn",
            "application_metadata": {},
        },
    ]
    assert ceph.ceph_pool_commands(current, ["images", "vms", "volumes"], 3, 2, 8) == [
        ["osd", "pool", "set", "vms", "pg_autoscale_mode", "on"],
        ["osd", "pool", "set", "vms", "size", "3", "--yes-i-really-mean-it"],
        ["osd", "pool", "application", "enable", "vms", "rbd"],
        ["osd", "pool", "create", "volumes", "8", "replicated", "--autoscale-mode=on"],
        ["osd", "pool", "set", "volumes", "size", "3", "--yes-i-really-mean-it"],
        ["osd", "pool", "set", "volumes", "min_size", "2"],
        ["osd", "pool", "application", "enable", "volumes", "rbd"],
    ]
    assert ceph.ceph_pool_commands(current[:1], ["images"], 3, 2, 8) == []


def test_the_osd_seccomp_profile_allows_io_pgetevents_and_keeps_every_other_rule():
    profile = {
        "defaultAction": "SCMP_ACT_ERRNO",
        "syscalls": [
            {"names": ["read", "write"], "action": "SCMP_ACT_ALLOW"},
            {"names": ["bdflush", "io_pgetevents"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1},
            {"names": ["io_pgetevents"], "action": "SCMP_ACT_ERRNO"},
        ],
    }
    made = ceph.ceph_osd_seccomp(profile)
    assert made["defaultAction"] == "SCMP_ACT_ERRNO"
    assert made["syscalls"] == [
        {"names": ["read", "write"], "action": "SCMP_ACT_ALLOW"},
        {"names": ["bdflush"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1},
        {"names": ["io_pgetevents"], "action": "SCMP_ACT_ALLOW"},
    ]
    assert ceph.ceph_osd_seccomp(made) == made
    json.dumps(made)


def status(health: str = "HEALTH_OK", checks=(), osds=(3, 3, 3), pgs=(("active+clean", 32),)) -> dict:
    return {
        "health": {"status": health, "checks": {name: {} for name in checks}},
        "osdmap": dict(zip(("num_osds", "num_up_osds", "num_in_osds"), osds, strict=True)),
        "pgmap": {
            "num_pgs": sum(n for _, n in pgs),
            "pgs_by_state": [{"state_name": s, "count": n} for s, n in pgs],
        },
    }


@pytest.mark.parametrize(
    ("given", "problems"),
    [
        (status(), []),
        (status("HEALTH_WARN", ["MON_DISK_LOW"]), []),
        (status(pgs=(("active+clean", 30), ("active+clean+scrubbing", 2))), []),
        (status("HEALTH_WARN", ["MON_DISK_LOW", "OSDMAP_FLAGS"]), ["HEALTH_WARN: OSDMAP_FLAGS"]),
        (status(osds=(2, 2, 2)), ["2 OSDs, 3 expected"]),
        (status(osds=(3, 2, 3)), ["3 OSDs: 2 up, 3 in"]),
        (
            status(pgs=(("active+clean", 30), ("active+undersized", 2))),
            ["2 of 32 placement groups not active+clean (2 active+undersized)"],
        ),
    ],
)
def test_the_health_gate_reads_ceph_status(given: dict, problems: list[str]):
    assert ceph.ceph_health_problems(given, 3, ["MON_DISK_LOW"]) == problems


def test_an_osd_uuid_is_the_same_for_the_same_cluster_host_and_index():
    fsid = "6048cfe0-68fa-4933-a235-62bd1496987d"
    first = ceph.ceph_osd_uuid({"index": 0}, fsid, "node1")
    assert first == ceph.ceph_osd_uuid({"index": 0}, fsid, "node1")
    assert (
        len(
            {
                first,
                ceph.ceph_osd_uuid({"index": 1}, fsid, "node1"),
                ceph.ceph_osd_uuid({"index": 0}, fsid, "node2"),
            }
        )
        == 3
    )
