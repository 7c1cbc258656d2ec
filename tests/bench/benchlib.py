"""What the benchmarks share: the sovstack command of the venv that runs them, timed."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

BIN = Path(sys.executable).parent  # the venv that runs the benchmark has the sovstack command


def sovstack(home: Path, *args: str) -> tuple[float, str]:
    """`sovstack ARGS` with SOVSTACK_HOME=home: its wall time and output; exits on failure."""
    started = time.monotonic()
    env = {**os.environ, "SOVSTACK_HOME": str(home)}
    proc = subprocess.run(
        [str(BIN / "sovstack"), *args], capture_output=True, text=True, env=env, check=False
    )
    seconds = time.monotonic() - started
    if proc.returncode != 0:
        raise SystemExit(f"sovstack {' '.join(args)} failed:\n{proc.stdout[-3000:]}\n{proc.stderr}")
    return seconds, proc.stdout
