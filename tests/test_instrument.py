"""``bard instrument`` on small apps of each kind (``tests/fixtures/instrument/<kind>/``): what it plans, that it shows
a diff and changes nothing without ``--write``, what it writes, that a re-run changes nothing, that it never replaces a
bardrr setup without asking (``--force``, a prompt in a terminal, a refusal without one), and bad input. One
fixture (Vite) is then installed with npm, built, and recorded from in Chromium into ``bard up`` (real services)."""

from __future__ import annotations

import asyncio
import functools
import hashlib
import http.server
import json
import os
import pty
import re
import shutil
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from bard import instrument
from bard.demo_shop import SOURCES as DEMO_SOURCES
from tests.bard_process import BARD, Bard
from tests.dashboard_stack import ARTIFACTS, chromium, screenshot, wait_for

FIXTURES = Path(__file__).parent / "fixtures" / "instrument"
ENDPOINT = "http://127.0.0.1:3001"
ESBUILD = DEMO_SOURCES / "node_modules" / ".bin" / "esbuild"
NPM_CACHE = ARTIFACTS / "instrument-npm"


def app(tmp_path: Path, kind: str) -> Path:
    root = tmp_path / kind
    shutil.copytree(FIXTURES / kind, root)
    return root


def tree(root: Path) -> dict[str, str]:
    return {p.relative_to(root).as_posix(): p.read_text() for p in sorted(root.rglob("*")) if p.is_file()}


def run(*args: str, cwd: Path | None = None, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(BARD), "instrument", *args], capture_output=True, text=True, stdin=subprocess.DEVNULL,
                          timeout=60, cwd=cwd, env=env)


def package(root: Path) -> dict:
    return json.loads((root / "package.json").read_text())


