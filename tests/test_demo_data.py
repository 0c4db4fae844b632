"""``bard demo`` against ``bard up`` (a subprocess on the real services: PostgreSQL, RabbitMQ, chDB): the sessions it
records through the agent API land and end, replay the demo shop's pages, carry the behaviour signals their events
make (held to the plain-Python reference of the definitions), and the two funnels it creates give the results the
recorded journeys imply; a re-run adds sessions and keeps the funnels; a non-local agent API and bad options are
refused, leaving nothing behind."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from bard import demo_data
from tests import signals_reference as reference
from tests.bard_process import BARD, WAIT_SECONDS, Bard
from tests.dashboard_stack import wait_for

pytestmark = [pytest.mark.postgres, pytest.mark.rabbitmq, pytest.mark.clickhouse, pytest.mark.slow]

SESSIONS = 40
SEED = 20261201


class Demo:
    def __init__(self, bard: Bard, outcome: demo_data.Outcome) -> None:
        self.bard, self.outcome = bard, outcome

    @property
    def agent_url(self) -> str:
        return f"http://127.0.0.1:{self.bard.agent_port}"

    @property
    def replayer_url(self) -> str:
        return f"http://127.0.0.1:{self.bard.replayer_port}"

    @property
    def token(self) -> str:
        return (self.bard.data_dir / "dashboard_token").read_text().strip()

    def api(self) -> httpx.Client:
        return httpx.Client(base_url=self.replayer_url, headers={"Authorization": f"Bearer {self.token}"},
                            timeout=30)


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Demo]:
    bard = Bard(tmp_path_factory.mktemp("demo_data"), BARD_ENDER_INTERVAL_SECONDS="0.5",
                BARD_ENDER_GRACE_SECONDS="0.5", BARD_LOG_LEVEL="WARNING", BARD_DEMO_PORT="0")
    try:
        bard.start()
        wait_for(lambda: httpx.get(f"http://127.0.0.1:{bard.agent_port}/healthz").status_code == 200,
                 "bard up answering", bard)
        token = (bard.data_dir / "dashboard_token").read_text().strip()
        outcome = asyncio.run(demo_data.run(f"http://127.0.0.1:{bard.agent_port}",
                                            f"http://127.0.0.1:{bard.replayer_port}", token, sessions=SESSIONS,
                                            seed=SEED, wait_seconds=WAIT_SECONDS))
        yield Demo(bard, outcome)
    finally:
        bard.kill()
        asyncio.run(bard.drop_services())


def test_the_visits_are_repeatable_varied_and_sent_as_the_agent_sends() -> None:
    now = 1_764_600_000_000
    first, again = demo_data.visits(30, 5, now), demo_data.visits(30, 5, now)
    assert [v.events for v in first] == [v.events for v in again]
    assert len({v.session_id for v in first + again}) == 60  # new ids every time: a re-run adds sessions
    assert [v.events for v in demo_data.visits(30, 6, now)] != [v.events for v in first]
    assert len({v.app.name for v in first}) == 3 and len({v.client.user_agent for v in first}) >= 4
    for visit in first:
        assert visit.events[0]["type"] == 4 and visit.events[1]["type"] == 2
        assert all(e["timestamp"] < now for e in visit.events)
        assert [e["timestamp"] for e in visit.events] == sorted(e["timestamp"] for e in visit.events)
        batches = demo_data.batches(visit.events)
        assert all(len(b) == 10 for b in batches[:-1]) and 1 <= len(batches[-1]) <= 10
        for event in visit.events:
            if event["type"] == 3 and event["data"]["source"] == 2 and event["data"]["type"] == 2:
                node = _node(visit, event)
                # The agent marks buttons with their text; links (and anything else) it leaves unmarked.
                if node["tagName"] == "button":
                    assert event["conversionData"] == {"eventType": "click", "textContent": _text(node)}
                else:
                    assert "conversionData" not in event
    durations = [v.events[-1]["timestamp"] - v.events[0]["timestamp"] for v in first]
    assert min(durations) < 30_000 < 120_000 < max(durations)
    gaps = [b["timestamp"] - a["timestamp"] for v in first for a, b in zip(v.events, v.events[1:], strict=False)]
    assert max(gaps) > 8_000  # idle gaps
    days = {(now - v.started_at) // demo_data.DAY_MS for v in first}
    assert len(days) >= 5


def _snapshot_before(visit: demo_data.Visit, event: dict[str, Any]) -> dict[str, Any]:
    return [e for e in visit.events if e["type"] == 2 and e["timestamp"] <= event["timestamp"]][-1]["data"]["node"]


def _find(node: dict[str, Any], node_id: int) -> dict[str, Any] | None:
    if node.get("id") == node_id:
        return node
    for child in node.get("childNodes", []):
        found = _find(child, node_id)
        if found is not None:
            return found
    return None


def _node(visit: demo_data.Visit, event: dict[str, Any]) -> dict[str, Any]:
    found = _find(_snapshot_before(visit, event), event["data"]["id"])
    assert found is not None, event
    return found


def _text(node: dict[str, Any]) -> str:
    if node["type"] == 3:
        return str(node["textContent"])
    return "".join(_text(child) for child in node.get("childNodes", []))


def test_the_sessions_land_end_and_replay_the_shop(demo: Demo) -> None:
    outcome = demo.outcome
    assert outcome.ended == SESSIONS and len(outcome.sessions) == SESSIONS
    assert sorted(outcome.funnels_created) == sorted(f["name"] for f in demo_data.FUNNELS)
    with demo.api() as api:
        listed = api.get("/v1/sessions", params={"limit": 100}).json()["sessions"]
        assert {s["session_id"] for s in listed} == {v.session_id for v in outcome.sessions}
        by_id = {s["session_id"]: s for s in listed}
        for visit in outcome.sessions:
            session = by_id[visit.session_id]
            assert session["app_name"] == visit.app.name
            assert session["event_count"] == len(visit.events)
            assert session["duration_ms"] == visit.events[-1]["timestamp"] - visit.events[0]["timestamp"]
            assert session["error_count"] == sum(e["type"] == 6 for e in visit.events)
            assert session["page_count"] == sum(e["type"] == 4 for e in visit.events)
            assert session["viewport"] == {"width": visit.client.width, "height": visit.client.height}
            assert session["browser"], session  # read from the User-Agent the visit sent
        assert {s["device_type"] for s in listed} >= {"desktop", "mobile"}
        assert len({s["app_name"] for s in listed}) == 3
        visit = max(outcome.sessions, key=lambda v: len(v.events))
        events = api.get(f"/v1/sessions/{visit.session_id}/events").json()
        # Events of one millisecond in two batches (a mouseup and its click) come back in either order.
        def in_order(found: list[dict[str, Any]]) -> list[str]:
            return sorted(json.dumps(e, sort_keys=True) for e in found)
        assert in_order(events) == in_order(visit.events)
        assert [e["timestamp"] for e in events] == [e["timestamp"] for e in visit.events]
        snapshot = json.dumps(events[1]["data"]["node"])
        assert visit.app.brand in snapshot and "Add to cart" in snapshot and ".card{" in snapshot.replace(" ", "")
        # Link clicks, which the agent leaves unmarked, are named by Bard from the snapshot.
        labels = {(m["kind"], m["label"]) for v in outcome.sessions
                  for m in api.get(f"/v1/sessions/{v.session_id}/markers").json()["markers"]}
    assert {("click", "Cart"), ("click", "Add to cart"), ("custom", demo_data.CUSTOM_EVENT),
            ("error_click", "Save to wishlist"), ("rage_click", "Compare"), ("dead_click", "Compare")} <= labels


def test_the_signals_on_each_session_are_those_its_events_make(demo: Demo) -> None:
    totals = [0, 0, 0]
    with demo.api() as api:
        for visit in demo.outcome.sessions:
            batch = uuid.uuid4()
            recorded = [reference.RecordedEvent(batch, seq, event) for seq, event in enumerate(visit.events)]
            expected = reference.counts(reference.signals(recorded))
            session = api.get(f"/v1/sessions/{visit.session_id}").json()
            found = (session["rage_click_count"], session["dead_click_count"], session["error_click_count"])
            assert found == expected, visit.session_id
            totals = [a + b for a, b in zip(totals, found, strict=True)]
    assert all(n > 0 for n in totals), totals  # some rage, dead and error clicks


def _ordered(visit: demo_data.Visit, steps: list[tuple[str, str]]) -> int:
    """How many steps of the funnel a visit reached, each after the one before (labels as Bard gives them)."""
    reached = 0
    for event in visit.events:
        if reached == len(steps):
            break
        kind, label = steps[reached]
        if kind == "custom" and event["type"] == 5 and event["data"]["tag"] == label:
            reached += 1
        elif kind == "click" and event["type"] == 3 and event["data"]["source"] == 2 and event["data"]["type"] == 2:
            node = _node(visit, event)
            if node["tagName"] in ("a", "button") and _text(node).strip() == label:
                reached += 1
    return reached


def test_the_funnels_give_the_results_the_journeys_imply(demo: Demo) -> None:
    with demo.api() as api:
        funnels = {f["name"]: f for f in api.get("/v1/funnels").json()["funnels"]}
        for definition in demo_data.FUNNELS:
            funnel = funnels[definition["name"]]
            results = api.get(f"/v1/funnels/{funnel['id']}/results", params={"ids_limit": 500}).json()
            apps = {n for f in definition.get("filters", []) for n in f["names"]}
            visits = [v for v in demo.outcome.sessions if not apps or v.app.name in apps]
            steps = [(s["kind"], s["label"]) for s in definition["steps"]]
            reached = {v.session_id: _ordered(v, steps) for v in visits}
            assert results["entered"] == len(visits)
            for number, step in enumerate(results["steps"], start=1):
                assert set(step["completed_ids"]) == {s for s, n in reached.items() if n >= number}, number
            last = results["steps"][-1]
            first = results["steps"][0]
            assert 0 < last["completed"] < first["completed"], results["steps"]  # some completed, some dropped


def run_demo(*args: str, env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(BARD), "demo", *args], env=env, cwd=cwd, capture_output=True, text=True,
                          timeout=WAIT_SECONDS * 2)


def test_a_re_run_adds_sessions_and_keeps_the_funnels(demo: Demo, tmp_path: Path) -> None:
    done = run_demo("--sessions", "5", "--seed", "1", "--wait", str(WAIT_SECONDS), env=demo.bard.env, cwd=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Recorded 5 sessions" in done.stdout and "seed 1" in done.stdout
    assert "All of them have ended" in done.stdout
    for funnel in demo_data.FUNNELS:
        assert f"Kept the funnel {funnel['name']!r}" in done.stdout
    assert "recording sessions" in done.stderr  # the progress bar
    with demo.api() as api:
        assert len(api.get("/v1/sessions", params={"limit": 100}).json()["sessions"]) == SESSIONS + 5
        names = [f["name"] for f in api.get("/v1/funnels").json()["funnels"]]
    assert sorted(names) == sorted(f["name"] for f in demo_data.FUNNELS)


@pytest.mark.parametrize(("args", "message"), [
    (["--agent-url", "http://bard.example.com:3001"], "--agent-url: the agent API http://bard.example.com:3001 is "
                                                      "not on this machine"),
    (["--agent-url", "http://10.1.2.3:3001"], "pass --allow-remote"),
    (["--replayer-url", "https://bard.example.com"], "--replayer-url: the replayer API"),
    (["--agent-url", "ftp://127.0.0.1"], "must be an http:// or https:// URL"),
    (["--sessions", "0"], "Invalid value for '--sessions'"),
    (["--sessions", "many"], "Invalid value for '--sessions'"),
    (["--seed", "-1"], "Invalid value for '--seed'"),
])
def test_bad_options_and_a_remote_bard_are_refused_leaving_nothing(demo: Demo, tmp_path: Path, args: list[str],
                                                                   message: str) -> None:
    with demo.api() as api:
        before = len(api.get("/v1/sessions", params={"limit": 100}).json()["sessions"])
    env = {k: v for k, v in demo.bard.env.items() if k != "BARD_DATA_DIR"}  # data dir: the empty cwd
    done = run_demo(*args, env=env, cwd=tmp_path)
    assert done.returncode != 0
    assert message in " ".join(done.stderr.split()), done.stderr
    assert "Traceback" not in done.stderr
    assert os.listdir(tmp_path) == []
    with demo.api() as api:
        assert len(api.get("/v1/sessions", params={"limit": 100}).json()["sessions"]) == before


def test_allow_remote_lets_a_remote_agent_api_through(tmp_path: Path, demo: Demo) -> None:
    done = run_demo("--allow-remote", "--agent-url", "http://bard.invalid:3001", "--sessions", "1",
                    env=demo.bard.env, cwd=tmp_path)
    assert done.returncode == 1, done.stderr
    assert "the agent API at http://bard.invalid:3001 does not answer" in " ".join(done.stderr.split())
    assert "not on this machine" not in done.stderr


def test_without_a_running_bard_it_says_so(tmp_path: Path, demo: Demo) -> None:
    env = {**demo.bard.env, "BARD_AGENT_API_PORT": "1", "BARD_REPLAYER_API_PORT": "1"}
    done = run_demo("--sessions", "1", env=env, cwd=tmp_path)
    assert done.returncode == 1 and "does not answer" in done.stderr and "is `bard up` running?" in done.stderr, \
        done.stderr
    no_token = {k: v for k, v in demo.bard.env.items() if k != "BARD_DATA_DIR"}
    done = run_demo("--sessions", "1", env=no_token, cwd=tmp_path)
    assert done.returncode == 1 and "no dashboard token" in done.stderr, done.stderr
    assert os.listdir(tmp_path) == []
