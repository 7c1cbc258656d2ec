"""Normalization and comparison of every option of sovstack.cloud.container.

data/inspect-*.json are the engines' own inspect data of one container made by the module with
every option set (on the rig: docker 20.10 and podman 4.3), beside the task's parameters.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest
from ansible_collections.sovstack.cloud.plugins.module_utils import container_options as opts
from ansible_collections.sovstack.cloud.plugins.module_utils import engine as engine_utils

DATA = Path(__file__).parent / "data"
ENGINES = ["docker", "podman"]


def load(engine):
    return json.loads((DATA / f"inspect-{engine}.json").read_text())


def compare(engine, params, container=None):
    data = load(engine)
    container = container or data["container"]
    recorded = json.loads(container["Config"]["Labels"][opts.DEFINITION_LABEL])
    want = opts.desired(params, data["image"], engine)
    have = opts.current(container, data["image"], engine)
    return opts.differences(want, have, recorded)


@pytest.mark.parametrize("engine", ENGINES)
def test_the_same_task_matches_the_engines_container(engine):
    data = load(engine)
    assert compare(engine, data["params"]) == []


# Each option changed in the task: exactly that option differs.
CHANGES = [
    ("command", ["exec sleep 60"]),
    ("command", "exec sleep 60"),
    ("entrypoint", ["/bin/sh", "-e", "-c"]),
    ("environment", {"A": "2", "EMPTY": ""}),
    ("environment", {"A": "1"}),
    ("environment", {"A": "1", "EMPTY": "", "B": "3"}),
    ("volumes", ["/var/tmp:/data", "sovstack-full:/vol"]),
    ("volumes", ["/var/tmp:/data:ro"]),
    ("tmpfs", ["/scratch:size=1m", "/other"]),
    ("network_mode", "bridge"),
    ("pid_mode", "private"),
    ("ipc_mode", "private"),
    ("cgroupns_mode", "private"),
    ("user", "0"),
    ("cap_add", ["NET_ADMIN"]),
    ("cap_drop", ["NET_RAW"]),
    ("devices", ["/dev/null:/dev/testzero:rw"]),
    ("devices", []),
    ("security_opt", ["no-new-privileges", "seccomp=unconfined"]),
    ("ulimits", ["nofile=2048:2048", "nproc=32768:32768"]),
    ("labels", {"sovstack.service": "other"}),
    ("labels", {}),
    ("healthcheck", {"test": "false", "interval": "2s", "retries": 5}),
    ("healthcheck", {"test": "true", "interval": "3s", "retries": 5}),
    ("restart_policy", "always"),
    ("stop_timeout", 4),
    ("privileged", True),
    ("memory", "128m"),
    ("memory_reservation", "16m"),
    ("cpu_shares", 1024),
    ("cpus", 1.5),
    ("cpuset_cpus", "0-1"),
]


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize(("option", "value"), CHANGES, ids=lambda v: str(v)[:30])
def test_one_changed_option_is_named(engine, option, value):
    params = copy.deepcopy(load(engine)["params"])
    params[option] = value
    assert compare(engine, params) == [option]


# Options dropped from the task: seen through the definition recorded at creation (resource
# limits through the container, where "not given" is no limit).
DROPPABLE = [
    "command", "entrypoint", "environment", "volumes", "tmpfs", "network_mode", "pid_mode",
    "ipc_mode", "cgroupns_mode", "user", "devices", "security_opt", "ulimits", "labels",
    "healthcheck", "restart_policy", "stop_timeout", "memory", "memory_reservation", "cpu_shares",
    "cpus", "cpuset_cpus",
]  # fmt: skip


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("option", DROPPABLE)
def test_a_dropped_option_is_named(engine, option):
    params = copy.deepcopy(load(engine)["params"])
    del params[option]
    assert compare(engine, params) == [option]


@pytest.mark.parametrize("engine", ENGINES)
def test_dropping_capabilities_names_both(engine):
    params = copy.deepcopy(load(engine)["params"])
    del params["cap_add"], params["cap_drop"]
    assert compare(engine, params) == ["cap_add", "cap_drop"]


@pytest.mark.parametrize("engine", ENGINES)
def test_the_image_is_compared_by_id(engine):
    data = load(engine)
    other = {**data["image"], "Id": "sha256:" + "0" * 64}
    want = opts.desired(data["params"], other, engine)
    have = opts.current(data["container"], data["image"], engine)
    recorded = json.loads(data["container"]["Config"]["Labels"][opts.DEFINITION_LABEL])
    assert opts.differences(want, have, recorded) == ["image"]


@pytest.mark.parametrize("engine", ENGINES)
def test_drift_in_the_container_is_seen(engine):
    """A container changed behind the module's back differs from the same task."""
    data = load(engine)
    drifted = copy.deepcopy(data["container"])
    drifted["Config"]["Env"].append("SNEAKY=1")
    drifted["HostConfig"]["Memory"] = 1 << 30
    assert compare(engine, data["params"], drifted) == ["environment", "memory"]


