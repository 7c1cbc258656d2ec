"""sovstack.cloud.container, container_info, image and volume against a real dockerd and a real
Podman: the engines that bootstrap installed on the rig hosts."""

from __future__ import annotations

import json
import time

import pytest

from sovstack.rig import RigHost, wait_for_ssh
from tests.integration.conftest import PLAYBOOKS, run_module, run_playbooks

ENGINES = ["docker", "podman"]


@pytest.fixture(params=ENGINES)
def rig(request, module_rigs):
    return module_rigs[request.param]


def container(rig, *flags, **args):
    """The container module's result; `actions` without the podman unit's (tested apart)."""
    result = run_module(rig, "sovstack.cloud.container", {"engine": rig.engine, **args}, *flags)
    result["unit_actions"] = [a for a in result.get("actions", []) if a.endswith(" unit")]
    result["actions"] = [a for a in result.get("actions", []) if not a.endswith(" unit")]
    return result


def info(rig, name):
    result = run_module(rig, "sovstack.cloud.container_info", {"engine": rig.engine, "name": name})
    return result["containers"][0] if result["exists"] else None


BASE = {"image": "sovstack-test/busybox:1", "environment": {"A": "1"}, "stop_timeout": 1}


def test_every_option_change_detected(module_rigs):
    """Each option changed: reported by name with the right action; again: nothing; dropped: seen."""
    results = run_playbooks(module_rigs, PLAYBOOKS / "container_options.yml")
    for engine, proc in results.items():
        assert proc.returncode == 0, f"{engine}:\n{proc.stdout[-4000:]}\n{proc.stderr[-2000:]}"
        assert "failed=0" in proc.stdout


def test_check_mode_changes_nothing(rig):
    container(rig, name="chk", state="absent")
    created = container(rig, "--check", name="chk", **BASE)
    assert created["status"] == "CHANGED" and created["actions"] == ["create", "start"]
    assert info(rig, "chk") is None

    made = container(rig, name="chk", **BASE)
    assert made["actions"] == ["create", "start"]
    before = info(rig, "chk")
    checked = container(rig, "--check", name="chk", **{**BASE, "environment": {"A": "2"}})
    assert checked["status"] == "CHANGED"
    assert checked["differences"] == ["environment"] and checked["actions"] == ["recreate", "start"]
    # privileged cannot run on these hosts, but its change is still seen, in check mode
    privileged = container(rig, "--check", name="chk", **{**BASE, "privileged": True})
    assert privileged["differences"] == ["privileged"]
    assert info(rig, "chk") == before
    container(rig, name="chk", state="absent")


def test_diff_mode_shows_before_and_after(rig):
    container(rig, name="dif", **BASE)
    result = container(rig, "--diff", name="dif", **{**BASE, "environment": {"A": "1", "B": "2"}})
    assert result["differences"] == ["environment"]
    lines = result["diff_text"].splitlines()
    assert '"environment": {' in result["diff_text"]
    assert any(line.startswith("-") and '"A": "1"' in line for line in lines), result["diff_text"]
    assert any(line.startswith("+") and '"B": "2"' in line for line in lines), result["diff_text"]
    container(rig, name="dif", state="absent")


def test_config_hash_restarts_without_recreating(rig):
    first = container(rig, name="cfg", config_hash="one", **BASE)
    assert first["actions"] == ["create", "start"]
    same = container(rig, name="cfg", config_hash="one", **BASE)
    assert same["status"] == "SUCCESS"
    time.sleep(1.1)  # StartedAt has a resolution the restart must be seen through
    second = container(rig, name="cfg", config_hash="two", **BASE)
    assert second["actions"] == ["restart"] and second["differences"] == []
    assert second["container"]["id"] == first["container"]["id"]
    assert second["container"]["started_at"] != first["container"]["started_at"]
    assert container(rig, name="cfg", config_hash="two", **BASE)["status"] == "SUCCESS"
    container(rig, name="cfg", state="absent")


def service_host(rig, **args):
    """The service_host module's result; its `actions` without the podman units'."""
    result = run_module(rig, "sovstack.cloud.service_host", {"engine": rig.engine, "name": "svc", **args})
    result["actions"] = {
        name: [a for a in acts if not a.endswith(" unit")] for name, acts in result.get("actions", {}).items()
    }
    return result


def svc_containers(conf, *names):
    return [
        {
            "name": f"svc_{n}",
            "image": "sovstack-test/busybox:1",
            "command": ["sleep", "3600"],
            "stop_timeout": 1,
            "volumes": [f"{conf}/{n}:/etc/{n}:ro"],
            "healthcheck": {"test": f"test -f /etc/{n}/{n}.conf", "interval": "1s"},
            "config_files": [f"{conf}/{n}/{n}.conf"],
        }
        for n in names
    ]


