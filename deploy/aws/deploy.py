"""Deploy Bard to AWS (ECS on Fargate) with the CloudFormation stack of ``stack.yaml``.

    python -m deploy.aws.deploy deploy --image 123456789012.dkr.ecr.eu-west-1.amazonaws.com/bard:0.1.0
    python -m deploy.aws.deploy status
    python -m deploy.aws.deploy destroy [--delete-data]

``deploy`` creates the stack, or updates it; running it again with nothing changed is a success that changes
nothing. On update, parameters that are not given keep their current values, so ``deploy --image <new tag>`` is
the whole upgrade. While CloudFormation works, the stack's new events are printed as they arrive; at the end the
endpoints and the bardrr snippet to paste into an app. ``destroy`` deletes the stack; the EFS file system with the
databases' data is kept unless ``--delete-data`` is given.

AWS credentials and region come from the usual places (environment, ``~/.aws``), or ``--profile`` and ``--region``.
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
import click
from botocore.exceptions import BotoCoreError, ClientError

TEMPLATE = Path(__file__).with_name("stack.yaml")
CAPABILITIES = ["CAPABILITY_IAM"]
SUCCEEDED = frozenset({"CREATE_COMPLETE", "UPDATE_COMPLETE", "DELETE_COMPLETE"})
NO_UPDATES = "No updates are to be performed"


class DeployError(Exception):
    """A deployment that did not reach its goal; the message says where it stopped."""

    def __init__(self, stack_name: str, status: str, reason: str = "") -> None:
        self.stack_name, self.status, self.reason = stack_name, status, reason
        super().__init__(f"stack {stack_name} ended in {status}" + (f": {reason}" if reason else ""))


@dataclass
class StackDeployer:
    """Creates, updates and deletes one CloudFormation stack, printing its events while it waits."""

    cloudformation: Any
    stack_name: str
    echo: Callable[[str], None] = click.echo
    poll_seconds: float = 5.0
    sleep: Callable[[float], None] = time.sleep
    _seen_events: set[str] = field(default_factory=set)

    # --- reading -----------------------------------------------------------------------------------------------

    def describe(self, stack_id: str | None = None) -> dict[str, Any] | None:
        """The stack, or None when there is none (a deleted stack is found only by its id)."""
        try:
            stacks = self.cloudformation.describe_stacks(StackName=stack_id or self.stack_name)["Stacks"]
        except ClientError as exc:
            if "does not exist" in str(exc):
                return None
            raise
        return stacks[0] if stacks else None

    def outputs(self, stack: Mapping[str, Any]) -> dict[str, str]:
        return {o["OutputKey"]: o["OutputValue"] for o in stack.get("Outputs", [])}

    def resources(self, resource_type: str) -> list[str]:
        """Physical ids of the stack's resources of one type."""
        paginator = self.cloudformation.get_paginator("list_stack_resources")
        return [
            r["PhysicalResourceId"]
            for page in paginator.paginate(StackName=self.stack_name)
            for r in page["StackResourceSummaries"]
            if r["ResourceType"] == resource_type and r.get("PhysicalResourceId")
        ]

    # --- changing ----------------------------------------------------------------------------------------------

    def deploy(self, template_body: str, parameters: Mapping[str, str]) -> dict[str, Any]:
        """Create the stack or bring it up to date; returns the stack as it stands after."""
        stack = self.describe()
        if stack is not None and stack["StackStatus"].endswith("_IN_PROGRESS"):
            self.echo(f"{self.stack_name} is busy ({stack['StackStatus']}); waiting for it to settle")
            self._remember_events(stack["StackId"])
            stack = self._wait(stack["StackId"])
        if stack is not None and stack["StackStatus"] == "ROLLBACK_COMPLETE":
            # A first creation that failed leaves an empty stack that cannot be updated, only deleted.
            self.echo(f"{self.stack_name} failed to create before ({stack['StackStatus']}); deleting it to start over")
            self.delete()
            stack = None
        if stack is None:
            return self._create(template_body, parameters)
        return self._update(stack, template_body, parameters)

    def _create(self, template_body: str, parameters: Mapping[str, str]) -> dict[str, Any]:
        declared = self._declared_parameters(template_body)
        self._refuse_unknown(parameters, declared)
        # Every parameter is passed, defaults included, so that the stack records each value and a later update
        # can keep them all with UsePreviousValue.
        values = {k: v for k, v in declared.items() if v is not None} | dict(parameters)
        self.echo(f"creating stack {self.stack_name}")
        stack_id = self.cloudformation.create_stack(
            StackName=self.stack_name,
            TemplateBody=template_body,
            Parameters=[{"ParameterKey": k, "ParameterValue": v} for k, v in sorted(values.items())],
            Capabilities=CAPABILITIES,
            Tags=[{"Key": "app", "Value": "bard"}],
        )["StackId"]
        return self._expect(self._wait(stack_id), "CREATE_COMPLETE")

    def _update(self, stack: Mapping[str, Any], template_body: str, parameters: Mapping[str, str]) -> dict[str, Any]:
        declared = self._declared_parameters(template_body)
        self._refuse_unknown(parameters, declared)
        current = {p["ParameterKey"] for p in stack.get("Parameters", [])}
        # Parameters not given keep their values: `deploy --image <tag>` changes the image and nothing else.
        return self._update_stack(stack, template_body, [
            *({"ParameterKey": k, "ParameterValue": v} for k, v in sorted(parameters.items())),
            *({"ParameterKey": k, "UsePreviousValue": True} for k in declared if k in current and k not in parameters),
        ])

    def _declared_parameters(self, template_body: str) -> dict[str, str | None]:
        """The template's parameters and their defaults (None: no default)."""
        summary = self.cloudformation.get_template_summary(TemplateBody=template_body)
        return {p["ParameterKey"]: p.get("DefaultValue") for p in summary.get("Parameters", [])}

    @staticmethod
    def _refuse_unknown(parameters: Mapping[str, str], declared: Mapping[str, str | None]) -> None:
        unknown = sorted(set(parameters) - set(declared))
        if unknown:
            raise click.UsageError(f"the template has no parameter {', '.join(unknown)}")

    def _update_stack(self, stack: Mapping[str, Any], template_body: str,
                      parameters: list[dict[str, Any]]) -> dict[str, Any]:
        self._remember_events(stack["StackId"])
        try:
            self.cloudformation.update_stack(
                StackName=stack["StackId"],
                TemplateBody=template_body,
                Parameters=parameters,
                Capabilities=CAPABILITIES,
            )
        except ClientError as exc:
            if NO_UPDATES in str(exc):
                self.echo(f"{self.stack_name} is up to date: nothing to change")
                return dict(stack)
            raise
        self.echo(f"updating stack {self.stack_name}")
        return self._expect(self._wait(stack["StackId"]), "UPDATE_COMPLETE")

    def delete(self) -> dict[str, Any] | None:
        """Delete the stack and wait until it is gone; returns its last state, or None if there was none."""
        stack = self.describe()
        if stack is None:
            self.echo(f"there is no stack {self.stack_name}: nothing to delete")
            return None
        self._remember_events(stack["StackId"])
        self.echo(f"deleting stack {self.stack_name}")
        self.cloudformation.delete_stack(StackName=stack["StackId"])
        return self._expect(self._wait(stack["StackId"]), "DELETE_COMPLETE")

    # --- waiting -----------------------------------------------------------------------------------------------

    def _remember_events(self, stack_id: str) -> None:
        """Mark the events already there as seen, so that waiting prints only what this run causes."""
        self._seen_events.update(e["EventId"] for e in self._new_events(stack_id))

    def _new_events(self, stack_id: str) -> list[dict[str, Any]]:
        """Events not yet seen, oldest first. Pages come newest first, so reading stops at the first seen one."""
        fresh: list[dict[str, Any]] = []
        paginator = self.cloudformation.get_paginator("describe_stack_events")
        for page in paginator.paginate(StackName=stack_id):
            for event in page["StackEvents"]:
                if event["EventId"] in self._seen_events:
                    return fresh[::-1]
                fresh.append(event)
        return fresh[::-1]

    def _wait(self, stack_id: str) -> dict[str, Any]:
        while True:
            for event in self._new_events(stack_id):
                self._seen_events.add(event["EventId"])
                self.echo(format_event(event))
            stack = self.describe(stack_id)
            if stack is None:  # deleted, and no longer found even by id
                return {"StackId": stack_id, "StackStatus": "DELETE_COMPLETE"}
            if not stack["StackStatus"].endswith("_IN_PROGRESS"):
                return stack
            self.sleep(self.poll_seconds)

    def _expect(self, stack: dict[str, Any], status: str) -> dict[str, Any]:
        if stack["StackStatus"] != status:
            raise DeployError(self.stack_name, stack["StackStatus"], stack.get("StackStatusReason", ""))
        return stack


