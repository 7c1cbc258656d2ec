from __future__ import annotations

import argparse
import os

import pytest

from sovstack import cli
from tests.conftest import sovstack

SUBCOMMANDS = [
    [],
    ["rig"],
    ["rig", "up"],
    ["rig", "down"],
    ["rig", "status"],
    ["bootstrap"],
    ["prechecks"],
    ["registry"],
    ["secrets"],
    ["secrets", "generate"],
    ["secrets", "merge"],
    ["images"],
    ["images", "build"],
    ["images", "push"],
    ["images", "verify"],
    ["images", "export"],
    ["images", "import"],
]


@pytest.mark.parametrize("words", SUBCOMMANDS, ids=lambda w: " ".join(w) or "sovstack")
def test_every_subcommand_has_help(words):
    proc = sovstack(*words, "--help")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("usage: sovstack")


def test_version():
    proc = sovstack("--version")
    assert proc.returncode == 0
    assert proc.stdout.strip().startswith("sovstack 0.")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["rig", "up", "--hosts", "0"], "argument --hosts: must be between 1 and 32, got 0"),
        (["rig", "up", "--hosts", "many"], "argument --hosts: 'many' is not a number"),
        (["rig", "up", "--engine", "lxc"], "argument --engine: 'lxc' unknown: use docker or podman"),
        (["bootstrap", "-e", "novalue"], "argument -e/--extra-vars: 'novalue' is not KEY=VALUE or @FILE"),
        (["prechecks", "-e", "@/nonexistent.yml"], "argument -e/--extra-vars: cannot read variables from"),
        (["frobnicate"], "argument COMMAND: invalid choice: 'frobnicate'"),
        (["images", "build", "--jobs", "0"], "argument --jobs: must be between 1 and 16, got 0"),
        (["secrets"], "the following arguments are required: ACTION"),
        (["secrets", "rotate"], "argument ACTION: invalid choice: 'rotate'"),
        (
            ["images", "push", "--registry", "http://x:5000"],
            "argument --registry: 'http://x:5000' is not HOST or",
        ),
    ],
)
def test_bad_arguments_give_one_line(args, message, sovstack_home):
    before = sorted(p.name for p in sovstack_home.iterdir())
    proc = sovstack(*args)
    assert proc.returncode == 2
    assert proc.stdout == ""
    lines = proc.stderr.splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("sovstack: error: ")
    assert message in lines[0]
    assert sorted(p.name for p in sovstack_home.iterdir()) == before


def test_bootstrap_without_inventory_names_the_fix(tmp_path):
    proc = sovstack("bootstrap", "-i", str(tmp_path / "nowhere.yml"))
    assert proc.returncode == 1
    assert proc.stderr.strip() == (
        f"sovstack: error: inventory {tmp_path / 'nowhere.yml'} does not exist: "
        "pass -i, or run `sovstack rig up`"
    )


def test_secrets_without_inventory_names_the_fix(tmp_path):
    proc = sovstack("secrets", "generate", "-i", str(tmp_path / "nowhere"))
    assert proc.returncode == 1
    assert proc.stdout == ""
    assert proc.stderr.strip() == (
        f"sovstack: error: inventory {tmp_path / 'nowhere'} does not exist: pass -i, or run `sovstack rig up`"
    )


def test_not_root_is_refused_before_anything(capfd, sovstack_home):
    """A real non-root process (a forked child that dropped to nobody) gets one line and exit 1."""
    before = sorted(p.name for p in sovstack_home.iterdir())
    pid = os.fork()
    if pid == 0:  # the child: drop root for good, then run the CLI in-process
        code = 99
        try:
            os.setgroups([])
            os.setgid(65534)
            os.setuid(65534)
            code = cli.main(["rig", "up"])
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    err = capfd.readouterr().err
    assert os.waitstatus_to_exitcode(status) == 1
    assert err == "sovstack: error: the rig needs root (it runs containers and a network): run as root\n"
    assert sorted(p.name for p in sovstack_home.iterdir()) == before


def test_host_count_bounds():
    assert cli.host_count("1") == 1
    assert cli.host_count("32") == 32
    for bad in ("0", "33", "-1", "x"):
        with pytest.raises(argparse.ArgumentTypeError):
            cli.host_count(bad)


def test_extra_var_keeps_equals_in_value():
    assert cli.extra_var("a=b=c") == {"a": "b=c"}
    assert cli.extra_var("flag=") == {"flag": ""}


def test_extra_vars_from_a_file(tmp_path):
    path = tmp_path / "vars.yml"
    path.write_text("ports: {keystone: {group: control, ports: [5000]}}\n")
    assert cli.extra_var(f"@{path}") == {"ports": {"keystone": {"group": "control", "ports": [5000]}}}
    path.write_text("- a\n")
    with pytest.raises(argparse.ArgumentTypeError, match="does not hold a mapping"):
        cli.extra_var(f"@{path}")


def test_the_openstack_cli_comes_with_sovstack():
    """The deploy tells the operator to run `openstack token issue`: the client is installed with sovstack."""
    from tests.conftest import BIN

    assert (BIN / "openstack").is_file()
