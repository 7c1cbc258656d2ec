"""Shared fixtures: the sovstack command of this environment and an isolated SOVSTACK_HOME."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import uuid
from pathlib import Path

import pytest

from sovstack.inventory import INVENTORY_IGNORE

REPO = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
# Unit tests import the collection's Python code from this checkout, not an installed copy.
sys.path.insert(0, str(REPO / "collections"))

# Every test's state (rigs, run logs) goes to one fresh directory, never the operator's
# ~/.sovstack. A developer may name one (SOVSTACK_TEST_HOME) and keep the rigs between runs
# (SOVSTACK_TEST_KEEP_RIGS=1) to iterate faster. The process that imports this first (pytest
# itself, or with pytest-xdist its controller) makes it and names it in its environment, which
# the workers it starts inherit: every worker of one run shares the home, the rigs in it and
# what was made once for all of them (SHARED, see tests/integration/conftest.py `once`).
# A home this process made goes at the end of a run that passed; after a failure it stays,
# with the run logs the failures name.
MADE_HOME = not os.environ.get("SOVSTACK_TEST_HOME")
if MADE_HOME:
    os.environ["SOVSTACK_TEST_HOME"] = tempfile.mkdtemp(prefix="sovstack-test-home-")
os.environ.setdefault("SOVSTACK_TEST_RUN", uuid.uuid4().hex[:12])
HOME = Path(os.environ["SOVSTACK_TEST_HOME"])
SHARED = HOME / "test-run" / os.environ["SOVSTACK_TEST_RUN"]
KEEP_RIGS = os.environ.get("SOVSTACK_TEST_KEEP_RIGS") == "1"
os.environ["SOVSTACK_HOME"] = str(HOME)
# ansible and ansible-playbook run directly on the rigs' inventories ignore what a deploy
# writes beside them, as the sovstack command does.
os.environ["ANSIBLE_INVENTORY_IGNORE_REGEX"] = INVENTORY_IGNORE
os.environ["PATH"] = f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"


def sovstack(
    *args: str, check: bool = False, cwd: Path | None = None, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """Run the installed `sovstack` command, as an operator would (`env`: added to the environment)."""
    exe = shutil.which("sovstack", path=str(BIN)) or "sovstack"
    proc = subprocess.run(
        [exe, *args],
        capture_output=True,
        text=True,
        cwd=cwd or tempfile.gettempdir(),
        env={**os.environ, **(env or {})},
        check=False,
    )
    if check and proc.returncode != 0:
        raise AssertionError(
            f"sovstack {' '.join(args)} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}"
        )
    return proc


@pytest.fixture(scope="session")
def sovstack_home() -> Path:
    return HOME


def expected_problems(path: Path) -> list[str]:
    """The problems a corpus file expects, from its `# expect: ` lines, each prefixed by its path."""
    lines = path.read_text().splitlines()
    return [f"{path}: {line[len('# expect: ') :]}" for line in lines if line.startswith("# expect: ")]


# With pytest-xdist (scripts/test.sh: two workers), each of these runs whole, in order, on one
# worker: the files that use the deploy's rig one group (nothing else touches that rig while
# it deploys), the container modules and the prechecks (node1 and all of the podman rig) one,
# each other file that changes a shared rig or the image set a group of its own;
# any other test runs wherever a worker is free. The first prefix a test's id starts with
# wins. Groups start in the order of the files (not by their number of tests): the deploy's
# group, the longest, first. (Here and not as xdist_group marks: pytest-xdist
# 3.8 does not apply those under pytest 9, it spreads a group's tests over the workers.)
XDIST_GROUPS = [
    ("tests/integration/test_bootstrap.py", "tdock"),
    ("tests/integration/test_deploy.py", "tdock"),
    ("tests/integration/test_sysctl_module.py", "tdock"),
    ("tests/integration/test_container_modules.py", "modules"),
    ("tests/integration/test_prechecks.py", "modules"),
    ("tests/integration/test_images.py", "images"),
    ("tests/integration/test_rig.py", "rig"),
    ("tests/integration/test_debian13_hosts.py", "debian13"),
]


def xdist_group(nodeid: str) -> str:
    """The group of a test (XDIST_GROUPS), or its own id: a group of one."""
    return next((group for prefix, group in XDIST_GROUPS if nodeid.startswith(prefix)), nodeid)


@pytest.hookimpl(optionalhook=True)  # a hook of pytest-xdist: plain pytest runs without it
def pytest_xdist_make_scheduler(config: pytest.Config, log: object) -> object:
    """pytest-xdist's scope scheduling, with XDIST_GROUPS as the scopes."""
    from xdist.scheduler import LoadScopeScheduling

    config.option.loadscopereorder = False  # the order of collection, see XDIST_GROUPS

    class GroupScheduling(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            return xdist_group(nodeid)

    return GroupScheduling(config, log)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """The shared rigs go down once every test is done: here, in pytest's own process (with
    pytest-xdist, its controller, after the last worker finished), never in a worker that is
    done while another still uses them. Only the rigs this run made (SHARED/rigs-made.json).
    Then the home this run made goes, if every test passed."""
    if hasattr(session.config, "workerinput") or KEEP_RIGS:
        return
    made = SHARED / "rigs-made.json"
    if made.is_file():
        for name in json.loads(made.read_text()).get("names", []):
            sovstack("rig", "down", "--name", name, "--keep-image")
    if MADE_HOME and exitstatus == 0 and session.testsfailed == 0:
        shutil.rmtree(HOME, ignore_errors=True)
