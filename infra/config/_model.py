"""The configuration contract: one pydantic model of everything in ``mirrorcast:*`` stack config.

The Pulumi program declares resources from it, the rule engine and planner read
and produce it, the driver diffs and writes it, and the tests build it. Every
field the driver may change (mirror state, balancer weights, the primary's
capacity) lives here, so any change mirrorcast makes is a reviewable diff of
``stacks/Pulumi.<stack>.yaml``.

Stack file layout: each top-level field of :class:`MirrorcastConfig` is one
Pulumi config key in the ``mirrorcast`` namespace, for example
``mirrorcast:pools`` or ``mirrorcast:forecast``.
"""

from __future__ import annotations

import math
import re
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Annotated, Any, ClassVar, Literal, Self

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_core import InitErrorDetails, PydanticCustomError

from infra.config._durations import Duration, format_duration, parse_duration
from infra.config._rule_checks import check_pool_rules, check_rule_quantiles
from infra.config._secrets import NAMES_SECRET_ENV

__all__ = [
    "OUTPUT_REFERENCE",
    "WEIGHT_RANGES",
    "ActionDirection",
    "ActionLead",
    "ActionSpec",
    "ActivateMirrorAction",
    "ActivationRecord",
    "AppSpec",
    "AzureMonitorSource",
    "AzureSettings",
    "BalancerKind",
    "BalancerSpec",
    "CalibrationSettings",
    "Capacity",
    "Cloud",
    "CloudWatchSource",
    "CostGuardrail",
    "DatabaseSpec",
    "DnsSpec",
    "DriverRecord",
    "DriverSettings",
    "EventsSpec",
    "FileSource",
    "ForecastSettings",
    "GcpMonitoringSource",
    "GitOpsSettings",
    "Guardrails",
    "MetricSourceSpec",
    "MetricSpec",
    "MirrorLocation",
    "MirrorSpec",
    "MirrorState",
    "MirrorcastConfig",
    "NetworkSpec",
    "NotifyAction",
    "NotifySettings",
    "OriginalKeys",
    "PausedSpec",
    "PolicySettings",
    "PoolSpec",
    "PrimarySpec",
    "ProductWeight",
    "PrometheusSource",
    "RampSpec",
    "RollbackAction",
    "RuleAction",
    "RuleSpec",
    "ScalePrimaryAction",
    "SecurityRule",
    "ShiftWeightsAction",
    "SyncSpec",
    "UntrustedProfileSettings",
    "Weights",
    "product_weight",
]


class _Model(BaseModel):
    """Base for every config section: unknown keys are errors, so typos are caught at load."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


def _between(low: float, high: float) -> Any:
    def check(value: float) -> float:
        if not (low <= value <= high) or (isinstance(value, float) and math.isnan(value)):
            lo = int(low) if float(low).is_integer() else low
            hi = int(high) if float(high).is_integer() else high
            raise ValueError(f"must be between {lo} and {hi}, got {value:g}")
        return value

    return AfterValidator(check)


Percent = Annotated[float, _between(0, 100)]
"""A percentage from 0 to 100 inclusive."""

Share = Annotated[int, _between(0, 100)]
"""An integer percentage of traffic, 0 to 100."""


class Cloud(StrEnum):
    """The clouds mirrorcast declares resources in."""

    aws = "aws"
    azure = "azure"
    gcp = "gcp"


class MirrorState(StrEnum):
    """Whether a mirror sits paused (not serving, storage kept) or runs and may take traffic."""

    paused = "paused"
    active = "active"


# --------------------------------------------------------------------------- pools


class Capacity(_Model):
    """Instance counts of a pool. ``min <= desired <= max`` always holds."""

    min: int = Field(
        ge=0,
        description="Floor. The driver raises this when a cloud autoscaler also manages the pool.",
    )
    max: int = Field(ge=1, description="Ceiling; no plan may exceed it.")
    desired: int = Field(ge=0, description="Instances wanted now.")

    @model_validator(mode="after")
    def _ordered(self) -> Self:
        if self.min > self.max:
            raise ValueError(f"min ({self.min}) must not exceed max ({self.max})")
        if not (self.min <= self.desired <= self.max):
            raise ValueError(
                f"desired ({self.desired}) must be between min ({self.min}) and max ({self.max})"
            )
        return self


class NetworkSpec(_Model):
    """Where instances of one location attach. Bring your own network; mirrorcast does not own VPCs.

    AWS needs ``vpc_id`` and ``subnet_ids``; Azure needs ``resource_group`` and ``subnet_id``;
    GCP needs ``network`` and ``subnetwork``.
    """

    vpc_id: str | None = None
    subnet_ids: list[str] = Field(default_factory=list)
    resource_group: str | None = None
    subnet_id: str | None = None
    network: str | None = None
    subnetwork: str | None = None

    def check_for(self, cloud: Cloud) -> None:
        """Raise ``ValueError`` naming the missing fields for ``cloud``."""
        needed = {
            Cloud.aws: ("vpc_id", "subnet_ids"),
            Cloud.azure: ("resource_group", "subnet_id"),
            Cloud.gcp: ("network", "subnetwork"),
        }[cloud]
        missing = [name for name in needed if not getattr(self, name)]
        if missing:
            raise ValueError(f"a {cloud.value} network needs {', '.join(missing)}")


class AppSpec(_Model):
    """The application build both sides run: one version, one machine image per location.

    ``images`` is keyed by ``"<cloud>:<region>"`` or by ``"<cloud>"`` for images valid in every
    region of that cloud (GCP images are global; AWS AMIs are regional).
    """

    version: str = Field(
        min_length=1, description="Application version deployed on primary and mirror."
    )
    images: dict[str, str] = Field(
        min_length=1, description="Image per location, built from `version`."
    )

    def image_for(self, cloud: Cloud, region: str) -> str | None:
        """The image for a location, preferring the region-specific entry."""
        return self.images.get(f"{cloud.value}:{region}") or self.images.get(cloud.value)


class PrimarySpec(_Model):
    """The pool that serves traffic today."""

    cloud: Cloud
    region: str = Field(min_length=1, description="AWS region, Azure location or GCP region.")
    machine_type: str = Field(min_length=1)
    app: AppSpec
    capacity: Capacity
    native_autoscaling: bool = Field(
        default=True,
        description=(
            "A cloud autoscaler also manages desired capacity. The driver then raises the floor "
            "(capacity.min) instead of fighting the autoscaler over desired capacity."
        ),
    )
    autoscaler_target: Annotated[float, _between(10, 95)] = Field(
        default=60,
        description=(
            "Utilisation (percent of an instance's capacity, CPU on the clouds' autoscalers) "
            "the cloud's target-tracking autoscaler holds a native_autoscaling primary at. "
            "Reactive setups keep it low for headroom; with a predictive floor covering "
            "forecast rises a pool can run it higher (docs/backtest.md)."
        ),
    )
    network: NetworkSpec = Field(default_factory=NetworkSpec)
    instance_hourly_cost: float | None = Field(
        default=None, ge=0, description="Price of one instance-hour, for the cost cap."
    )

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        if self.app.image_for(self.cloud, self.region) is None:
            raise ValueError(
                f"app.images has no image for {self.cloud.value}:{self.region} "
                f"(add a key '{self.cloud.value}:{self.region}' or '{self.cloud.value}')"
            )
        return self


class MirrorLocation(_Model):
    """Where the mirror lives. Omitted fields default to the primary's cloud and region."""

    cloud: Cloud | None = None
    region: str | None = None


