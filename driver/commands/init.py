"""``mirrorcast init``: write a commented stack file for one's own pool, then say what to do next.

The answers (flags, or prompts for the ones not given on a terminal) pick the cloud, region,
mirror location, balancer kind and metrics source; everything a person must still fill in
(image, network IDs, DNS zone) is written with a ``# REPLACE`` comment and a value of the right
shape. The text is validated with the config model before anything is written, so ``init`` never
leaves a stack file that ``mirrorcast plan`` would refuse.
"""

from __future__ import annotations

import functools
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

import typer

from driver.commands._common import out_console, project_root, user_errors

__all__ = ["StackAnswers", "register", "stack_text"]

logger = logging.getLogger(__name__)

CLOUDS = ("aws", "azure", "gcp")
BALANCERS = (
    "route53",
    "alb",
    "azure_traffic_manager",
    "azure_front_door",
    "gcp_cloud_dns",
    "gcp_url_map",
)
SOURCES = ("prometheus", "cloudwatch", "azure_monitor", "gcp_monitoring", "file")

_DEFAULT_REGION = {"aws": "us-east-1", "azure": "westeurope", "gcp": "europe-west1"}
_MACHINE = {"aws": "t3.medium", "azure": "Standard_D2s_v5", "gcp": "e2-standard-4"}
_PAUSED = {"aws": "stopped", "azure": "deallocated", "gcp": "suspended"}
_SOURCE_FOR = {"aws": "cloudwatch", "azure": "azure_monitor", "gcp": "gcp_monitoring"}
# Which extra installs the source's client library (pyproject.toml [project.optional-dependencies]).
SOURCE_EXTRA = {
    "prometheus": None,
    "file": None,
    "cloudwatch": None,  # boto3 is a base dependency
    "azure_monitor": "clouds",
    "gcp_monitoring": "clouds",
}


@dataclass(frozen=True)
class StackAnswers:
    """What ``init`` asks; see :func:`stack_text`."""

    stack: str
    pool: str
    cloud: str
    region: str
    mirror_cloud: str
    mirror_region: str
    balancer: str
    metrics: str
    prometheus_url: str = "http://prometheus.monitoring.svc:9090"


def default_balancer(*, cloud: str, mirror_cloud: str, same_region: bool) -> str:
    """A balancer kind the config model accepts for this placement (DNS weighting across)."""
    if cloud != mirror_cloud:
        return (
            "route53"
            if cloud == "aws"
            else f"{cloud}_cloud_dns"
            if cloud == "gcp"
            else "azure_traffic_manager"
        )
    if cloud == "aws":
        return "alb" if same_region else "route53"
    if cloud == "gcp":
        return "gcp_url_map"
    return "azure_front_door" if same_region else "azure_traffic_manager"


def _image(cloud: str, region: str) -> tuple[str, str]:
    if cloud == "aws":
        return f"aws:{region}", "ami-0123456789abcdef0"
    if cloud == "gcp":
        return "gcp", "projects/PROJECT/global/images/IMAGE"
    return (
        "azure",
        "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/images/providers/"
        "Microsoft.Compute/galleries/GALLERY/images/IMAGE/versions/1.0.0",
    )


def _network(cloud: str, region: str, indent: str) -> str:
    if cloud == "aws":
        return (
            f"{indent}vpc_id: vpc-0123456789abcdef0  # REPLACE: the VPC in {region}\n"
            f"{indent}subnet_ids: [subnet-0123456789abcdef0]  # REPLACE: its subnets\n"
        )
    if cloud == "gcp":
        return (
            f"{indent}network: projects/PROJECT/global/networks/NETWORK  # REPLACE\n"
            f"{indent}subnetwork: projects/PROJECT/regions/{region}/subnetworks/SUBNET  # REPLACE\n"
        )
    return (
        f"{indent}resource_group: RESOURCE-GROUP  # REPLACE\n"
        f"{indent}subnet_id: /subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/"
        "RESOURCE-GROUP/providers/Microsoft.Network/virtualNetworks/VNET/subnets/SUBNET  # REPLACE\n"
    )


