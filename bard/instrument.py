"""``bard instrument PATH``: wire the bardrr agent into a JavaScript app, the way the README's "Instrument your app"
section says by hand.

For a folder with a ``package.json`` it plans these changes, shows them as a unified diff, and writes them only when
asked (``--write``):

- ``package.json``: ``bardrr`` 2.3.1 in ``dependencies``, and rrweb pinned to the release the agent was written for
  (``overrides``, npm's; also ``resolutions`` for Yarn and ``pnpm.overrides`` for pnpm when their lockfile is
  there): ``bardrr@2.3.1`` asks for ``rrweb ^2.0.0-alpha.3``, which resolves to a release without the console
  plugin the agent calls, and then the agent records nothing;
- the start snippet (the app name and Bard's agent API address), where the app starts in the browser:

  ============================ =====================================================================================
  kind                         where
  ============================ =====================================================================================
  Next.js, app router          a client component ``app/bard-agent.(jsx|tsx)`` (``"use client"``; the agent needs
                               ``window`` and ``sessionStorage``, so it is imported and started in an effect, once,
                               and the server never loads it), rendered first in ``<body>`` of ``app/layout``
  Next.js, pages router        the same component in ``components/``, rendered by ``pages/_app`` (created when
                               missing)
  Create React App             ``src/index.(js|jsx|ts|tsx)``, after its imports
  Vite                         ``src/main.(js|jsx|ts|tsx)``, else the module ``index.html`` loads
  a bundler and index.html     the module that ``index.html`` loads with ``<script type="module" src=...>``
  ============================ =====================================================================================

  TypeScript entries get a ``bardrr.d.ts`` beside them (the agent ships no types). When no entry is found the
  snippet is printed with where it belongs.

What ``bard instrument`` writes is marked (``bard instrument: start`` ... ``end``), so a re-run with the same
options changes nothing, and one with another endpoint or app name replaces its own block. A bardrr setup it did
not write (another bardrr version in ``package.json``, another rrweb pin, code that imports bardrr), or its own
with other options, is never replaced without asking: ``--force``, or a yes at the prompt in a terminal; without
a terminal it refuses. Replacing a foreign setup rewrites its ``new Agent().start({...})`` call in place; where
that call cannot be found, the snippet is printed instead of starting a second agent.
"""

from __future__ import annotations

import difflib
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

BARDRR_VERSION = "2.3.1"
RRWEB_PIN = "2.0.0-alpha.4"
START = "// bard instrument: start"
END = "// bard instrument: end"
MAX_APP_NAME = 200
SOURCE_SUFFIXES = (".js", ".jsx", ".ts", ".tsx", ".mjs", ".cjs")
SKIPPED_DIRECTORIES = {"node_modules", "dist", "build", ".next", "out", ".git", "coverage", ".vite", ".cache"}
MAX_SCANNED_FILES = 5000
MAX_SCANNED_BYTES = 1_000_000
IMPORTS_BARDRR = re.compile(r"""(?:from\s*|require\s*\(\s*|import\s*\(\s*|^import\s*)["']bardrr["']""", re.M)
LAST_IMPORT = re.compile(r"""^import\s[^;]*?["'][^"'\n]+["'][ \t]*;?[ \t]*(?://[^\n]*)?\n""", re.M)
START_CALL = re.compile(r"""new\s+[A-Za-z_$][\w$]*\s*\(\s*\)\s*\.start\s*\(\s*\{[^{}]*\}\s*\)""")
OPTION = r"""{name}\s*:\s*("(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|`[^`]*`)"""


class InstrumentError(Exception):
    """The folder cannot be instrumented (no package.json, a broken one, a bad option): nothing was changed."""


class ExistingSetup(Exception):
    """A bardrr setup that ``bard instrument`` would replace; ``reasons`` says what it is."""

    def __init__(self, reasons: list[str]) -> None:
        super().__init__("; ".join(reasons))
        self.reasons = reasons


@dataclass
class Change:
    path: str  # relative to the app's folder, with /
    before: str | None  # None: a new file
    after: str