# -- normalizers ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "size"),
    [(1024, 1024), ("1024", 1024), ("512m", 512 << 20), ("2G", 2 << 30), ("1gb", 1 << 30), ("10k", 10240)],
)
def test_sizes(value, size):
    assert opts.to_bytes(value, "memory") == size


def test_bad_size_names_the_option():
    with pytest.raises(opts.OptionError, match=r"^memory: 'lots' is not a size"):
        opts.to_bytes("lots", "memory")


@pytest.mark.parametrize(
    ("value", "ns"),
    [("30s", 30 * 10**9), ("1m30s", 90 * 10**9), ("500ms", 5 * 10**8), (2, 2 * 10**9), ("1.5", 15 * 10**8)],
)
def test_durations(value, ns):
    assert opts.to_ns(value, "healthcheck.interval") == ns


@pytest.mark.parametrize("bad", ["soon", "30 s", "1x", "s"])
def test_bad_durations(bad):
    with pytest.raises(opts.OptionError, match="is not a duration"):
        opts.to_ns(bad, "healthcheck.interval")


def test_commands_split_like_a_shell():
    assert opts.to_argv("sh -c 'echo a b'") == ["sh", "-c", "echo a b"]
    assert opts.to_argv(["a", 1]) == ["a", "1"]


def test_capability_names():
    assert opts.cap_name("cap_net_admin") == "NET_ADMIN"
    assert opts.effective_caps(opts.DOCKER_DEFAULT_CAPS, ["NET_ADMIN"], ["ALL"]) == ["NET_ADMIN"]
    assert "MKNOD" not in opts.effective_caps(opts.PODMAN_DEFAULT_CAPS, [], [])
    assert opts.effective_caps(opts.DOCKER_DEFAULT_CAPS, ["ALL"], []) == ["ALL"]


@pytest.mark.parametrize(
    ("spec", "parsed"),
    [
        ("/etc:/host-etc:ro", ("/etc", "/host-etc", "ro")),
        ("/etc/:/host-etc/", ("/etc", "/host-etc", "rw")),
        ("/etc:/host-etc:ro,rprivate,rbind", ("/etc", "/host-etc", "ro")),  # podman's form
        ("data:/var/lib/data:z", ("data", "/var/lib/data", "rw")),
    ],
)
def test_volumes(spec, parsed):
    assert opts.parse_volume(spec) == parsed


@pytest.mark.parametrize("spec", ["/etc", "/etc:relative", "/a:/b:ro:x", "/a:/b:sideways"])
def test_bad_volumes(spec):
    with pytest.raises(opts.OptionError, match="volumes: "):
        opts.parse_volume(spec)


def test_devices():
    assert opts.parse_device("/dev/kvm") == ("/dev/kvm", "/dev/kvm", "rwm")
    assert opts.parse_device("/dev/net/tun:/dev/tun:wr") == ("/dev/net/tun", "/dev/tun", "rw")
    assert opts.parse_device(
        {"PathOnHost": "/dev/zero", "PathInContainer": "/z", "CgroupPermissions": ""}
    ) == (
        "/dev/zero",
        "/z",
        None,
    )
    with pytest.raises(opts.OptionError, match="devices: "):
        opts.parse_device("/dev/kvm:/dev/kvm:rwx")


def test_ulimits():
    assert opts.parse_ulimit("nofile=1024:2048") == ("nofile", 1024, 2048)
    assert opts.parse_ulimit("NPROC=10") == ("nproc", 10, 10)
    assert opts.ulimit_name("RLIMIT_NOFILE") == "nofile"
    with pytest.raises(opts.OptionError, match="ulimits: "):
        opts.parse_ulimit("nofile=many")


