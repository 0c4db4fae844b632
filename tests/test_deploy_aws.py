"""The AWS deployment without AWS: the template passes cfn-lint, and the deploy command runs against moto
(an AWS emulator) through create, no-op update, real update, status and destroy.

moto's CloudFormation does not model three resource types the stack uses (Secrets Manager secrets, Cloud Map
namespaces and services). The stand-ins below create them in moto's own Secrets Manager and Cloud Map, so the
real template deploys whole and the tests can look at what it made.
"""

from __future__ import annotations

import json
import re
import secrets
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from click.testing import CliRunner
from moto import mock_aws
from moto.cloudformation import parsing as cfn_parsing
from moto.core.common_models import CloudFormationModel
from moto.secretsmanager.models import secretsmanager_backends
from moto.servicediscovery.models import servicediscovery_backends

from bard.settings import Settings
from clickhouse.schema import MIGRATIONS
from deploy.aws.deploy import TEMPLATE, StackDeployer, agent_snippet, main

REGION = "eu-west-1"


# --- stand-ins for what moto's CloudFormation lacks ------------------------------------------------------------


class SecretStandIn(CloudFormationModel):
    """AWS::SecretsManager::Secret on moto's Secrets Manager (Ref is the ARN, as in AWS)."""

    def __init__(self, account_id: str, region: str, name: str, arn: str) -> None:
        self.account_id, self.region, self.name, self.arn = account_id, region, name, arn

    @property
    def physical_resource_id(self) -> str:
        return self.arn

    @staticmethod
    def cloudformation_name_type() -> str:
        return "Name"

    @staticmethod
    def cloudformation_type() -> str:
        return "AWS::SecretsManager::Secret"

    @classmethod
    def has_cfn_attr(cls, attr: str) -> bool:
        return attr == "Id"

    def get_cfn_attribute(self, attribute_name: str) -> str:
        return self.arn

    @classmethod
    def create_from_cloudformation_json(
        cls, resource_name: str, cloudformation_json: dict[str, Any], account_id: str, region_name: str,
        **kwargs: Any,
    ) -> SecretStandIn:
        props = cloudformation_json.get("Properties", {})
        value = props.get("SecretString")
        if value is None:
            length = props.get("GenerateSecretString", {}).get("PasswordLength", 32)
            value = secrets.token_hex(length)[:length]
        backend = secretsmanager_backends[account_id][region_name]
        created = json.loads(backend.create_secret(
            name=resource_name, secret_string=value, secret_binary=None, description=props.get("Description"),
            tags=None, kms_key_id=None, client_request_token=None, replica_regions=[], force_overwrite=False,
        ))
        return cls(account_id, region_name, resource_name, created["ARN"])

    @classmethod
    def update_from_cloudformation_json(
        cls, original_resource: SecretStandIn, new_resource_name: str, cloudformation_json: dict[str, Any],
        account_id: str, region_name: str,
    ) -> SecretStandIn:
        value = cloudformation_json.get("Properties", {}).get("SecretString")
        if value is not None:
            backend = secretsmanager_backends[account_id][region_name]
            backend.put_secret_value(secret_id=original_resource.arn, secret_string=value,
                                     secret_binary=None,  # type: ignore[arg-type]
                                     client_request_token=None,  # type: ignore[arg-type]
                                     version_stages=["AWSCURRENT"])
        return original_resource

    def delete(self, account_id: str, region_name: str) -> None:
        secretsmanager_backends[account_id][region_name].delete_secret(
            self.arn, recovery_window_in_days=None, force_delete_without_recovery=True)