def test_service_host_writes_and_runs_a_service_in_one_call(rig):
    """A service's files and containers in one call: a second call changes nothing, a changed
    file restarts only the container that reads it (a plan names it first and touches
    nothing), a container the list drops is removed (a plan names it first); the files'
    contents are never shown."""
    secret = "s3cret-svc-4711"
    conf = "/etc/sovstack-test-svc"
    files = [{"path": f"{conf}/{n}/{n}.conf", "owner": "root", "group": "0", "mode": "0640"} for n in "ab"]
    args = {
        "directories": {f"{conf}/a": "0", f"{conf}/b": "0"},
        "files": files,
        "contents": [f"password = {secret}\n", "b\n"],
        "containers": svc_containers(conf, "a", "b"),
    }
    try:
        first = service_host(rig, **args)
        assert first["status"] == "CHANGED", first.get("msg")
        assert first["actions"] == {"svc_a": ["create", "start"], "svc_b": ["create", "start"]}
        assert sorted(first["changed_files"]) == sorted(
            [f"{conf}/a", f"{conf}/b", *(f["path"] for f in files)]
        )
        assert first["containers"]["svc_a"]["health"] == "healthy"
        assert first["containers"]["svc_b"]["labels"]["sovstack.service"] == "svc"
        assert secret not in json.dumps(first) + first["diff_text"]
        again = service_host(rig, **args)
        assert again["status"] == "SUCCESS", again
        assert (again["actions"], again["changed_files"], again["removed"]) == ({}, [], [])
        before = {n: info(rig, f"svc_{n}")["started_at"] for n in "ab"}

        args["contents"][1] = "b changed\n"
        plan = service_host(rig, **args, state="plan")
        assert plan["would_change"] == ["svc_b"] and plan["changed_files"] == [f"{conf}/b/b.conf"]
        assert (plan["unhealthy"], plan["would_remove"]) == ([], [])
        assert info(rig, "svc_b")["started_at"] == before["b"]
        time.sleep(1.1)  # StartedAt has a resolution the restart must be seen through
        third = service_host(rig, **args)
        assert third["actions"] == {"svc_b": ["restart"]} and third["changed_files"] == []
        assert info(rig, "svc_a")["started_at"] == before["a"]
        assert info(rig, "svc_b")["started_at"] != before["b"]

        fewer = {**args, "containers": svc_containers(conf, "a")}
        assert service_host(rig, **fewer, state="plan")["would_remove"] == ["svc_b"]
        assert info(rig, "svc_b")["running"]
        fourth = service_host(rig, **fewer)
        assert fourth["removed"] == ["svc_b"] and fourth["actions"] == {}
        assert info(rig, "svc_b") is None and info(rig, "svc_a")["started_at"] == before["a"]
    finally:
        gone = service_host(rig, containers=[])
        rig.host("node1").run(f"rm -rf {conf}")
    assert gone["removed"] in (["svc_a"], ["svc_a", "svc_b"]), gone


def test_healthy_waits_until_the_check_passes(rig):
    result = container(
        rig,
        name="hlt",
        state="healthy",
        image="sovstack-test/busybox:1",
        command=["/bin/sh", "-c", "sleep 2; touch /tmp/ready; exec sleep 3600"],
        healthcheck={"test": "test -f /tmp/ready", "interval": "1s", "retries": 30},
        stop_timeout=1,
    )
    assert result["status"] == "CHANGED", result.get("msg")
    assert result["container"]["health"] == "healthy"
    container(rig, name="hlt", state="absent")


def test_healthy_times_out_and_says_why(rig):
    result = container(
        rig,
        name="sick",
        state="healthy",
        healthy_timeout=4,
        image="sovstack-test/busybox:1",
        healthcheck={"test": "echo not yet; false", "interval": "1s", "retries": 100},
        stop_timeout=1,
    )
    assert result["status"] == "FAILED!"
    assert result["msg"].startswith("sick is not healthy after 4 s")
    assert "not yet" in result["msg"]
    assert "the last lines of its log" in result["msg"] and "log_tail" in result
    container(rig, name="sick", state="absent")