def syntax_ok(path: Path) -> None:
    """The file parses (esbuild, from the demo shop's packages, reads JS, JSX, TS and TSX)."""
    if not ESBUILD.exists():
        pytest.fail("esbuild is missing: run the tests with ./bardctl test (it installs the demo shop's packages)")
    loader = {".js": "jsx", ".jsx": "jsx", ".ts": "ts", ".tsx": "tsx"}[path.suffix]
    done = subprocess.run([str(ESBUILD), f"--loader={loader}", "--log-level=error"], input=path.read_text(),
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, f"{path}: {done.stderr}"


def assert_snippet(text: str, app_name: str, endpoint: str = ENDPOINT) -> None:
    assert f"appName: {json.dumps(app_name)}," in text and f"endpoint: {json.dumps(endpoint)}," in text
    assert text.count(instrument.START) == 1 and text.count(instrument.END) == 1


@pytest.mark.parametrize(("kind", "entry", "name", "kind_shown"), [
    ("vite", "src/main.js", "vite-fixture", "vite"),
    ("vite-ts", "src/main.ts", "vite-ts-fixture", "vite"),
    ("cra", "src/index.js", "cra-fixture", "create-react-app"),
    ("bundler", "src/app.js", "parcel-fixture", "bundler"),
])
def test_a_browser_entry_gets_the_start_after_its_imports(tmp_path: Path, kind: str, entry: str, name: str,
                                                          kind_shown: str) -> None:
    root = app(tmp_path, kind)
    before = tree(root)
    shown = run(str(root), "--endpoint", ENDPOINT)
    assert shown.returncode == 0, shown.stderr
    assert tree(root) == before, "nothing changes without --write"
    assert f"--- a/{entry}\n+++ b/{entry}\n" in shown.stdout and "--- a/package.json\n" in shown.stdout
    assert f"+  appName: {json.dumps(name)},\n" in shown.stdout
    assert f"({kind_shown})" in shown.stderr and "--write" in shown.stderr

    written = run(str(root), "--endpoint", ENDPOINT, "--write")
    assert written.returncode == 0, written.stderr
    assert written.stdout == shown.stdout
    assert "npm install" in written.stderr
    pkg = package(root)
    assert pkg["dependencies"]["bardrr"] == "2.3.1" and pkg["overrides"] == {"rrweb": "2.0.0-alpha.4"}
    text = (root / entry).read_text()
    assert_snippet(text, name)
    assert 'import Agent from "bardrr";' in text and "new Agent().start({" in text
    original = before[entry]
    imports = [line for line in original.splitlines() if line.startswith("import ")]
    if imports:  # after the app's own imports, which stay where they were
        assert text.index(imports[-1]) < text.index(instrument.START)
    block = text[text.index(instrument.START):text.index(instrument.END) + len(instrument.END)]
    assert [line for line in text.replace(block, "").splitlines() if line] == [
        line for line in original.splitlines() if line], "the app's own code is left as it was"
    syntax_ok(root / entry)
    if entry.endswith(".ts"):
        assert "declare module \"bardrr\"" in (root / "src" / "bardrr.d.ts").read_text()
        assert (root / "src" / "bardrr.d.ts").read_text() == instrument.TYPES

    again = run(str(root), "--endpoint", ENDPOINT, "--write")
    assert again.returncode == 0 and again.stdout == "" and "Nothing to change" in again.stderr, again.stderr
    after = tree(root)
    assert run(str(root), "--endpoint", ENDPOINT, "--write").returncode == 0 and tree(root) == after


def test_the_dependencies_keep_their_order_and_the_file_its_indent(tmp_path: Path) -> None:
    root = app(tmp_path, "cra")
    (root / "package.json").write_text(json.dumps(package(root), indent=4) + "\n")
    assert run(str(root), "--endpoint", ENDPOINT, "--write").returncode == 0
    text = (root / "package.json").read_text()
    assert '\n    "name": "cra-fixture",' in text and text.endswith("}\n")
    assert list(package(root)["dependencies"]) == ["bardrr", "react", "react-dom", "react-scripts"]


def test_yarn_and_pnpm_get_their_own_pin_too(tmp_path: Path) -> None:
    root = app(tmp_path, "vite")
    (root / "yarn.lock").write_text("")
    (root / "pnpm-lock.yaml").write_text("")
    assert run(str(root), "--endpoint", ENDPOINT, "--write").returncode == 0
    pkg = package(root)
    assert pkg["resolutions"] == {"rrweb": "2.0.0-alpha.4"} and pkg["pnpm"] == {"overrides": {"rrweb": "2.0.0-alpha.4"}}


def test_next_app_router_gets_a_client_component_in_the_layout(tmp_path: Path) -> None:
    root = app(tmp_path, "next-app")
    done = run(str(root), "--endpoint", ENDPOINT, "--app-name", "Better Brew", "--write")
    assert done.returncode == 0, done.stderr
    assert "(next (app router))" in done.stderr
    component = (root / "app" / "bard-agent.tsx").read_text()
    assert component.startswith('"use client";\n')
    assert 'import("bardrr")' in component and "useEffect" in component and "import Agent" not in component
    assert_snippet(component, "Better Brew")
    layout = (root / "app" / "layout.tsx").read_text()
    assert 'import "./globals.css";\nimport BardAgent from "./bard-agent"; // bard instrument\n' in layout
    assert '<body className="antialiased"><BardAgent />{children}</body>' in layout
    assert (root / "app" / "bardrr.d.ts").read_text() == instrument.TYPES
    for path in ("app/bard-agent.tsx", "app/layout.tsx", "app/bardrr.d.ts"):
        syntax_ok(root / path)
    assert "--- /dev/null\n+++ b/app/bard-agent.tsx\n" in done.stdout
    again = run(str(root), "--endpoint", ENDPOINT, "--app-name", "Better Brew")
    assert again.returncode == 0 and again.stdout == "", again.stdout


def test_next_pages_router_renders_the_component_from_app_or_a_new_app(tmp_path: Path) -> None:
    root = app(tmp_path, "next-pages")
    assert run(str(root), "--endpoint", ENDPOINT, "--write").returncode == 0
    page = (root / "pages" / "_app.js").read_text()
    assert 'import BardAgent from "../components/bard-agent"; // bard instrument' in page
    assert "return <><BardAgent /><Component {...pageProps} /></>;" in page
    assert_snippet((root / "components" / "bard-agent.jsx").read_text(), "next-pages-fixture")
    for path in ("pages/_app.js", "components/bard-agent.jsx"):
        syntax_ok(root / path)
    assert not (root / "pages" / "bard-agent.jsx").exists()  # a file in pages/ would be a route

    bare = app(tmp_path / "bare", "next-pages")
    (bare / "pages" / "_app.js").unlink()
    done = run(str(bare), "--endpoint", ENDPOINT, "--write")
    assert done.returncode == 0, done.stderr
    created = (bare / "pages" / "_app.js").read_text()
    assert "<BardAgent />" in created and "<Component {...pageProps} />" in created
    syntax_ok(bare / "pages" / "_app.js")


def test_without_an_entry_the_snippet_is_printed_with_where_it_goes(tmp_path: Path) -> None:
    root = app(tmp_path, "unknown")
    done = run(str(root), "--endpoint", ENDPOINT, "--write")
    assert done.returncode == 0, done.stderr
    assert "could not find the module that starts the app in the browser" in done.stderr
    assert "after its imports" in done.stderr and 'appName: "server-only"' in done.stderr
    assert tree(root)["server.js"] == 'console.log("a server");\n'
    assert package(root)["dependencies"] == {"bardrr": "2.3.1"}  # the packages are still added


def test_a_classic_script_is_no_entry(tmp_path: Path) -> None:
    root = app(tmp_path, "bundler")
    html = root / "src" / "index.html"
    html.write_text(html.read_text().replace('<script type="module" src="./app.js">', '<script src="./app.js">'))
    done = run(str(root), "--endpoint", ENDPOINT)
    assert done.returncode == 0 and "loads ./app.js as a classic script" in done.stderr, done.stderr
    assert "+++ b/src/app.js" not in done.stdout


def test_an_existing_setup_is_refused_without_a_terminal_and_nothing_changes(tmp_path: Path) -> None:
    root = app(tmp_path, "existing")
    before = tree(root)
    for extra in ([], ["--write"]):
        done = run(str(root), "--endpoint", ENDPOINT, *extra)
        assert done.returncode == 1, done.stderr
        assert "has a bardrr setup already" in done.stderr and "package.json asks for bardrr ^2.2.0" in done.stderr
        assert "src/main.js imports bardrr" in done.stderr and "--force" in done.stderr
        assert done.stdout == "" and tree(root) == before


def test_force_replaces_the_version_and_the_start_call_in_place(tmp_path: Path) -> None:
    root = app(tmp_path, "existing")
    done = run(str(root), "--endpoint", ENDPOINT, "--force", "--write")
    assert done.returncode == 0, done.stderr
    assert package(root)["dependencies"] == {"bardrr": "2.3.1"}
    text = (root / "src" / "main.js").read_text()
    assert text.startswith('import Recorder from "bardrr";\n\nnew Recorder().start({\n')
    assert 'appName: "existing-fixture",' in text and f'endpoint: "{ENDPOINT}",' in text
    assert "import Agent" not in text and instrument.START not in text  # one agent, not two
    syntax_ok(root / "src" / "main.js")


def test_its_own_setup_with_other_options_is_an_existing_setup_too(tmp_path: Path) -> None:
    root = app(tmp_path, "vite")
    assert run(str(root), "--endpoint", ENDPOINT, "--write").returncode == 0
    other = "https://bard.example.com:3001"
    refused = run(str(root), "--endpoint", other, "--write")
    assert refused.returncode == 1
    assert f"src/main.js starts bardrr with endpoint {ENDPOINT!r} and app name 'vite-fixture'" in refused.stderr
    done = run(str(root), "--endpoint", other, "--app-name", "Shop", "--force", "--write")
    assert done.returncode == 0, done.stderr
    assert_snippet((root / "src" / "main.js").read_text(), "Shop", other)


def in_a_terminal(args: list[str], answer: str) -> tuple[int, str]:
    """``bard instrument`` with a terminal on stdin and stdout, answering its prompt."""
    controller, terminal = pty.openpty()
    process = subprocess.Popen([str(BARD), "instrument", *args], stdin=terminal, stdout=terminal, stderr=terminal)
    os.close(terminal)
    output = b""
    answered = False
    while True:
        try:
            chunk = os.read(controller, 4096)
        except OSError:
            break
        if not chunk:
            break
        output += chunk
        if not answered and b"Replace it?" in output:
            os.write(controller, answer.encode() + b"\n")
            answered = True
    os.close(controller)
    return process.wait(timeout=60), output.decode(errors="replace")


@pytest.mark.parametrize(("answer", "replaced"), [("y", True), ("n", False)])
def test_in_a_terminal_it_asks_before_replacing(tmp_path: Path, answer: str, replaced: bool) -> None:
    root = app(tmp_path, "existing")
    before = tree(root)
    code, output = in_a_terminal([str(root), "--endpoint", ENDPOINT, "--write"], answer)
    assert "package.json asks for bardrr ^2.2.0" in output and "Replace it?" in output
    if replaced:
        assert code == 0, output
        assert package(root)["dependencies"] == {"bardrr": "2.3.1"}
    else:
        assert code == 1 and "nothing changed" in output, output
        assert tree(root) == before


@pytest.mark.parametrize(("setup", "args", "message"), [
    ("none", [], "has no package.json"),
    ("missing", [], "is not a folder"),
    ("broken", [], "package.json is not valid JSON"),
    ("array", [], "must hold a JSON object"),
    ("vite", ["--endpoint", "localhost:3001"], "--endpoint must be the agent API's http:// or https:// address"),
    ("vite", ["--app-name", " "], "--app-name must not be empty"),
    ("vite", ["--app-name", "x" * 201], "--app-name must be at most 200 characters"),
])
def test_bad_input_is_refused_leaving_nothing(tmp_path: Path, setup: str, args: list[str], message: str) -> None:
    root = tmp_path / "app"
    if setup == "vite":
        root = app(tmp_path, "vite")
    elif setup != "missing":
        root.mkdir()
        (root / "index.js").write_text("export {};\n")
        if setup == "broken":
            (root / "package.json").write_text("{ not json")
        if setup == "array":
            (root / "package.json").write_text("[]")
    before = tree(root) if root.exists() else None
    done = run(str(root), "--write", *args)
    assert done.returncode == 1 and message in done.stderr, done.stderr
    assert "Traceback" not in done.stderr and done.stdout == ""
    assert (tree(root) if root.exists() else None) == before


# --- built with npm, recorded in Chromium ---------------------------------------------------------------------

@pytest.fixture(scope="module")
def bard(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Bard]:
    bard = Bard(tmp_path_factory.mktemp("instrument"), BARD_LOG_LEVEL="WARNING", BARD_DEMO_PORT="0")
    try:
        bard.start()
        wait_for(lambda: httpx.get(f"http://127.0.0.1:{bard.agent_port}/healthz").status_code == 200,
                 "bard up answering", bard)
        yield bard
    finally:
        bard.kill()
        asyncio.run(bard.drop_services())


def npm_install(root: Path) -> None:
    """``npm install`` of the instrumented app, once per package.json: its node_modules are kept in
    tests/artifacts (not committed) and linked in."""
    key = hashlib.sha256((root / "package.json").read_bytes()).hexdigest()[:16]
    cached = NPM_CACHE / key
    if not (cached / "node_modules" / ".bard-installed").exists():
        shutil.rmtree(cached, ignore_errors=True)
        cached.mkdir(parents=True)
        shutil.copy(root / "package.json", cached / "package.json")
        done = subprocess.run(["npm", "install", "--no-audit", "--no-fund", "--loglevel=error", "--prefer-offline"],
                              cwd=cached, capture_output=True, text=True, timeout=600)
        assert done.returncode == 0, done.stdout + done.stderr
        (cached / "node_modules" / ".bard-installed").touch()
    (root / "node_modules").symlink_to(cached / "node_modules", target_is_directory=True)


def serve(directory: Path) -> tuple[http.server.ThreadingHTTPServer, str]:
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(directory))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}"


