"""The agent API's pieces without services: validation, tagging, the queue message, tokens, the rate limit."""

from __future__ import annotations

import json
import time
import uuid

import jwt
import pytest

from agent_api.batches import Batch, parse_app_name, parse_batch
from agent_api.errors import InvalidRequest, Unauthorized
from agent_api.storage import pack_messages
from agent_api.tagging import MAX_LABEL_CHARS, collapse_whitespace
from agent_api.tokens import TokenAuthority, signing_key
from bard.rate_limit import TokenBucketLimiter, retry_after_seconds
from clickhouse.schema import INGEST_NAMES
from tests import bardrr_events as agent

T0 = 1_767_225_600_000  # 2026-01-01T00:00:00Z


def parse(body: object, *, default: int = 60_000, maximum: int = 3_600_000) -> Batch:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    return parse_batch(raw, "shop", max_idle_default_ms=default, max_idle_max_ms=maximum)


def rows_of(batch: Batch) -> list[dict]:
    message = batch.ingest_rows(uuid.UUID(int=7), 1_767_225_601_234)
    assert message.endswith(b"\n")
    return [json.loads(line) for line in message.split(b"\n")[:-1]]


def test_first_batch_is_tagged_like_the_issue_says() -> None:
    events = agent.first_batch(T0)
    batch = parse(agent.record_body(events))
    rows = rows_of(batch)
    assert [(r["kind"], r["label"], r["is_error"]) for r in rows] == [
        ("page", "/products/42", 0),  # meta: a page, by its URL's path
        ("", "", 0),  # full snapshot
        ("", "", 0),
        ("", "", 0),
        ("click", agent.BUTTON_LABEL, 0),  # the button, tagged by the agent
        ("", "", 0),  # scroll
        ("click", agent.LINK_LABEL, 0),  # the link: the agent does not mark it, Bard names it from the snapshot
        ("custom", agent.CUSTOM_TAG, 0),
        ("", "", 1),  # console error
        ("", "", 0),
    ]
    assert batch.first_event_at == T0 and batch.last_event_at == T0 + 2000
    assert batch.error_count == 1 and batch.max_idle_ms == 60_000


def test_rows_have_exactly_the_ingest_columns_and_the_original_event() -> None:
    events = agent.first_batch(T0)
    session_id = str(uuid.uuid4())
    rows = rows_of(parse(agent.record_body(events, session_id)))
    for seq, (row, event) in enumerate(zip(rows, events, strict=True)):
        assert sorted(row) == sorted(INGEST_NAMES.split(", "))
        assert row["session_id"] == session_id and row["app_name"] == "shop"
        assert row["batch_id"] == str(uuid.UUID(int=7)) and row["received_at"] == 1_767_225_601_234
        assert (row["seq"], row["ts"], row["type"]) == (seq, event["timestamp"], event["type"])
        assert row["event"] == event  # embedded as an object, untouched


def test_event_bytes_are_kept_verbatim() -> None:
    event = b'{"timestamp":1767225600000,"type":3,"data":{"source":1,"x":1.50,"s":"\\u00e9\\n"}}'
    body = b'{"sessionId":"%s","events":[%s]}' % (str(uuid.uuid4()).encode(), event)
    message = parse(body).ingest_rows(uuid.uuid4(), 1)
    assert message.count(b"\n") == 1
    assert message.endswith(b',"event":' + event + b"}\n")


def test_pretty_printed_body_still_gives_one_row_per_line() -> None:
    body = json.dumps(agent.record_body(agent.later_batch(T0, 3)), indent=2).encode()
    message = parse(body).ingest_rows(uuid.uuid4(), 1)
    lines = message.split(b"\n")[:-1]
    assert len(lines) == 3
    assert [json.loads(line)["event"] for line in lines] == json.loads(body)["events"]


def test_click_labels_collapse_whitespace_and_are_capped() -> None:
    assert collapse_whitespace("\n  Buy \t now\u00a0 ") == "Buy now"
    long_text = "word " * 200
    batch = parse(agent.record_body([agent.button_click(T0, long_text)]))
    assert batch.tags[0].label == collapse_whitespace(long_text)
    assert len(batch.tags[0].label) == MAX_LABEL_CHARS


