"""Module sovstack.cloud.service_host with state config, run for real by ansible on this machine:
every file of a service in one call, each written only when it differs, its content never shown
(its containers: tests/integration/test_container_modules.py)."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

from tests.conftest import BIN

SECRET = "s3cret-value-never-shown"


def run(args: dict, *flags: str) -> dict:
    env = {**os.environ, "ANSIBLE_CALLBACK_RESULT_FORMAT": "json", "ANSIBLE_NOCOLOR": "1"}
    proc = subprocess.run(
        [
            str(BIN / "ansible"),
            "localhost",
            "-i",
            "localhost,",
            "-c",
            "local",
            "-e",
            f"ansible_python_interpreter={sys.executable}",
            "-m",
            "sovstack.cloud.service_host",
            "-a",
            json.dumps({"name": "svc", "state": "config", **args}),
            *flags,
        ],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    assert SECRET not in proc.stdout + proc.stderr
    head, sep, rest = proc.stdout.partition("localhost | ")
    assert sep, proc.stdout + proc.stderr
    result = json.loads(rest[rest.index("{") :])
    result["status"] = rest.split(" ", 1)[0]
    result["diff_text"] = head
    return result


def test_files_are_written_once_compared_and_never_shown(tmp_path: Path):
    conf = tmp_path / "svc"
    files = [
        {"path": str(conf / "a.conf"), "owner": "0", "group": "0", "mode": "0640"},
        {"path": str(conf / "b.conf"), "owner": "root", "group": "root", "mode": "0600"},
    ]
    args = {"directories": {str(conf): "0"}, "files": files, "contents": [f"password = {SECRET}\n", "b\n"]}

    check = run(args, "--check", "--diff")
    assert check["status"] == "CHANGED" and not conf.exists()
    assert str(conf / "a.conf") in check["diff_text"]

    first = run(args)
    assert first["status"] == "CHANGED"
    assert sorted(first["changed_files"]) == sorted([str(conf), *(f["path"] for f in files)])
    assert (conf / "a.conf").read_text() == f"password = {SECRET}\n"
    assert oct((conf / "a.conf").stat().st_mode & 0o777) == "0o640"
    assert oct(conf.stat().st_mode & 0o777) == "0o750"
    assert first["checksums"][str(conf / "b.conf")] == hashlib.sha1(b"b\n").hexdigest()

    again = run(args)
    assert again["status"] == "SUCCESS" and again["changed_files"] == []
    assert again["checksums"] == first["checksums"]

    (conf / "b.conf").chmod(0o644)
    args["contents"][0] = "password = other\n"
    third = run(args)
    assert sorted(third["changed_files"]) == sorted(f["path"] for f in files)
    assert oct((conf / "b.conf").stat().st_mode & 0o777) == "0o600"
    assert sorted(conf.iterdir()) == [
        conf / "a.conf",
        conf / "b.conf",
    ]


def test_a_file_it_cannot_write_fails_naming_it(tmp_path: Path):
    target = tmp_path / "missing-dir" / "x.conf"
    result = run(
        {"files": [{"path": str(target), "owner": "0", "group": "0", "mode": "0640"}], "contents": ["x"]}
    )
    assert result["status"] == "FAILED!"
    assert "cannot write the configuration of svc" in result["msg"] and str(target.parent) in result["msg"]


def test_files_and_contents_must_pair(tmp_path: Path):
    target = tmp_path / "x.conf"
    result = run(
        {"files": [{"path": str(target), "owner": "0", "group": "0", "mode": "0640"}], "contents": []}
    )
    assert result["status"] == "FAILED!"
    assert result["msg"] == "1 files but 0 contents: give one content per file"
    assert not target.exists()


def test_a_directory_of_its_own_owner_and_mode_keeps_only_the_files_named(tmp_path: Path):
    """Keys copied from a source: the directory with the mode given, the files named written,
    the others in it removed (a key the source no longer holds)."""
    keys = tmp_path / "fernet-keys"
    keys.mkdir(mode=0o755)
    (keys / "5").write_text("old key")
    (keys / "sub").mkdir()
    files = [{"path": str(keys / n), "owner": "0", "group": "0", "mode": "0600"} for n in ("0", "1")]
    args = {
        "directories": {str(keys): {"owner": "0", "group": "0", "mode": "0700"}},
        "files": files,
        "contents": [f"key0 {SECRET}", "key1"],
        "purge": [str(keys)],
    }
    check = run(args, "--check")
    assert check["status"] == "CHANGED" and (keys / "5").exists()
    first = run(args)
    assert sorted(first["changed_files"]) == sorted(
        [str(keys), str(keys / "0"), str(keys / "1"), str(keys / "5")]
    )
    assert sorted(p.name for p in keys.iterdir()) == ["0", "1", "sub"]
    assert oct(keys.stat().st_mode & 0o777) == "0o700"
    again = run(args)
    assert again["status"] == "SUCCESS" and again["changed_files"] == []
