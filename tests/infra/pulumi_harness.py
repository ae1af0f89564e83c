"""Run the real Pulumi program under Pulumi's mocks and record every resource it registers.

Imported by the infra tests as ``pulumi_harness`` (pytest puts this directory on ``sys.path``).

Each run gets its own event loop and a reset runtime (root stack, settings, config), because the
Pulumi SDK keeps those in module globals and context variables that would otherwise leak from one
test into the next.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import os
import runpy
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pulumi
import pulumi.runtime
import pytest
from pulumi.runtime import settings as pulumi_settings
from pulumi.runtime.mocks import MockMonitor
from ruamel.yaml import YAML

REPO = Path(__file__).resolve().parents[2]
STACKS = REPO / "stacks"
EXAMPLE_STACKS = ("demo", "gcp-web", "azure-api", "multicloud")
PASSWORD = "correct-horse-battery-staple"
SSH_PUBLIC_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIFixtureKeyForTestsOnly mirrorcast@test"


@dataclass
class Registered:
    """One resource the program declared."""

    type: str
    name: str
    inputs: dict[str, Any]
    provider: str
    parent: str
    ignore_changes: list[str]
    custom: bool


class RecordingMocks(pulumi.runtime.Mocks):
    """Answers like a cloud would, with the computed outputs the program reads."""

    def __init__(self) -> None:
        self.calls: list[str] = []

    def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str | None, dict]:
        state = dict(args.inputs)
        # Like the bridged providers' auto-naming: the logical name plus "-" and 7 characters
        # that differ per stack (random in a real deployment, stable here).
        auto = auto_name(pulumi.get_stack(), args.name)
        state.setdefault("name", auto if _bridged(args.typ) else args.name)
        state.setdefault("arn", f"arn:mock:{args.typ}:{args.name}")
        state.setdefault("selfLink", f"https://mock.googleapis.com/{args.name}")
        state.setdefault("selfLinkUnique", f"https://mock.googleapis.com/{args.name}?id=1")
        typ = args.typ
        if typ in ("aws:lb/loadBalancer:LoadBalancer", "aws:lb/targetGroup:TargetGroup"):
            # Computed by AWS at creation; aws_apply maps it to moto's real ARN's suffix.
            state.setdefault("arnSuffix", f"arnsuffix:mock:{args.typ}:{args.name}")
        if typ == "aws:lb/loadBalancer:LoadBalancer":
            state["dnsName"] = f"{args.name}.elb.mock.amazonaws.com"
            state["zoneId"] = "ZMOCKELB"
        elif typ in ("gcp:compute/globalAddress:GlobalAddress", "gcp:compute/address:Address"):
            state["address"] = "203.0.113.10" if "primary" in args.name else "203.0.113.20"
        elif typ == "gcp:compute/regionInstanceGroupManager:RegionInstanceGroupManager":
            state["instanceGroup"] = f"https://mock.googleapis.com/instanceGroups/{args.name}"
        elif typ == "azure-native:network:PublicIPAddress":
            label = args.inputs.get("dnsSettings", {}).get("domainNameLabel", args.name)
            state["ipAddress"] = "198.51.100.10" if "primary" in args.name else "198.51.100.20"
            state["dnsSettings"] = {"domainNameLabel": label, "fqdn": f"{label}.mock.azure.com"}
        elif typ == "azure-native:cdn:AFDEndpoint":
            state["hostName"] = f"{args.name}.azurefd.net"
        return f"{args.name}-id", state

    def call(self, args: pulumi.runtime.MockCallArgs) -> tuple[dict, list]:
        self.calls.append(args.token)
        if args.token == "azure-native:authorization:getClientConfig":
            return {
                "subscriptionId": "00000000-0000-0000-0000-000000000000",
                "tenantId": "11111111-1111-1111-1111-111111111111",
                "clientId": "mock",
                "objectId": "mock",
            }, []
        return {}, []


def auto_name(stack: str, logical: str) -> str:
    """The physical name the mocks give an auto-named AWS/GCP resource (like the providers:
    the logical name, "-" and 7 characters that differ per stack)."""
    return f"{logical}-{hashlib.sha256(f'{stack}/{logical}'.encode()).hexdigest()[:7]}"


def _bridged(typ: str) -> bool:
    return typ.startswith(("aws:", "gcp:")) and not typ.startswith(("aws:route53/", "gcp:dns/"))


class RecordingMonitor(MockMonitor):
    """The mocks' monitor, also keeping what the mocks API does not pass on (options)."""

    def __init__(self, mocks: RecordingMocks) -> None:
        super().__init__(mocks)
        self.registered: list[Registered] = []

    def RegisterResource(self, request: Any) -> Any:  # the gRPC method name
        if request.type != "pulumi:pulumi:Stack":
            self.registered.append(
                Registered(
                    type=request.type,
                    name=request.name,
                    inputs=json.loads(json.dumps(_plain(request.object), default=str)),
                    provider=request.provider,
                    parent=request.parent,
                    ignore_changes=list(request.ignoreChanges),
                    custom=request.custom,
                )
            )
        return super().RegisterResource(request)


def _plain(struct: Any) -> Any:
    from google.protobuf.json_format import MessageToDict

    return MessageToDict(struct)