class NamespaceStandIn(CloudFormationModel):
    """AWS::ServiceDiscovery::PrivateDnsNamespace on moto's Cloud Map."""

    def __init__(self, namespace: Any) -> None:
        self.namespace = namespace

    @property
    def physical_resource_id(self) -> str:
        return self.namespace.id

    @staticmethod
    def cloudformation_name_type() -> str:
        return "Name"

    @staticmethod
    def cloudformation_type() -> str:
        return "AWS::ServiceDiscovery::PrivateDnsNamespace"

    @classmethod
    def has_cfn_attr(cls, attr: str) -> bool:
        return attr in ("Id", "Arn")

    def get_cfn_attribute(self, attribute_name: str) -> str:
        return self.namespace.arn if attribute_name == "Arn" else self.namespace.id

    @classmethod
    def create_from_cloudformation_json(
        cls, resource_name: str, cloudformation_json: dict[str, Any], account_id: str, region_name: str,
        **kwargs: Any,
    ) -> NamespaceStandIn:
        props = cloudformation_json["Properties"]
        backend = servicediscovery_backends[account_id][region_name]
        backend.create_private_dns_namespace(name=props["Name"], creator_request_id="cfn", description="",
                                             vpc=props["Vpc"], tags=[], properties={})
        namespace = next(n for n in backend.namespaces.values() if n.vpc == props["Vpc"])
        return cls(namespace)

    @classmethod
    def update_from_cloudformation_json(
        cls, original_resource: NamespaceStandIn, new_resource_name: str, cloudformation_json: dict[str, Any],
        account_id: str, region_name: str,
    ) -> NamespaceStandIn:
        return original_resource

    def delete(self, account_id: str, region_name: str) -> None:
        servicediscovery_backends[account_id][region_name].delete_namespace(self.namespace.id)


class DiscoveryServiceStandIn(CloudFormationModel):
    """AWS::ServiceDiscovery::Service on moto's Cloud Map."""

    def __init__(self, service: Any) -> None:
        self.service = service

    @property
    def physical_resource_id(self) -> str:
        return self.service.id

    @staticmethod
    def cloudformation_name_type() -> str:
        return "Name"

    @staticmethod
    def cloudformation_type() -> str:
        return "AWS::ServiceDiscovery::Service"

    @classmethod
    def has_cfn_attr(cls, attr: str) -> bool:
        return attr in ("Id", "Arn", "Name")

    def get_cfn_attribute(self, attribute_name: str) -> str:
        return {"Arn": self.service.arn, "Name": self.service.name}.get(attribute_name, self.service.id)

    @classmethod
    def create_from_cloudformation_json(
        cls, resource_name: str, cloudformation_json: dict[str, Any], account_id: str, region_name: str,
        **kwargs: Any,
    ) -> DiscoveryServiceStandIn:
        props = cloudformation_json["Properties"]
        service = servicediscovery_backends[account_id][region_name].create_service(
            name=props["Name"], namespace_id=props["NamespaceId"], creator_request_id="cfn", description="",
            dns_config=props.get("DnsConfig", {}), health_check_config={},
            health_check_custom_config=props.get("HealthCheckCustomConfig", {}), tags=[], service_type="DNS",
        )
        return cls(service)

    @classmethod
    def update_from_cloudformation_json(
        cls, original_resource: DiscoveryServiceStandIn, new_resource_name: str,
        cloudformation_json: dict[str, Any], account_id: str, region_name: str,
    ) -> DiscoveryServiceStandIn:
        return original_resource

    def delete(self, account_id: str, region_name: str) -> None:
        servicediscovery_backends[account_id][region_name].delete_service(self.service.id)


def _forget_moto_models() -> None:
    for cached in (cfn_parsing.get_model_list, cfn_parsing.get_model_map, cfn_parsing.get_name_type_map):
        cached.cache_clear()


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[boto3.session.Session]:
    """moto, with the stand-ins registered, and fake credentials so nothing can reach real AWS."""
    for name, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                        "AWS_SESSION_TOKEN": "testing", "AWS_DEFAULT_REGION": REGION}.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    monkeypatch.setattr(CloudFormationModel, "__subclasses__",
                        classmethod(lambda cls: [*type.__subclasses__(cls), SecretStandIn, NamespaceStandIn,
                                                 DiscoveryServiceStandIn]))
    _forget_moto_models()
    with mock_aws():
        yield boto3.session.Session(region_name=REGION)
    monkeypatch.undo()
    _forget_moto_models()


