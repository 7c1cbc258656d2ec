"""The sysctl module's helpers, on a real directory tree laid out like /proc/sys."""

from __future__ import annotations

import pytest
from ansible_collections.sovstack.cloud.plugins.module_utils import sysctl


@pytest.mark.parametrize(
    ("value", "normal"),
    [(1, "1"), (True, "1"), (False, "0"), ("4096\t87380   6291456\n", "4096 87380 6291456"), (" 2 ", "2")],
)
def test_normalize(value, normal):
    assert sysctl.normalize(value) == normal


@pytest.mark.parametrize("key", ["net.ipv4.ip_forward", "net.ipv4.conf.eth-0.rp_filter", "vm.max_map_count"])
def test_good_keys(key):
    assert sysctl.check_key(key) is None


@pytest.mark.parametrize(
    "key", ["ip_forward", "net/ipv4/ip_forward", "net..ipv4", "Net.ipv4.x", "net.ipv4.x y"]
)
def test_bad_keys(key):
    assert "is not a sysctl key" in sysctl.check_key(key)


def test_render_sorts_and_normalizes():
    text = sysctl.render({"vm.b": 2, "net.a": "1\t2"})
    assert text == sysctl.HEADER + "net.a = 1 2\nvm.b = 2\n"


def test_read_and_write_live(tmp_path):
    (tmp_path / "net" / "ipv4").mkdir(parents=True)
    (tmp_path / "net" / "ipv4" / "ip_forward").write_text("0\n")
    assert sysctl.read_live("net.ipv4.ip_forward", str(tmp_path)) == "0"
    assert sysctl.read_live("net.ipv4.nope", str(tmp_path)) is None
    sysctl.write_live("net.ipv4.ip_forward", 1, str(tmp_path))
    assert (tmp_path / "net" / "ipv4" / "ip_forward").read_text() == "1\n"
