"""``/metrics`` in Prometheus text format on both APIs and on the ports of ``bard consumer`` and
``bard session-ender``, on real services.

In process (no ``PROMETHEUS_MULTIPROC_DIR``) the metrics live in memory and are shared by every app a test
builds, so the tests compare a scrape after with a scrape before. The multiprocess mode is tested where it
lives: ``bard up`` in a subprocess, with two agent API workers writing to one directory.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from datetime import timedelta
from pathlib import Path

import aio_pika
import asyncpg
import httpx
import pytest
from clickhouse_connect.driver.client import Client
from prometheus_client import REGISTRY
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.parser import text_string_to_metric_families

from agent_api.app import create_app as create_agent_app
from bard.metrics import UNMATCHED
from bard.settings import Settings
from clickhouse import consumer as consumer_module
from clickhouse.consumer import Consumer
from session_ender.ender import MoveStep
from tests import bardrr_events as bardrr
from tests.bard_process import BARD, WAIT_SECONDS, Bard
from tests.conftest import AMQP_URL
from tests.ingest_support import eventually, ingest_rows, message_body, publish
from tests.replayer_support import open_api
from tests.test_agent_api import running, token_for
from tests.test_session_ender import InjectedCrash, expired_clock, make_ender, server_now, upsert

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]

AGENT_API_NAMES = {
    "bard_http_request_duration_seconds", "bard_agent_api_batches_accepted", "bard_agent_api_events_accepted",
    "bard_agent_api_batches_refused", "bard_agent_api_groups_stored", "bard_agent_api_publish_confirms",
    "bard_agent_api_publish_confirm_seconds",
}
CONSUMER_NAMES = {
    "bard_consumer_rows_inserted", "bard_consumer_batches", "bard_consumer_insert_failures",
    "bard_consumer_messages", "bard_consumer_queue_messages_ready", "bard_consumer_lag_seconds",
}
SESSION_ENDER_NAMES = {
    "bard_session_ender_sessions_ended", "bard_session_ender_sessions_kept",
    "bard_session_ender_run_duration_seconds", "bard_session_ender_failures",
    "bard_session_ender_last_success_timestamp_seconds",
}
PROMETHEUS_TEXT = "text/plain; version=0.0.4; charset=utf-8"


def parse(text: str) -> tuple[set[str], Samples]:
    """The family names (counters without ``_total``) and every sample, by name and labels."""
    names: set[str] = set()
    samples: Samples = {}
    for family in text_string_to_metric_families(text):
        names.add(family.name)
        for sample in family.samples:
            samples[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return names, samples


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


def label_values(samples: Samples, name: str, label: str, **only: str) -> set[str]:
    """The values ``label`` takes in ``name``'s samples, of those whose labels include ``only``."""
    return {dict(labels)[label] for (sample, labels), _ in samples.items()
            if sample == name and label in dict(labels) and only.items() <= dict(labels).items()}


def requests_counted(samples: Samples, api: str, route: str, method: str, status: str) -> float:
    return value(samples, "bard_http_request_duration_seconds_count", api=api, route=route, method=method,
                 status=status)