def test_healthy_fails_when_the_container_exits(rig):
    result = container(
        rig,
        name="gone",
        state="healthy",
        image="sovstack-test/busybox:1",
        command=[
            "/bin/sh",
            "-c",
            "for i in $(busybox seq 1 30); do echo line $i; done; echo cannot go on >&2; exit 3",
        ],
        healthcheck={"test": "true", "interval": "1s"},
    )
    assert result["status"] == "FAILED!"
    assert result["msg"].startswith("gone exited (code 3) before it was healthy")
    # the last 20 lines of its log, stdout and stderr, in the message and the result
    # (an engine may not have the last line of the other stream in its log yet when the
    # container is seen exited: the test holds to the lines that come first)
    assert len(result["log_tail"]) == 20 and "line 30" in result["log_tail"]
    assert "line 10" not in result["log_tail"]
    assert "\nline 30" in result["msg"]
    container(rig, name="gone", state="absent")


def test_healthy_fails_at_once_on_a_restart_loop(rig):
    """A container that exits and is started again by its restart policy looks running between
    restarts: the wait fails at the first restart, not after healthy_timeout. Each run logs 30
    lines at once: the log shown is the one of the run that failed, not of the one begun since."""
    try:
        result = container(
            rig,
            name="loop",
            state="healthy",
            healthy_timeout=600,
            image="sovstack-test/busybox:1",
            command=[
                "/bin/sh",
                "-c",
                "for i in $(busybox seq 1 30); do echo starting $i; done; "
                "sleep 1; echo no database >&2; exit 4",
            ],
            restart_policy="unless-stopped",
            healthcheck={"test": "false", "interval": "30s"},
            stop_timeout=1,
        )
        assert result["status"] == "FAILED!", result
        # Docker shows the restart (the count, or Restarting); Podman may show the exit before it
        assert result["msg"].startswith(
            ("loop restarted before it was healthy", "loop exited (code 4) before it was healthy")
        ), result["msg"]
        assert "no database" in result["log_tail"] and "no database" in result["msg"]
        assert result["log_tail"][-1] == "no database" and "starting 30" in result["log_tail"], result["msg"]
    finally:
        # a container left looping would hold the test image that later tests remove and restore
        container(rig, name="loop", state="absent")


def test_stopped_restarted_absent(rig):
    container(rig, name="sta", **BASE)
    stopped = container(rig, name="sta", state="stopped", **BASE)
    assert stopped["actions"] == ["stop"]
    assert stopped["unit_actions"] == (["disable unit"] if rig.engine == "podman" else [])
    assert info(rig, "sta")["running"] is False
    assert container(rig, name="sta", state="stopped", **BASE)["status"] == "SUCCESS"
    restarted = container(rig, name="sta", state="restarted", **BASE)
    assert restarted["actions"][0] == "start" and "restart" not in restarted["actions"]
    again = container(rig, name="sta", state="restarted", **BASE)
    assert again["actions"] == ["restart"]
    assert container(rig, name="sta", state="absent")["actions"][0] == "remove"
    assert container(rig, name="sta", state="absent")["status"] == "SUCCESS"


def test_a_named_ulimit_keeps_the_engines_other_defaults(rig):
    """On podman a container that names one ulimit loses containers.conf's default_ulimits and
    gets nproc and nofile 1048576, above a rig host's hard limits (its root lacks CAP_SYS_RESOURCE):
    it would not start. The module keeps the defaults it does not name, as dockerd does."""
    made = container(rig, name="uli", ulimits=["nofile=4096:4096"], **BASE)
    try:  # a container left behind would count as in use in the image and volume tests
        assert made["actions"] == ["create", "start"], made
        limits = rig.host("node1").check_output(f"{rig.engine} exec uli cat /proc/1/limits")
        lines = {line[:26].strip(): line[26:].split()[:2] for line in limits.splitlines()[1:]}
        assert lines["Max open files"] == ["4096", "4096"]
        if rig.engine == "podman":  # host_podman_default_ulimits, in the host's containers.conf
            assert lines["Max processes"] == ["32768", "32768"]
        assert container(rig, name="uli", ulimits=["nofile=4096:4096"], **BASE)["status"] == "SUCCESS"
    finally:
        container(rig, name="uli", state="absent")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            {"image": "{registry}/test/nope:1"},
            "image {registry}/test/nope:1 is not in registry {registry}: build and push it",
        ),
        (
            {"image": "sovstack-test/nope:1", "pull": "never"},
            "image sovstack-test/nope:1 is not on this host",
        ),
        (
            {**BASE, "privileged": True, "cap_drop": ["ALL"]},
            "privileged and cap_drop contradict each other",
        ),
        (
            {**BASE, "volumes": ["/srv/nowhere:/data"]},
            "volumes: bind source /srv/nowhere (for /data) does not exist on this host",
        ),
        ({**BASE, "memory": "lots"}, "memory: 'lots' is not a size"),
        ({**BASE, "engine_url": "unix:///run/nothing.sock"}, "{engine} is not running on this host"),
        ({**BASE, "device_cgroup_rules": ["c 1:1"]}, "device_cgroup_rules: 'c 1:1' is not TYPE MAJOR:MINOR"),
        ({**BASE, "sysctls": {"ip_forward": 1}}, "sysctls: 'ip_forward' is not a sysctl name"),
        ({**BASE, "volumes": ["/var/tmp:/data:rslave,rshared"]}, "has more than one mount propagation"),
    ],
)
def test_clear_failures(rig, args, message):
    args = {k: v.format(registry=rig.registry) if isinstance(v, str) else v for k, v in args.items()}
    result = container(rig, name="bad", **args)
    assert result["status"] == "FAILED!"
    assert message.format(registry=rig.registry, engine=rig.engine) in result["msg"]
    assert info(rig, "bad") is None