class PausedSpec(_Model):
    """How a paused mirror sits.

    - ``scale_to_zero``: the group runs no instances; activation launches fresh ones
      (as slow as a primary scale-up).
    - ``warm_pool``: instances exist but are stopped (AWS warm pool: Stopped or Hibernated;
      Azure standby pool: Deallocated; GCP MIG standby policy: stopped or suspended). Disks stay
      allocated, so activation only starts them.
    """

    strategy: Literal["scale_to_zero", "warm_pool"] = "warm_pool"
    instance_state: Literal["stopped", "hibernated", "deallocated", "suspended"] | None = Field(
        default=None,
        description="State of warm instances; defaults to stopped (AWS, GCP) or deallocated (Azure).",
    )

    def state_for(self, cloud: Cloud) -> str:
        """The warm-instance state for ``cloud``, defaulted and validated."""
        allowed = {
            Cloud.aws: ("stopped", "hibernated"),
            Cloud.azure: ("deallocated",),
            Cloud.gcp: ("stopped", "suspended"),
        }[cloud]
        state = self.instance_state or allowed[0]
        if state not in allowed:
            raise ValueError(
                f"instance_state {state!r} is not available on {cloud.value}; use one of {', '.join(allowed)}"
            )
        return state


class MirrorSpec(_Model):
    """A paused or active copy of a percentage of the primary."""

    percent: Percent = Field(
        description="Share of the primary's desired capacity to mirror, 0-100."
    )
    location: MirrorLocation = Field(default_factory=MirrorLocation)
    state: MirrorState = MirrorState.paused
    paused: PausedSpec = Field(default_factory=PausedSpec)
    machine_type: str | None = Field(
        default=None,
        description="Machine type in the mirror's cloud; required when it differs from the primary's.",
    )
    network: NetworkSpec | None = Field(
        default=None, description="Defaults to the primary's when in the same region."
    )
    ready_time: Duration | None = Field(
        default=None,
        description="Measured or configured time from activation to serving; defaults from the paused strategy.",
    )
    health_timeout: Duration = Field(
        default=parse_duration("15m"),
        description=(
            "How long a ramp step may keep waiting for enough healthy mirror targets (as the "
            "balancer reports them) for its share; past it the activation is rolled back and a "
            "notification sent. Keep it above the mirror's ready time."
        ),
    )


class DnsSpec(_Model):
    """A DNS name for DNS-level weighting (Route 53, Traffic Manager, Cloud DNS)."""

    zone: str = Field(
        min_length=1, description="Hosted zone / managed zone (ID or name, per product)."
    )
    name: str = Field(min_length=1, description="Record name, for example www.example.com.")
    ttl: Duration = Field(default=parse_duration("60s"))


class BalancerKind(StrEnum):
    """Traffic-splitting products. The first three split inside one cloud, the last three at DNS."""

    alb = "alb"
    gcp_url_map = "gcp_url_map"
    azure_front_door = "azure_front_door"
    route53 = "route53"
    azure_traffic_manager = "azure_traffic_manager"
    gcp_cloud_dns = "gcp_cloud_dns"

    @property
    def dns_level(self) -> bool:
        return self in (
            BalancerKind.route53,
            BalancerKind.azure_traffic_manager,
            BalancerKind.gcp_cloud_dns,
        )

    @property
    def cloud(self) -> Cloud:
        return {
            BalancerKind.alb: Cloud.aws,
            BalancerKind.route53: Cloud.aws,
            BalancerKind.gcp_url_map: Cloud.gcp,
            BalancerKind.gcp_cloud_dns: Cloud.gcp,
            BalancerKind.azure_front_door: Cloud.azure,
            BalancerKind.azure_traffic_manager: Cloud.azure,
        }[self]


WEIGHT_RANGES: dict[BalancerKind, tuple[int, int]] = {
    BalancerKind.alb: (0, 999),
    BalancerKind.route53: (0, 255),
    BalancerKind.gcp_url_map: (0, 1000),
    BalancerKind.gcp_cloud_dns: (0, 1000),
    BalancerKind.azure_front_door: (1, 1000),
    BalancerKind.azure_traffic_manager: (1, 1000),
}
"""Each product's accepted weight range. Front Door and Traffic Manager reject 0: disable instead."""


class ProductWeight(_Model):
    """A traffic share translated into one product's terms."""

    weight: int
    enabled: bool


def product_weight(kind: BalancerKind, share: int) -> ProductWeight:
    """Translate a 0-100 traffic share into ``kind``'s weight range.

    A zero share becomes weight 0 where the product allows it, otherwise the lowest weight
    with the endpoint disabled (Traffic Manager and Front Door cannot take weight 0).
    """
    low, high = WEIGHT_RANGES[kind]
    if share <= 0:
        return ProductWeight(weight=low, enabled=low == 0)
    scaled = round(share * high / 100)
    return ProductWeight(weight=max(low, min(high, max(1, scaled))), enabled=True)


class Weights(_Model):
    """Traffic shares in percent; they add up to 100."""

    primary: Share = 100
    mirror: Share = 0

    @model_validator(mode="after")
    def _sum(self) -> Self:
        if self.primary + self.mirror != 100:
            raise ValueError(
                f"primary + mirror must add up to 100, got {self.primary} + {self.mirror}"
            )
        return self