def format_event(event: Mapping[str, Any]) -> str:
    when = event["Timestamp"].strftime("%H:%M:%S") if hasattr(event.get("Timestamp"), "strftime") else ""
    reason = event.get("ResourceStatusReason") or ""
    return (f"  {when}  {event.get('ResourceStatus', ''):<28} {event.get('ResourceType', ''):<42} "
            f"{event.get('LogicalResourceId', '')}" + (f"  ({reason})" if reason else "")).rstrip()


def agent_snippet(agent_api_url: str, app_name: str) -> str:
    """What to paste into an app to record it into this deployment (see the README: pin rrweb as it says)."""
    return "\n".join([
        "import Agent from \"bardrr\";",
        "",
        "new Agent().start({",
        f"  appName: {json.dumps(app_name)},",
        f"  endpoint: {json.dumps(agent_api_url)},",
        "  MAX_IDLE_TIME: 60 * 1000,",
        "});",
    ])


def endpoints_report(outputs: Mapping[str, str], region: str, app_name: str) -> str:
    agent_url = outputs.get("AgentApiUrl", "?")
    token_secret = outputs.get("DashboardTokenSecretArn", "?")
    lines = [
        f"agent API      {agent_url}",
        f"dashboard API  {outputs.get('ReplayerApiUrl', '?')}   (Authorization: Bearer <dashboard token>)",
        "dashboard token:",
        f"  aws secretsmanager get-secret-value --region {region} --secret-id {token_secret} "
        "--query SecretString --output text",
        f"logs           CloudWatch log group {outputs.get('LogGroupName', '?')}",
        "",
        "Record an app into it (npm install bardrr@2.3.1; pin rrweb as the README says), early in the app:",
        "",
    ]
    lines += ["  " + line if line else "" for line in agent_snippet(agent_url, app_name).splitlines()]
    return "\n".join(lines)