def test_pull_from_the_registry_and_report_the_digest(rig):
    image = f"{rig.registry}/test/busybox:2"
    run_module(rig, "sovstack.cloud.image", {"engine": rig.engine, "name": image, "state": "absent"})
    pulled = run_module(rig, "sovstack.cloud.image", {"engine": rig.engine, "name": image})
    assert pulled["status"] == "CHANGED"
    digest = pulled["digest"]
    assert digest.startswith("sha256:")
    again = run_module(rig, "sovstack.cloud.image", {"engine": rig.engine, "name": image})
    assert again["status"] == "SUCCESS" and again["digest"] == digest

    by_digest = f"{rig.registry}/test/busybox@{digest}"
    made = container(rig, name="dig", image=by_digest, stop_timeout=1)
    assert made["status"] == "CHANGED", made.get("msg")
    described = info(rig, "dig")
    assert described["image_id"] == pulled["image"]["id"]
    assert any(d.endswith("@" + digest) for d in described["image_digests"])
    assert described["running"] and described["health"] == "none" and described["started_at"]
    assert described["labels"]["sovstack.definition"]
    assert container(rig, name="dig", image=by_digest, stop_timeout=1)["status"] == "SUCCESS"
    # the same image by its tag is the same container definition
    assert container(rig, name="dig", image=image, stop_timeout=1)["status"] == "SUCCESS"
    container(rig, name="dig", state="absent")


def test_image_from_a_registry_with_tls_and_auth(rig):
    """The second test registry (node1:4001) speaks TLS with a CA of its own and wants a login."""
    image = f"{rig.hosts['node1']}:4001/test/busybox:auth"
    node1 = rig.host("node1")
    ca = node1.file("/root/registry-test/ca.crt").content_string
    args = {"engine": rig.engine, "name": image}
    certs = "/etc/docker/certs.d" if rig.engine == "docker" else "/etc/containers/certs.d"
    try:
        untrusted = run_module(rig, "sovstack.cloud.image", args)
        assert untrusted["status"] == "FAILED!"
        assert "x509" in untrusted["msg"] or "certificate" in untrusted["msg"], untrusted["msg"]
        anonymous = run_module(rig, "sovstack.cloud.image", {**args, "ca_cert": ca})
        assert anonymous["status"] == "FAILED!"
        assert "unauthorized" in anonymous["msg"] or "no basic auth" in anonymous["msg"], anonymous["msg"]
        assert node1.file(f"{certs}/{rig.hosts['node1']}:4001/ca.crt").content_string.strip() == ca.strip()
        login = {"registry_username": "sovstack", "registry_password": "s3cret-test"}
        pulled = run_module(rig, "sovstack.cloud.image", {**args, "ca_cert": ca, **login})
        assert pulled["status"] == "CHANGED", pulled.get("msg")
        assert pulled["digest"].startswith("sha256:")
        assert "s3cret-test" not in json.dumps(pulled)
        again = run_module(rig, "sovstack.cloud.image", {**args, "ca_cert": ca, **login})
        assert again["status"] == "SUCCESS"
    finally:
        run_module(rig, "sovstack.cloud.image", {**args, "state": "absent"})
        node1.run(f"rm -rf {certs}/{rig.hosts['node1']}:4001")


def image_ids(rig) -> set[str]:
    out = rig.host("node1").check_output(f"{rig.engine} images -q --no-trunc")
    return {i if i.startswith("sha256:") else "sha256:" + i for i in out.split()}


