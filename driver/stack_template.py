"""The stack file ``mirrorcast init`` writes, as text: one place for its placeholders.

Two readers need the same template: ``mirrorcast init`` (``driver.commands.init``) writes it for
a person to fill in, and ``driver.stack_config`` fills a half-written stack's missing keys with
its placeholders to find every problem in one round. Both import it from here, so the stack
loader does not depend on a CLI command.

:func:`fleet_stack_text` writes the other kind of stack the project builds by program: a fleet
of identical AWS pools, for the scale benchmarks (``benchmarks/scale.py``,
``benchmarks/prometheus_scale.py``) and the collection tests, which had three near-copies of it.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

__all__ = ["CLOUDS", "StackAnswers", "default_balancer", "fleet_stack_text", "stack_text"]

CLOUDS = ("aws", "azure", "gcp")

_MACHINE = {"aws": "t3.medium", "azure": "Standard_D2s_v5", "gcp": "e2-standard-4"}
_PAUSED = {"aws": "stopped", "azure": "deallocated", "gcp": "suspended"}


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


_FLEET_POOL = """\
      primary:
        cloud: aws
        region: us-east-1
        machine_type: t3.medium
        app: {version: 1.0.0, images: {aws: ami-0a1b2c3d4e5f60718}}
        capacity: {min: 2, max: 20, desired: 4}
        network: {vpc_id: vpc-0123456789abcdef0, subnet_ids: [subnet-0aa11bb22cc33dd44]}
      mirror: {percent: 50, state: paused}
      balancer: {kind: alb}
"""


def fleet_stack_text(
    *,
    pools: Iterable[str],
    metrics: str,
    pool_metrics: str,
    forecast: str = "{horizon: 1h, history: 14d}",
    driver: str = "{mode: plan, interval: 5m}",
    rules: str = "",
    tags: str | None = None,
) -> str:
    """A stack of identical AWS pools (one ALB, a paused mirror at 50%), each named in ``pools``.

    The sections are YAML flow mappings, written as given: ``metrics`` (the stack's
    ``mirrorcast:metrics``), ``pool_metrics`` (every pool's ``metrics``; ``$pool`` in a query
    is the pool's name, expanded by the source), ``forecast``, ``driver`` and ``tags``
    (``mirrorcast:tags``, left out when ``None``). ``rules`` is every pool's ``rules:`` list,
    its items indented by 8 spaces, or empty for none. Validate it with ``load_stack``.
    """
    head = "config:\n  aws:region: us-east-1\n"
    if tags is not None:
        head += f"  mirrorcast:tags: {tags}\n"
    head += (
        f"  mirrorcast:metrics: {metrics}\n"
        f"  mirrorcast:forecast: {forecast}\n"
        f"  mirrorcast:driver: {driver}\n"
        "  mirrorcast:pools:\n"
    )
    body = _FLEET_POOL + f"      metrics: {pool_metrics}\n"
    if rules:
        body += "      rules:\n" + rules
    return head + "".join(f"    {name}:\n" + body for name in pools)
