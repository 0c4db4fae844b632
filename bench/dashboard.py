"""Benchmark: the dashboard in Chromium, against the replayer API on this machine.

    .venv/bin/python bench/dashboard.py --repeat 7

Measures, in Debian's Chromium driven by Playwright (each a fresh navigation in a signed-in tab; the median and
the spread of ``--repeat`` runs after one warm-up):

- **sessions page**: from navigation start to the first page of the session list in the DOM, over ``--sessions``
  ended sessions (default 1 M);
- **first frame of a large session**: from navigation start to the replayed page's DOM inside the player's
  iframe, for a session of ``--events`` rrweb events (default 10,000: a real full snapshot, then mouse moves,
  scrolls and clicks);
- **funnel results**: from navigation start to the bars of a 5-step funnel over ``--rows`` conversion events
  (default 10 M, 200 k sessions) in the DOM;
- **bundle**: the gzipped size of every script and style of the build (the player included).

Times come from the page's own clock (``performance.now()``, 0 at navigation start), recorded by an observer
the page is given before it loads, so Playwright's round trips are not counted. The data is generated inside
ClickHouse into ``--data`` (kept between runs) by the generators of ``bench/funnel_engine.py`` (200 k funnel
sessions, 10 M conversion events) and ``bench/replayer.py`` (the rest of the sessions), and the replayer API runs
as ``bard replayer-api`` in its own process on that directory, with a throwaway PostgreSQL database.
"""

from __future__ import annotations

import argparse
import asyncio
import gzip
import json
import os
import statistics
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from bard import postgres
from bench import funnel_engine
from clickhouse.client import create_client
from replayer_api.dashboard import BUILT_IN
from tests import bardrr_events as bardrr
from tests.bard_process import free_port
from tests.dashboard_stack import chromium
from tests.replayer_support import at

DATABASE = funnel_engine.DATABASE
LARGE_SESSION = uuid.UUID("00000000-0000-4000-8000-0000000a0000")
MORE_SESSIONS = """
INSERT INTO bench.sessions (session_id, app_name, started_at, ended_at, event_count, error_count, segments,
                            segment_event_counts, segment_error_counts, version)
SELECT generateUUIDv4(number), ['blog', 'admin', 'docs'][number % 3 + 1],
       fromUnixTimestamp64Milli(toInt64(1735689600000 + number * 31536), 'UTC'),
       fromUnixTimestamp64Milli(toInt64(1735689600000 + number * 31536 + (number * 7919) % 3600000), 'UTC'),
       number % 500, if(number % 13 = 0, number % 5 + 1, 0), [], [], [], 1
FROM numbers({n:UInt64})
"""
# Records when each thing the benchmark waits for first appears, on the page's clock.
OBSERVER = """
(() => {
  window.__bard = {};
  const seen = (name, found) => { if (!(name in window.__bard) && found) window.__bard[name] = performance.now(); };
  const look = () => {
    seen('sessions', document.querySelector('table.sessions tbody tr'));
    seen('funnel', document.querySelectorAll('li.funnel-step').length >= 5);
    const frame = document.querySelector('.replay-frame iframe');
    const body = frame && frame.contentDocument && frame.contentDocument.body;
    seen('frame', body && body.textContent.includes('Ceramic mug no. 0'));
    if (Object.keys(window.__bard).length < 3) requestAnimationFrame(look);
  };
  requestAnimationFrame(look);
})();
"""


def large_session_events(count: int) -> list[dict[str, Any]]:
    start = 1_767_225_600_000
    events = [bardrr.meta(start), bardrr.full_snapshot(start + 1)]
    for i in range(count - 2):
        ts = start + 2 + i * 50
        if i % 97 == 0:
            events.append(bardrr.button_click(ts))
        elif i % 11 == 0:
            events.append(bardrr.scroll(ts, i % 2000))
        else:
            events.append(bardrr.mouse_move(ts, i % 1200, i % 700))
    return events


def prepare(directory: Path, sessions: int, rows: int, funnel_sessions: int, events: int) -> None:
    url = f"chdb://{directory}"
    client = create_client(url, database="default")
    ready = client.query("SELECT count() FROM system.tables WHERE database = {d:String} AND name = 'sessions'",
                         parameters={"d": DATABASE}).result_rows[0][0]
    have = client.query("SELECT count() FROM bench.sessions").result_rows[0][0] if ready else 0
    client.close()
    if have != sessions:
        print(f"generating {funnel_sessions} funnel sessions and {rows} conversion events ...", flush=True)
        # funnel_engine.generate opens its own client on the same directory (one engine per process: fine).
        funnel_engine.generate(str(directory), rows, funnel_sessions)
        client = create_client(url, database=DATABASE)
        client.command(MORE_SESSIONS, parameters={"n": sessions - funnel_sessions})
        client.command(f"OPTIMIZE TABLE {DATABASE}.sessions FINAL")
        client.close()
    client = create_client(url, database=DATABASE)
    have_events = client.query("SELECT count() FROM events WHERE session_id = {s:UUID}",
                               parameters={"s": str(LARGE_SESSION)}).result_rows[0][0]
    if have_events != events:
        print(f"generating a session of {events} events ...", flush=True)
        client.command("ALTER TABLE events DELETE WHERE session_id = {s:UUID}", parameters={"s": str(LARGE_SESSION)})
        batch = uuid.uuid4()
        rows_ = [(LARGE_SESSION, "shop", e["timestamp"], e["type"], batch, i, json.dumps(e), e["timestamp"])
                 for i, e in enumerate(large_session_events(events))]
        client.insert("events", [[r[0], r[1], at(r[2]), r[3], r[4], r[5], r[6], at(r[7])] for r in rows_],
                      column_names=["session_id", "app_name", "ts", "type", "batch_id", "seq", "event", "received_at"])
        client.command(
            "INSERT INTO sessions (session_id, app_name, started_at, ended_at, event_count, error_count, segments, "
            "segment_event_counts, segment_error_counts, version) VALUES ({s:UUID}, 'shop', "
            "fromUnixTimestamp64Milli({a:Int64}, 'UTC'), fromUnixTimestamp64Milli({b:Int64}, 'UTC'), {n:UInt64}, 0, "
            "[], [], [], 1)",
            parameters={"s": str(LARGE_SESSION), "a": rows_[0][2], "b": rows_[-1][2], "n": events})
    client.close()