def existing_network(session: boto3.session.Session) -> list[str]:
    """A VPC with two subnets made outside the stack, as an operator's own network would be. (Also what lets
    moto delete the stack: its CloudFormation cannot delete route tables, so a stack-made VPC never goes.)"""
    ec2 = session.client("ec2")
    vpc = ec2.create_vpc(CidrBlock="10.7.0.0/16")["Vpc"]["VpcId"]
    subnets = [ec2.create_subnet(VpcId=vpc, CidrBlock=f"10.7.{i * 16}.0/20",
                                 AvailabilityZone=f"{REGION}{zone}")["Subnet"]["SubnetId"]
               for i, zone in enumerate("ab")]
    return ["-p", f"VpcId={vpc}", "-p", f"SubnetIds={','.join(subnets)}"]


def bard(*args: str) -> Any:
    return CliRunner().invoke(main, ["--region", REGION, "--poll-seconds", "0", *args], catch_exceptions=False)


def stack_status(session: boto3.session.Session) -> str | None:
    return StackDeployer(session.client("cloudformation"), "bard").describe().get("StackStatus")  # type: ignore[union-attr]


def task_definitions(session: boto3.session.Session) -> dict[str, dict[str, Any]]:
    """The latest revision of each task definition family, by family without the stack's prefix."""
    ecs = session.client("ecs")
    latest: dict[str, dict[str, Any]] = {}
    for arn in ecs.list_task_definitions()["taskDefinitionArns"]:
        definition = ecs.describe_task_definition(taskDefinition=arn)["taskDefinition"]
        family = definition["family"].removeprefix("bard-")
        if family not in latest or definition["revision"] > latest[family]["revision"]:
            latest[family] = definition
    return latest


# --- the template ------------------------------------------------------------------------------------------------


def test_template_passes_cfn_lint() -> None:
    from cfnlint.api import ManualArgs, lint_file

    matches = lint_file(TEMPLATE, config=ManualArgs(regions=["us-east-1", "eu-west-1", "ap-southeast-2"]))
    assert [str(m) for m in matches] == []


def test_cfn_lint_would_catch_a_broken_template() -> None:
    from cfnlint.api import lint

    broken = TEMPLATE.read_text().replace("TargetGroupArn: !Ref AgentApiTargets", "TargetGroupArn: !Ref Nowhere")
    assert any("Nowhere" in str(m) for m in lint(broken))


# --- the deploy command against moto -----------------------------------------------------------------------------


def test_create_prints_progress_endpoints_and_snippet(aws: boto3.session.Session) -> None:
    result = bard("deploy", "--image", "registry.example/bard:1", "--app-name", "Better Brew")
    assert result.exit_code == 0, result.output
    assert "creating stack bard" in result.output
    # moto records the stack's own events (AWS adds one per resource; they print the same way).
    assert re.search(r"CREATE_IN_PROGRESS\s+AWS::CloudFormation::Stack\s+bard  \(User Initiated\)", result.output)
    assert re.search(r"CREATE_COMPLETE\s+AWS::CloudFormation::Stack\s+bard", result.output)
    assert stack_status(aws) == "CREATE_COMPLETE"
    agent_url = re.search(r"agent API\s+(http://\S+)", result.output)
    assert agent_url and agent_url.group(1).startswith("http://")
    for line in agent_snippet(agent_url.group(1), "Better Brew").splitlines():
        assert line in result.output
    assert "aws secretsmanager get-secret-value" in result.output