def images_in_use(rig) -> set[str]:
    """Images of node1's containers: the test's own and the test registries'."""
    node1 = rig.host("node1")
    ids = node1.check_output(f"{rig.engine} ps -aq --no-trunc").split()
    if not ids:
        return set()
    out = node1.check_output(f"{rig.engine} inspect --format '{{{{.Image}}}}' {' '.join(ids)}")
    return {i if i.startswith("sha256:") else "sha256:" + i for i in out.split()}


def test_image_absent_and_pruned(rig):
    image = f"{rig.registry}/test/busybox:1"
    module = "sovstack.cloud.image"
    try:
        assert run_module(rig, module, {"engine": rig.engine, "name": image})["status"] != "FAILED!"
        container(rig, name="keep", **BASE)
        used = info(rig, "keep")["image_id"]
        before = image_ids(rig)
        checked = run_module(rig, module, {"engine": rig.engine, "state": "pruned"}, "--check")
        assert checked["status"] == "CHANGED" and used not in checked["removed"]
        assert image_ids(rig) == before
        in_use = images_in_use(rig)
        assert used in in_use
        pruned = run_module(rig, module, {"engine": rig.engine, "state": "pruned"})
        assert pruned["status"] == "CHANGED", pruned.get("msg")
        assert image_ids(rig) == in_use
        assert sorted(pruned["removed"]) == sorted(before - in_use)
        assert info(rig, "keep")["running"]
        again = run_module(rig, module, {"engine": rig.engine, "state": "pruned"})
        assert again["status"] == "SUCCESS" and again["removed"] == []
        container(rig, name="keep", state="absent")
        gone = run_module(
            rig, module, {"engine": rig.engine, "name": "sovstack-test/busybox:1", "state": "absent"}
        )
        assert gone["status"] == "CHANGED", gone.get("msg")
        untagged = run_module(rig, module, {"engine": rig.engine, "name": image, "state": "absent"})
        assert untagged["status"] == "CHANGED", untagged.get("msg")  # once failed on podman, cause unseen
        assert image_ids(rig) == in_use - {used}
    finally:
        # the test images back, for the tests that follow, whatever failed above
        container(rig, name="keep", state="absent")
        for tag in ("1", "2"):
            pulled = run_module(
                rig, module, {"engine": rig.engine, "name": f"{rig.registry}/test/busybox:{tag}"}
            )
            assert pulled["status"] != "FAILED!", pulled.get("msg")
            rig.host("node1").run_test(
                f"{rig.engine} tag {rig.registry}/test/busybox:{tag} sovstack-test/busybox:{tag}"
            )


def test_volume_present_absent_and_in_use(rig):
    vol = {"engine": rig.engine, "name": "sovstack-test-data", "labels": {"sovstack.test": "1"}}
    run_module(rig, "sovstack.cloud.volume", {**vol, "state": "absent"})
    created = run_module(rig, "sovstack.cloud.volume", vol, "--diff")
    assert created["status"] == "CHANGED" and created["volume"]["name"] == "sovstack-test-data"
    assert run_module(rig, "sovstack.cloud.volume", vol)["status"] == "SUCCESS"
    container(rig, name="vol", volumes=["sovstack-test-data:/data"], **BASE)
    busy = run_module(rig, "sovstack.cloud.volume", {**vol, "state": "absent"})
    assert busy["status"] == "FAILED!"
    assert busy["msg"] == "volume sovstack-test-data is in use by vol: remove those containers first"
    container(rig, name="vol", state="absent")
    assert run_module(rig, "sovstack.cloud.volume", {**vol, "state": "absent"})["status"] == "CHANGED"
    assert run_module(rig, "sovstack.cloud.volume", {**vol, "state": "absent"})["status"] == "SUCCESS"


def test_container_survives_a_host_reboot(rig, engine_client):
    args = {**BASE, "restart_policy": "unless-stopped"} if rig.engine == "docker" else BASE
    made = container(rig, name="boot", **args)
    assert made["status"] == "CHANGED"
    host = rig.host("node1")
    if rig.engine == "podman":
        assert made["unit_actions"] == ["enable unit"]
        assert host.service("sovstack-container-boot.service").is_enabled
    # A reboot of the rig host: its container stops (systemd shuts down) and starts again.
    engine_client.containers.get(f"sovstack-{rig.name}-node1").restart(timeout=30)
    wait_for_ssh([RigHost("node1", rig.hosts["node1"], f"sovstack-{rig.name}-node1")])
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        after = info(rig, "boot")
        if after and after["running"]:
            break
        time.sleep(1)
    assert after and after["running"], after
    assert after["started_at"] != made["container"]["started_at"]
    assert container(rig, name="boot", **args)["status"] == "SUCCESS"
    container(rig, name="boot", state="absent")
    assert not host.file("/etc/systemd/system/sovstack-container-boot.service").exists