class BalancerSpec(_Model):
    """How traffic is split between primary and mirror, and the current split."""

    kind: BalancerKind
    weights: Weights = Field(default_factory=Weights)
    dns: DnsSpec | None = Field(default=None, description="Required for DNS-level kinds.")
    port: int = Field(default=80, ge=1, le=65535)
    health_check_path: str = "/healthz"
    certificate: str | None = Field(
        default=None,
        description=(
            "TLS certificate for an in-cloud balancer listening on 443: an ACM certificate ARN "
            "(alb) or an SSL certificate self-link (gcp_url_map)."
        ),
    )

    @model_validator(mode="after")
    def _dns(self) -> Self:
        if self.kind.dns_level and self.dns is None:
            raise ValueError(f"a {self.kind.value} balancer needs a dns section (zone, name)")
        return self


class SecurityRule(_Model):
    """An inbound rule, declared once and applied to primary and mirror alike."""

    name: str = Field(pattern=r"^[a-z][a-z0-9-]{0,40}$")
    protocol: Literal["tcp", "udp", "icmp"] = "tcp"
    ports: str = Field(
        default="443",
        pattern=r"^\d{1,5}(-\d{1,5})?$",
        description="A port or a range such as 8000-8100.",
    )
    sources: list[str] = Field(default_factory=lambda: ["0.0.0.0/0"], min_length=1)
    description: str = ""

    def port_range(self) -> tuple[int, int]:
        low, _, high = self.ports.partition("-")
        return int(low), int(high or low)


class DatabaseSpec(_Model):
    """A managed database with an optional replica in the mirror's location.

    AWS: Aurora global database; Azure: SQL geo-secondary; GCP: Cloud SQL cross-region replica.
    """

    engine: Literal["postgres", "mysql", "sqlserver"] = "postgres"
    engine_version: str = "15"
    instance_class: str = Field(min_length=1)
    replica: bool = True


class SyncSpec(_Model):
    """What is kept identical between primary and mirror (the app build comes from primary.app)."""

    security_rules: list[SecurityRule] = Field(default_factory=list)
    database: DatabaseSpec | None = None
    on_drift: Literal["report", "resync"] = Field(
        default="report",
        description=(
            "When the live mirror or primary differs from each other or from the config (image, "
            "instance type, app version, security rules): 'report' says so each cycle (degraded "
            "line, journal, metric); 'resync' also plans a `pulumi up` to bring them back."
        ),
    )


OUTPUT_REFERENCE = re.compile(r"\$\{outputs\.([A-Za-z0-9_$-]+(?:\.[A-Za-z0-9_$-]+)*)\}")
"""``${outputs.<path>}`` in a metric's dimension value: the stack output at that dotted path
(``${outputs.pools.$pool.ids.primary.target_group}``), read by the driver before it collects
(docs/architecture.md, "Stack outputs"), for names a cloud gives at deploy time."""


def check_output_references(text: str, *, what: str) -> None:
    """Refuse a ``${`` in ``text`` that is not a well-formed :data:`OUTPUT_REFERENCE`."""
    if "${" in OUTPUT_REFERENCE.sub("", text):
        raise ValueError(
            f"{what}: {text!r} has a '${{' that is not a stack output reference; write "
            "${outputs.<path>}, e.g. ${outputs.pools.$pool.ids.primary.target_group}"
        )


class MetricSpec(_Model):
    """A named metric series for a pool.

    ``query`` is what the configured source understands: a column/series name for files,
    PromQL for Prometheus, ``Namespace/MetricName`` for CloudWatch, a metric name for Azure
    Monitor, a metric type for Cloud Monitoring. It defaults to the metric's own name.
    A dimension value may name a resource the cloud names at deploy time as
    ``${outputs.<path>}``, a stack output the driver reads before collecting (docs/rules.md,
    "Region failover").
    """

    kind: Literal["resource", "application"] = "resource"
    unit: Literal["percent", "rps", "ms", "count", "bytes_per_second", "ratio"] = "percent"
    query: str | None = None
    dimensions: dict[str, str] = Field(
        default_factory=dict, description="CloudWatch dimensions / Azure filters / label matchers."
    )
    statistic: str = Field(default="Average", description="Aggregation for cloud sources.")
    resource: str | None = Field(
        default=None,
        description="Azure Monitor: the resource this metric is read from, instead of the "
        "source's resource_id; may be ${outputs.<path>}. Refused with any other source, "
        "which names resources in the dimensions.",
    )
    counter: bool = Field(
        default=False,
        description="A monotonically increasing counter; converted to a rate, resets handled.",
    )
    per_instance_capacity: float | None = Field(
        default=None,
        gt=0,
        description="What one instance serves at 100% (for rps-like metrics); lets the planner size capacity.",
    )
    max_age: Duration = Field(
        default=parse_duration("30m"),
        description="Staleness limit: when the newest observation is older than this at "
        "decision time, the series is not acted on (no rule reads it, no fresh forecast is "
        "made from it) and the cycle says so in a degraded line.",
    )
    forecast: bool = Field(
        default=True,
        description="Forecast this metric each cycle. Off for a metric only current(...) rules "
        "read (a health check): it is collected but costs no model fit.",
    )

    @field_validator("dimensions")
    @classmethod
    def _output_references(cls, value: dict[str, str]) -> dict[str, str]:
        for key, text in value.items():
            check_output_references(text, what=f"dimension {key}")
        return value

    @field_validator("resource")
    @classmethod
    def _resource_references(cls, value: str | None) -> str | None:
        if value is not None:
            check_output_references(value, what="resource")
        return value


class RampSpec(_Model):
    """How a weight change is applied: all at once, or in health-gated steps over a duration."""

    mode: Literal["gradual", "immediate"] = "gradual"
    steps: int = Field(default=4, ge=1, le=100)
    over: Duration = Field(default=parse_duration("20m"))


ActionDirection = Literal["up", "down", "none"]
"""Which way an action moves a pool: ``up`` (more capacity or mirror traffic), ``down``
(back to the remembered original), ``none`` (tells a person, changes nothing)."""

ActionLead = Literal["mirror", "primary", "none"]
"""Whose ready time an action waits for before it helps (the rule's look-ahead grows by it)."""


class RuleAction(_Model):
    """Base of the rule actions: each declares its direction and its lead, with no default.

    Conflict resolution (scaling up against rolling back) and the rule's look-ahead read these
    declarations, so a new action says how it counts where it is defined: leaving either out
    is an error when the class is created, not a silent "scale up".
    """

    direction: ClassVar[ActionDirection]
    lead: ClassVar[ActionLead]

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        for name, allowed in (
            ("direction", ("up", "down", "none")),
            ("lead", ("mirror", "primary", "none")),
        ):
            value = cls.__dict__.get(name)
            if value not in allowed:
                raise TypeError(
                    f"rule action {cls.__name__} must declare {name} as one of "
                    f"{', '.join(allowed)} (got {value!r})"
                )