def test_create_makes_the_services_with_secrets_never_in_plain_environment(aws: boto3.session.Session) -> None:
    assert bard("deploy", "--image", "registry.example/bard:1").exit_code == 0
    ecs = aws.client("ecs")
    cluster = ecs.list_clusters()["clusterArns"][0]
    services = ecs.describe_services(cluster=cluster, services=ecs.list_services(cluster=cluster)["serviceArns"])
    assert len(services["services"]) == 6
    stored = {s["ARN"] for s in aws.client("secretsmanager").list_secrets()["SecretList"]}
    definitions = task_definitions(aws)
    assert set(definitions) == {"clickhouse", "rabbitmq", "postgres", "session-ender", "agent-api", "replayer-api"}
    for family, definition in definitions.items():
        for container in definition["containerDefinitions"]:
            plain = {e["name"] for e in container.get("environment", [])}
            assert not {n for n in plain if re.search("PASS|SECRET|TOKEN|URL", n)}, (family, plain)
            assert {s["valueFrom"] for s in container.get("secrets", [])} <= stored
            if container["image"].startswith("registry.example/bard"):
                names = plain | {s["name"] for s in container.get("secrets", [])}
                assert names <= {f"BARD_{f.upper()}" for f in Settings.__struct_fields__}, (family, names)
                assert {"BARD_CLICKHOUSE_URL", "BARD_POSTGRES_URL", "BARD_AMQP_URL", "BARD_JWT_SECRET",
                        "BARD_DASHBOARD_TOKEN"} <= names
    ender = {c["name"]: c for c in definitions["session-ender"]["containerDefinitions"]}
    assert ender["migrate"]["command"] == ["migrate"] and ender["migrate"]["essential"] is False
    assert ender["session-ender"]["dependsOn"] == [{"containerName": "migrate", "condition": "SUCCESS"}]


def test_the_stack_secrets_make_server_mode_settings(aws: boto3.session.Session) -> None:
    """The URLs the stack stores are what Bard's settings accept, and ClickHouse's RabbitMQ engine is pointed at
    RabbitMQ's Cloud Map name. (moto keeps dynamic references unresolved: a stand-in password replaces them.)"""
    assert bard("deploy", "--image", "registry.example/bard:1").exit_code == 0
    client = aws.client("secretsmanager")
    container = {c["name"]: c for c in task_definitions(aws)["agent-api"]["containerDefinitions"]}["agent-api"]
    environ = {}
    for secret in container["secrets"]:
        value = client.get_secret_value(SecretId=secret["valueFrom"])["SecretString"]
        environ[secret["name"]] = re.sub(r"\{\{resolve:secretsmanager:[^}]+\}\}", "pw", value)
    settings = Settings.from_mapping(environ)
    assert settings.mode == "server" and settings.resolved_clickhouse_database == "bard"
    queue_ddl = " ".join(st for m in MIGRATIONS if m.version == 3 for st in m.statements(settings, "bard"))
    assert "rabbitmq_host_port = 'rabbitmq.bard.internal:5672'" in queue_ddl


def test_deploy_again_unchanged_is_a_successful_no_op(aws: boto3.session.Session) -> None:
    assert bard("deploy", "--image", "registry.example/bard:1").exit_code == 0
    result = bard("deploy")
    assert result.exit_code == 0, result.output
    assert "bard is up to date: nothing to change" in result.output
    assert "updating stack" not in result.output and "CREATE_COMPLETE" not in result.output
    assert stack_status(aws) == "CREATE_COMPLETE"


def test_deploy_with_a_new_image_updates_it_and_keeps_the_other_parameters(aws: boto3.session.Session) -> None:
    assert bard("deploy", "--image", "registry.example/bard:1", "-p", "AgentApiDesiredCount=2").exit_code == 0
    result = bard("deploy", "--image", "registry.example/bard:2")
    assert result.exit_code == 0, result.output
    assert "updating stack bard" in result.output
    assert re.search(r"UPDATE_COMPLETE\s+AWS::CloudFormation::Stack\s+bard", result.output)
    assert "CREATE_COMPLETE" not in result.output  # only this run's events
    assert stack_status(aws) == "UPDATE_COMPLETE"
    parameters = {p["ParameterKey"]: p["ParameterValue"]
                  for p in aws.client("cloudformation").describe_stacks(StackName="bard")["Stacks"][0]["Parameters"]}
    assert parameters["BardImage"] == "registry.example/bard:2"
    assert parameters["AgentApiDesiredCount"] == "2"  # chosen before, not given now: kept
    # The Bard task definitions were registered anew. (What they hold after an update moto cannot show: it
    # stores them with CloudFormation's key case, which ECS's API then drops.)
    definitions = task_definitions(aws)
    assert {family: d["revision"] for family, d in definitions.items()} == {
        "clickhouse": 1, "rabbitmq": 1, "postgres": 1, "session-ender": 2, "agent-api": 2, "replayer-api": 2}


