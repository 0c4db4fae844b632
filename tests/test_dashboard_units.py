"""The dashboard's own unit tests (Vitest: formatting, URL state, the funnel form's model), run as part of the
suite so that a broken front-end model fails CI like any other test."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

DASHBOARD = Path(__file__).parent.parent / "dashboard"


def test_the_dashboards_vitest_suite_passes() -> None:
    npm = shutil.which("npm")
    assert npm, "npm is missing: ./bardctl test installs Node.js and npm"
    assert (DASHBOARD / "node_modules").is_dir(), "run ./bardctl test: it installs the dashboard's packages"
    plain = {**os.environ, "NO_COLOR": "1", "FORCE_COLOR": "0"}  # CI=true turns colours on otherwise
    done = subprocess.run([npm, "test", "--silent", "--", "--reporter=dot"], cwd=DASHBOARD, capture_output=True,
                          text=True, timeout=300, env=plain)
    assert done.returncode == 0, done.stdout + done.stderr
    assert re.search(r"Tests\s+\d+ passed", done.stdout), done.stdout


def test_the_dashboard_type_checks() -> None:
    npm = shutil.which("npm")
    assert npm, "npm is missing: ./bardctl test installs Node.js and npm"
    done = subprocess.run([npm, "run", "--silent", "typecheck"], cwd=DASHBOARD, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