class ActivateMirrorAction(RuleAction):
    direction = "up"
    lead = "mirror"
    type: Literal["activate_mirror"] = "activate_mirror"
    percent: Percent | None = Field(
        default=None, description="Override the mirror's configured percent."
    )


class ShiftWeightsAction(RuleAction):
    direction = "up"
    lead = "mirror"
    type: Literal["shift_weights"] = "shift_weights"
    mirror: Share = Field(default=50, description="Target share of traffic for the mirror.")
    ramp: RampSpec = Field(default_factory=RampSpec)


class ScalePrimaryAction(RuleAction):
    """Raise the primary: to a count, by a percentage, or to what the forecast needs."""

    direction = "up"
    lead = "primary"
    type: Literal["scale_primary"] = "scale_primary"
    to: int | None = Field(default=None, ge=0)
    by_percent: float | None = Field(default=None, gt=-100, le=1000)
    to_forecast: bool = Field(
        default=False, description="Size for the forecast at target_utilisation."
    )
    metric: str | None = Field(
        default=None, description="Metric sized against when to_forecast (default: the rule's)."
    )
    quantile: int = Field(default=90, ge=1, le=99)
    target_utilisation: Percent = 70
    autoscaler_target: Annotated[float, _between(10, 95)] | None = Field(
        default=None,
        description=(
            "With to_forecast on a native_autoscaling primary: while the floor is sized from a "
            "trusted forecast, run the cloud autoscaler at this target (it only has to catch "
            "what the forecast misses); the primary's configured autoscaler_target comes back "
            "as soon as the forecast is untrusted and on rollback. Default: leave it alone."
        ),
    )
    untrusted_utilisation: Annotated[float, _between(10, 100)] | None = Field(
        default=None,
        description=(
            "With to_forecast: when the forecast cannot size the floor (untrusted, stale or "
            "missing), size it for the metric's current level (mean over the last driver "
            "interval) at this utilisation instead of holding it: reactive headroom until the "
            "forecast is trusted again. Default: hold the floor."
        ),
    )

    @model_validator(mode="after")
    def _one(self) -> Self:
        chosen = sum([self.to is not None, self.by_percent is not None, self.to_forecast])
        if chosen != 1:
            raise ValueError("scale_primary needs exactly one of: to, by_percent, to_forecast")
        if self.untrusted_utilisation is not None and not self.to_forecast:
            raise ValueError("untrusted_utilisation only applies with to_forecast: true")
        if self.autoscaler_target is not None and not self.to_forecast:
            raise ValueError("autoscaler_target only applies with to_forecast: true")
        return self


class RollbackAction(RuleAction):
    direction = "down"
    lead = "none"
    type: Literal["rollback"] = "rollback"


class NotifyAction(RuleAction):
    direction = "none"
    lead = "none"
    type: Literal["notify"] = "notify"
    message: str = ""
    channel: str = Field(
        default="log",
        pattern=r"^(log|[A-Za-z_][A-Za-z0-9_]*)$",
        # The variable's value (the webhook URL with its token) is redacted everywhere.
        json_schema_extra=NAMES_SECRET_ENV,
        description=(
            "log, or the name of the environment variable holding the webhook URL (the URL "
            "carries the webhook's secret, so it is never written in the stack file)."
        ),
    )
    format: Literal["json", "slack"] = Field(
        default="json",
        description=(
            "Webhook payload: 'json' (stack, pool, rule, message, plan_id, decided_at, text) or "
            "'slack' (Slack-compatible incoming-webhook body: {\"text\": ...})."
        ),
    )


ActionSpec = Annotated[
    ActivateMirrorAction | ShiftWeightsAction | ScalePrimaryAction | RollbackAction | NotifyAction,
    Field(discriminator="type"),
]


class RuleSpec(_Model):
    """One scaling rule. ``when`` is written in the rule language (see docs/rules.md)."""

    name: str = Field(pattern=r"^[A-Za-z][A-Za-z0-9_-]{0,62}$")
    when: str = Field(min_length=1, max_length=4000)
    actions: list[ActionSpec] = Field(min_length=1)
    weight: float = Field(
        default=1.0, gt=0, description="Conflicts between rules firing together go to the heavier."
    )
    priority: int = Field(default=0, description="Ties in weight go to the higher priority.")
    on_untrusted: Literal["reactive", "hold", "fire"] = Field(
        default="reactive",
        description=(
            "When the forecast is marked untrustworthy: 'reactive' evaluates only the rule's "
            "current()/during() terms, 'hold' keeps the last decision, 'fire' treats the rule as fired."
        ),
    )
    enabled: bool = True


class CostGuardrail(_Model):
    instance_hourly_cost: float | None = Field(default=None, ge=0)
    max_instance_hours_per_day: float | None = Field(default=None, gt=0)
    hourly_budget: float | None = Field(
        default=None, gt=0, description="Needs instance_hourly_cost."
    )

    @model_validator(mode="after")
    def _budget(self) -> Self:
        if self.hourly_budget is not None and self.instance_hourly_cost is None:
            raise ValueError("hourly_budget needs instance_hourly_cost")
        return self


class Guardrails(_Model):
    """Limits every plan honours."""

    max_activations_per_day: int = Field(default=4, ge=0)
    cooldown: Duration = Field(
        default=parse_duration("15m"), description="Minimum time between opposite actions."
    )
    hysteresis: Percent = Field(
        default=5, description="Points below a threshold a value must fall before a rule clears."
    )
    primary_ready_time: Duration = Field(default=parse_duration("5m"))
    rollback_grace: Duration = Field(
        default=parse_duration("30m"),
        description="Time without the predicted demand before rolling back.",
    )
    cost: CostGuardrail = Field(default_factory=CostGuardrail)
    feedback_tolerance: Percent = Field(
        default=25,
        description=(
            "After an activation, realised demand this many percent below the forecast's median "
            "counts as 'well below' (weights ramp down, the floor is lowered)."
        ),
    )