def engine_inspect(rig, name: str) -> dict:
    return json.loads(rig.host("node1").check_output(f"{rig.engine} inspect {name}"))[0]


def test_mount_propagation_is_kept_and_compared(rig):
    """A volume's propagation is made as asked (a mount on the host after the start shows in an
    rslave volume), compared (a change recreates), and unchanged changes nothing."""
    node1 = rig.host("node1")
    # A shared mount of its own, as systemd makes / on a real host (a rig host's / is a slave of
    # this machine's, which passes nothing on to the host's own containers)
    node1.run_test(
        "mkdir -p /var/tmp/prop && (mountpoint -q /var/tmp/prop || mount --bind /var/tmp/prop /var/tmp/prop)"
        " && mount --make-shared /var/tmp/prop"
    )
    slave = {**BASE, "volumes": ["/var/tmp/prop:/prop:rw,rslave"]}
    container(rig, name="prop", state="absent")
    made = container(rig, name="prop", **slave)
    assert made["actions"] == ["create", "start"], made
    assert container(rig, name="prop", **slave)["status"] == "SUCCESS"
    mounts = {m["Destination"]: m for m in engine_inspect(rig, "prop")["Mounts"]}
    assert mounts["/prop"]["Propagation"] == "rslave"
    node1.run_test("mkdir -p /var/tmp/prop/sub && mount -t tmpfs sovstack-prop /var/tmp/prop/sub")
    try:
        node1.run_test("touch /var/tmp/prop/sub/seen")
        assert node1.run(f"{rig.engine} exec prop test -f /prop/sub/seen").rc == 0
    finally:
        node1.run("umount /var/tmp/prop/sub")
    private = {**BASE, "volumes": ["/var/tmp/prop:/prop:rw,rprivate"]}
    changed = container(rig, name="prop", **private)
    assert changed["differences"] == ["volumes"] and changed["actions"][0] == "recreate", changed
    # rprivate is the engines' default: the same as no propagation at all
    assert container(rig, name="prop", **{**BASE, "volumes": ["/var/tmp/prop:/prop"]})["status"] == "SUCCESS"
    shared = {**BASE, "volumes": ["/var/tmp/prop:/prop:rw,rshared"]}
    assert container(rig, name="prop", **shared)["differences"] == ["volumes"]
    assert container(rig, name="prop", **shared)["status"] == "SUCCESS"
    mounts = {m["Destination"]: m for m in engine_inspect(rig, "prop")["Mounts"]}
    assert mounts["/prop"]["Propagation"] == "rshared"
    container(rig, name="prop", state="absent")
    node1.run("umount /var/tmp/prop")


def in_container(rig, name: str, command: str):
    return rig.host("node1").run(f"{rig.engine} exec {name} sh -c {json.dumps(command)}")