def _provider(answers: StackAnswers) -> str:
    # The Pulumi providers' own config keys for the default region.
    if answers.cloud == "aws":
        return f"  aws:region: {answers.region}\n"
    if answers.cloud == "gcp":
        return f"  gcp:project: PROJECT  # REPLACE\n  gcp:region: {answers.region}\n"
    return f"  azure-native:location: {answers.region}\n"


def _metrics(answers: StackAnswers) -> str:
    kind = answers.metrics
    if kind == "prometheus":
        return (
            "  mirrorcast:metrics:\n"
            "    type: prometheus\n"
            f"    url: {answers.prometheus_url}  # REPLACE if your Prometheus is elsewhere\n"
        )
    if kind == "cloudwatch":
        return f"  mirrorcast:metrics:\n    type: cloudwatch\n    region: {answers.region}\n"
    if kind == "azure_monitor":
        return (
            "  mirrorcast:metrics:\n"
            "    type: azure_monitor\n"
            "    # REPLACE: the primary's scale set\n"
            "    resource_id: /subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/"
            f"RESOURCE-GROUP/providers/Microsoft.Compute/virtualMachineScaleSets/{answers.pool}-primary\n"
        )
    if kind == "gcp_monitoring":
        return "  mirrorcast:metrics:\n    type: gcp_monitoring\n    project: PROJECT  # REPLACE\n"
    return (
        "  mirrorcast:metrics:\n"
        "    type: file  # a CSV recording: timestamp, pool, metric, value\n"
        f"    path: metrics/{answers.stack}.csv  # REPLACE: relative to the project root\n"
    )


def _cpu_query(answers: StackAnswers) -> str:
    # What each source understands as "the pool's cpu" (docs/sources.md).
    if answers.metrics == "prometheus":
        return (
            "          query: >-\n"
            f'            100 * (1 - avg(rate(node_cpu_seconds_total{{mode="idle",pool="{answers.pool}"}}[5m])))\n'
        )
    if answers.metrics == "cloudwatch":
        return (
            "          query: AWS/EC2/CPUUtilization\n"
            f"          dimensions: {{AutoScalingGroupName: {answers.pool}-primary}}  # REPLACE\n"
        )
    if answers.metrics == "azure_monitor":
        return "          query: Percentage CPU\n"
    if answers.metrics == "gcp_monitoring":
        return "          query: compute.googleapis.com/instance/cpu/utilization\n"
    return ""