def test_podman_gets_its_default_ulimits_beside_the_named_ones():
    named = [{"Name": "nofile", "Soft": 9000, "Hard": 9000}]
    merged = opts.with_default_ulimits(named, ["nofile=20000:20000", "NPROC=32768:32768", "core=0"])
    assert merged == [
        *named,
        {"Name": "nproc", "Soft": 32768, "Hard": 32768},
        {"Name": "core", "Soft": 0, "Hard": 0},
    ]
    assert opts.with_default_ulimits(named, []) == named


def test_podman_default_ulimits_from_containers_conf(tmp_path):
    shipped = tmp_path / "shipped.conf"
    shipped.write_text('[containers]\ndefault_ulimits = [\n  "nofile=1024:1024",\n]\n')
    ours = tmp_path / "ours.conf"
    ours.write_text(
        "# managed\n[containers]\nlog_driver = 'journald'\ndefault_ulimits = [\n"
        '  "nofile=20000:20000",  # the host\'s hard limit\n  "nproc=32768:32768",\n]\n\n'
        '[engine]\ncgroup_manager = "systemd"\n'
    )
    elsewhere = tmp_path / "elsewhere.conf"
    elsewhere.write_text('[engine]\ndefault_ulimits = ["nofile=1:1"]\n')
    paths = [str(shipped), str(ours), str(elsewhere), str(tmp_path / "missing.conf")]
    assert engine_utils.podman_default_ulimits(paths) == ["nofile=20000:20000", "nproc=32768:32768"]
    assert engine_utils.podman_default_ulimits([str(shipped)]) == ["nofile=1024:1024"]
    assert engine_utils.podman_default_ulimits([str(elsewhere)]) == []


def test_healthcheck():
    assert opts.healthcheck_of({"test": "curl -f x", "interval": "10s", "retries": 3}) == {
        "Test": ["CMD-SHELL", "curl -f x"],
        "Interval": 10 * 10**9,
        "Retries": 3,
    }
    assert opts.healthcheck_of({"test": ["curl", "-f", "x"]})["Test"] == ["CMD", "curl", "-f", "x"]
    with pytest.raises(opts.OptionError, match="healthcheck: test is required"):
        opts.healthcheck_of({"test": []})


def test_contradictions():
    with pytest.raises(opts.OptionError, match="privileged and cap_drop contradict each other"):
        opts.check_contradictions({"privileged": True, "cap_drop": ["ALL"]})
    opts.check_contradictions({"privileged": True, "cap_add": ["NET_ADMIN"]})


def test_resource_updates_and_lifting_a_limit():
    want = opts.desired({"memory": "64m", "cpus": 0.5}, {"Id": "x"}, "docker")
    assert opts.update_request(want, ["memory", "cpus"]) == {
        "mem_limit": 64 << 20,
        "memswap_limit": -1,
        "cpu_period": 100000,
        "cpu_quota": 50000,
    }
    lifted = opts.desired({}, {"Id": "x"}, "docker")
    assert opts.update_request(lifted, ["memory"]) is None


def test_definition_label_leaves_out_image_and_limits():
    want = opts.desired({"memory": "64m", "user": "1"}, {"Id": "sha256:x"}, "docker")
    label = json.loads(opts.definition_label(want))
    assert label == {"privileged": False, "user": "1"}


# -- mount propagation, device cgroup rules, sysctls ------------------------------------------


@pytest.mark.parametrize(
    ("spec", "parsed"),
    [
        ("/run/libvirt:/run/libvirt:rw,rshared", ("/run/libvirt", "/run/libvirt", "rw", "rshared")),
        ("/var/lib/ceph:/var/lib/ceph:rslave", ("/var/lib/ceph", "/var/lib/ceph", "rw", "rslave")),
        ("/srv:/srv:ro,slave", ("/srv", "/srv", "ro", "slave")),
        ("/srv:/srv:shared", ("/srv", "/srv", "rw", "shared")),
        ("/srv:/srv:private", ("/srv", "/srv", "rw", "private")),
        # the engines' default propagation is the same volume as none given
        ("/srv:/srv:rprivate", ("/srv", "/srv", "rw")),
        ("/srv:/srv:rw,rslave,rbind", ("/srv", "/srv", "rw", "rslave")),  # podman's form
    ],
)
def test_volume_propagation_is_kept(spec, parsed):
    assert opts.parse_volume(spec) == parsed
    # and given back to the engine as it was asked for
    assert opts.parse_volume(opts.volume_bind(parsed)) == parsed