class PoolSpec(_Model):
    """A resource pool: primary, mirror, balancer, what is synchronised, metrics and rules."""

    primary: PrimarySpec
    mirror: MirrorSpec
    balancer: BalancerSpec
    sync: SyncSpec = Field(default_factory=SyncSpec)
    metrics: dict[str, MetricSpec] = Field(default_factory=lambda: {"cpu": MetricSpec()})
    rules: list[RuleSpec] = Field(default_factory=list)
    rules_file: str | None = Field(
        default=None, description="A YAML file of further rules, relative to the stack file."
    )
    guardrails: Guardrails = Field(default_factory=Guardrails)

    # ---- derived views used by the program, the planner and the driver

    @property
    def mirror_cloud(self) -> Cloud:
        return self.mirror.location.cloud or self.primary.cloud

    @property
    def mirror_region(self) -> str:
        return self.mirror.location.region or self.primary.region

    @property
    def mirror_placement(self) -> Literal["same-region", "cross-region", "cross-cloud"]:
        if self.mirror_cloud != self.primary.cloud:
            return "cross-cloud"
        return "same-region" if self.mirror_region == self.primary.region else "cross-region"

    @property
    def mirror_machine_type(self) -> str:
        return self.mirror.machine_type or self.primary.machine_type

    @property
    def mirror_network(self) -> NetworkSpec:
        return self.mirror.network or self.primary.network

    @property
    def mirror_image(self) -> str:
        image = self.primary.app.image_for(self.mirror_cloud, self.mirror_region)
        assert image is not None, "validated at load"
        return image

    @property
    def mirror_size(self) -> int:
        """Instances the mirror holds (running when active, warm when paused)."""
        # Multiply before dividing and round off float noise: 14 / 100 * 50 is 7.000000000000001,
        # which would ceil to 8 instances for an exact 14% of 50.
        return math.ceil(round(self.mirror.percent * self.primary.capacity.desired / 100, 9))

    @property
    def mirror_running(self) -> int:
        return self.mirror_size if self.mirror.state is MirrorState.active else 0

    @property
    def mirror_ready_time(self) -> Any:
        """Configured ready time, else 2 minutes from a warm pool or the primary's from zero."""
        if self.mirror.ready_time is not None:
            return self.mirror.ready_time
        if self.mirror.paused.strategy == "warm_pool":
            return parse_duration("2m")
        return self.guardrails.primary_ready_time

    @field_validator("metrics")
    @classmethod
    def _metric_names(cls, value: dict[str, MetricSpec]) -> dict[str, MetricSpec]:
        for name in value:
            if not name.replace("_", "").isalnum() or not name[0].isalpha():
                raise ValueError(
                    f"metric name {name!r} must be letters, digits and underscores, starting with a letter"
                )
        if not value:
            raise ValueError("a pool needs at least one metric")
        return value

    @model_validator(mode="after")
    def _coherent(self) -> Self:
        # Every problem at once, not the first: a person writing a new stack should not fix
        # the network to learn about the balancer (issue 17: errors came in rounds).
        problems: list[str] = []
        mirror_cloud = self.mirror_cloud
        if self.mirror_placement == "cross-cloud" and self.mirror.machine_type is None:
            problems.append(
                f"mirror.machine_type is required for a cross-cloud mirror ({self.primary.cloud.value} -> {mirror_cloud.value})"
            )
        if self.primary.app.image_for(mirror_cloud, self.mirror_region) is None:
            problems.append(
                f"primary.app.images has no image for the mirror's location {mirror_cloud.value}:{self.mirror_region}"
            )
        try:
            self.mirror.paused.state_for(mirror_cloud)
        except ValueError as exc:
            problems.append(str(exc))
        if self.mirror_placement != "same-region" and self.mirror.network is None:
            problems.append(f"mirror.network is required for a {self.mirror_placement} mirror")
        for network, cloud in (
            (self.primary.network, self.primary.cloud),
            (self.mirror_network, mirror_cloud),
        ):
            try:
                network.check_for(cloud)
            except ValueError as exc:
                if str(exc) not in problems:
                    problems.append(str(exc))

        kind = self.balancer.kind
        clouds = {self.primary.cloud, mirror_cloud}
        if not kind.dns_level:
            if clouds != {kind.cloud}:
                problems.append(
                    f"balancer.kind {kind.value} splits traffic inside {kind.cloud.value} only; "
                    "a cross-cloud mirror needs route53, azure_traffic_manager or gcp_cloud_dns"
                )
            elif kind is BalancerKind.alb and self.mirror_placement != "same-region":
                problems.append(
                    "balancer.kind alb is regional; a cross-region AWS mirror needs route53 weighting"
                )
        if self.mirror.state is MirrorState.paused and self.balancer.weights.mirror > 0:
            problems.append(
                f"balancer.weights.mirror is {self.balancer.weights.mirror} but the mirror is paused; "
                "a paused mirror must take no traffic"
            )
        database = self.sync.database
        if database is not None and database.replica and self.mirror_placement == "cross-cloud":
            problems.append(
                "sync.database.replica across clouds is not supported (no managed cross-cloud replica); "
                "set replica: false and replicate with your database's own tooling"
            )
        if (
            database is not None
            and database.engine == "sqlserver"
            and self.primary.cloud is not Cloud.azure
        ):
            problems.append("sync.database.engine sqlserver is only declared on Azure (Azure SQL)")
        if len(problems) == 1:
            raise ValueError(problems[0])
        if problems:
            raise ValidationError.from_exception_data(
                type(self).__name__,
                [
                    InitErrorDetails(
                        type=PydanticCustomError("value_error", "{error}", {"error": problem}),
                        loc=(),
                        input=None,
                    )
                    for problem in problems
                ],
            )
        return self

    @model_validator(mode="after")
    def _rules_readable(self) -> Self:
        # Raises a ValidationError located at rules.<i>.when, with the position inside the rule.
        check_pool_rules(self)
        return self


# --------------------------------------------------------------------------- sources


class FileSource(_Model):
    """Metrics from a CSV or Parquet file (long format: timestamp, pool, metric, value; or wide)."""

    type: Literal["file"] = "file"
    path: str = Field(min_length=1, description="Relative to the repository root.")
    timestamp_column: str = "timestamp"
    format: Literal["auto", "csv", "parquet"] = "auto"


