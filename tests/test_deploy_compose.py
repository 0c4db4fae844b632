"""deploy/docker-compose.yml without Docker: it passes the Compose Specification's schema, its Bard containers
get only settings Bard knows, its secrets come from deploy/.env, only the two APIs are published, start order
follows health, and the settings it makes drive a server-mode schema that ClickHouse's own parser accepts."""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from bard.settings import Settings, with_secrets
from clickhouse.schema import MIGRATIONS

ROOT = Path(__file__).resolve().parents[1]
COMPOSE = ROOT / "deploy" / "docker-compose.yml"
ENV_TEMPLATE = ROOT / "deploy" / "env.template"
SCHEMA = ROOT / "deploy" / "schema" / "compose-spec.json"
BARD_SERVICES = {"migrate", "agent-api", "session-ender", "replayer-api"}
SETTING_NAMES = {f"BARD_{f.upper()}" for f in Settings.__struct_fields__}
VARIABLE = re.compile(r"\$\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:?[-?])(?P<arg>[^}]*))?\}")


def validator() -> jsonschema.Draft201909Validator:
    # The draft the schema declares (its "$schema" spells the URI in an older way that jsonschema does not map).
    schema = json.loads(SCHEMA.read_text())
    jsonschema.Draft201909Validator.check_schema(schema)
    return jsonschema.Draft201909Validator(schema)


def compose() -> dict[str, Any]:
    return yaml.safe_load(COMPOSE.read_text())


def template_variables() -> dict[str, str]:
    """The variables env.template sets (uncommented lines)."""
    pairs = (line.split("=", 1) for line in ENV_TEMPLATE.read_text().splitlines()
             if line.strip() and not line.lstrip().startswith("#"))
    return {k.strip(): v.strip() for k, v in pairs}


def interpolate(value: Any, env: dict[str, str]) -> Any:
    """Compose's ``${VAR}``, ``${VAR:-default}`` and ``${VAR:?error}``, enough for this file."""
    if isinstance(value, dict):
        return {k: interpolate(v, env) for k, v in value.items()}
    if isinstance(value, list):
        return [interpolate(v, env) for v in value]
    if not isinstance(value, str):
        return value

    def substitute(match: re.Match[str]) -> str:
        name, op, arg = match.group("name"), match.group("op"), match.group("arg")
        current = env.get(name, "")
        if op in (":?", "?") and not current:
            raise LookupError(f"{name}: {arg}")
        if op in (":-", "-") and not current:
            return arg
        return current

    return VARIABLE.sub(substitute, value)


def filled_env() -> dict[str, str]:
    """deploy/.env as an operator fills it in from the template (URL-safe secrets, as it asks)."""
    return {name: value or f"{name.lower().replace('_', '')}0123456789abcdef" for name, value in
            template_variables().items()}


def service_environment(service: str, env: dict[str, str]) -> dict[str, str]:
    resolved = interpolate(compose(), env)["services"][service].get("environment", {})
    return {k: str(v) for k, v in resolved.items()}


# --- the schema ------------------------------------------------------------------------------------------------


def test_compose_file_passes_the_compose_spec_schema() -> None:
    validator().validate(compose())


def _unknown_key(doc: dict[str, Any]) -> None:
    doc["services"]["agent-api"]["restart_policy"] = "always"


def _bad_condition(doc: dict[str, Any]) -> None:
    doc["services"]["agent-api"]["depends_on"]["migrate"]["condition"] = "service_finished"


def _bad_volume_name(doc: dict[str, Any]) -> None:
    doc["volumes"]["bad volume"] = None


def _healthcheck_typo(doc: dict[str, Any]) -> None:
    doc["services"]["postgres"]["healthcheck"]["intervall"] = "5s"


@pytest.mark.parametrize("break_it", [_unknown_key, _bad_condition, _bad_volume_name, _healthcheck_typo],
                         ids=["unknown-service-key", "bad-depends-on-condition", "bad-volume-name",
                              "healthcheck-typo"])
def test_the_schema_catches_broken_compose_files(break_it: Any) -> None:
    doc = copy.deepcopy(compose())
    break_it(doc)
    with pytest.raises(jsonschema.ValidationError):
        validator().validate(doc)


# --- settings and secrets --------------------------------------------------------------------------------------


def test_bard_containers_get_only_settings_bard_knows() -> None:
    doc = compose()
    assert {name for name, s in doc["services"].items() if "build" in s} == BARD_SERVICES
    for name in BARD_SERVICES:
        environment = doc["services"][name]["environment"]
        assert isinstance(environment, dict)
        assert set(environment) <= SETTING_NAMES, (name, set(environment) - SETTING_NAMES)


def test_env_template_names_only_known_settings_and_every_required_secret() -> None:
    text = ENV_TEMPLATE.read_text()
    mentioned = set(re.findall(r"\b(BARD_[A-Z0-9_]+)=", text))
    assert mentioned <= SETTING_NAMES, mentioned - SETTING_NAMES
    required = {m.group("name") for m in VARIABLE.finditer(COMPOSE.read_text()) if m.group("op") in (":?", "?")}
    variables = template_variables()
    assert required <= set(variables), required - set(variables)
    assert all(variables[name] == "" for name in required), "the template must not carry secrets"
    optional = {m.group("name") for m in VARIABLE.finditer(COMPOSE.read_text()) if m.group("op") in (":-", "-")}
    assert all(f"{name}=" in text for name in optional), "every optional variable is documented in the template"