def test_host_level_options_take_effect(rig):
    """pid, ipc and cgroup namespaces, devices, device cgroup rules and sysctls: each does what it
    says inside the container, on both engines (privileged cannot run on the rig: see its docs)."""
    node1 = rig.host("node1")
    host_level = {
        **BASE,
        "pid_mode": "host",
        "ipc_mode": "host",
        "cgroupns_mode": "host",
        "devices": ["/dev/zero:/dev/testzero:rw"],
        "sysctls": {"net.ipv4.tcp_keepalive_time": 621},
        "cap_add": ["MKNOD"],  # not in podman's default set
    }
    isolated = {**BASE, "ipc_mode": "private", "cap_add": ["MKNOD"]}
    # Podman 4's compat API applies neither cgroupns_mode private nor device cgroup rules: the
    # module refuses them there (test_what_podman_does_not_apply_is_refused)
    if rig.engine == "docker":
        host_level["device_cgroup_rules"] = ["c 42:* rwm"]
        isolated["cgroupns_mode"] = "private"
    try:
        assert container(rig, name="hostlvl", **host_level)["status"] == "CHANGED"
        assert container(rig, name="hostlvl", **host_level)["status"] == "SUCCESS"
        assert container(rig, name="isolvl", **isolated)["status"] == "CHANGED"

        host_ns = {ns: node1.check_output(f"readlink /proc/self/ns/{ns}") for ns in ("pid", "ipc", "cgroup")}
        for ns in ("pid", "ipc", "cgroup"):
            if ns == "cgroup" and rig.engine == "podman":
                continue  # podman on cgroup v1: the host's, with or without cgroupns_mode host
            inside = in_container(rig, "hostlvl", f"busybox readlink /proc/self/ns/{ns}").stdout.strip()
            assert inside == host_ns[ns], ns
            alone = in_container(rig, "isolvl", f"busybox readlink /proc/self/ns/{ns}").stdout.strip()
            assert alone and alone != host_ns[ns], ns
        assert in_container(rig, "hostlvl", "cat /proc/1/comm").stdout.strip() == "systemd"

        assert (
            in_container(
                rig, "hostlvl", "busybox head -c 4 /dev/testzero | busybox od -An -tx1"
            ).stdout.split()
            == ["00"] * 4
        )
        assert in_container(rig, "isolvl", "test -e /dev/testzero").rc != 0

        # major 42 has no driver: the cgroup rule lets the open reach the kernel (no such
        # device); without the rule the device cgroup refuses it (operation not permitted)
        node = "busybox mknod /tmp/dev42 c 42 0 && cat /tmp/dev42"
        refused = in_container(rig, "isolvl", node)
        assert "Operation not permitted" in refused.stderr, refused.stderr
        if rig.engine == "docker":
            allowed = in_container(rig, "hostlvl", node)
            assert "No such device" in allowed.stderr, allowed.stderr

        sysctl = "cat /proc/sys/net/ipv4/tcp_keepalive_time"
        assert in_container(rig, "hostlvl", sysctl).stdout.strip() == "621"
        assert in_container(rig, "isolvl", sysctl).stdout.strip() != "621"
    finally:
        container(rig, name="hostlvl", state="absent")
        container(rig, name="isolvl", state="absent")


# -- sovstack.cloud.job ------------------------------------------------------------------------


def job(rig, *flags, **args):
    return run_module(
        rig, "sovstack.cloud.job", {"engine": rig.engine, "state_dir": JOB_STATE, **args}, *flags
    )


JOB_STATE = "/var/tmp/sovstack-test-jobs"
JOB_OUT = "/var/tmp/sovstack-test-job-out"
JOB = {
    "image": "sovstack-test/busybox:1",
    "volumes": [f"{JOB_OUT}:/out"],
    "command": ["/bin/sh", "-c", "echo ran >> /out/runs; echo hello from the job; echo a warning >&2"],
}


def runs(rig) -> int:
    out = rig.host("node1").run(f"cat {JOB_OUT}/runs")
    return len(out.stdout.split()) if out.rc == 0 else 0


def job_containers(rig) -> list[str]:
    return rig.host("node1").check_output(f"{rig.engine} ps -a --format '{{{{.Names}}}}'").split()


@pytest.fixture
def job_host(rig):
    node1 = rig.host("node1")
    node1.run_test(f"rm -rf {JOB_STATE} {JOB_OUT} && mkdir -p {JOB_OUT}")
    yield rig
    node1.run(f"rm -rf {JOB_STATE} {JOB_OUT}")


def test_job_runs_once_until_its_inputs_change(job_host):
    rig = job_host
    first = job(rig, key="sync", inputs="config-1", **JOB)
    assert first["status"] == "CHANGED", first.get("msg")
    assert first["ran"] and first["reason"] == "never run" and first["actions"] == ["run"]
    assert first["rc"] == 0
    assert first["stdout"] == "hello from the job\n" and first["stderr"] == "a warning\n"
    assert runs(rig) == 1
    assert "sovstack-job-sync" not in job_containers(rig)
    record = json.loads(rig.host("node1").file(f"{JOB_STATE}/sync.json").content_string)
    assert record["rc"] == 0 and "config-1" not in json.dumps(record)

    same = job(rig, key="sync", inputs="config-1", **JOB)
    assert same["status"] == "SUCCESS" and not same["ran"] and same["reason"] == "unchanged"
    assert runs(rig) == 1

    checked = job(rig, "--check", key="sync", inputs="config-2", **JOB)
    assert checked["status"] == "CHANGED" and checked["reason"] == "inputs changed"
    assert checked["actions"] == ["run"] and runs(rig) == 1

    assert job(rig, key="sync", inputs="config-2", **JOB)["reason"] == "inputs changed"
    assert runs(rig) == 2
    other = {**JOB, "command": [*JOB["command"][:2], JOB["command"][2] + "; echo more"]}
    assert job(rig, key="sync", inputs="config-2", **other)["reason"] == "definition changed"
    assert runs(rig) == 3
    forced = job(rig, key="sync", inputs="config-2", force=True, **other)
    assert forced["status"] == "CHANGED" and forced["reason"] == "forced"
    assert runs(rig) == 4
    assert job(rig, key="sync", inputs="config-2", **other)["status"] == "SUCCESS"
    assert runs(rig) == 4