def bundle_bytes() -> tuple[int, int]:
    assets = [p for p in (BUILT_IN / "assets").iterdir() if p.suffix in (".js", ".css")]
    raw = sum(p.stat().st_size for p in assets)
    zipped = sum(len(gzip.compress(p.read_bytes(), 9)) for p in assets)
    return raw, zipped


def measure(page: Any, url: str, name: str, repeat: int) -> list[float]:
    times = []
    for run in range(repeat + 1):
        page.goto(url)
        page.wait_for_function(f"window.__bard && '{name}' in window.__bard", timeout=120_000, polling=50)
        elapsed = page.evaluate(f"window.__bard['{name}']")
        if run:  # the first is a warm-up
            times.append(elapsed)
    return times


def summary(times: list[float]) -> str:
    return f"median {statistics.median(times):7.0f} ms   (min {min(times):.0f}, max {max(times):.0f}, n={len(times)})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sessions", type=int, default=1_000_000)
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--funnel-sessions", type=int, default=200_000)
    parser.add_argument("--events", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--data", default="/tmp/bard-bench-dashboard")
    parser.add_argument("--postgres", default="postgresql://localhost:5432")
    parser.add_argument("--prepare", action="store_true", help=argparse.SUPPRESS)  # internal: generate, then exit
    args = parser.parse_args()
    directory = Path(args.data).resolve()
    if args.prepare:
        prepare(directory, args.sessions, args.rows, args.funnel_sessions, args.events)
        return
    if not (BUILT_IN / "index.html").is_file():
        sys.exit("build the dashboard first: ./bardctl dashboard")
    directory.mkdir(parents=True, exist_ok=True)
    # chDB opens a directory in one process at a time: generate in a child, then hand it to the server.
    subprocess.run([sys.executable, __file__, "--prepare", "--data", str(directory), "--sessions", str(args.sessions),
                    "--rows", str(args.rows), "--funnel-sessions", str(args.funnel_sessions),
                    "--events", str(args.events)], check=True)

    database = f"bard_bench_dash_{uuid.uuid4().hex[:8]}"
    port = free_port()
    token = uuid.uuid4().hex
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("BARD_")},
           "BARD_CLICKHOUSE_URL": f"chdb://{directory}", "BARD_CLICKHOUSE_DATABASE": DATABASE,
           "BARD_POSTGRES_URL": f"{args.postgres}/{database}", "BARD_REPLAYER_API_PORT": str(port),
           "BARD_DASHBOARD_TOKEN": token, "BARD_JWT_SECRET": "bench", "BARD_LOG_LEVEL": "WARNING",
           "BARD_DATA_DIR": str(directory / "var")}
    bard = Path(sys.executable).with_name("bard")
    subprocess.run([str(bard), "migrate"], env=env, check=True, capture_output=True)
    server = subprocess.Popen([str(bard), "replayer-api"], env=env)
    base = f"http://127.0.0.1:{port}"
    try:
        api = httpx.Client(base_url=base, headers={"Authorization": f"Bearer {token}"}, timeout=120)
        for _ in range(600):
            try:
                if api.get("/healthz").status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.2)
        definition = funnel_engine.funnel()
        funnel = api.post("/v1/funnels", json={
            "name": "5 steps over 10 M events",
            "filters": [{"type": "app_name", "names": ["shop"]},
                        {"type": "started", "start": "2026-01-01", "end": "2026-12-31"}],
            "steps": [{"kind": s.kind, "label": s.label} for s in definition.steps]}).json()
        with chromium() as browser:
            context = browser.new_context(viewport={"width": 1360, "height": 900})
            context.add_init_script(OBSERVER)
            page = context.new_page()
            page.goto(f"{base}/login")
            page.get_by_label("Dashboard token").fill(token)
            page.get_by_role("button", name="Sign in").click()
            page.wait_for_url("**/sessions")
            raw, zipped = bundle_bytes()
            print(f"chromium {browser.version}; {args.sessions:,} sessions, a {args.events:,}-event session, "
                  f"a 5-step funnel over {args.rows:,} conversion events")
            cases = [("sessions page, first page shown", f"{base}/sessions", "sessions"),
                     ("large session, first frame", f"{base}/sessions/{LARGE_SESSION}", "frame"),
                     ("funnel results, 5 steps rendered", f"{base}/funnels/{funnel['id']}", "funnel")]
            for label, url, name in cases:
                print(f"{label:<36} {summary(measure(page, url, name, args.repeat))}", flush=True)
            print(f"bundle: {raw / 1024:.0f} KB of scripts and styles, {zipped / 1024:.1f} KB gzipped")
    finally:
        server.terminate()
        server.wait(timeout=60)
        asyncio.run(postgres.drop_database(f"{args.postgres}/{database}"))


if __name__ == "__main__":
    main()