# --- command line ----------------------------------------------------------------------------------------------


@dataclass
class Target:
    stack_name: str
    session: Any
    poll_seconds: float

    def deployer(self) -> StackDeployer:
        return StackDeployer(self.session.client("cloudformation"), self.stack_name, poll_seconds=self.poll_seconds)


@contextlib.contextmanager
def aws_errors() -> Iterator[None]:
    """AWS's refusals (no credentials, no permission, a stack in a state that allows no change) as one-line
    errors that name the cause, not tracebacks."""
    try:
        yield
    except ClientError as exc:
        error = exc.response.get("Error", {})
        message = f"AWS refused {exc.operation_name}: {error.get('Code')}: {error.get('Message')}"
        raise click.ClickException(message) from None
    except BotoCoreError as exc:
        raise click.ClickException(f"AWS could not be asked: {exc}") from None


def parse_parameters(pairs: tuple[str, ...]) -> dict[str, str]:
    parameters = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise click.BadParameter(f"expected KEY=VALUE, got {pair!r}", param_hint="--parameter")
        parameters[key] = value
    return parameters


@click.group()
@click.option("--stack-name", default="bard", show_default=True, help="the CloudFormation stack")
@click.option("--region", default=None, help="AWS region (default: from the AWS configuration)")
@click.option("--profile", default=None, help="AWS profile (default: from the AWS configuration)")
@click.option("--poll-seconds", default=5.0, show_default=True, help="how often to look at the stack while waiting")
@click.pass_context
def main(ctx: click.Context, stack_name: str, region: str | None, profile: str | None, poll_seconds: float) -> None:
    """Deploy Bard to AWS ECS on Fargate with CloudFormation."""
    ctx.obj = Target(stack_name, boto3.session.Session(profile_name=profile, region_name=region), poll_seconds)