@pytest.mark.parametrize(
    ("event", "kind", "label", "is_error"),
    [
        # Alone in its batch, a link click is left to the snapshot kept in PostgreSQL (tests/test_click_targets.py).
        pytest.param(agent.link_click(T0), "", "", False, id="unmarked-click-alone"),
        pytest.param({**agent.link_click(T0), "conversionData": {"eventType": "custom"}}, "", "", False,
                     id="click-marked-custom"),
        pytest.param({**agent.link_click(T0), "conversionData": {"eventType": "click"}}, "click", "", False,
                     id="click-without-text"),
        pytest.param({**agent.mouse_move(T0), "conversionData": {"eventType": "click", "textContent": "x"}},
                     "", "", False, id="mouse-move-claims-click"),
        pytest.param({**agent.meta(T0), "conversionData": {"eventType": "click", "textContent": "x"}},
                     "page", "/products/42", False, id="meta-claims-click"),
        pytest.param(agent.meta(T0, "https://shop.example.com/a%20b/c?q=1#top"), "page", "/a%20b/c", False,
                     id="meta-path-without-query-or-fragment"),
        pytest.param(agent.meta(T0, "https://shop.example.com"), "page", "/", False, id="meta-root"),
        pytest.param(agent.meta(T0, "about:blank"), "", "", False, id="meta-without-a-path"),
        pytest.param(agent.meta(T0, "/relative"), "", "", False, id="meta-relative-url"),
        pytest.param({"type": 4, "timestamp": T0, "data": {"href": 42}}, "", "", False, id="meta-href-not-text"),
        pytest.param({**agent.mouse_move(T0), "conversionData": "garbage"}, "", "", False,
                     id="conversion-data-ignored-off-clicks"),
        pytest.param({**agent.custom_event(T0), "conversionData": {"eventType": "click", "textContent": "no"}},
                     "custom", agent.CUSTOM_TAG, False, id="custom-whatever-conversion-data"),
        pytest.param({k: v for k, v in agent.custom_event(T0, "signup").items() if k != "conversionData"},
                     "custom", "signup", False, id="custom-without-conversion-data"),
        pytest.param(agent.console_error(T0, level="warn"), "", "", False, id="console-warn"),
        pytest.param({"type": 6, "timestamp": T0, "data": {"plugin": "other@1", "payload": {"level": "error"}}},
                     "", "", False, id="other-plugin"),
        pytest.param({"type": 3, "timestamp": T0, "data": {"source": 2, "type": "2"},
                      "conversionData": {"eventType": "click", "textContent": "x"}}, "", "", False,
                     id="click-type-as-string"),
    ],
)
def test_tagging_rules(event: dict, kind: str, label: str, is_error: bool) -> None:
    tag = parse(agent.record_body([event])).tags[0]
    assert (tag.kind, tag.label, tag.is_error) == (kind, label, is_error)


@pytest.mark.parametrize(
    ("value", "expected"),
    [(None, 60_000), (1, 1), (90_000, 90_000), (10**30, 3_600_000)],
    ids=["absent-default", "one", "within", "clamped"],
)
def test_max_idle_time(value: int | None, expected: int) -> None:
    body = agent.record_body(agent.later_batch(T0, 1))
    if value is None:
        del body["MAX_IDLE_TIME"]
    else:
        body["MAX_IDLE_TIME"] = value
    assert parse(body).max_idle_ms == expected


@pytest.mark.parametrize(
    ("error", "within", "field"),
    [
        ("Invalid UUID - at `$.sessionId`", "", "sessionId"),
        ("Object missing required field `events`", "", "events"),
        ("Object missing required field `tag` - at `$.data`", "events[2]", "events[2].data.tag"),
        ("Expected `object`, got `int`", "events[4]", "events[4]"),
        ("Expected `object`, got `array`", "", "body"),
    ],
)
def test_validation_errors_name_the_field(error: str, within: str, field: str) -> None:
    assert InvalidRequest.from_validation(ValueError(error), within).field == field


@pytest.mark.parametrize(
    ("value", "accepted"),
    [(None, False), ("", False), ("   ", False), ("a" * 200, True), ("a" * 201, False), ("shop", True)],
    ids=["missing", "empty", "blank", "200-chars", "201-chars", "plain"],
)
def test_app_name(value: str | None, accepted: bool) -> None:
    if accepted:
        assert parse_app_name(value) == value
    else:
        with pytest.raises(InvalidRequest) as caught:
            parse_app_name(value)
        assert caught.value.field == "appName"


AUTHORITY = TokenAuthority("s3cret", ttl_seconds=3600, issuer="bard", audience="bardrr")
KEY = signing_key("s3cret")


def test_the_reference_claims_verify() -> None:
    # The table below changes one thing each from these.
    assert AUTHORITY.verify_header("bearer " + jwt.encode(_claims(), KEY, algorithm="HS256"))