@pytest.mark.postgres
@pytest.mark.rabbitmq
@pytest.mark.clickhouse
@pytest.mark.browser
@pytest.mark.slow
def test_an_instrumented_vite_app_builds_with_npm_and_records_a_session(tmp_path: Path, bard: Bard) -> None:
    root = app(tmp_path, "vite")
    endpoint = f"http://127.0.0.1:{bard.agent_port}"
    done = run(str(root), "--endpoint", endpoint, "--app-name", "Instrumented Vite", "--write")
    assert done.returncode == 0, done.stderr
    npm_install(root)
    lock = json.loads((NPM_CACHE / hashlib.sha256((root / "package.json").read_bytes()).hexdigest()[:16]
                       / "package-lock.json").read_text())
    assert lock["packages"]["node_modules/bardrr"]["version"] == "2.3.1"
    assert lock["packages"]["node_modules/rrweb"]["version"] == "2.0.0-alpha.4"  # the pin took
    built = subprocess.run(["npm", "run", "build"], cwd=root, capture_output=True, text=True, timeout=300)
    assert built.returncode == 0, built.stdout + built.stderr
    server, url = serve(root / "dist")
    token = (bard.data_dir / "dashboard_token").read_text().strip()
    try:
        with chromium() as browser:
            page = browser.new_page()
            problems: list[str] = []
            page.on("pageerror", lambda error: problems.append(str(error)))
            page.goto(url)
            for _ in range(4):
                page.get_by_role("button", name="Count").click()
                page.mouse.move(100, 100)
                page.mouse.move(200, 150)
            page.wait_for_function("document.querySelector('#count').textContent === '4'")
            page.wait_for_timeout(500)
            session_id = page.evaluate("sessionStorage.getItem('sessionId')")
            # The agent sends a batch at 10 events, and the rest when the tab is hidden: hide it.
            page.evaluate("""() => {
                Object.defineProperty(document, 'visibilityState', {get: () => 'hidden'});
                document.dispatchEvent(new Event('visibilitychange'));
            }""")
            screenshot(page, "instrument-vite-app")
            with httpx.Client(base_url=f"http://127.0.0.1:{bard.replayer_port}",
                              headers={"Authorization": f"Bearer {token}"}, timeout=30) as api:
                def recorded() -> bool:
                    events = api.get(f"/v1/sessions/{session_id}/events").json()
                    return isinstance(events, list) and sum(
                        e["type"] == 3 and e["data"].get("source") == 2 and e["data"].get("type") == 2
                        for e in events) == 4
                wait_for(recorded, "the app's session recorded", bard)
                session = api.get(f"/v1/sessions/{session_id}").json()
                events = api.get(f"/v1/sessions/{session_id}/events").json()
    finally:
        server.shutdown()
        server.server_close()
    assert problems == []
    assert session["app_name"] == "Instrumented Vite" and session["status"] == "active"
    snapshot = json.dumps(next(e for e in events if e["type"] == 2)["data"]["node"])
    assert "Counter" in snapshot and "Count" in snapshot
    tagged = [e["conversionData"]["textContent"] for e in events if "conversionData" in e]
    assert tagged == ["Count"] * 4
    assert re.search(r"/assets/index-[\w-]+\.js", (root / "dist" / "index.html").read_text())