@dataclass
class Plan:
    root: Path
    kind: str
    changes: list[Change] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    existing: list[str] = field(default_factory=list)  # the setup replaced (with --force or a yes)

    def diff(self) -> str:
        out: list[str] = []
        for change in self.changes:
            before = [] if change.before is None else change.before.splitlines(keepends=True)
            after = change.after.splitlines(keepends=True)
            out.extend(difflib.unified_diff(before, after, "/dev/null" if change.before is None else f"a/{change.path}",
                                            f"b/{change.path}"))
        return "".join(line if line.endswith("\n") else line + "\n\\ No newline at end of file\n" for line in out)

    def write(self) -> None:
        """Every file written beside its target first, then moved into place, so a failure (a read-only file, a
        full disk) leaves the app as it was rather than half changed."""
        staged: list[tuple[Path, Path]] = []
        try:
            for change in self.changes:
                path = self.root / change.path
                path.parent.mkdir(parents=True, exist_ok=True)
                temporary = path.with_name(f".{path.name}.bard-instrument")
                temporary.write_text(change.after)
                staged.append((temporary, path))
        except OSError:
            for temporary, _ in staged:
                temporary.unlink(missing_ok=True)
            raise
        for temporary, path in staged:
            temporary.replace(path)


# --- options ------------------------------------------------------------------------------------------------

def check_endpoint(endpoint: str) -> str:
    parts = urlsplit(endpoint)
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.query or parts.fragment:
        raise InstrumentError(f"--endpoint must be the agent API's http:// or https:// address, got {endpoint!r}")
    return endpoint.rstrip("/")


def check_app_name(name: str) -> str:
    if not name.strip():
        raise InstrumentError("--app-name must not be empty")
    if len(name) > MAX_APP_NAME:
        raise InstrumentError(f"--app-name must be at most {MAX_APP_NAME} characters, got {len(name)}")
    return name


def read_package(root: Path) -> tuple[str, dict[str, Any]]:
    if not root.is_dir():
        raise InstrumentError(f"{root} is not a folder")
    path = root / "package.json"
    if not path.is_file():
        raise InstrumentError(f"{root} has no package.json: bard instrument works on a JavaScript app's folder")
    text = path.read_text()
    try:
        package = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InstrumentError(f"{path} is not valid JSON: {exc}") from None
    if not isinstance(package, dict):
        raise InstrumentError(f"{path} must hold a JSON object")
    return text, package


def default_app_name(root: Path, package: dict[str, Any]) -> str:
    name = package.get("name")
    return name if isinstance(name, str) and name.strip() else root.resolve().name


# --- the snippets ---------------------------------------------------------------------------------------------

def _options(endpoint: str, app_name: str, indent: str) -> str:
    return (f"{indent}appName: {json.dumps(app_name)},\n"
            f"{indent}endpoint: {json.dumps(endpoint)},\n"
            f"{indent}MAX_IDLE_TIME: 60 * 1000,\n")


def module_snippet(endpoint: str, app_name: str) -> str:
    """For a module that runs in the browser only."""
    return (f"{START}\n"
            'import Agent from "bardrr";\n\n'
            "// Records sessions into Bard. A custom event, usable as a funnel step:\n"
            "// Agent.handleCustomEvent(\"signed-up\");\n"
            "new Agent().start({\n"
            f"{_options(endpoint, app_name, '  ')}"
            "});\n"
            f"{END}\n")


def component_snippet(endpoint: str, app_name: str) -> str:
    """A Next.js client component: the agent needs the browser, so it is loaded and started in an effect."""
    return ('"use client";\n'
            f"{START}\n"
            "// Records sessions into Bard with the bardrr agent. The agent needs the browser (window,\n"
            "// sessionStorage), so it is imported and started in an effect, once: the server never loads it.\n"
            "// A custom event, usable as a funnel step:\n"
            "// (await import(\"bardrr\")).default.handleCustomEvent(\"signed-up\");\n"
            'import { useEffect } from "react";\n\n'
            "let started = false;\n\n"
            "export default function BardAgent() {\n"
            "  useEffect(() => {\n"
            "    if (started) return;\n"
            "    started = true;\n"
            '    import("bardrr").then(({ default: Agent }) => {\n'
            "      new Agent().start({\n"
            f"{_options(endpoint, app_name, '        ')}"
            "      });\n"
            "    });\n"
            "  }, []);\n"
            "  return null;\n"
            "}\n"
            f"{END}\n")


TYPES = (f"{START}\n"
         "// Types for the bardrr agent, which ships none.\n"
         'declare module "bardrr" {\n'
         "  export default class Agent {\n"
         "    start(options: { appName: string; endpoint: string; MAX_IDLE_TIME?: number }): Promise<void>;\n"
         "    static handleCustomEvent(customEventType: string): void;\n"
         "  }\n"
         "}\n"
         f"{END}\n")


def _block(text: str) -> tuple[int, int] | None:
    start = text.find(START)
    if start < 0:
        return None
    end = text.find(END, start)
    if end < 0:
        return None
    return start, end + len(END) + (1 if text[end + len(END):end + len(END) + 1] == "\n" else 0)