def test_two_propagations_are_refused():
    with pytest.raises(opts.OptionError, match="more than one mount propagation"):
        opts.parse_volume("/srv:/srv:rslave,rshared")


def test_propagation_is_compared():
    image = {"Id": "sha256:x"}
    slave = opts.desired({"volumes": ["/srv:/srv:rslave"]}, image)
    shared = opts.desired({"volumes": ["/srv:/srv:rshared"]}, image)
    default = opts.desired({"volumes": ["/srv:/srv"]}, image)
    assert slave["volumes"] != shared["volumes"] != default["volumes"]
    have = {"volumes": sorted(slave["volumes"])}
    assert opts.differences(shared, have, None) == ["volumes"]
    assert opts.differences(slave, have, None) == []


@pytest.mark.parametrize(
    ("rule", "normalized"),
    [
        ("c 10:200 rwm", "c 10:200 rwm"),
        ("a *:* rwm", "a *:* rwm"),
        ("b  8:*  mr", "b 8:* rm"),
        ("c 1:3 w", "c 1:3 w"),
    ],
)
def test_device_cgroup_rules(rule, normalized):
    assert opts.parse_cgroup_rule(rule) == normalized


@pytest.mark.parametrize("rule", ["c 10:200", "x 1:1 rwm", "c one:1 r", "c 1:1 rwx", "c 1:1 rr", "c 1 r"])
def test_bad_device_cgroup_rules(rule):
    with pytest.raises(opts.OptionError, match=r"^device_cgroup_rules: "):
        opts.parse_cgroup_rule(rule)


def test_sysctls():
    assert opts.sysctls_of({"net.ipv4.ip_forward": 1, "kernel.shmmax": "68719476736"}) == {
        "net.ipv4.ip_forward": "1",
        "kernel.shmmax": "68719476736",
    }
    assert opts.sysctls_of({"net.ipv4.conf.all.forwarding": True}) == {"net.ipv4.conf.all.forwarding": "1"}
    for bad in ({"ip_forward": 1}, {"net.ipv4 .x": 1}, {"net.ipv4.ip_forward": None}):
        with pytest.raises(opts.OptionError, match=r"^sysctls: "):
            opts.sysctls_of(bad)


# data/inspect-hostlevel-*.json: a container made by the module with the host-level options
# (mount propagation, pid namespace, devices, device cgroup rules, sysctls), captured on the rig
# with data/capture_inspect.py (docker 20.10 and podman 4.3).


def compare_hostlevel(engine, params):
    data = json.loads((DATA / f"inspect-hostlevel-{engine}.json").read_text())
    container = data["container"]
    recorded = json.loads(container["Config"]["Labels"][opts.DEFINITION_LABEL])
    want = opts.desired(params, data["image"], engine)
    have = opts.current(container, data["image"], engine)
    return opts.differences(want, have, recorded)


def hostlevel_params(engine):
    return copy.deepcopy(json.loads((DATA / f"inspect-hostlevel-{engine}.json").read_text())["params"])


@pytest.mark.parametrize("engine", ENGINES)
def test_the_same_host_level_task_matches(engine):
    assert compare_hostlevel(engine, hostlevel_params(engine)) == []


