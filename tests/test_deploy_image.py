"""The container image without Docker: the Dockerfile's shape (two stages, wheels built in the builder, a
non-root runtime with a health check and the service chosen by command), the build context's allow-list, and
the requirement list the image installs."""

from __future__ import annotations

import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from deploy.requirements import distribution_name, main, runtime_requirements

ROOT = Path(__file__).resolve().parents[1]
PYPROJECT = ROOT / "pyproject.toml"


def instructions(path: Path) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, continuation lines joined and comments dropped."""
    lines = [line for line in path.read_text().splitlines() if not line.lstrip().startswith("#")]
    joined = re.sub(r"\\\n\s*", " ", "\n".join(lines))
    return [(word.upper(), rest.strip()) for word, _, rest in
            (line.strip().partition(" ") for line in joined.splitlines() if line.strip())]


def stages(path: Path) -> list[list[tuple[str, str]]]:
    result: list[list[tuple[str, str]]] = []
    for instruction in instructions(path):
        if instruction[0] == "FROM":
            result.append([])
        if result:
            result[-1].append(instruction)
    return result


DOCKERFILE = ROOT / "deploy" / "Dockerfile"


def test_stages_dashboard_on_node_then_python_slim() -> None:
    args = dict(a.split("=", 1) for i, a in instructions(DOCKERFILE) if i == "ARG" and "=" in a)
    assert args["PYTHON_IMAGE"].startswith("python:3.12-slim")
    assert args["NODE_IMAGE"].startswith("node:20")
    dashboard, builder, runtime = stages(DOCKERFILE)
    assert dashboard[0] == ("FROM", "${NODE_IMAGE} AS dashboard")
    dashboard_runs = [a for i, a in dashboard if i == "RUN"]
    assert dashboard_runs[0].startswith("npm ci") and dashboard_runs[-1] == "npm run build"  # from the lockfile
    assert builder[0] == ("FROM", "${PYTHON_IMAGE} AS builder")
    copies = [a for i, a in builder if i == "COPY"]
    assert "--from=dashboard /src/replayer_api/dashboard_build replayer_api/dashboard_build" in copies
    assert runtime[0] == ("FROM", "${PYTHON_IMAGE}")


def test_wheels_are_built_in_the_builder_and_only_the_virtualenv_is_copied() -> None:
    _, builder, runtime = stages(DOCKERFILE)
    builder_runs = " ".join(a for i, a in builder if i == "RUN")
    assert "python deploy/requirements.py" in builder_runs and "pip wheel" in builder_runs
    assert "--no-index" in builder_runs  # the virtualenv installs the wheels built here, nothing else
    runtime_runs = " ".join(a for i, a in runtime if i == "RUN")
    assert "pip" not in runtime_runs
    copies = [a for i, a in runtime if i == "COPY"]
    assert copies == ["--from=builder /opt/bard /opt/bard"]


def test_the_runtime_is_non_root_with_a_health_check_and_the_service_chosen_by_command() -> None:
    *_, runtime = stages(DOCKERFILE)
    users = [a for i, a in runtime if i == "USER"]
    assert users and all(re.fullmatch(r"[1-9]\d*:[1-9]\d*", u) for u in users)
    (healthcheck,) = [a for i, a in runtime if i == "HEALTHCHECK"]
    assert healthcheck.endswith('CMD ["python", "-m", "deploy.healthcheck"]')
    (entrypoint,) = [a for i, a in runtime if i == "ENTRYPOINT"]
    assert entrypoint == '["tini", "--", "bard"]'
    scripts = tomllib.loads(PYPROJECT.read_text())["project"]["scripts"]
    assert scripts["bard"] == "bard.cli:main"
    env = " ".join(a for i, a in runtime if i == "ENV")
    assert "BARD_HOST=0.0.0.0" in env  # an API bound to loopback could not be reached from outside


# --- the build context -------------------------------------------------------------------------------------------


def _dockerignore_regex(pattern: str) -> re.Pattern[str]:
    out, i = "", 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out, i = out + "(?:.*/)?", i + 3
        elif pattern.startswith("**", i):
            out, i = out + ".*", i + 2
        elif pattern[i] == "*":
            out, i = out + "[^/]*", i + 1
        elif pattern[i] == "?":
            out, i = out + "[^/]", i + 1
        else:
            out, i = out + re.escape(pattern[i]), i + 1
    return re.compile(out + "$")


def sent_to_docker(path: str, dockerignore: Path = ROOT / ".dockerignore") -> bool:
    """Whether Docker sends ``path`` to the build: the last pattern matching it or one of its parents wins."""
    parts = path.split("/")
    prefixes = ["/".join(parts[:n]) for n in range(1, len(parts) + 1)]
    sent = True
    for line in dockerignore.read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        negate = line.startswith("!")
        regex = _dockerignore_regex(line.lstrip("!").rstrip("/"))
        if any(regex.match(p) for p in prefixes):
            sent = negate
    return sent


@pytest.mark.parametrize(
    ("path", "sent"),
    [
        ("pyproject.toml", True),
        ("README.md", True),
        ("bard/settings.py", True),
        ("deploy/healthcheck.py", True),
        ("deploy/requirements.py", True),
        (".venv/bin/python", False),
        ("deploy/.env", False),
        ("deploy/aws/deploy.py", False),
        ("var/jwt_secret", False),
        ("tests/conftest.py", False),
        (".git/config", False),
        ("bard/__pycache__/settings.cpython-312.pyc", False),
        ("bench/results/run.json", False),
        ("dashboard/src/main.tsx", True),
        ("dashboard/package-lock.json", True),
        ("dashboard/node_modules/preact/package.json", False),
        ("replayer_api/dashboard_build/index.html", False),
    ],
)
def test_build_context_allow_list(path: str, sent: bool) -> None:
    assert sent_to_docker(path) is sent


def test_every_module_of_bard_reaches_the_image() -> None:
    """A new package or module in pyproject's list must not be left out of the image by the allow-list."""
    packages = tomllib.loads(PYPROJECT.read_text())["tool"]["setuptools"]["packages"]["find"]["include"]
    roots = {p.rstrip("*") for p in packages} - {"deploy"}
    modules = [p.relative_to(ROOT).as_posix() for root in sorted(roots) for p in (ROOT / root).rglob("*.py")
               if "__pycache__" not in p.parts]
    assert modules, roots
    assert [m for m in modules if not sent_to_docker(m)] == []


