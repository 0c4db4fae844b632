"""The image's runtime requirements, read from ``pyproject.toml``: every dependency of the ``bard`` package,
less the embedded ClickHouse engine unless the image is built for embedded mode.

In server mode ClickHouse is a server reached over HTTP, so chDB (an in-process ClickHouse, with pandas and
pyarrow behind it: about 0.8 GB installed) is dead weight in the image. ``bard up`` needs it; build with
``--build-arg BARD_EMBEDDED=1`` for an all-in-one image.

Run as ``python deploy/requirements.py [--embedded] pyproject.toml`` (the Dockerfile does, before the source is
copied, so the dependency layer is cached until pyproject changes).
"""

from __future__ import annotations

import argparse
import re
import sys
import tomllib
from pathlib import Path

EMBEDDED_ONLY = frozenset({"chdb"})
"""Distributions that only the embedded mode imports (normalized names)."""


def distribution_name(requirement: str) -> str:
    """The normalized distribution name of a PEP 508 requirement (``"uvicorn[standard]==1"`` -> ``"uvicorn"``)."""
    match = re.match(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)", requirement)
    if match is None:
        raise ValueError(f"not a requirement: {requirement!r}")
    return re.sub(r"[-_.]+", "-", match.group(1)).lower()


def runtime_requirements(pyproject: Path, *, embedded: bool) -> list[str]:
    dependencies: list[str] = tomllib.loads(pyproject.read_text())["project"]["dependencies"]
    if embedded:
        return list(dependencies)
    return [r for r in dependencies if distribution_name(r) not in EMBEDDED_ONLY]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("pyproject", type=Path)
    parser.add_argument("--embedded", action="store_true", help="keep the embedded engine (chDB)")
    args = parser.parse_args(argv)
    sys.stdout.write("".join(r + "\n" for r in runtime_requirements(args.pyproject, embedded=args.embedded)))


if __name__ == "__main__":
    main()