@pytest.mark.parametrize(
    ("args", "message"),
    [
        pytest.param(["deploy"], "needs --image", id="first-deploy-without-image"),
        pytest.param(["deploy", "--image", "x", "-p", "Nonsense"], "KEY=VALUE", id="parameter-without-value"),
    ],
)
def test_bad_first_deploys_are_refused_before_anything_is_made(
    aws: boto3.session.Session, args: list[str], message: str
) -> None:
    result = bard(*args)
    assert result.exit_code == 2 and message in result.output
    assert aws.client("cloudformation").describe_stacks()["Stacks"] == []


def test_an_unknown_parameter_on_update_changes_nothing(aws: boto3.session.Session) -> None:
    assert bard("deploy", "--image", "registry.example/bard:1").exit_code == 0
    result = bard("deploy", "-p", "AgentApiReplicas=3")
    assert result.exit_code == 2 and "no parameter AgentApiReplicas" in result.output
    assert stack_status(aws) == "CREATE_COMPLETE"


def test_status_shows_the_stack_and_its_services(aws: boto3.session.Session) -> None:
    assert bard("status").exit_code == 1
    assert bard("deploy", "--image", "registry.example/bard:1").exit_code == 0
    result = bard("status")
    assert result.exit_code == 0, result.output
    assert "stack bard: CREATE_COMPLETE" in result.output
    assert "AgentApiUrl" in result.output and "services (running/desired):" in result.output


def test_destroy_deletes_the_stack_and_keeps_the_data_unless_asked(aws: boto3.session.Session) -> None:
    network = existing_network(aws)
    assert bard("deploy", "--image", "registry.example/bard:1", *network).exit_code == 0
    efs = aws.client("efs")
    (file_system,) = [fs["FileSystemId"] for fs in efs.describe_file_systems()["FileSystems"]]
    result = bard("destroy", "--yes")
    assert result.exit_code == 0, result.output
    assert re.search(r"DELETE_COMPLETE\s+AWS::CloudFormation::Stack\s+bard", result.output)
    assert aws.client("cloudformation").describe_stacks()["Stacks"] == []
    assert f"kept the EFS file system {file_system}" in result.output
    assert [fs["FileSystemId"] for fs in efs.describe_file_systems()["FileSystems"]] == [file_system]
    assert aws.client("secretsmanager").list_secrets()["SecretList"] == []
    again = bard("destroy", "--yes")
    assert again.exit_code == 0 and "nothing to destroy" in again.output


def test_destroy_with_delete_data_removes_the_file_system(aws: boto3.session.Session) -> None:
    network = existing_network(aws)
    assert bard("deploy", "--image", "registry.example/bard:1", *network).exit_code == 0
    result = bard("destroy", "--yes", "--delete-data")
    assert result.exit_code == 0, result.output
    assert aws.client("efs").describe_file_systems()["FileSystems"] == []


def test_destroy_asks_first(aws: boto3.session.Session) -> None:
    assert bard("deploy", "--image", "registry.example/bard:1").exit_code == 0
    result = CliRunner().invoke(main, ["--region", REGION, "--poll-seconds", "0", "destroy"], input="n\n")
    assert result.exit_code == 1 and "Aborted" in result.output
    assert stack_status(aws) == "CREATE_COMPLETE"


def test_a_create_after_a_destroy_starts_afresh(aws: boto3.session.Session) -> None:
    network = existing_network(aws)
    assert bard("deploy", "--image", "registry.example/bard:1", *network).exit_code == 0
    assert bard("destroy", "--yes", "--delete-data").exit_code == 0
    result = bard("deploy", "--image", "registry.example/bard:1", *network)
    assert result.exit_code == 0, result.output
    assert "creating stack bard" in result.output and stack_status(aws) == "CREATE_COMPLETE"


def test_aws_refusals_become_one_line_errors(aws: boto3.session.Session) -> None:
    import click

    from deploy.aws.deploy import aws_errors

    with pytest.raises(click.ClickException, match="AWS refused DeleteFileSystem: FileSystemNotFound"):
        with aws_errors():
            aws.client("efs").delete_file_system(FileSystemId="fs-00000000")