def stack_text(answers: StackAnswers) -> str:
    """The commented stack file for ``answers`` (validate with ``infra.config.config_from_text``)."""
    same_cloud = answers.mirror_cloud == answers.cloud
    same_region = same_cloud and answers.mirror_region == answers.region
    key, image = _image(answers.cloud, answers.region)
    images = f"            {key}: {image}  # REPLACE: the image your primary runs\n"
    mirror_key, mirror_image = _image(answers.mirror_cloud, answers.mirror_region)
    if mirror_key != key:
        images += (
            f"            {mirror_key}: {mirror_image}  # REPLACE: the same app for the mirror\n"
        )
    location = ""
    if not same_cloud:
        location = f"        location: {{cloud: {answers.mirror_cloud}, region: {answers.mirror_region}}}\n"
    elif not same_region:
        location = f"        location: {{region: {answers.mirror_region}}}\n"
    mirror_extra = ""
    if not same_cloud:
        mirror_extra += f"        machine_type: {_MACHINE[answers.mirror_cloud]}\n"
    if not same_region:
        mirror_extra += "        network:\n" + _network(
            answers.mirror_cloud, answers.mirror_region, "          "
        )
    balancer = f"        kind: {answers.balancer}\n"
    if answers.balancer in ("route53", "azure_traffic_manager", "gcp_cloud_dns"):
        balancer += (
            "        dns:\n"
            "          zone: ZONE-ID  # REPLACE: the hosted zone (Route 53 id, Traffic Manager "
            "profile, Cloud DNS zone)\n"
            f"          name: {answers.pool}.example.com  # REPLACE: the name clients resolve\n"
            "          ttl: 60s\n"
        )
    return (
        f"# Stack {answers.stack}, written by `mirrorcast init`. Every '# REPLACE' marks a value\n"
        "# of the right shape that must become yours before `pulumi up`; `mirrorcast plan` works\n"
        "# as soon as the metrics source answers. Reference: docs/ and stacks/schema.json.\n"
        "config:\n" + _provider(answers) + "  mirrorcast:tags:\n"
        "    cost-center: CHANGE-ME  # required by the policy pack (policy.required_tags)\n"
        + _metrics(answers)
        + "  mirrorcast:forecast:\n"
        "    horizon: 1h    # how far ahead rules look\n"
        "    history: 14d   # how much history the models learn from (two weeks: daily cycles)\n"
        "  mirrorcast:driver:\n"
        "    mode: plan     # plan changes nothing; apply runs pulumi up; gitops opens pull requests\n"
        "    interval: 5m\n"
        "  mirrorcast:pools:\n"
        f"    {answers.pool}:\n"
        "      primary:\n"
        f"        cloud: {answers.cloud}\n"
        f"        region: {answers.region}\n"
        f"        machine_type: {_MACHINE[answers.cloud]}\n"
        "        app:\n"
        "          version: 1.0.0\n"
        "          images:\n" + images + "        capacity: {min: 2, max: 10, desired: 2}\n"
        "        network:\n"
        + _network(answers.cloud, answers.region, "          ")
        + "      mirror:\n"
        "        percent: 50          # the mirror's size, % of the primary\n"
        + location
        + mirror_extra
        + "        state: paused\n"
        f"        paused: {{strategy: warm_pool, instance_state: {_PAUSED[answers.mirror_cloud]}}}\n"
        "      balancer:\n" + balancer + "        weights: {primary: 100, mirror: 0}\n"
        "      metrics:\n"
        "        cpu:\n"
        "          kind: resource\n"
        "          unit: percent\n" + _cpu_query(answers) + "      rules:\n"
        "        # Predictive: act when the p90 forecast crosses 80% in the next 30 minutes.\n"
        "        - name: predicted-cpu\n"
        "          when: predicted(cpu, p90) > 80% within 30m\n"
        "          weight: 10\n"
        "          actions:\n"
        "            - type: activate_mirror\n"
        "            - type: shift_weights\n"
        "              mirror: 30\n"
        "              ramp: {mode: gradual, steps: 3, over: 15m}\n"
        "        # Reactive: if it is already hot, switch half the traffic at once.\n"
        "        - name: cpu-now\n"
        "          when: current(cpu) > 90% for 5m\n"
        "          weight: 5\n"
        "          actions:\n"
        "            - type: activate_mirror\n"
        "            - type: shift_weights\n"
        "              mirror: 50\n"
        "              ramp: {mode: immediate}\n"
        "      guardrails:\n"
        "        max_activations_per_day: 4\n"
        "        cooldown: 15m\n"
        "        rollback_grace: 30m\n"
    )


def _ask(value: str | None, prompt: str, *, choices: tuple[str, ...] | None, default: str) -> str:
    if value is not None:
        return value
    import sys

    if not sys.stdin.isatty():
        return default
    shown = f"{prompt} ({'/'.join(choices)})" if choices else prompt
    answer: str = typer.prompt(shown, default=default)
    return answer