def in_memory(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


@pytest.fixture(autouse=True)
def _single_process() -> None:
    assert not os.environ.get("PROMETHEUS_MULTIPROC_DIR"), "the in-process tests read the default registry"


# --- The agent API, in process ---------------------------------------------------------------------------------


@pytest.fixture
async def agent(settings: Settings, pg_pool: asyncpg.Pool,
                amqp: aio_pika.abc.AbstractRobustConnection) -> AsyncIterator[httpx.AsyncClient]:
    async with running(create_agent_app(settings)) as client:
        yield client


async def scrape(client: httpx.AsyncClient) -> tuple[set[str], Samples]:
    response = await client.get("/metrics")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == PROMETHEUS_TEXT
    return parse(response.text)


@pytest.mark.postgres
@pytest.mark.rabbitmq
async def test_the_agent_api_answers_prometheus_text_with_its_metrics(agent: httpx.AsyncClient) -> None:
    await agent.get("/healthz")
    names, samples = await scrape(agent)
    assert AGENT_API_NAMES <= names
    assert requests_counted(samples, "agent", "/healthz", "GET", "200") >= 1
    # Present before anything happened, so that a first refusal shows as an increase.
    assert ("bard_agent_api_batches_refused_total", frozenset({("dependency", "RabbitMQ")})) in samples


@pytest.mark.postgres
@pytest.mark.rabbitmq
async def test_a_recorded_batch_moves_the_accepted_counters_by_its_size(agent: httpx.AsyncClient) -> None:
    token = await token_for(agent)
    _, before = await scrape(agent)
    session = str(uuid.uuid4())
    start = bardrr.now_ms()
    for events in (bardrr.first_batch(start), bardrr.later_batch(start + 3000, 7)):
        answer = await agent.post("/record", json=bardrr.record_body(events, session),
                                  headers=bardrr.record_headers(token))
        assert answer.status_code == 200, answer.text
    refused = await agent.post("/record", json=bardrr.record_body(bardrr.first_batch(start), session),
                               headers=bardrr.record_headers("not-a-token"))
    assert refused.status_code == 401
    _, after = await scrape(agent)

    def grew(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    assert grew("bard_agent_api_batches_accepted_total") == 2  # the 401 is not among them
    assert grew("bard_agent_api_events_accepted_total") == 17
    assert 1 <= grew("bard_agent_api_groups_stored_total") <= 2
    assert grew("bard_agent_api_publish_confirms_total", outcome="ack") == grew("bard_agent_api_groups_stored_total")
    assert grew("bard_agent_api_publish_confirm_seconds_count") == grew("bard_agent_api_groups_stored_total")
    assert grew("bard_agent_api_batches_refused_total", dependency="RabbitMQ") == 0
    assert requests_counted(after, "agent", "/record", "POST", "200") - \
        requests_counted(before, "agent", "/record", "POST", "200") == 2
    assert requests_counted(after, "agent", "/record", "POST", "401") - \
        requests_counted(before, "agent", "/record", "POST", "401") == 1


@pytest.mark.postgres
@pytest.mark.rabbitmq
async def test_unknown_paths_and_methods_add_no_label_value(agent: httpx.AsyncClient) -> None:
    await agent.get("/nope")
    _, before = await scrape(agent)
    for _ in range(3):
        tried = f"/sessions/{uuid.uuid4()}"
        assert (await agent.get(tried)).status_code == 404
        assert (await agent.request("BREW", f"/record/{uuid.uuid4()}")).status_code == 404
    assert (await agent.request("OPTIONS", "/record", headers={
        "Origin": "https://shop.example.com", "Access-Control-Request-Method": "POST"})).status_code == 200
    _, after = await scrape(agent)
    # Of the agent API's own samples: the replayer API's share the registry when both run in one process.
    routes = label_values(after, "bard_http_request_duration_seconds_count", "route", api="agent")
    assert routes <= {"/authenticate", "/record", "/healthz", "/readyz", "/metrics", UNMATCHED}
    assert label_values(after, "bard_http_request_duration_seconds_count", "method", api="agent") <= \
        {"GET", "POST", "OPTIONS", "other"}
    assert requests_counted(after, "agent", UNMATCHED, "GET", "404") - \
        requests_counted(before, "agent", UNMATCHED, "GET", "404") == 3
    assert requests_counted(after, "agent", UNMATCHED, "other", "404") - \
        requests_counted(before, "agent", UNMATCHED, "other", "404") == 3
    # The CORS middleware answers a preflight before the router: still named by the route it is for.
    assert requests_counted(after, "agent", "/record", "OPTIONS", "200") >= 1


# /metrics takes no parameters: any other method is a 405 in JSON, and a query string changes nothing.
BAD_METRICS_REQUESTS = [
    pytest.param("POST", "/metrics", 405, id="post"),
    pytest.param("PUT", "/metrics", 405, id="put"),
    pytest.param("DELETE", "/metrics", 405, id="delete"),
    pytest.param("POST", "/metrics?name[]=bard_agent_api_batches_accepted_total", 405, id="post-with-query"),
]


@pytest.mark.postgres
@pytest.mark.rabbitmq
@pytest.mark.parametrize(("method", "path", "status"), BAD_METRICS_REQUESTS)
async def test_agent_api_metrics_refuses_other_methods_in_json(agent: httpx.AsyncClient, method: str, path: str,
                                                               status: int) -> None:
    answer = await agent.request(method, path)
    assert answer.status_code == status
    assert answer.json()["error"] == "http_error"
    assert set(answer.headers["allow"].split(", ")) == {"GET", "HEAD"}


@pytest.mark.postgres
@pytest.mark.rabbitmq
async def test_agent_api_metrics_ignores_a_query_string(agent: httpx.AsyncClient) -> None:
    answer = await agent.get("/metrics", params={"name[]": "bard_agent_api_events_accepted_total", "x": "1"})
    assert answer.status_code == 200
    assert AGENT_API_NAMES <= parse(answer.text)[0]


# --- The replayer API, in process ------------------------------------------------------------------------------


@pytest.fixture
async def stranger(settings: Settings, pg_pool: asyncpg.Pool, ch: Client) -> AsyncIterator[httpx.AsyncClient]:
    """The replayer API without a credential: a scraper."""
    async with open_api(settings, authorized=False) as client:
        yield client


@pytest.mark.postgres
@pytest.mark.clickhouse
async def test_replayer_metrics_are_open_and_name_routes_by_their_template(settings: Settings,
                                                                           stranger: httpx.AsyncClient) -> None:
    session_ids = [str(uuid.uuid4()) for _ in range(3)]
    _, before = await scrape(stranger)
    async with open_api(settings) as dashboard:
        for session_id in session_ids:
            assert (await dashboard.get(f"/v1/sessions/{session_id}")).status_code == 404
    assert (await stranger.get(f"/v1/sessions/{session_ids[0]}")).status_code == 401
    names, after = await scrape(stranger)

    assert "bard_http_request_duration_seconds" in names
    template = "/v1/sessions/{session_id}"
    assert requests_counted(after, "replayer", template, "GET", "404") - \
        requests_counted(before, "replayer", template, "GET", "404") == 3
    # Refused by the credentials middleware, before the router: named by its template all the same.
    assert requests_counted(after, "replayer", template, "GET", "401") - \
        requests_counted(before, "replayer", template, "GET", "401") == 1
    routes = label_values(after, "bard_http_request_duration_seconds_count", "route")
    assert not any(session_id in route for route in routes for session_id in session_ids)
    assert requests_counted(after, "replayer", "/metrics", "GET", "200") >= 1


@pytest.mark.postgres
@pytest.mark.clickhouse
@pytest.mark.parametrize(("method", "path", "status"), BAD_METRICS_REQUESTS)
async def test_replayer_metrics_refuses_other_methods_in_json(stranger: httpx.AsyncClient, method: str, path: str,
                                                              status: int) -> None:
    answer = await stranger.request(method, path)
    assert answer.status_code == status
    assert answer.json() == {"error": "http_error", "message": "Method Not Allowed"}  # as the agent API answers
    assert set(answer.headers["allow"].split(", ")) == {"GET", "HEAD"}


@pytest.mark.postgres
@pytest.mark.clickhouse
async def test_replayer_metrics_ignore_a_query_string(stranger: httpx.AsyncClient) -> None:
    answer = await stranger.get("/metrics", params={"name[]": "x"})
    assert answer.status_code == 200
    assert "bard_http_request_duration_seconds" in parse(answer.text)[0]


# --- The consumer and the session ender, in process ------------------------------------------------------------


@pytest.mark.rabbitmq
@pytest.mark.clickhouse
async def test_the_consumer_counts_what_it_inserted(settings: Settings, ch: Client,
                                                    amqp: aio_pika.abc.AbstractRobustConnection,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(consumer_module, "QUEUE_PROBE_SECONDS", 0.05)
    settings = settings.replace(consumer_batch_rows=7)
    consumer_module.QUEUE_READY.set(-1)  # so that 0 below is a reading, not what an earlier test left
    before = {name: in_memory(name) for name in ("bard_consumer_rows_inserted_total",
                                                 "bard_consumer_lag_seconds_count", "bard_consumer_lag_seconds_sum")}
    acked_before = in_memory("bard_consumer_messages_total", outcome="acked")
    by_size_before = in_memory("bard_consumer_batches_total", closed_by="size")
    messages = [message_body(ingest_rows(bardrr.first_batch(), str(uuid.uuid4()))) for _ in range(3)]
    messages.append(message_body(ingest_rows(bardrr.later_batch(size=4), str(uuid.uuid4()))))
    await publish(amqp, settings, *messages)

    async with Consumer(settings, ch, amqp) as consumer:
        await eventually(lambda: consumer.stats.messages_acked == 4, "every message acknowledged")
        await eventually(lambda: REGISTRY.get_sample_value("bard_consumer_queue_messages_ready") == 0,
                         "the queue's depth read after the consumer took everything")

    assert in_memory("bard_consumer_rows_inserted_total") - before["bard_consumer_rows_inserted_total"] == 34
    assert in_memory("bard_consumer_messages_total", outcome="acked") - acked_before == 4
    assert in_memory("bard_consumer_lag_seconds_count") - before["bard_consumer_lag_seconds_count"] == 4
    assert in_memory("bard_consumer_batches_total", closed_by="size") - by_size_before == \
        consumer.stats.batches_by_size >= 1
    # From received_at (the rows were made a moment before they were published) to the insert: a moment each.
    assert 0 <= in_memory("bard_consumer_lag_seconds_sum") - before["bard_consumer_lag_seconds_sum"] \
        <= 4 * WAIT_SECONDS


@pytest.mark.rabbitmq
@pytest.mark.clickhouse
async def test_the_consumer_counts_insert_failures(settings: Settings, ch: Client,
                                                   amqp: aio_pika.abc.AbstractRobustConnection) -> None:
    failures_before = in_memory("bard_consumer_insert_failures_total")
    requeued_before = in_memory("bard_consumer_messages_total", outcome="requeued")
    await publish(amqp, settings, message_body(ingest_rows(bardrr.first_batch(), str(uuid.uuid4()))))
    ch.command(f"RENAME TABLE {settings.resolved_clickhouse_database}.ingest TO "
               f"{settings.resolved_clickhouse_database}.ingest_away")
    try:
        async with Consumer(settings, ch, amqp) as consumer:
            await eventually(lambda: consumer.stats.insert_failures >= 1, "a failed insert")
    finally:
        ch.command(f"RENAME TABLE {settings.resolved_clickhouse_database}.ingest_away TO "
                   f"{settings.resolved_clickhouse_database}.ingest")
    assert in_memory("bard_consumer_insert_failures_total") - failures_before == consumer.stats.insert_failures
    assert in_memory("bard_consumer_messages_total", outcome="requeued") - requeued_before == \
        consumer.stats.messages_requeued


@pytest.mark.postgres
@pytest.mark.clickhouse
async def test_the_session_ender_counts_moves_and_failures(settings: Settings, pg_pool: asyncpg.Pool,
                                                           ch: Client) -> None:
    seen = await server_now(pg_pool)
    for _ in range(3):
        await upsert(pg_pool, uuid.uuid4(), first=1, last=2, events=5, seen_at=seen)
    ended_before = in_memory("bard_session_ender_sessions_ended_total")
    runs_before = in_memory("bard_session_ender_run_duration_seconds_count")
    failures_before = in_memory("bard_session_ender_failures_total")

    async def crash(step: MoveStep, segments: object) -> None:
        raise InjectedCrash(step)

    with pytest.raises(InjectedCrash):
        await make_ender(settings, pg_pool, ch, expired_clock(seen), on_step=crash).expire_sessions()
    assert in_memory("bard_session_ender_failures_total") - failures_before == 1
    assert in_memory("bard_session_ender_sessions_ended_total") == ended_before  # rolled back: nothing moved

    result = await make_ender(settings, pg_pool, ch, expired_clock(seen), batch_size=2).expire_sessions()
    assert result.ended == 3
    assert in_memory("bard_session_ender_sessions_ended_total") - ended_before == 3
    assert in_memory("bard_session_ender_run_duration_seconds_count") - runs_before == 2
    assert in_memory("bard_session_ender_last_success_timestamp_seconds") >= (seen - timedelta(minutes=1)).timestamp()


# --- The shared directory, in a fresh interpreter (prometheus_client picks its mode at import) ------------------

USE_DIRECTORY = """
import os, sys
from bard.metrics_directory import shared_metrics_directory
if sys.argv[1] == "imported-first":
    import prometheus_client
with shared_metrics_directory() as directory:
    from prometheus_client import values
    print(directory, sorted(os.listdir(directory)), values.ValueClass._multiprocess)
print(directory.exists(), os.environ.get("PROMETHEUS_MULTIPROC_DIR"))
"""


def use_directory(tmp_path: Path, how: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "TMPDIR": str(tmp_path)}
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    return subprocess.run([sys.executable, "-c", USE_DIRECTORY, how], env=env, capture_output=True, text=True,
                          cwd=Path(__file__).parent.parent, timeout=WAIT_SECONDS)


def test_a_run_gets_a_fresh_directory_and_clears_those_of_killed_runs(tmp_path: Path) -> None:
    dead = subprocess.Popen(["true"])
    dead.wait()
    orphan = tmp_path / f"bard-metrics-{dead.pid}-left"  # a run killed before it could clean up
    alive = tmp_path / f"bard-metrics-{os.getpid()}-running"  # a run still going
    for directory in (orphan, alive):
        directory.mkdir()
        (directory / "counter_1.db").write_bytes(b"")
    ran = use_directory(tmp_path, "in-order")
    assert ran.returncode == 0, ran.stderr
    during, after = ran.stdout.splitlines()
    used, files, multiprocess = during.split(" ", 2)
    assert Path(used).parent == tmp_path and Path(used).name.startswith("bard-metrics-")
    assert (files, multiprocess) == ("[]", "True")
    assert after == "False None"  # removed, and the variable with it
    assert not orphan.exists() and alive.exists()


def test_a_directory_set_up_after_prometheus_client_was_imported_is_refused(tmp_path: Path) -> None:
    ran = use_directory(tmp_path, "imported-first")
    assert ran.returncode != 0
    assert "prometheus_client was imported before PROMETHEUS_MULTIPROC_DIR was set" in ran.stderr


# --- Processes: bard consumer alone, bard up with two agent API workers ----------------------------------------


@pytest.fixture
def bard(tmp_path: Path) -> Iterator[Bard]:
    (tmp_path / "tmp").mkdir()
    # TMPDIR: bard up makes its metrics directory there, where the test can see every process's file.
    bard = Bard(tmp_path, BARD_AGENT_API_WORKERS="2", TMPDIR=str(tmp_path / "tmp"))
    yield bard
    bard.kill()
    asyncio.run(bard.drop_services())


async def scrape_url(http: httpx.AsyncClient, url: str) -> tuple[set[str], Samples]:
    response = await http.get(url)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == PROMETHEUS_TEXT
    return parse(response.text)


async def run_until_scraped(bard: Bard, command: str, port: int, ready: Callable[[Samples], bool],
                            what: str) -> tuple[set[str], Samples]:
    """Start ``bard <command>``, a part that serves no API, and scrape its metrics port until ``ready``."""
    with bard.stdout.open("wb") as out, bard.stderr.open("wb") as err:
        bard.process = subprocess.Popen([str(BARD), command], env=bard.env, stdout=out, stderr=err)
    url = f"http://127.0.0.1:{port}/metrics"
    async with httpx.AsyncClient(timeout=30) as http:

        async def scraped_ready() -> bool:
            assert bard.process is not None and bard.process.poll() is None, bard.log()
            try:
                _, samples = await scrape_url(http, url)
            except httpx.TransportError:
                return False
            return ready(samples)

        await eventually(scraped_ready, what)
        return await scrape_url(http, url)


@pytest.mark.slow
@pytest.mark.postgres
@pytest.mark.rabbitmq
async def test_bard_consumer_serves_its_metrics_on_its_port(bard: Bard) -> None:
    subprocess.run([str(BARD), "migrate"], env=bard.env, check=True, capture_output=True, timeout=WAIT_SECONDS)
    settings = Settings.from_mapping({k: v for k, v in bard.env.items() if k.startswith("BARD_")})
    connection = await aio_pika.connect(AMQP_URL)
    async with connection:
        await publish(connection, settings, message_body(ingest_rows(bardrr.first_batch(), str(uuid.uuid4()))))
    names, samples = await run_until_scraped(
        bard, "consumer", bard.consumer_metrics_port,
        lambda samples: value(samples, "bard_consumer_rows_inserted_total") == 10,
        "bard consumer's metrics saying it inserted the batch")
    assert CONSUMER_NAMES <= names
    assert value(samples, "bard_consumer_messages_total", outcome="acked") == 1
    assert value(samples, "bard_consumer_lag_seconds_count") == 1
    assert bard.stop() == 0, bard.log()


@pytest.mark.slow
@pytest.mark.postgres
@pytest.mark.rabbitmq
async def test_bard_session_ender_serves_its_metrics_on_its_port(bard: Bard) -> None:
    subprocess.run([str(BARD), "migrate"], env=bard.env, check=True, capture_output=True, timeout=WAIT_SECONDS)
    names, samples = await run_until_scraped(
        bard, "session-ender", bard.ender_metrics_port,
        lambda samples: value(samples, "bard_session_ender_run_duration_seconds_count") >= 1,
        "bard session-ender's metrics saying it ran")
    assert SESSION_ENDER_NAMES <= names
    assert value(samples, "bard_session_ender_failures_total") == 0
    assert bard.stop() == 0, bard.log()


def accepted_by_process(directory: Path) -> dict[int, float]:
    """Each process's own count of accepted batches, read from its file in the metrics directory."""
    found = {}
    for path in directory.glob("counter_*.db"):
        for metric in MultiProcessCollector.merge([str(path)]):
            if metric.name == "bard_agent_api_batches_accepted":
                found[int(path.stem.split("_")[1])] = sum(s.value for s in metric.samples)
    return found


async def wait_until_serving(bard: Bard, http: httpx.AsyncClient) -> None:
    async def healthy() -> bool:
        assert bard.process is not None and bard.process.poll() is None, bard.log()
        try:
            return (await http.get(f"http://127.0.0.1:{bard.agent_port}/healthz")).status_code == 200
        except httpx.TransportError:
            return False

    await eventually(healthy, "bard up answering /healthz")


@pytest.mark.slow
@pytest.mark.postgres
@pytest.mark.rabbitmq
async def test_bard_up_adds_up_every_process_whichever_worker_answers(bard: Bard, tmp_path: Path) -> None:
    bard.start()
    agent = f"http://127.0.0.1:{bard.agent_port}"
    replayer = f"http://127.0.0.1:{bard.replayer_port}"
    # No keep-alive: every request is a new connection, which either worker may accept.
    async with httpx.AsyncClient(timeout=30, limits=httpx.Limits(max_keepalive_connections=0)) as http:
        await wait_until_serving(bard, http)
        [directory] = (tmp_path / "tmp").glob("bard-metrics-*")
        token = (await http.get(f"{agent}/authenticate")).json()["accessToken"]
        sent = 0

        async def record() -> None:
            nonlocal sent
            answer = await http.post(f"{agent}/record", headers=bardrr.record_headers(token),
                                     json=bardrr.record_body(bardrr.first_batch(), str(uuid.uuid4())))
            assert answer.status_code == 200, answer.text
            sent += 1

        def workers_that_accepted() -> list[int]:
            assert bard.process is not None
            return [pid for pid, count in accepted_by_process(directory).items()
                    if count > 0 and pid != bard.process.pid]

        for _ in range(50):  # until both workers took some: the kernel picks who accepts each connection
            await asyncio.gather(*(record() for _ in range(10)))
            if len(workers_that_accepted()) == 2:
                break
        assert len(workers_that_accepted()) == 2, accepted_by_process(directory)

        for _ in range(10):
            names, samples = await scrape_url(http, f"{agent}/metrics")
            assert value(samples, "bard_agent_api_batches_accepted_total") == sent
            assert value(samples, "bard_agent_api_events_accepted_total") == sent * 10
            assert requests_counted(samples, "agent", "/record", "POST", "200") == sent
        assert AGENT_API_NAMES | CONSUMER_NAMES | SESSION_ENDER_NAMES <= names

        # The replayer API, in the main process with the consumer and the session ender, shows all of Bard.
        async def consumed() -> bool:
            _, samples = await scrape_url(http, f"{replayer}/metrics")
            return value(samples, "bard_consumer_rows_inserted_total") == sent * 10

        await eventually(consumed, "the consumer's rows on the replayer API's /metrics")
        names, samples = await scrape_url(http, f"{replayer}/metrics")
        assert value(samples, "bard_agent_api_batches_accepted_total") == sent
        assert value(samples, "bard_session_ender_run_duration_seconds_count") >= 1
        assert AGENT_API_NAMES | CONSUMER_NAMES | SESSION_ENDER_NAMES <= names

        # A worker that dies is replaced; what it counted stays in the sum.
        killed = workers_that_accepted()[0]
        os.kill(killed, signal.SIGKILL)

        def replaced() -> bool:
            assert bard.process is not None
            return len(set(accepted_by_process(directory)) - {bard.process.pid, killed}) == 2

        await eventually(replaced, "a new agent API worker in place of the killed one")
        assert (directory / f"counter_{killed}.db").exists()
        await wait_until_serving(bard, http)
        await asyncio.gather(*(record() for _ in range(5)))
        for _ in range(10):
            _, samples = await scrape_url(http, f"{agent}/metrics")
            assert value(samples, "bard_agent_api_batches_accepted_total") == sent
    assert bard.stop() == 0, bard.log()
    assert "Traceback" not in bard.log()
    assert not directory.exists()  # removed when bard up ends