def test_job_failure_says_why_and_runs_again(job_host):
    rig = job_host
    failing = {
        **JOB,
        "command": [
            "/bin/sh",
            "-c",
            "for i in $(busybox seq 1 30); do echo step $i; done; echo schema broken >&2; exit 3",
        ],
    }
    failed = job(rig, key="bad", **failing)
    assert failed["status"] == "FAILED!"
    assert failed["msg"].startswith("job bad failed (exit code 3); the last lines of its output:")
    assert "\nstep 30" in failed["msg"]
    assert len(failed["log_tail"]) == 20 and "step 30" in failed["log_tail"]
    assert "step 10" not in failed["log_tail"]
    assert failed["rc"] == 3
    assert "sovstack-job-bad" not in job_containers(rig)
    assert not rig.host("node1").file(f"{JOB_STATE}/bad.json").exists
    again = job(rig, key="bad", **failing)
    assert again["status"] == "FAILED!" and again["reason"] == "never run"


def test_job_secrets_stay_out_of_the_result(job_host):
    rig = job_host
    secret = "s3cret-job-Pw-4711"
    args = {
        **JOB,
        "environment": {"DB_PASSWORD": secret},
        "command": ["/bin/sh", "-c", 'echo "connecting with $DB_PASSWORD"; test "$DB_PASSWORD" = never'],
    }
    failed = job(rig, key="secret", **args)
    assert failed["status"] == "FAILED!"
    assert "connecting with" in failed["msg"]
    assert secret not in json.dumps(failed) and secret not in failed["diff_text"]
    ok = job(rig, key="secret", **{**args, "command": ["/bin/sh", "-c", 'echo "$DB_PASSWORD" > /out/pw']})
    assert ok["status"] == "CHANGED", ok.get("msg")
    assert secret not in json.dumps(ok)
    # the job had it, by environment
    assert rig.host("node1").file(f"{JOB_OUT}/pw").content_string.strip() == secret


def test_job_left_behind_is_removed_and_a_slow_job_is_stopped(job_host):
    rig = job_host
    node1 = rig.host("node1")
    node1.run_test(f"{rig.engine} run -d --name sovstack-job-left sovstack-test/busybox:1 sleep 3600")
    result = job(rig, key="left", **JOB)
    assert result["status"] == "CHANGED", result.get("msg")
    assert result["actions"] == ["remove leftover", "run"]
    assert "sovstack-job-left" not in job_containers(rig)

    slow = job(
        rig, key="slow", job_timeout=3, **{**JOB, "command": ["/bin/sh", "-c", "echo waiting; sleep 600"]}
    )
    assert slow["status"] == "FAILED!"
    assert slow["msg"].startswith("job slow did not finish within 3 s (job_timeout)")
    assert "waiting" in slow["log_tail"]
    assert "sovstack-job-slow" not in job_containers(rig)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ({"key": "bad key"}, "key: 'bad key' is not a job name"),
        (
            {"key": "img", "image": "sovstack-test/nope:1", "pull": "never"},
            "image sovstack-test/nope:1 is not on this host",
        ),
        (
            {"key": "vol", "volumes": ["/srv/nowhere:/data"]},
            "volumes: bind source /srv/nowhere (for /data) does not exist",
        ),
        (
            {"key": "rule", "device_cgroup_rules": ["c 1:1"]},
            "device_cgroup_rules: 'c 1:1' is not TYPE MAJOR:MINOR",
        ),
    ],
)
def test_job_clear_failures(job_host, args, message):
    result = job(job_host, **{**JOB, **args})
    assert result["status"] == "FAILED!"
    assert message in result["msg"]
    assert runs(job_host) == 0


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ({"cgroupns_mode": "private"}, "cgroupns_mode: private is not applied by Podman 4"),
        ({"device_cgroup_rules": ["c 42:* rwm"]}, "device_cgroup_rules: not applied by Podman 4"),
    ],
)
def test_what_podman_does_not_apply_is_refused(rig, args, message):
    result = container(rig, name="cgns", **{**BASE, **args})
    if rig.engine == "podman":
        assert result["status"] == "FAILED!"
        assert result["msg"].startswith(message)
        assert info(rig, "cgns") is None
    else:
        assert result["status"] == "CHANGED", result.get("msg")
        container(rig, name="cgns", state="absent")