def _option(text: str, name: str) -> str | None:
    found = re.search(OPTION.format(name=name), text)
    if not found:
        return None
    literal = found.group(1)
    try:
        return str(json.loads(literal)) if literal[0] == '"' else literal[1:-1]
    except json.JSONDecodeError:
        return literal[1:-1]


# --- finding the app's kind and entry ---------------------------------------------------------------------------

def _deps(package: dict[str, Any]) -> dict[str, Any]:
    found: dict[str, Any] = {}
    for key in ("dependencies", "devDependencies"):
        value = package.get(key)
        if isinstance(value, dict):
            found.update(value)
    return found


def _first(root: Path, *candidates: str) -> Path | None:
    for candidate in candidates:
        for suffix in (".tsx", ".ts", ".jsx", ".js", ".mjs"):
            path = root / f"{candidate}{suffix}"
            if path.is_file():
                return path
    return None


def _html_entry(root: Path) -> tuple[Path | None, str]:
    """The module an ``index.html`` loads with ``<script type="module" src=...>``, and a note when there is none."""
    pages = [p for p in (root / "index.html", root / "src" / "index.html", root / "public" / "index.html")
             if p.is_file()]
    for html in pages:
        for tag in re.findall(r"<script\b[^>]*>", html.read_text(), re.I):
            src = re.search(r"""\bsrc\s*=\s*["']([^"']+)["']""", tag)
            if not src or re.match(r"^(?:[a-z]+:)?//", src.group(1), re.I):
                continue
            if not re.search(r"""\btype\s*=\s*["']module["']""", tag, re.I):
                return None, (f"{html.relative_to(root)} loads {src.group(1)} as a classic script, which cannot "
                              "import a package")
            relative = src.group(1).split("?")[0]
            path = (root / relative.lstrip("/")) if relative.startswith("/") else (html.parent / relative)
            if path.suffix in SOURCE_SUFFIXES and path.is_file():
                return path, ""
    return None, "no index.html loading a module of the app was found"


def _sources(root: Path) -> list[Path]:
    found: list[Path] = []
    stack = [root]
    while stack and len(found) < MAX_SCANNED_FILES:
        folder = stack.pop()
        try:
            entries = sorted(folder.iterdir())
        except OSError:
            continue
        for entry in entries:
            if entry.is_dir() and not entry.is_symlink():
                if entry.name not in SKIPPED_DIRECTORIES and not entry.name.startswith("."):
                    stack.append(entry)
            elif entry.suffix in SOURCE_SUFFIXES and entry.is_file() and entry.stat().st_size <= MAX_SCANNED_BYTES:
                found.append(entry)
    return found


def _rel(root: Path, path: Path) -> str:
    return path.relative_to(root).as_posix()


# --- the plan -----------------------------------------------------------------------------------------------------

