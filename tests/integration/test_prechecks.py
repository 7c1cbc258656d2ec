"""`sovstack prechecks` on the podman rig (the deploy's rig is busy deploying meanwhile, on the
other worker): passes on a bootstrapped rig; a port taken, a stopped
time sync and an unreachable registry are each caught, reported together grouped by host, and
nothing is changed."""

from __future__ import annotations

import json
import shutil

import pytest
import yaml

from tests.conftest import sovstack
from tests.integration.conftest import recap


@pytest.fixture
def rig(engines_prepared):
    """The podman rig, its registry (node1:4000, which the rig's inventory names) running."""
    return engines_prepared["podman"]


def test_prechecks_pass_on_the_rig(rig):
    proc = sovstack("prechecks", "-i", str(rig.inventory))
    assert proc.returncode == 0, proc.stdout
    hosts = recap(proc.stdout)
    assert sorted(hosts) == sorted(rig.hosts)
    assert all(counts["changed"] == 0 and counts["failures"] == 0 for counts in hosts.values())


def test_every_problem_of_every_host_together(rig, tmp_path):
    node1, node2 = rig.host("node1"), rig.host("node2")
    ports = tmp_path / "ports.yml"
    ports.write_text("prechecks_service_ports:\n  keystone: {groups: [control], ports: [35357]}\n")
    node1.run_test("systemd-run --unit=sovstack-test-port python3 -m http.server 35357")
    node2.run_test("systemctl stop chrony")
    try:
        proc = sovstack(
            "prechecks", "-i", str(rig.inventory), "-e", f"@{ports}",
            "-e", "sovstack_registry=10.77.10.99:4000", "-e", "sovstack_registry_insecure=true",
        )  # fmt: skip
        assert proc.returncode == 1
        out = proc.stdout
        registry = "      - the sovstack registry 10.77.10.99:4000 does not answer ("
        report = out[out.index("prechecks found") :]
        assert report.startswith("prechecks found 5 problem(s) on 3 host(s); nothing was changed:\n"), out
        lines = report.splitlines()
        node1_at, node2_at, node3_at = (lines.index(f"    {name}:") for name in ("node1", "node2", "node3"))
        node1_lines = lines[node1_at + 1 : node2_at]
        node2_lines = lines[node2_at + 1 : node3_at]
        assert node1_lines[0] == (
            "      - port 35357/tcp, needed by keystone, is taken by python3: "
            "stop that service or move keystone"
        )
        assert node1_lines[1].startswith(registry)
        assert node2_lines[0] == (
            "      - time is not synchronized: chronyd does not answer "
            "(systemctl start chrony, or run sovstack bootstrap)"
        )
        assert node2_lines[1].startswith(registry)
        assert lines[node3_at + 1].startswith(registry)
        assert all(counts["changed"] == 0 for counts in recap(out).values())
        # nothing was changed: chrony is still stopped, the listener still runs
        assert not node2.service("chrony").is_running
        assert node1.socket("tcp://0.0.0.0:35357").is_listening
    finally:
        node1.run("systemctl stop sovstack-test-port")
        node2.run_test("systemctl start chrony")


def test_too_little_disk_is_caught(rig, tmp_path):
    needs = tmp_path / "disk.yml"
    needs.write_text("prechecks_min_free_gib: 1000000\n")
    proc = sovstack("prechecks", "-i", str(rig.inventory), "-e", f"@{needs}")
    assert proc.returncode == 1
    report = proc.stdout[proc.stdout.index("prechecks found") :]
    assert report.startswith("prechecks found 3 problem(s) on 3 host(s)"), proc.stdout
    assert report.count("GiB free for container storage, 1000000 GiB needed: free some space") == 3


def test_a_provider_interface_the_host_does_not_have_is_caught(rig):
    proc = sovstack("prechecks", "-i", str(rig.inventory), "-e", "openvswitch_provider_interface=eth7")
    assert proc.returncode == 1
    report = proc.stdout[proc.stdout.index("prechecks found") :]
    assert report.startswith("prechecks found 3 problem(s) on 3 host(s)"), proc.stdout
    assert (
        report.count("openvswitch_provider_interface: eth7 is not an interface of this host (it has: ") == 3
    )
    assert "eth0" in report