class PrometheusSource(_Model):
    type: Literal["prometheus"] = "prometheus"
    url: str = Field(pattern=r"^https?://")
    timeout: Duration = Field(
        default=parse_duration("10s"),
        description="Deadline for each whole request (connect, wait, and reading the answer).",
    )
    step: Duration = Field(default=parse_duration("1m"))
    query_timeout: Duration | None = Field(
        default=None,
        description="Evaluation timeout Prometheus enforces itself (its `timeout` parameter); defaults to `timeout`.",
    )
    bearer_token_env: str | None = Field(
        default=None, description="Environment variable holding a bearer token."
    )
    max_answer_bytes: int = Field(
        default=32 * 1024 * 1024,
        ge=64 * 1024,
        description="Largest answer read from Prometheus; a bigger one is refused (a query of "
        "11,000 points, the most one request asks for, answers in well under 1 MiB).",
    )
    batch_series: int = Field(
        default=100,
        ge=1,
        le=10_000,
        description="Most series one query_range asks for: pools whose metric is the same "
        'selector but for the pool\'s label (cpu{pool="$pool"}) are read with one regex matcher '
        '(pool=~"a|b|...") and the answer split per pool, fewer when their answer would not '
        "fit max_answer_bytes. 1 reads every series on its own.",
    )
    batch_points: int = Field(
        default=40_000,
        ge=1_000,
        description="Most points one batched query asks for (series x points each), so that "
        "a batch answers within timeout as a series does: 14 days at 5 minutes is 4,033 points "
        "a series, so a first cycle's batches hold 9 series and a running driver's 30-minute "
        "reads batch_series.",
    )


class CloudWatchSource(_Model):
    type: Literal["cloudwatch"] = "cloudwatch"
    region: str
    endpoint_url: str | None = None
    period: Duration = Field(default=parse_duration("5m"))
    timeout: Duration = Field(
        default=parse_duration("30s"), description="Per-request timeout before retrying."
    )


class AzureMonitorSource(_Model):
    type: Literal["azure_monitor"] = "azure_monitor"
    resource_id: str = Field(
        min_length=1,
        description="The resource every metric is read from unless it names its own "
        "(MetricSpec.resource); $pool is the pool's name, and ${outputs.<path>} a stack output "
        "(a scale set's id: ${outputs.pools.$pool.ids.primary.scale_set}).",
    )

    @field_validator("resource_id")
    @classmethod
    def _resource_references(cls, value: str) -> str:
        check_output_references(value, what="resource_id")
        return value

    interval: Duration = Field(default=parse_duration("5m"))
    timeout: Duration = Field(
        default=parse_duration("30s"), description="Per-request timeout before retrying."
    )


class GcpMonitoringSource(_Model):
    type: Literal["gcp_monitoring"] = "gcp_monitoring"
    project: str = Field(min_length=1)
    alignment_period: Duration = Field(default=parse_duration("5m"))
    timeout: Duration = Field(
        default=parse_duration("30s"), description="Per-request timeout before retrying."
    )


MetricSourceSpec = Annotated[
    FileSource | PrometheusSource | CloudWatchSource | AzureMonitorSource | GcpMonitoringSource,
    Field(discriminator="type"),
]


class EventsSpec(_Model):
    """Known future events that move demand."""

    file: str | None = Field(
        default=None, description="CSV or YAML schedule of events (name, start, end, uplift)."
    )
    calendars: list[str] = Field(
        default_factory=list, description="Seasonal calendars, e.g. 'holidays:US'."
    )


class CalibrationSettings(_Model):
    """Online calibration of forecast quantiles from the engine's own past errors."""

    enabled: bool = Field(
        default=True,
        description="Replace the models' quantiles by the empirical distribution of recent "
        "forecast errors at each lead time, once enough errors are known.",
    )
    target: Literal["peak", "mean"] = Field(
        default="peak",
        description="What a forecast point's quantiles bound: 'peak' = the highest raw "
        "observation within the step (capacity must serve every minute), 'mean' = the step's "
        "mean (what the models fit).",
    )
    window: Duration = Field(
        default=parse_duration("3d"), description="How far back past errors are kept."
    )
    min_samples: int = Field(
        default=100, ge=10, description="Errors per lead time needed before calibrating."
    )
    bins: int = Field(
        default=3,
        ge=1,
        le=10,
        description="Level bands: errors are grouped by the forecast's level (equal-count "
        "bands of the recent forecasts at each lead) and a forecast's quantiles come from the "
        "errors of its own band (the whole lead's while the band has fewer than min_samples), "
        "because relative errors are larger at low demand than at the peak. 1 = one band.",
    )
    lower_adapt_step: float | None = Field(
        default=0.002,
        gt=0,
        le=0.05,
        description="Adapt the levels of the percentiles below 50 to what they covered "
        "(adaptive conformal inference): after each scored step, a percentile's level moves "
        "by this step times (its nominal share, less 1 if the step fell below it), from half "
        "its nominal level to halfway to the median (p10: 5-30%). null: fixed levels. The "
        "percentiles from 50 up, which size capacity, are not changed, nor is anything when "
        "no percentile below 50 is forecast (the driver's default quantiles).",
    )
    upper_adapt_step: float | None = Field(
        default=None,
        gt=0,
        le=0.05,
        description="Adapt the levels of the percentiles above 50 the same way (the median "
        "never adapts), each within its distance to 100% below nominal and half of it above "
        "(p90: 80-95%). These percentiles size capacity, so this changes the plans and the "
        "backtest. Empty: fixed levels.",
    )


class UntrustedProfileSettings(_Model):
    """The same-hour profile as the forecast of a series whose models are untrusted.

    On a series where no candidate beats the seasonal-naive baseline (or the daily cycle is too
    weak to measure) the forecast is untrusted and the rules react. AWS's scheduled predictive
    scaling (the same hour over the last days, max with tracking) still pays on some such
    series and costs on others, so the profile has to earn its place on each series: the
    engine replays, on the series' own history, a floor at the profile against reactive
    capacity spending the same (forecasting.models.profile.replay_profile_floor), once per
    reselect_every; when the profile was short in at most max_ratio of reactive's short
    steps, the forecast is the profile's, trusted, and says so (docs/forecasting.md).
    Where a model is trusted and the profile earns trust the same way, the two are averaged
    (blend_trusted): on the daily-cycle traces a trusted model alone was behind AWS's profile
    at the same money (docs/backtest.md, "Issue 15's targets").
    """

    enabled: bool = Field(
        default=True,
        description="Judge the same-hour profile where the models are untrusted, and forecast "
        "with it where it earns trust. false: such series stay untrusted and the rules react.",
    )
    max_ratio: float = Field(
        default=0.9,
        gt=0,
        le=1,
        description="Most short steps of the replayed profile floor, as a share of reactive's "
        "at the same cost, for the profile to be trusted.",
    )
    min_short: int = Field(
        default=10,
        ge=1,
        description="Fewest short steps reactive must have had in the replay: with fewer there "
        "is nothing a profile could be shown to buy, and the series stays reactive.",
    )
    blend_trusted: bool = Field(
        default=True,
        description="Also where a model is trusted: once the same replay has earned the "
        "profile trust on the series, the forecast (mean and every interval) is the average "
        "of the model's and the profile's, an equal-weight ensemble calibrated online like any "
        "forecast; the forecast says so. false: a trusted model's forecast stands alone.",
    )


