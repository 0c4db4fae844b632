"""The dashboard's own unit tests (Vitest: formatting, URL state, the funnel form's model), run as part of the
suite so that a broken front-end model fails CI like any other test."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tomllib
from pathlib import Path, PurePosixPath

from replayer_api.dashboard import BUILT_IN

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


def test_a_wheel_carries_every_file_of_the_build() -> None:
    """pyproject's package-data globs match each file Vite writes, so a wheel built after the dashboard (as the
    image's builder stage does) serves the same dashboard as the checkout."""
    pyproject = tomllib.loads((DASHBOARD.parent / "pyproject.toml").read_text())
    globs = pyproject["tool"]["setuptools"]["package-data"]["replayer_api"]
    files = [p.relative_to(BUILT_IN.parent).as_posix() for p in BUILT_IN.rglob("*") if p.is_file()]
    assert "dashboard_build/index.html" in files, "run ./bardctl test: it builds the dashboard"
    assert any(f.startswith("dashboard_build/assets/") and f.endswith(".js") for f in files)

    def packaged(name: str) -> bool:  # setuptools' globs: '*' stays within one folder
        path = PurePosixPath(name)
        return any(len(path.parts) == len(PurePosixPath(g).parts) and path.match(g) for g in globs)

    assert [f for f in files if not packaged(f)] == []