HOST_LEVEL_CHANGES = [
    ("volumes", ["/var/tmp:/data:ro", "/srv:/srv:rw,rshared", "/opt:/opt", "sovstack-hostlevel:/vol"]),
    (
        "volumes",
        ["/var/tmp:/data:ro,rshared", "/srv:/srv:rw,rshared", "/opt:/opt", "sovstack-hostlevel:/vol"],
    ),
    ("volumes", ["/var/tmp:/data:ro,rslave", "/srv:/srv:rw,rslave", "/opt:/opt", "sovstack-hostlevel:/vol"]),
    (
        "volumes",
        ["/var/tmp:/data:ro,rslave", "/srv:/srv:rw,rshared", "/opt:/opt:slave", "sovstack-hostlevel:/vol"],
    ),
    ("device_cgroup_rules", ["c 42:* rwm"]),
    ("device_cgroup_rules", ["c 42:* rw", "b 7:* rw"]),
    ("sysctls", {"net.ipv4.tcp_keepalive_time": 622, "kernel.msgmax": "65536"}),
    ("sysctls", {"net.ipv4.tcp_keepalive_time": 621, "kernel.msgmax": "65536", "kernel.msgmnb": "65536"}),
]


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize(("option", "value"), HOST_LEVEL_CHANGES, ids=lambda v: str(v)[:40])
def test_a_changed_host_level_option_is_named(engine, option, value):
    params = hostlevel_params(engine)
    params[option] = value
    assert compare_hostlevel(engine, params) == [option]


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("option", ["volumes", "device_cgroup_rules", "sysctls", "pid_mode", "devices"])
def test_a_dropped_host_level_option_is_named(engine, option):
    params = hostlevel_params(engine)
    del params[option]
    assert compare_hostlevel(engine, params) == [option]


@pytest.mark.parametrize("engine", ENGINES)
def test_the_engine_keeps_the_propagation(engine):
    """The engine's own record of each mount has the propagation the task asked for."""
    data = json.loads((DATA / f"inspect-hostlevel-{engine}.json").read_text())
    mounts = {m["Destination"]: m.get("Propagation") for m in data["container"]["Mounts"]}
    assert mounts["/data"] == "rslave" and mounts["/srv"] == "rshared"
    assert opts.current(data["container"], data["image"], engine)["volumes"] == sorted(
        opts.parse_volume(v) for v in data["params"]["volumes"]
    )


def test_engine_times_compare_to_the_nanosecond_whatever_their_zone():
    """Docker writes UTC with `Z` and drops trailing zeros; Podman may write an offset."""
    instant = engine_utils.instant
    assert instant("2026-12-02T01:53:37.410810161Z") == 1796176417_410810161
    assert instant("2026-12-02T01:53:37.41Z") == 1796176417_410000000
    assert instant("2026-12-02T02:53:37.41+01:00") == instant("2026-12-02T01:53:37.41Z")
    assert instant("2026-12-02T01:53:37Z") < instant("2026-12-02T01:53:37.000000001Z")
    assert instant("starting 12") is None


def test_the_log_of_a_run_that_exited_ends_halfway_to_the_next_start():
    """Figures measured on Docker 20.10: the new run's first line is stamped before its
    StartedAt, the old run's last line before FinishedAt."""
    state = {"FinishedAt": "2026-12-02T02:20:29.127408022Z", "StartedAt": "2026-12-02T02:20:30.379015311Z"}
    until = engine_utils.run_boundary(state)
    log = [
        "2026-12-02T02:20:28.062483258Z starting 1",
        "2026-12-02T02:20:29.064973679Z no database",
        "2026-12-02T02:20:30.376633702Z starting 1",
    ]
    assert engine_utils.stamped_before(log, until) == ["starting 1", "no database"]
    assert engine_utils.stamped_before(log[2:], until) == ["starting 1"]  # none before: the last lines
    assert engine_utils.run_boundary({**state, "FinishedAt": "0001-01-01T00:00:00Z"}) is None
    # exited and not started again (Docker 26: Restarting): the lines up to 50 ms after the exit
    later = {**state, "FinishedAt": "2026-12-02T02:20:31Z"}
    assert engine_utils.run_boundary(later) == engine_utils.instant("2026-12-02T02:20:31.05Z")


def test_only_podmans_race_with_an_exiting_process_is_asked_again():
    """The message podman 4.3 gave in CI for an inspect while the job's process exited."""
    from docker.errors import APIError, NotFound
    from requests import Response

    def error(cls: type[APIError], status: int, explanation: str) -> APIError:
        response = Response()
        response.status_code = status
        return cls("engine error", response=response, explanation=explanation)

    raced = error(APIError, 500, "read /proc/3502/cgroup: no such process")
    assert engine_utils.vanished_process(raced)
    assert not engine_utils.vanished_process(error(APIError, 500, "container storage is corrupt"))
    assert not engine_utils.vanished_process(error(NotFound, 404, "no such container"))
    assert not engine_utils.vanished_process(ValueError("no such process"))