def test_the_env_file_is_never_committed() -> None:
    assert "deploy/.env" in (ROOT / ".gitignore").read_text().splitlines()


def test_secrets_are_never_written_in_the_compose_file() -> None:
    for name, service in compose()["services"].items():
        for key, value in (service.get("environment") or {}).items():
            if re.search("PASSWORD|PASS$|SECRET|TOKEN", key) or re.search(r"://[^/]*@", str(value)):
                assert re.search(r"\$\{[A-Z_]+:\?", str(value)), (name, key)


def test_compose_refuses_to_start_while_a_secret_is_empty() -> None:
    env = filled_env()
    env["BARD_JWT_SECRET"] = ""
    with pytest.raises(LookupError, match="BARD_JWT_SECRET"):
        interpolate(compose(), env)


@pytest.mark.parametrize("service", sorted(BARD_SERVICES))
def test_the_settings_compose_makes_are_valid_server_mode_settings(service: str) -> None:
    settings = with_secrets(Settings.from_mapping(service_environment(service, filled_env())))
    assert settings.mode == "server"
    assert settings.host == "0.0.0.0"
    assert (settings.agent_api_port, settings.replayer_api_port) == (3001, 3003)


def test_the_credentials_in_bard_urls_are_those_the_servers_are_given() -> None:
    from urllib.parse import urlsplit

    env = filled_env()
    settings = Settings.from_mapping(service_environment("agent-api", env))
    clickhouse, rabbitmq, postgres = (service_environment(s, env) for s in ("clickhouse", "rabbitmq", "postgres"))
    ch, amqp, pg = (urlsplit(u) for u in (settings.clickhouse_url, settings.amqp_url, settings.postgres_url))
    assert (ch.hostname, ch.port, ch.username, ch.password, ch.path) == (
        "clickhouse", 8123, clickhouse["CLICKHOUSE_USER"], clickhouse["CLICKHOUSE_PASSWORD"],
        "/" + clickhouse["CLICKHOUSE_DB"])
    assert (amqp.hostname, amqp.port, amqp.username, amqp.password) == (
        "rabbitmq", 5672, rabbitmq["RABBITMQ_DEFAULT_USER"], rabbitmq["RABBITMQ_DEFAULT_PASS"])
    assert (pg.hostname, pg.port, pg.username, pg.password, pg.path) == (
        "postgres", 5432, postgres["POSTGRES_USER"], postgres["POSTGRES_PASSWORD"], "/" + postgres["POSTGRES_DB"])


# --- topology: ports, start order, volumes, images -----------------------------------------------------------


def test_only_the_two_apis_are_published() -> None:
    services = interpolate(compose(), filled_env())["services"]
    published = {name: s["ports"] for name, s in services.items() if s.get("ports")}
    assert published == {"agent-api": ["3001:3001"], "replayer-api": ["3003:3003"]}
    assert not any(s.get("network_mode") == "host" for s in services.values())


def test_start_order_waits_for_health_and_for_migrations() -> None:
    services = compose()["services"]
    for name, service in services.items():
        for dependency, rule in (service.get("depends_on") or {}).items():
            target = services[dependency]
            if rule["condition"] == "service_healthy":
                assert target.get("healthcheck", {}).get("test") and not target["healthcheck"].get("disable"), \
                    (name, dependency)
            else:
                assert rule["condition"] == "service_completed_successfully" and dependency == "migrate"
    assert services["migrate"]["restart"] == "no" and services["migrate"]["command"] == ["migrate"]
    for name in BARD_SERVICES - {"migrate"}:
        assert services[name]["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
        assert services[name]["healthcheck"]["test"] == ["CMD", "python", "-m", "deploy.healthcheck", name]
    assert set(services["migrate"]["depends_on"]) == {"clickhouse", "rabbitmq", "postgres"}


def test_data_lives_in_named_volumes() -> None:
    doc = compose()
    mounts = {name: [v.split(":")[0] for v in s.get("volumes", [])] for name, s in doc["services"].items()}
    assert mounts["clickhouse"] == ["clickhouse-data"]
    assert mounts["postgres"] == ["postgres-data"]
    assert mounts["rabbitmq"] == ["rabbitmq-data"]
    assert {v for vs in mounts.values() for v in vs} == set(doc["volumes"])


def test_server_images_are_pinned() -> None:
    for name, service in compose()["services"].items():
        if name in BARD_SERVICES:
            continue
        image = service["image"]
        assert re.search(r":\d+(\.\d+)+", image) and not image.endswith(":latest"), image


# --- the schema ClickHouse gets from these settings ----------------------------------------------------------


@pytest.mark.clickhouse
def test_server_mode_ddl_from_compose_settings_parses_with_clickhouse(ch) -> None:
    settings = Settings.from_mapping(service_environment("migrate", filled_env()))
    statements = [st for m in MIGRATIONS if settings.mode in m.modes for st in m.statements(settings, "bard")]
    queue = [st for st in statements if "ENGINE = RabbitMQ" in st]
    assert len(queue) == 1 and "rabbitmq_host_port = 'rabbitmq:5672'" in queue[0]
    assert "rabbitmq_username = 'bard'" in queue[0]
    for statement in statements:
        formatted = ch.query("SELECT formatQuery({q:String})", parameters={"q": statement}).result_rows[0][0]
        # tables and views; columns added later; rows a new table derives from existing ones (as test_foundation)
        assert formatted.startswith(("CREATE", "ALTER", "INSERT"))