def test_a_setup_made_by_hand_as_asked_is_left_alone(tmp_path: Path) -> None:
    root = app(tmp_path, "existing")
    pkg = package(root)
    pkg["dependencies"]["bardrr"] = "2.3.1"
    pkg["overrides"] = {"rrweb": "2.0.0-alpha.4"}
    (root / "package.json").write_text(json.dumps(pkg, indent=2) + "\n")
    main = root / "src" / "main.js"
    main.write_text(main.read_text().replace('"Old name"', '"existing-fixture"').replace(
        "https://bard.old.example", ENDPOINT))
    before = tree(root)
    done = run(str(root), "--endpoint", ENDPOINT, "--write")
    assert done.returncode == 0 and done.stdout == "" and "Nothing to change" in done.stderr, done.stderr
    assert tree(root) == before


def test_the_endpoint_defaults_to_this_bards_agent_api(tmp_path: Path) -> None:
    root = app(tmp_path, "vite")
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("BARD_")}, "BARD_AGENT_API_PORT": "4101"}
    done = run(str(root), "--write", env=env)
    assert done.returncode == 0, done.stderr
    assert_snippet((root / "src" / "main.js").read_text(), "vite-fixture", "http://127.0.0.1:4101")


def test_a_change_that_cannot_be_written_leaves_the_app_as_it_was(tmp_path: Path) -> None:
    root = app(tmp_path, "next-pages")
    (root / "components").write_text("a file where the component's folder would go\n")
    before = tree(root)
    done = run(str(root), "--endpoint", ENDPOINT, "--write")
    assert done.returncode == 1 and "could not write the changes, nothing changed" in done.stderr, done.stderr
    assert tree(root) == before