def plan(root: Path, *, endpoint: str, app_name: str | None = None, replace: bool = False) -> Plan:
    """What ``bard instrument`` would change in ``root``. Raises :class:`ExistingSetup` when that replaces a bardrr
    setup and ``replace`` is false, :class:`InstrumentError` when it cannot work on ``root`` at all."""
    root = root.resolve()
    endpoint = check_endpoint(endpoint)
    package_text, package = read_package(root)
    app_name = check_app_name(app_name if app_name is not None else default_app_name(root, package))
    deps = _deps(package)
    kind = ("next" if "next" in deps else "create-react-app" if "react-scripts" in deps
            else "vite" if "vite" in deps else "bundler")
    result = Plan(root, kind)
    existing: list[str] = []

    # package.json
    version = deps.get("bardrr")
    if version is not None and str(version).lstrip("=") != BARDRR_VERSION:
        existing.append(f"package.json asks for bardrr {version}")
    overrides = package.get("overrides") if isinstance(package.get("overrides"), dict) else {}
    pinned = overrides.get("rrweb") if isinstance(overrides, dict) else None
    if pinned is not None and pinned != RRWEB_PIN:
        existing.append(f"package.json pins rrweb to {pinned}")
    direct = deps.get("rrweb")
    if direct is not None and direct != RRWEB_PIN:
        result.notes.append(f"package.json depends on rrweb {direct} itself; npm refuses an override that conflicts "
                            f"with a direct dependency: make it {RRWEB_PIN}")
    new_package = _with_bardrr(package_text, package, root)
    if new_package != package_text:
        result.changes.append(Change("package.json", package_text, new_package))

    # code that already starts bardrr
    ours: list[tuple[Path, str]] = []
    foreign: list[tuple[Path, str]] = []
    for source in _sources(root):
        text = source.read_text(errors="replace")
        if "bardrr" not in text or not IMPORTS_BARDRR.search(text):
            continue
        block = _block(text)
        outside = text if block is None else text[:block[0]] + text[block[1]:]
        if IMPORTS_BARDRR.search(outside):
            foreign.append((source, text))
        elif block is not None:
            ours.append((source, text))
    for source, text in ours:
        block = _block(text)
        assert block is not None
        found = (_option(text[block[0]:block[1]], "endpoint"), _option(text[block[0]:block[1]], "appName"))
        if found != (endpoint, app_name):
            existing.append(f"{_rel(root, source)} starts bardrr with endpoint {found[0]!r} and app name "
                            f"{found[1]!r}")
            new = text[:block[0]] + _rewritten_block(text[block[0]:block[1]], endpoint, app_name) + text[block[1]:]
            result.changes.append(Change(_rel(root, source), text, new))
    for source, text in foreign:
        call = START_CALL.search(text)
        if call is not None and (_option(call.group(0), "endpoint"), _option(call.group(0), "appName")) == (
                endpoint, app_name):
            continue  # set up by hand as asked: nothing to replace
        existing.append(f"{_rel(root, source)} imports bardrr (a setup bard instrument did not write)")
        if call is None:
            result.notes.append(f"could not find the agent's start call in {_rel(root, source)}: make it start with "
                                f"appName {json.dumps(app_name)} and endpoint {json.dumps(endpoint)}")
            continue
        replaced = "new Agent().start({\n" + _options(endpoint, app_name, "  ") + "})"
        name = re.match(r"new\s+([A-Za-z_$][\w$]*)", call.group(0))
        if name:
            replaced = replaced.replace("new Agent()", f"new {name.group(1)}()", 1)
        result.changes.append(Change(_rel(root, source), text, text[:call.start()] + replaced + text[call.end():]))
    if existing and not replace:
        raise ExistingSetup(existing)
    result.existing = existing
    if not ours and not foreign:
        _place_snippet(result, endpoint, app_name)
    return result


def _rewritten_block(block: str, endpoint: str, app_name: str) -> str:
    for name, value in (("endpoint", endpoint), ("appName", app_name)):
        written = f"{name}: {json.dumps(value)}"
        block = re.sub(OPTION.format(name=name), lambda _match: written, block, count=1)  # noqa: B023 (used at once)
    return block


def _with_bardrr(text: str, package: dict[str, Any], root: Path) -> str:
    updated = dict(package)
    dependencies = dict(updated.get("dependencies") or {})
    dev = dict(updated.get("devDependencies") or {})
    if "bardrr" in dev:  # it runs in the browser: a dependency
        del dev["bardrr"]
        updated["devDependencies"] = dev
    dependencies = _inserted(dependencies, "bardrr", BARDRR_VERSION)
    updated["dependencies"] = dependencies
    updated["overrides"] = {**(updated.get("overrides") or {}), "rrweb": RRWEB_PIN}
    if (root / "yarn.lock").is_file():
        updated["resolutions"] = {**(updated.get("resolutions") or {}), "rrweb": RRWEB_PIN}
    if (root / "pnpm-lock.yaml").is_file():
        pnpm = dict(updated.get("pnpm") or {})
        pnpm["overrides"] = {**(pnpm.get("overrides") or {}), "rrweb": RRWEB_PIN}
        updated["pnpm"] = pnpm
    if updated == package:
        return text
    indent = re.search(r"\n([ \t]+)\"", text)
    written = json.dumps(updated, indent=indent.group(1) if indent else 2, ensure_ascii=False)
    return written + ("\n" if text.endswith("\n") or not text else "")


def _inserted(mapping: dict[str, Any], key: str, value: str) -> dict[str, Any]:
    """``mapping`` with ``key`` set, placed in alphabetical order as npm keeps dependencies."""
    if key in mapping:
        return {**mapping, key: value}
    items = list(mapping.items())
    at = next((i for i, (k, _) in enumerate(items) if k > key), len(items))
    return dict([*items[:at], (key, value), *items[at:]])


def _after_imports(text: str, insert: str, *, apart: bool = True) -> str:
    """``text`` with ``insert`` after its last top-level import (a blank line before it when ``apart``)."""
    imports = list(LAST_IMPORT.finditer(text))
    if not imports:
        directive = re.match(r"""^(?:\s*["']use (?:strict|client)["'];?[^\n]*\n)""", text)
        at = directive.end() if directive else 0
        return text[:at] + insert + ("\n" if text[at:at + 1] not in ("", "\n") else "") + text[at:]
    end = imports[-1].end()
    return text[:end] + ("\n" if apart else "") + insert + text[end:]