class ForecastSettings(_Model):
    horizon: Duration = Field(default=parse_duration("1h"))
    step: Duration | None = Field(
        default=None, description="Forecast step; defaults from the horizon."
    )
    history: Duration = Field(default=parse_duration("14d"))
    quantiles: list[int] = Field(default_factory=lambda: [50, 80, 90, 95, 99])
    models: list[str] = Field(
        default_factory=lambda: ["seasonal_naive", "auto_ets", "mstl", "theta"],
        description="Candidates for per-series selection by rolling-origin cross-validation.",
    )
    reselect_every: Duration = Field(default=parse_duration("1d"))
    refit_every: Duration = Field(
        default=parse_duration("6h"),
        description="Refit a series' chosen model at least this often; between refits the "
        "fitted model is updated with new observations.",
    )
    max_staleness: Duration = Field(
        default=parse_duration("30m"), description="Oldest last-good forecast still used."
    )
    selections_per_cycle: int | None = Field(
        default=None,
        ge=1,
        description="Most series whose model is (re)selected in one cycle (about a second of CPU "
        "each); the rest keep their previous choice or, without one, forecast with the "
        "seasonal-naive baseline marked untrusted until their turn. Empty: all at once.",
    )
    refits_per_cycle: int | None = Field(
        default=None,
        ge=1,
        description="Most series refitted in one cycle; the rest keep updating their older fit "
        "(noted on the forecast) or, without one, forecast with the untrusted seasonal-naive "
        "baseline until their turn. Empty: all at once.",
    )
    backend: str = Field(
        default="local",
        description="Where model selection and refits run: 'local' (this machine's cores) or a "
        "Dask scheduler address such as tcp://dask-scheduler:8786; an unreachable scheduler "
        "means local work and a degraded line in the cycle.",
    )
    workers: int | None = Field(
        default=None,
        ge=1,
        description="Local worker processes for selection and refits; empty: one per CPU.",
    )
    calibration: CalibrationSettings = Field(default_factory=CalibrationSettings)
    untrusted_profile: UntrustedProfileSettings = Field(default_factory=UntrustedProfileSettings)

    @field_validator("quantiles")
    @classmethod
    def _quantiles(cls, value: list[int]) -> list[int]:
        for q in value:
            if not 1 <= q <= 99:
                raise ValueError(f"quantiles are percentiles 1-99, got {q}")
        return sorted(set(value))

    @field_validator("backend")
    @classmethod
    def _backend(cls, value: str) -> str:
        # dask.distributed's address forms: tcp:// and tls:// (distributed.comm.addressing).
        if value != "local" and not re.fullmatch(r"(tcp|tls)://[^\s/:]+(:\d{1,5})?", value):
            raise ValueError(
                f"backend is 'local' or a Dask scheduler address such as "
                f"tcp://dask-scheduler:8786, got {value!r}"
            )
        return value


class GitOpsSettings(_Model):
    remote: str | None = Field(
        default=None,
        min_length=1,
        description=(
            "The git remote (a remote name of the checkout, e.g. origin) the driver pushes "
            "proposal branches to and reads the "
            "deployed stack file from. No default: gitops mode refuses to push until it is set, "
            "so a driver never pushes to whatever 'origin' its clone happens to have."
        ),
    )
    base_branch: str = "main"
    branch_prefix: str = "mirrorcast/"
    github_repo: str | None = Field(default=None, pattern=r"^[\w.-]+/[\w.-]+$")
    github_api: str = "https://api.github.com"
    token_env: str = Field(
        default="GITHUB_TOKEN", description="Name of the environment variable with the token."
    )


class NotifySettings(_Model):
    """How the driver delivers rule notifications to webhooks."""

    timeout: Duration = Field(
        default=parse_duration("5s"), description="Per attempt: connect and answer."
    )
    attempts: int = Field(default=3, ge=1, le=10, description="Attempts per notification.")


class DriverSettings(_Model):
    mode: Literal["plan", "apply", "gitops"] = "plan"
    interval: Duration = Field(default=parse_duration("5m"))
    journal_url: str | None = Field(
        default=None, description="SQLAlchemy URL; default SQLite in the state directory."
    )
    backend_url: str | None = Field(
        default=None,
        description="Pulumi backend; default file:// in the state directory. Plan and gitops "
        "modes read stack outputs (${outputs.<path>} in metrics) from it when it is file:// "
        "or s3://.",
    )
    metrics_listen: str = Field(
        default="127.0.0.1:9464", description="host:port of the /metrics endpoint."
    )
    update_timeout: Duration = Field(default=parse_duration("30m"))
    observe: bool = Field(
        default=True,
        description=(
            "Read each pool's live state from its clouds every cycle (instances, balancer "
            "health, launch configuration); off: the driver knows only its own config and says "
            "'not observed'."
        ),
    )
    observe_timeout: Duration = Field(
        default=parse_duration("10s"),
        description="Per-request timeout when reading the clouds (retried twice).",
    )
    collect_timeout: Duration = Field(
        default=parse_duration("60s"),
        description="Deadline for reading every pool's metrics in one cycle; a series not read "
        "by then is reported degraded and the cycle goes on without it.",
    )
    collect_concurrency: int = Field(
        default=16,
        ge=1,
        le=1024,
        description="Metric requests in flight at once. A cycle reads every pool metric within "
        "collect_timeout, so size it to series x request latency / collect_timeout (20,000 "
        "series at 50 ms in 60 s: at least 17), within what the metrics backend accepts.",
    )
    actuation_time: Duration = Field(
        default=parse_duration("2m"),
        description="Decision-to-effect time (cycle start to `pulumi up` finished) the planner "
        "adds to every rule's lead until the journal has measured it; then a recent high "
        "percentile of the measured times is used (actuation_percentile).",
    )
    actuation_percentile: int = Field(
        default=90,
        ge=50,
        le=100,
        description="Percentile of the recent measured decision-to-effect times added to every "
        "rule's lead (the last 50 successful updates; measured once 3 exist).",
    )
    health_watch: Duration | None = Field(
        default=None,
        description="Between cycles, read every pool's live state this often and start the "
        "next cycle at once when a pool's primary starts failing (its balancer reports fewer "
        "than half its fleet healthy): a health-driven failover rule then acts within this "
        "long of the failure instead of up to a whole interval later. Shorter than interval; "
        "off by default (each watch is one observation of the stack's clouds).",
    )
    gitops: GitOpsSettings = Field(default_factory=GitOpsSettings)
    notify: NotifySettings = Field(default_factory=NotifySettings)

    @model_validator(mode="after")
    def _watch_within_the_interval(self) -> Self:
        watch = self.health_watch
        if watch is not None and not timedelta(0) < watch < self.interval:
            raise ValueError(
                f"driver.health_watch {format_duration(watch)} must be positive and shorter "
                f"than driver.interval {format_duration(self.interval)} (it reads the clouds "
                "between cycles)"
            )
        return self