@dataclass
class ProgramRun:
    """The resources one program run declared and the ``pools`` output it exported."""

    resources: list[Registered]
    pools: dict[str, Any]
    calls: list[str] = field(default_factory=list)
    stack: str = "test"

    def of_type(self, typ: str) -> list[Registered]:
        return [r for r in self.resources if r.type == typ]

    def one(self, typ: str, name_contains: str = "") -> Registered:
        found = [r for r in self.of_type(typ) if name_contains in r.name]
        assert len(found) == 1, (
            f"expected one {typ} named *{name_contains}*, got {[r.name for r in found]}"
        )
        return found[0]

    def types(self) -> set[str]:
        return {r.type for r in self.resources}


def stack_config(stack: str) -> dict[str, Any]:
    """The ``config:`` mapping of an example stack file, as plain data."""
    document = YAML(typ="safe").load((STACKS / f"Pulumi.{stack}.yaml").read_text())
    return dict(document["config"])


def yaml_config(text: str) -> dict[str, Any]:
    """The ``config:`` mapping of stack-file YAML text written in a test."""
    return dict(YAML(typ="safe").load(text)["config"])


def _as_pulumi_config(config: Mapping[str, Any]) -> dict[str, str]:
    # The Pulumi CLI hands structured values to the program JSON-encoded, strings as-is.
    return {
        key: value if isinstance(value, str) else json.dumps(value) for key, value in config.items()
    }


@contextlib.contextmanager
def _language_host_env(config: Mapping[str, str], secret_keys: list[str]) -> Iterator[None]:
    """The environment Pulumi's Python language host gives the program: config in PULUMI_CONFIG.

    The program reads its keys through the SDK's public ``get_config_env()``, as under the CLI.
    """
    saved = {key: os.environ.get(key) for key in ("PULUMI_CONFIG", "PULUMI_CONFIG_SECRET_KEYS")}
    os.environ["PULUMI_CONFIG"] = json.dumps(dict(config))
    os.environ["PULUMI_CONFIG_SECRET_KEYS"] = json.dumps(secret_keys)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def run_program(
    config: Mapping[str, Any],
    *,
    stack: str = "test",
    secrets: Mapping[str, str] | None = None,
    as_pulumi_does: bool = False,
) -> ProgramRun:
    """Run ``infra.__main__.main`` under mocks with ``config`` (keys like ``mirrorcast:pools``).

    :param config: the stack's config mapping.
    :param stack: the stack name the program sees.
    :param secrets: secret config values (keys like ``mirrorcast-secrets:databasePassword``).
    :param as_pulumi_does: run the ``infra/`` directory with ``runpy`` as ``__main__``, the way
        Pulumi's Python language host does, instead of calling ``main()`` (then ``pools`` is
        left empty: the mocks do not keep stack exports).
    """
    from infra.__main__ import main

    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    mocks = RecordingMocks()
    monitor = RecordingMonitor(mocks)
    captured: dict[str, Any] = {}
    try:
        pulumi_settings.reset_options(project="mirrorcast", stack=stack)
        pulumi.runtime.set_mocks(
            mocks, project="mirrorcast", stack=stack, preview=False, monitor=monitor
        )
        all_config = _as_pulumi_config(config)
        all_config.update(secrets or {})
        pulumi.runtime.set_all_config(all_config, list(secrets or {}))

        @pulumi.runtime.test
        def program() -> pulumi.Output[Any] | None:
            if as_pulumi_does:
                runpy.run_path(str(REPO / "infra"), run_name="__main__")
                return None
            return main().apply(captured.update)

        with _language_host_env(all_config, list(secrets or {})):
            program()
    finally:
        pulumi_settings.reset_options()
        pulumi.runtime.set_all_config({}, [])
        loop.close()
        asyncio.set_event_loop(None)
    return ProgramRun(resources=monitor.registered, pools=captured, calls=mocks.calls, stack=stack)


def run_failing(
    config: Mapping[str, Any], *, secrets: Mapping[str, str] | None = None
) -> tuple[pulumi.RunError, list[Registered]]:
    """Run the program expecting it to refuse the config; returns the error and what it declared."""
    from infra.__main__ import main

    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    mocks = RecordingMocks()
    monitor = RecordingMonitor(mocks)
    try:
        pulumi_settings.reset_options(project="mirrorcast", stack="test")
        pulumi.runtime.set_mocks(
            mocks, project="mirrorcast", stack="test", preview=False, monitor=monitor
        )
        all_config = _as_pulumi_config(config)
        all_config.update(secrets or {})
        pulumi.runtime.set_all_config(all_config, list(secrets or {}))

        @pulumi.runtime.test
        def program() -> pulumi.Output[Any]:
            return main()

        with (
            _language_host_env(all_config, list(secrets or {})),
            pytest.raises(pulumi.RunError) as info,
        ):
            program()
    finally:
        pulumi_settings.reset_options()
        pulumi.runtime.set_all_config({}, [])
        loop.close()
        asyncio.set_event_loop(None)
    return info.value, monitor.registered


DB_SECRET = {
    "mirrorcast-secrets:databasePassword": PASSWORD,
    "mirrorcast-secrets:azureSshPublicKey": SSH_PUBLIC_KEY,
}


_RUNS: dict[str, ProgramRun] = {}


@pytest.fixture(scope="session")
def example_runs() -> Iterator[dict[str, ProgramRun]]:
    """Each example stack run once per session (the runs are read-only for the tests)."""
    for stack in EXAMPLE_STACKS:
        if stack not in _RUNS:
            _RUNS[stack] = run_program(stack_config(stack), stack=stack, secrets=DB_SECRET)
    yield _RUNS