def test_a_token_issued_verifies_with_its_claims() -> None:
    claims = AUTHORITY.verify_header("bearer " + AUTHORITY.issue(now=time.time()))
    assert claims["iss"] == "bard" and claims["aud"] == "bardrr"
    assert claims["exp"] - claims["iat"] == 3600
    assert AUTHORITY.verify_header("BEARER " + AUTHORITY.issue())  # the scheme in any case


def _claims(**changes: object) -> dict[str, object]:
    now = int(time.time())
    return {"iss": "bard", "aud": "bardrr", "iat": now, "exp": now + 60, **changes}


BAD_TOKENS = {
    "missing": None,
    "empty": "",
    "no-scheme": AUTHORITY.issue(),
    "basic-scheme": "Basic " + AUTHORITY.issue(),
    "bearer-undefined": "bearer undefined",
    "malformed": "bearer not.a.jwt",
    "expired": "bearer " + AUTHORITY.issue(now=time.time() - 7200),
    "forged": "bearer " + jwt.encode(_claims(), signing_key("another-secret"), algorithm="HS256"),
    "raw-secret": "bearer " + jwt.encode(_claims(), "s3cret" * 6, algorithm="HS256"),
    "alg-none": "bearer " + jwt.encode(_claims(), "", algorithm="none"),
    "alg-hs512": "bearer " + jwt.encode(_claims(), KEY * 2, algorithm="HS512"),
    "wrong-audience": "bearer " + jwt.encode(_claims(aud="someone-else"), KEY, algorithm="HS256"),
    "wrong-issuer": "bearer " + jwt.encode(_claims(iss="mallory"), KEY, algorithm="HS256"),
    "no-expiry": "bearer " + jwt.encode({"iss": "bard", "aud": "bardrr"}, KEY, algorithm="HS256"),
    "tampered": "bearer " + jwt.encode(_claims(), KEY, algorithm="HS256")[:-2] + "xx",
}


@pytest.mark.parametrize("header", BAD_TOKENS.values(), ids=BAD_TOKENS.keys())
def test_bad_tokens_are_refused(header: str | None) -> None:
    with pytest.raises(Unauthorized):
        AUTHORITY.verify_header(header)


def test_a_remembered_token_still_expires() -> None:
    clock = FakeClock(time.time())
    authority = TokenAuthority("s3cret", ttl_seconds=60, issuer="bard", audience="bardrr", clock=clock)
    header = "bearer " + authority.issue()
    first = authority.verify_header(header)
    assert authority.verify_header(header) is first  # remembered, not decoded again
    clock.now += 61
    with pytest.raises(Unauthorized, match="expired"):
        authority.verify_header(header)
    with pytest.raises(Unauthorized, match="expired"):
        authority.verify_header(header.replace("bearer", "Bearer"))  # forgotten, then refused by pyjwt


class FakeClock:
    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.mark.parametrize(
    ("sizes", "max_bytes", "messages"),
    [
        pytest.param([], 100, [], id="no-batch"),
        pytest.param([3, 3, 3], 100, [[0, 1, 2]], id="all-in-one"),
        pytest.param([3, 3, 3], 6, [[0, 1], [2]], id="cut-at-the-limit"),
        pytest.param([3, 10, 3], 5, [[0], [1], [2]], id="a-larger-batch-goes-alone"),
        pytest.param([3, 3], 1, [[0], [1]], id="one-byte-one-batch-each"),
    ],
)
def test_a_group_is_packed_into_messages_in_order(sizes: list[int], max_bytes: int, messages: list[list[int]]) -> None:
    assert [list(run) for run in pack_messages(sizes, max_bytes)] == messages


def test_token_bucket_allows_a_burst_then_refills_at_the_rate() -> None:
    clock = FakeClock()
    limiter = TokenBucketLimiter(60, burst=3, clock=clock)
    assert [limiter.try_acquire("10.0.0.1") for _ in range(3)] == [0.0, 0.0, 0.0]
    wait = limiter.try_acquire("10.0.0.1")
    assert wait == pytest.approx(1.0) and retry_after_seconds(wait) == 1
    assert limiter.try_acquire("10.0.0.2") == 0.0  # per address
    clock.now += 1.0
    assert limiter.try_acquire("10.0.0.1") == 0.0
    assert limiter.try_acquire("10.0.0.1") > 0.0
    clock.now += 3600
    assert [limiter.try_acquire("10.0.0.1") for _ in range(4)][:3] == [0.0, 0.0, 0.0]  # capped at the burst