def register(app: typer.Typer) -> None:
    @app.command("init")
    def init(
        stack: Annotated[str, typer.Option("--stack", help="Name of the new stack.")],
        pool: Annotated[str, typer.Option("--pool", help="Name of the pool.")] = "web",
        cloud: Annotated[str | None, typer.Option("--cloud", help="aws, azure or gcp.")] = None,
        region: Annotated[
            str | None, typer.Option("--region", help="The primary's region.")
        ] = None,
        mirror_cloud: Annotated[
            str | None,
            typer.Option("--mirror-cloud", help="The mirror's cloud; default the primary's."),
        ] = None,
        mirror_region: Annotated[
            str | None,
            typer.Option("--mirror-region", help="The mirror's region; default the primary's."),
        ] = None,
        balancer: Annotated[
            str | None,
            typer.Option(
                "--balancer", help=f"One of {', '.join(BALANCERS)}; default fits the placement."
            ),
        ] = None,
        metrics: Annotated[
            str | None,
            typer.Option(
                "--metrics", help=f"One of {', '.join(SOURCES)}; default the cloud's own."
            ),
        ] = None,
        prometheus_url: Annotated[
            str, typer.Option("--prometheus-url", help="With --metrics prometheus.")
        ] = "http://prometheus.monitoring.svc:9090",
        force: Annotated[
            bool, typer.Option("--force", help="Overwrite an existing stack file.")
        ] = False,
    ) -> None:
        """Write stacks/Pulumi.<stack>.yaml for your own pool (flags, or prompts) and say what next."""
        from driver.executor import DriverError
        from infra.config import config_from_text, stack_file_path

        chosen_cloud = _ask(cloud, "primary cloud", choices=CLOUDS, default="aws")
        _check("--cloud", chosen_cloud, CLOUDS)
        chosen_region = _ask(
            region, "primary region", choices=None, default=_DEFAULT_REGION[chosen_cloud]
        )
        chosen_mirror_cloud = _ask(
            mirror_cloud, "mirror cloud", choices=CLOUDS, default=chosen_cloud
        )
        _check("--mirror-cloud", chosen_mirror_cloud, CLOUDS)
        chosen_mirror_region = _ask(
            mirror_region,
            "mirror region",
            choices=None,
            default=chosen_region
            if chosen_mirror_cloud == chosen_cloud
            else _DEFAULT_REGION[chosen_mirror_cloud],
        )
        same_region = chosen_mirror_cloud == chosen_cloud and chosen_mirror_region == chosen_region
        chosen_balancer = _ask(
            balancer,
            "balancer kind",
            choices=BALANCERS,
            default=default_balancer(
                cloud=chosen_cloud, mirror_cloud=chosen_mirror_cloud, same_region=same_region
            ),
        )
        _check("--balancer", chosen_balancer, BALANCERS)
        chosen_metrics = _ask(
            metrics, "metrics source", choices=SOURCES, default=_SOURCE_FOR[chosen_cloud]
        )
        _check("--metrics", chosen_metrics, SOURCES)
        answers = StackAnswers(
            stack=stack,
            pool=pool,
            cloud=chosen_cloud,
            region=chosen_region,
            mirror_cloud=chosen_mirror_cloud,
            mirror_region=chosen_mirror_region,
            balancer=chosen_balancer,
            metrics=chosen_metrics,
            prometheus_url=prometheus_url,
        )
        with user_errors():
            root = project_root()
            path = stack_file_path(stack, root)
            if path.exists() and not force:
                raise DriverError(f"{path} exists; choose another --stack or pass --force")
            text = stack_text(answers)
            # The model is the judge: a combination it refuses (say alb across regions) is reported
            # with every problem at once, and nothing is written.
            config_from_text(text, source=f"{path} (not written)")
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
        _next_steps(path, answers, root)


def _check(option: str, value: str, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        raise typer.BadParameter(f"{value!r} is not one of {', '.join(allowed)}", param_hint=option)


def _next_steps(path: Path, answers: StackAnswers, root: Path) -> None:
    extra = SOURCE_EXTRA[answers.metrics]
    relative = path.relative_to(root) if path.is_relative_to(root) else path
    # markup off: "[clouds]" is an extra's name, not Rich markup.
    say = functools.partial(out_console.print, highlight=False, markup=False)
    say(f"wrote {relative}")
    say("next:")
    say(f"  1. replace every '# REPLACE' value in {relative} (image, network, DNS zone)")
    if extra is not None:
        say(
            f"  2. install the {answers.metrics} client: pip install -e '.[{extra}]' "
            "(and credentials the usual way for that cloud)"
        )
    else:
        say(f"  2. make sure the {answers.metrics} source answers from here")
    say(f"  3. mirrorcast plan --stack {answers.stack}   (forecasts and decides; changes nothing)")
