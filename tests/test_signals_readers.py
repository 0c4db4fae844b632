"""The replayer API's readers of conversion kinds with behaviour signals stored (:mod:`session_ender.signals`):
label options, markers and funnels read ``conversion_events`` by kind, and the new kinds must not disturb them."""

from __future__ import annotations

import httpx
import pytest
from clickhouse_connect.driver.client import Client

from bard.settings import Settings
from session_ender.signals import SIGNAL_KINDS, SignalCounts, store_signal_rows
from tests import bardrr_events as bardrr
from tests.replayer_support import EndedSession, insert_sessions
from tests.test_signals import APP, Session, T, button, console

pytestmark = [pytest.mark.postgres, pytest.mark.clickhouse]


async def test_readers_of_conversion_kinds_are_unaffected(api: httpx.AsyncClient, ch: Client,
                                                          settings: Settings) -> None:
    """With signal rows stored, the label options of clicks show each button once, the markers of the session
    are its clicks and errors as before (and its signals, if shown, once each), and a funnel over the button
    counts the session once."""
    database = settings.resolved_clickhouse_database
    session = Session(ch, database)
    session.send([button(T), button(T + 100), button(T + 200), console(T + 300)])
    insert_sessions(ch, [EndedSession(session.id, APP, T, 1_000, 1, 4)])
    rows, counts = session.computed()
    assert counts == SignalCounts(1, 3, 3)
    store_signal_rows(ch, database, [session.id], rows)

    labels = await api.get("/v1/conversion-labels", params={"kind": "click"})
    assert labels.status_code == 200 and labels.json()["labels"] == [bardrr.BUTTON_LABEL]
    # Whether the API offers the signal kinds is the API's choice; if it does, they read as their clicks' labels.
    signal_labels = await api.get("/v1/conversion-labels", params={"kind": "rage_click"})
    if signal_labels.status_code == 200:
        assert signal_labels.json()["labels"] == [bardrr.BUTTON_LABEL]
    else:
        assert signal_labels.status_code == 400, signal_labels.text
    markers = await api.get(f"/v1/sessions/{session.id}/markers")
    assert markers.status_code == 200, markers.text
    shown = markers.json()["markers"]
    assert [(m["kind"], m["label"]) for m in shown if m["kind"] in ("click", "custom", "error")] == [
        ("click", bardrr.BUTTON_LABEL)] * 3 + [("error", bardrr.ERROR_MESSAGE)]
    # Markers may show the signals too (the API's choice): then each once, at its click, with its label.
    signal_markers = sorted((m["kind"], m["at_ms"], m["label"]) for m in shown if m["kind"] in SIGNAL_KINDS)
    assert signal_markers in ([], sorted((r.kind, r.ts, r.label) for r in rows))

    created = await api.post("/v1/funnels", json={
        "name": "buttons", "steps": [{"kind": "click", "label": bardrr.BUTTON_LABEL}]})
    assert created.status_code in (200, 201), created.text
    results = await api.get(f"/v1/funnels/{created.json()['id']}/results",
                            params={"start": "2026-01-01", "end": "2026-01-02"})
    assert results.status_code == 200, results.text
    body = results.json()
    assert (body["entered"], body["steps"][0]["completed"]) == (1, 1)