def test_token_bucket_forgets_refilled_addresses_when_full() -> None:
    clock = FakeClock()
    limiter = TokenBucketLimiter(60, burst=1, max_addresses=2, clock=clock)
    limiter.try_acquire("a")
    limiter.try_acquire("b")
    clock.now += 10
    assert limiter.try_acquire("c") == 0.0
    assert limiter.try_acquire("c") > 0.0
    assert limiter.try_acquire("a") == 0.0  # forgotten, so a full bucket again


@pytest.mark.clickhouse
def test_clickhouse_reads_the_message_into_events_and_conversion_events(ch) -> None:
    """The contract with the warehouse side: the bytes the agent API publishes, inserted as JSONEachRow into
    ``ingest``, land in ``events`` (the event's JSON text intact) and, for tagged rows, ``conversion_events``."""
    events = agent.first_batch(T0)
    session_id = str(uuid.uuid4())
    message = parse(agent.record_body(events, session_id)).ingest_rows(uuid.uuid4(), T0 + 5000)
    ch.raw_insert("ingest", fmt="JSONEachRow", insert_block=message,
                  settings={"input_format_json_read_objects_as_strings": 1})
    stored = ch.query("SELECT seq, type, toUnixTimestamp64Milli(ts), event FROM events FINAL "
                      "WHERE session_id = {s:UUID} ORDER BY seq", parameters={"s": session_id}).result_rows
    assert [(seq, type_, ts) for seq, type_, ts, _ in stored] == [
        (i, e["type"], e["timestamp"]) for i, e in enumerate(events)
    ]
    assert [json.loads(text) for *_, text in stored] == events
    tagged = ch.query("SELECT kind, label, toUnixTimestamp64Milli(ts) FROM conversion_events FINAL "
                      "WHERE session_id = {s:UUID} ORDER BY ts", parameters={"s": session_id}).result_rows
    assert tagged == [("page", "/products/42", T0), ("click", agent.BUTTON_LABEL, T0 + 400),
                      ("click", agent.LINK_LABEL, T0 + 1500), ("custom", agent.CUSTOM_TAG, T0 + 1600)]


@pytest.mark.clickhouse
def test_typing_lands_as_input_conversion_events_labelled_by_the_page_never_by_the_text(ch) -> None:
    """A signup page's fields typed in: one conversion event per run of typing, labelled from the DOM; what was
    typed (also in the snapshot's value attributes) is in the stored events, as replay needs, and in no label."""
    session_id = str(uuid.uuid4())
    events = [agent.meta(T0, "https://shop.example.com/signup"), agent.signup_snapshot(T0 + 1),
              *agent.typing(T0 + 100, agent.EMAIL_ID), *agent.typing(T0 + 5000, agent.PASSWORD_ID, "hunter22"),
              *agent.typing(T0 + 7000, agent.NOTES_ID), agent.custom_event(T0 + 9000, "signed-up")]
    message = parse(agent.record_body(events, session_id)).ingest_rows(uuid.uuid4(), T0 + 10_000)
    ch.raw_insert("ingest", fmt="JSONEachRow", insert_block=message,
                  settings={"input_format_json_read_objects_as_strings": 1})
    tagged = ch.query("SELECT toString(kind), label, toUnixTimestamp64Milli(ts) FROM conversion_events FINAL "
                      "WHERE session_id = {s:UUID} ORDER BY ts", parameters={"s": session_id}).result_rows
    assert tagged == [("page", "/signup", T0), ("input", agent.EMAIL_LABEL, T0 + 100),
                      ("input", agent.PASSWORD_LABEL, T0 + 5000), ("input", agent.NOTES_LABEL, T0 + 7000),
                      ("custom", "signed-up", T0 + 9000)]
    typed = {agent.TYPED_SECRET[:n] for n in range(3, len(agent.TYPED_SECRET) + 1)} | {"hunter22"}
    assert ch.query("SELECT count() FROM conversion_events WHERE hasAny(extractAll(label, '[^ ]+'), {t:Array(String)})"
                    " OR positionCaseInsensitive(label, 'secret') > 0 OR positionCaseInsensitive(label, 'hunter') > 0",
                    parameters={"t": sorted(typed)}).result_rows == [(0,)]
    assert ch.query("SELECT countIf(position(event, {t:String}) > 0) FROM events WHERE session_id = {s:UUID}",
                    parameters={"s": session_id, "t": agent.TYPED_SECRET}).result_rows[0][0] > 0