class PolicySettings(_Model):
    """Inputs for the CrossGuard policy pack."""

    allowed_regions: list[str] = Field(default_factory=list, description="Empty: any region.")
    required_tags: list[str] = Field(default_factory=lambda: ["cost-center"])
    packs: list[str] = Field(
        default_factory=lambda: ["policies/crossguard"],
        description=(
            "CrossGuard policy packs apply mode runs with every `pulumi up` (directories, "
            "relative to the project root); a mandatory violation stops the update. [] turns "
            "them off."
        ),
    )


class AzureSettings(_Model):
    """What the Azure pieces need beyond a pool's own config."""

    standby_pool_principal_id: str | None = Field(
        default=None,
        description=(
            "Object id of the 'Standby Pool Resource Provider' service principal in your tenant "
            "(az ad sp list --display-name 'Standby Pool Resource Provider' --query [0].id). "
            "A warm_pool mirror on Azure grants it the roles standby pools need."
        ),
    )
    image_kind: Literal["generalized", "specialized"] = Field(
        default="generalized",
        description=(
            "How the gallery images were captured. Generalized images need an OS profile: the "
            "scale sets then get an admin user with the SSH key from the "
            "mirrorcast-secrets:azureSshPublicKey secret."
        ),
    )
    admin_username: str = Field(
        default="mirrorcast", pattern=r"^[a-z_][a-z0-9_-]{0,31}$", description="Linux admin user."
    )


# --------------------------------------------------------------------------- driver record


class OriginalKeys(_Model):
    """A pool's driver-managed keys as they were before an activation (what a rollback restores)."""

    mirror_state: MirrorState
    mirror_percent: float
    weight_primary: int
    weight_mirror: int
    capacity_min: int
    capacity_desired: int
    autoscaler_target: float


class ActivationRecord(_Model):
    """One activation as the driver records it on the stack, so it survives a lost journal."""

    id: str
    active: bool = Field(default=True, description="False once its rollback completed.")
    activated_at: datetime
    rollback_deadline: datetime | None = Field(
        default=None, description="The deadline set at activation (demand since may extend it)."
    )
    trigger_metric: str | None = None
    trigger_threshold: float | None = None
    original: OriginalKeys


class DriverRecord(_Model):
    """Written by the driver only (``mirrorcast:driver_record``), together with a plan's changes.

    It holds what must outlive the driver's journal: which journal drives the stack (a second
    journal for the same stack is refused) and, per pool, the activation in effect with the
    original config to restore, from which a new journal rebuilds the planner's memory.
    """

    journal: str | None = Field(
        default=None, description="The id of the journal that drives the stack."
    )
    journal_location: str | None = Field(
        default=None, description="Where that journal is (host and file, or the database URL)."
    )
    activations: dict[str, ActivationRecord] = Field(default_factory=dict)


class MirrorcastConfig(_Model):
    """Everything under the ``mirrorcast:`` namespace of one stack."""

    pools: dict[str, PoolSpec] = Field(min_length=1)
    metrics: MetricSourceSpec = Field(default_factory=lambda: FileSource(path="metrics.csv"))
    events: EventsSpec = Field(default_factory=EventsSpec)
    forecast: ForecastSettings = Field(default_factory=ForecastSettings)
    driver: DriverSettings = Field(default_factory=DriverSettings)
    policy: PolicySettings = Field(default_factory=PolicySettings)
    azure: AzureSettings = Field(default_factory=AzureSettings)
    tags: dict[str, str] = Field(
        default_factory=dict, description="Tags/labels applied to every resource."
    )
    driver_record: DriverRecord = Field(
        default_factory=DriverRecord,
        description="Kept by the driver: its journal's marker and the activations in effect.",
    )

    @field_validator("pools")
    @classmethod
    def _pool_names(cls, value: dict[str, PoolSpec]) -> dict[str, PoolSpec]:
        for name in value:
            # ASCII only: cloud resource names (ASG, VM scale set, instance group, DNS labels)
            # take ASCII letters, digits and '-'; str.isalnum() also accepts homoglyphs such as
            # Cyrillic small a (U+0430), which would name a different pool that looks the same.
            foreign = [c for c in name if not c.isascii()]
            if foreign:
                raise ValueError(
                    f"pool name {name!r} contains the non-ASCII character {foreign[0]!r} "
                    f"(U+{ord(foreign[0]):04X}); pool names are used in cloud resource names, "
                    "which take ASCII letters, digits and '-' only"
                )
            if (
                not name
                or not name[0].isalpha()
                or not all(c.isalnum() or c == "-" for c in name)
                or len(name) > 30
            ):
                raise ValueError(
                    f"pool name {name!r} must start with a letter and use letters, digits and '-' (at most 30)"
                )
        return value

    @model_validator(mode="after")
    def _policy(self) -> Self:
        allowed = set(self.policy.allowed_regions)
        if allowed:
            for name, pool in self.pools.items():
                for region in (pool.primary.region, pool.mirror_region):
                    if region not in allowed:
                        raise ValueError(
                            f"pools.{name}: region {region} is not in policy.allowed_regions ({', '.join(sorted(allowed))})"
                        )
        return self

    @model_validator(mode="after")
    def _metric_resources(self) -> Self:
        # Only Azure Monitor reads a metric from a resource named apart from its filters; any
        # other source would drop ``resource`` and read what its dimensions say, silently.
        if self.metrics.type == "azure_monitor":
            return self
        for name, pool in self.pools.items():
            for metric, spec in pool.metrics.items():
                if spec.resource is not None:
                    raise ValueError(
                        f"pools.{name}.metrics.{metric}.resource: only an azure_monitor source "
                        "reads a metric from a resource of its own, and this stack's "
                        f"metrics.type is {self.metrics.type}; name the resource in the "
                        "metric's dimensions instead (CloudWatch dimensions, Cloud Monitoring "
                        "filter terms, Prometheus label matchers)"
                    )
        return self

    @model_validator(mode="after")
    def _rule_quantiles(self) -> Self:
        # Rules may only read percentiles the forecast produces; only this level knows both.
        check_rule_quantiles(self)
        return self