def test_the_health_probe_imports_nothing_heavy() -> None:
    """It runs every few seconds in every container, and the server image has no chDB."""
    code = ("import sys, deploy.healthcheck; heavy = ('chdb', 'boto3', 'asyncpg', 'aio_pika', 'clickhouse_connect', "
            "'uvicorn', 'starlette'); print(sorted(m for m in heavy if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


# --- requirements ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("requirement", "name"),
    [
        ("chdb==4.4.0", "chdb"),
        ("uvicorn[standard]==0.54.0", "uvicorn"),
        ("APScheduler==3.11.3", "apscheduler"),
        ("clickhouse_connect>=1", "clickhouse-connect"),
        ("zope.interface ; python_version < '4'", "zope-interface"),
    ],
)
def test_distribution_name(requirement: str, name: str) -> None:
    assert distribution_name(requirement) == name


def test_server_image_leaves_out_only_the_embedded_engine() -> None:
    dependencies = tomllib.loads(PYPROJECT.read_text())["project"]["dependencies"]
    server = runtime_requirements(PYPROJECT, embedded=False)
    assert [d for d in dependencies if d not in server] == [d for d in dependencies if d.startswith("chdb")]
    assert runtime_requirements(PYPROJECT, embedded=True) == dependencies


def test_requirements_command_prints_one_per_line(capsys: pytest.CaptureFixture[str]) -> None:
    main(["--embedded", str(PYPROJECT)])
    embedded = capsys.readouterr().out.splitlines()
    main([str(PYPROJECT)])
    server = capsys.readouterr().out.splitlines()
    assert set(embedded) - set(server) == {r for r in embedded if r.startswith("chdb")}