def test_kvm_missing_or_not_usable_is_caught_where_nova_virt_type_is_kvm(rig):
    """The rig's hosts have no /dev/kvm (they run qemu guests); node2 gets a /dev/kvm that is
    not KVM's (a plain file): it is named not usable, the others missing."""
    node2 = rig.host("node2")
    node2.run_test("touch /dev/kvm")
    try:
        proc = sovstack("prechecks", "-i", str(rig.inventory), "-e", "nova_virt_type=kvm")
        assert proc.returncode == 1
        report = proc.stdout[proc.stdout.index("prechecks found") :]
        assert report.startswith("prechecks found 3 problem(s) on 3 host(s)"), proc.stdout
        lines = report.splitlines()
        node2_at, node3_at = lines.index("    node2:"), lines.index("    node3:")
        assert lines[node2_at + 1].startswith("      - /dev/kvm is not usable ("), report
        assert lines[node2_at + 1].endswith(
            ") and nova_virt_type is kvm: load the kvm module of the CPU and check its permissions, "
            "or set nova_virt_type: qemu"
        )
        missing = "/dev/kvm is missing and nova_virt_type is kvm: enable virtualization in the firmware"
        assert report.count(missing) == 2
        assert missing in lines[node3_at + 1]
        assert all(counts["changed"] == 0 for counts in recap(proc.stdout).values())
    finally:
        node2.run_test("rm -f /dev/kvm")


def test_a_tunnel_interface_too_small_for_geneve_at_the_tenant_mtu_is_caught(rig):
    """The rig's tunnel network is its management network (MTU 1500): a tenant MTU of 1500
    needs 1558 there."""
    proc = sovstack("prechecks", "-i", str(rig.inventory), "-e", "sovstack_tenant_mtu=1500")
    assert proc.returncode == 1
    report = proc.stdout[proc.stdout.index("prechecks found") :]
    assert report.startswith("prechecks found 3 problem(s) on 3 host(s)"), proc.stdout
    for name, address in rig.hosts.items():
        assert (
            f"the tunnel interface eth0 (encap_address {address}) has MTU 1500, but Geneve at tenant_mtu "
            "1500 needs 1558: raise the interface's MTU, or lower tenant_mtu in the topology"
        ) in report, name


def test_a_missing_secret_is_named_before_any_host_is_touched(rig, tmp_path):
    inventory = tmp_path / "inventory"
    shutil.copytree(rig.inventory, inventory)
    secrets = inventory / "group_vars" / "all" / "secrets.yml"
    values = yaml.safe_load(secrets.read_text())
    del values["keystone_admin_password"]
    secrets.write_text(yaml.safe_dump(values))
    proc = sovstack("prechecks", "-i", str(inventory))
    assert proc.returncode == 1
    assert proc.stderr.splitlines() == [
        "sovstack: error: invalid inventory, nothing was run:",
        f"  {secrets}: keystone_admin_password: secret missing: run `sovstack secrets merge -i {inventory}`",
    ]
    assert "run " not in proc.stdout


def test_an_osd_device_that_holds_data_is_refused_unless_it_is_to_be_wiped(rig, tmp_path):
    """node2 gets a file with an ext4 filesystem, one with an old OSD's label, an empty one and
    a device it does not have (the rig has no spare block devices; blkid reads a file alike):
    the empty one passes, the others are each named with what they hold; the ext4 one passes
    once ceph_osd_wipe_devices names it. The other hosts have none of them."""
    node2 = rig.host("node2")
    files = ["/root/osd-ext4.img", "/root/osd-old.img", "/root/osd-empty.img"]
    node2.run_test(
        f"truncate -s 64M {' '.join(files)} && mkfs.ext4 -q -F /root/osd-ext4.img"
        " && printf 'bluestore block device\\n' | dd of=/root/osd-old.img conv=notrunc status=none"
    )
    devices = [*files, "/dev/sdx9"]
    try:
        for wipe in ([], ["/root/osd-ext4.img"]):
            settings = tmp_path / "osd-devices.json"
            settings.write_text(json.dumps({"ceph_osd_devices": devices, "ceph_osd_wipe_devices": wipe}))
            proc = sovstack("prechecks", "-i", str(rig.inventory), "-e", f"@{settings}")
            assert proc.returncode == 1
            report = proc.stdout[proc.stdout.index("prechecks found") :]
            lines = report.splitlines()
            node2_at, node3_at = lines.index("    node2:"), lines.index("    node3:")
            expected = [
                "ceph_osd_devices: /root/osd-ext4.img holds a ext4 filesystem: to make an OSD of it anyway, "
                "add it to ceph_osd_wipe_devices (the deploy erases it), or name another device",
                "ceph_osd_devices: /root/osd-old.img holds an old OSD (BlueStore): to make an OSD of it "
                "anyway, add it to ceph_osd_wipe_devices (the deploy erases it), or name another device",
                "ceph_osd_devices: /dev/sdx9 does not exist on this host: name one of its block devices",
            ][len(wipe) :]
            assert [line.removeprefix("      - ") for line in lines[node2_at + 1 : node3_at]] == expected
            assert report.startswith(f"prechecks found {len(expected) + 8} problem(s) on 3 host(s)"), report
            assert report.count("/root/osd-empty.img does not exist on this host") == 2
            assert all(counts["changed"] == 0 for counts in recap(proc.stdout).values())
    finally:
        node2.run_test(f"rm -f {' '.join(files)}")