@main.command()
@click.option("--image", default=None, help="the Bard image (required the first time; kept on later runs)")
@click.option("--parameter", "-p", "pairs", multiple=True, metavar="KEY=VALUE",
              help="any parameter of stack.yaml, e.g. -p AgentApiDesiredCount=2 -p CertificateArn=arn:...")
@click.option("--template", type=click.Path(exists=True, dir_okay=False, path_type=Path), default=TEMPLATE,
              show_default=True)
@click.option("--app-name", default="My App", show_default=True, help="appName in the printed bardrr snippet")
@click.pass_obj
def deploy(target: Target, image: str | None, pairs: tuple[str, ...], template: Path, app_name: str) -> None:
    """Create the stack, or update it to this template and these parameters."""
    parameters = parse_parameters(pairs)
    if image:
        parameters["BardImage"] = image
    deployer = target.deployer()
    with aws_errors():
        if "BardImage" not in parameters and deployer.describe() is None:
            raise click.UsageError("the first deploy needs --image (the Bard image, e.g. an ECR repository URI:tag)")
        try:
            stack = deployer.deploy(template.read_text(), parameters)
        except DeployError as exc:
            raise click.ClickException(f"{exc}. The events above say which resource failed and why.") from None
    click.echo("")
    click.echo(endpoints_report(deployer.outputs(stack), target.session.region_name, app_name))


@main.command()
@click.pass_obj
def status(target: Target) -> None:
    """Show the stack, its endpoints and its ECS services."""
    with aws_errors():
        show_status(target)


def show_status(target: Target) -> None:
    deployer = target.deployer()
    stack = deployer.describe()
    if stack is None:
        raise click.ClickException(f"there is no stack {target.stack_name}")
    click.echo(f"stack {target.stack_name}: {stack['StackStatus']}")
    outputs = deployer.outputs(stack)
    for key in sorted(outputs):
        click.echo(f"  {key:<24} {outputs[key]}")
    cluster, services = outputs.get("ClusterName"), deployer.resources("AWS::ECS::Service")
    if cluster and services:
        ecs = target.session.client("ecs")
        click.echo("services (running/desired):")
        for i in range(0, len(services), 10):  # describe_services takes ten at a time
            for service in ecs.describe_services(cluster=cluster, services=services[i:i + 10])["services"]:
                rollout = next((d.get("rolloutState", "") for d in service.get("deployments", [])
                                if d.get("status") == "PRIMARY"), "")
                click.echo(f"  {service['serviceName']:<48} {service.get('runningCount', 0)}/"
                           f"{service.get('desiredCount', 0)}  {rollout}".rstrip())


@main.command()
@click.option("--delete-data", is_flag=True, help="also delete the EFS file system holding the databases' data")
@click.option("--yes", is_flag=True, help="do not ask for confirmation")
@click.pass_obj
def destroy(target: Target, delete_data: bool, yes: bool) -> None:
    """Delete the stack (the databases' data is kept unless --delete-data)."""
    with aws_errors():
        destroy_stack(target, delete_data, yes)


def destroy_stack(target: Target, delete_data: bool, yes: bool) -> None:
    deployer = target.deployer()
    stack = deployer.describe()
    if stack is None:
        click.echo(f"there is no stack {target.stack_name}: nothing to destroy")
        return
    file_system = deployer.outputs(stack).get("FileSystemId")
    what = "the stack and ALL its data" if delete_data else "the stack (its data is kept)"
    if not yes:
        click.confirm(f"Delete {what}: {target.stack_name} in {target.session.region_name}?", abort=True)
    try:
        deployer.delete()
    except DeployError as exc:
        raise click.ClickException(f"{exc}. The events above say which resource could not be deleted.") from None
    if not file_system:
        return
    if delete_data:
        efs = target.session.client("efs")
        try:
            efs.delete_file_system(FileSystemId=file_system)
        except efs.exceptions.FileSystemNotFound:
            pass
        click.echo(f"deleted the EFS file system {file_system}")
    else:
        click.echo(f"kept the EFS file system {file_system} with the databases' data (and its backups); delete it "
                   f"with: aws efs delete-file-system --region {target.session.region_name} "
                   f"--file-system-id {file_system}")


if __name__ == "__main__":
    main()