def _place_snippet(result: Plan, endpoint: str, app_name: str) -> None:
    root = result.root
    if result.kind == "next":
        _place_next(result, endpoint, app_name)
        return
    if result.kind == "create-react-app":
        entry, why = _first(root, "src/index"), "Create React App starts from src/index"
    elif result.kind == "vite":
        entry, why = _first(root, "src/main"), "no src/main.(js|jsx|ts|tsx)"
        if entry is None:
            entry, why = _html_entry(root)
    else:
        entry, why = _html_entry(root)
    if entry is None:
        result.kind += ", entry not found"
        result.notes.append(f"could not find the module that starts the app in the browser ({why}). Put this at "
                            f"the top of it, after its imports:\n\n{module_snippet(endpoint, app_name)}")
        return
    text = entry.read_text()
    result.changes.append(Change(_rel(root, entry), text, _after_imports(text, module_snippet(endpoint, app_name))))
    _add_types(result, entry)


def _add_types(result: Plan, entry: Path) -> None:
    if entry.suffix not in (".ts", ".tsx"):
        return
    types = entry.parent / "bardrr.d.ts"
    if not types.exists():
        result.changes.append(Change(_rel(result.root, types), None, TYPES))


def _place_next(result: Plan, endpoint: str, app_name: str) -> None:
    root = result.root
    layout = _first(root, "app/layout", "src/app/layout")
    app_page = _first(root, "pages/_app", "src/pages/_app")
    if layout is not None:
        result.kind = "next (app router)"
        suffix = ".tsx" if layout.suffix in (".ts", ".tsx") else ".jsx"
        component = layout.parent / f"bard-agent{suffix}"
        text = layout.read_text()
        body = re.search(r"<body\b[^>]*>", text)
        if body is None:
            result.notes.append(f"no <body> in {_rel(root, layout)}: render <BardAgent /> (from "
                                f"{_rel(root, component)}) in the root layout yourself")
        else:
            new = text[:body.end()] + "<BardAgent />" + text[body.end():]
            new = _after_imports(new, 'import BardAgent from "./bard-agent"; // bard instrument\n', apart=False)
            result.changes.append(Change(_rel(root, layout), text, new))
        result.changes.append(Change(_rel(root, component), None, component_snippet(endpoint, app_name)))
        _add_types(result, component)
        return
    pages = next((p for p in (root / "pages", root / "src" / "pages") if p.is_dir()), None)
    if pages is None:
        result.notes.append("a Next.js app without app/layout or pages/: put this client component in your app and "
                            f"render it once in the root layout:\n\n{component_snippet(endpoint, app_name)}")
        return
    result.kind = "next (pages router)"
    typescript = app_page.suffix in (".ts", ".tsx") if app_page else any(pages.glob("*.tsx"))
    component = pages.parent / "components" / f"bard-agent{'.tsx' if typescript else '.jsx'}"
    relative_import = "../components/bard-agent"
    if app_page is None:
        app_page = pages / f"_app{'.tsx' if typescript else '.js'}"
        props = "{ Component, pageProps }: AppProps" if typescript else "{ Component, pageProps }"
        head = 'import type { AppProps } from "next/app";\n' if typescript else ""
        created = (f"{head}import BardAgent from \"{relative_import}\"; // bard instrument\n\n"
                   f"export default function App({props}) {{\n"
                   "  return (\n"
                   "    <>\n"
                   "      <BardAgent />\n"
                   "      <Component {...pageProps} />\n"
                   "    </>\n"
                   "  );\n"
                   "}\n")
        result.changes.append(Change(_rel(root, app_page), None, created))
    else:
        text = app_page.read_text()
        rendered = re.search(r"<Component\b[^>]*/>", text)
        if rendered is None:
            result.notes.append(f"no <Component ... /> in {_rel(root, app_page)}: render <BardAgent /> (from "
                                f"{_rel(root, component)}) there yourself")
        else:
            new = (text[:rendered.start()] + "<><BardAgent />" + rendered.group(0) + "</>" + text[rendered.end():])
            new = _after_imports(new, f'import BardAgent from "{relative_import}"; // bard instrument\n',
                                 apart=False)
            result.changes.append(Change(_rel(root, app_page), text, new))
    result.changes.append(Change(_rel(root, component), None, component_snippet(endpoint, app_name)))
    _add_types(result, component)
