"""sovstack.cloud.sysctl against a real rig host: check mode, diff mode, apply, idempotence, errors."""

from __future__ import annotations

import pytest

from tests.integration.conftest import run_module


@pytest.fixture
def adhoc(rigs):
    rig = rigs["docker"]

    def run(args: dict, *flags: str) -> dict:
        return run_module(rig, "sovstack.cloud.sysctl", args, *flags)

    run.host = rig.host("node1")
    yield run
    run.host.run("rm -f /etc/sysctl.d/61-test.conf; sysctl -w net.ipv4.tcp_syncookies=1")


def test_check_diff_apply_and_again(adhoc):
    host = adhoc.host
    host.run_test("sysctl -w net.ipv4.tcp_syncookies=1")
    args = {"values": {"net.ipv4.tcp_syncookies": 0}, "path": "/etc/sysctl.d/61-test.conf"}

    checked = adhoc(args, "--check", "--diff")
    assert checked["status"] == "CHANGED" and checked["changed"] is True
    assert checked["applied"] == {"net.ipv4.tcp_syncookies": {"before": "1", "after": "0"}}
    assert "+net.ipv4.tcp_syncookies = 0" in checked["diff_text"]
    assert not host.file("/etc/sysctl.d/61-test.conf").exists
    assert host.sysctl("net.ipv4.tcp_syncookies") == 1

    applied = adhoc(args)
    assert applied["changed"] is True and applied["file_changed"] is True
    assert host.sysctl("net.ipv4.tcp_syncookies") == 0
    assert host.file("/etc/sysctl.d/61-test.conf").contains("^net.ipv4.tcp_syncookies = 0$")

    again = adhoc(args)
    assert again["status"] == "SUCCESS" and again["changed"] is False and again["applied"] == {}

    host.run_test("sysctl -w net.ipv4.tcp_syncookies=1")  # drift in the running kernel only
    healed = adhoc(args)
    assert healed["changed"] is True and healed["file_changed"] is False
    assert host.sysctl("net.ipv4.tcp_syncookies") == 0


def test_unknown_key_fails_naming_it_and_writes_nothing(adhoc):
    result = adhoc({"values": {"net.ipv4.no_such_knob": 1}, "path": "/etc/sysctl.d/61-test.conf"})
    assert result["status"] == "FAILED!"
    assert result["msg"].startswith("this kernel has no sysctl net.ipv4.no_such_knob")
    assert not adhoc.host.file("/etc/sysctl.d/61-test.conf").exists


def test_malformed_key_fails(adhoc):
    result = adhoc({"values": {"net/ipv4/ip_forward": 1}, "path": "/etc/sysctl.d/61-test.conf"})
    assert result["status"] == "FAILED!"
    assert "is not a sysctl key" in result["msg"]
