"""The pure decisions behind the components: sizing, rule translation, names and labels."""

from __future__ import annotations

import math
import re

from hypothesis import given, settings
from hypothesis import strategies as st

from infra._common import (
    aws_ingress,
    azure_nsg_rules,
    gcp_firewall_rules,
    gcp_labels,
    gcp_name,
    group_plans,
    type_token,
)
from infra.config import SecurityRule, config_from_text

POOL = """
config:
  mirrorcast:pools:
    web:
      primary:
        cloud: gcp
        region: europe-west1
        machine_type: e2-standard-4
        app: {{version: 1.0.0, images: {{gcp: projects/p/global/images/web}}}}
        capacity: {{min: 0, max: 100, desired: {desired}}}
        network: {{network: n, subnetwork: s}}
      mirror:
        percent: {percent}
        state: {state}
        paused: {{strategy: {strategy}, instance_state: {warm}}}
      balancer: {{kind: gcp_url_map, weights: {{primary: 100, mirror: 0}}}}
"""


def _pool(**values: object) -> object:
    return config_from_text(POOL.format(**values)).pools["web"]


@settings(deadline=None, max_examples=40)
@given(
    desired=st.integers(min_value=0, max_value=100),
    percent=st.integers(min_value=0, max_value=100),
    strategy=st.sampled_from(["warm_pool", "scale_to_zero"]),
)
def test_paused_mirror_runs_nothing_and_keeps_ceil_percent_warm(
    desired: int, percent: int, strategy: str
) -> None:
    pool = _pool(
        desired=desired, percent=percent, state="paused", strategy=strategy, warm="stopped"
    )
    _, mirror = group_plans("web", pool)  # type: ignore[arg-type]
    size = math.ceil(percent * desired / 100)
    assert (mirror.desired, mirror.min_size) == (0, 0)
    assert mirror.warm_size == (size if strategy == "warm_pool" else 0)
    assert mirror.max_size >= max(size, 1)
    assert not mirror.autoscaled


@settings(deadline=None, max_examples=40)
@given(
    desired=st.integers(min_value=0, max_value=100),
    percent=st.integers(min_value=0, max_value=100),
)
def test_active_mirror_runs_ceil_percent_with_nothing_warm(desired: int, percent: int) -> None:
    pool = _pool(
        desired=desired, percent=percent, state="active", strategy="warm_pool", warm="suspended"
    )
    primary, mirror = group_plans("web", pool)  # type: ignore[arg-type]
    size = math.ceil(percent * desired / 100)
    assert mirror.desired == mirror.min_size == size
    assert mirror.warm_size == 0
    assert mirror.keep_warm_pool and mirror.warm_state == "suspended"
    assert primary.desired == desired


def test_rules_translate_to_each_cloud_with_the_same_ports_and_sources() -> None:
    rules = [
        SecurityRule(name="web", protocol="tcp", ports="8000-8100", sources=["10.0.0.0/8"]),
        SecurityRule(name="dns", protocol="udp", ports="53", sources=["0.0.0.0/0"]),
        SecurityRule(name="ping", protocol="icmp", sources=["192.0.2.0/24"]),
    ]
    aws = aws_ingress(rules)
    assert [(r.protocol, r.from_port, r.to_port) for r in aws] == [
        ("tcp", 8000, 8100),
        ("udp", 53, 53),
        ("icmp", -1, -1),
    ]
    azure = azure_nsg_rules(rules)
    assert [(r.protocol, r.destination_port_range, r.priority) for r in azure] == [
        ("Tcp", "8000-8100", 100),
        ("Udp", "53", 110),
        ("Icmp", "*", 120),
    ]
    gcp = gcp_firewall_rules(rules)
    assert [(r.protocol, r.ports) for r in gcp] == [
        ("tcp", ("8000-8100",)),
        ("udp", ("53",)),
        ("icmp", ()),
    ]
    for translated in (aws, azure, gcp):
        assert len(translated) == len(rules)
    assert [r.cidr_blocks for r in aws] == [r.source_address_prefixes for r in azure]
    assert [r.source_address_prefixes for r in azure] == [r.source_ranges for r in gcp]


@settings(deadline=None, max_examples=40)
@given(st.dictionaries(st.text(min_size=1, max_size=80), st.text(max_size=80), max_size=5))
def test_gcp_labels_always_satisfy_gcp_label_rules(tags: dict[str, str]) -> None:
    labels = gcp_labels(tags, pool="Web", role="primary")
    for key, value in labels.items():
        assert re.fullmatch(r"[a-z][a-z0-9_-]{0,62}", key), key
        assert re.fullmatch(r"[a-z0-9_-]{0,63}", value), value
    assert labels["mirrorcast-pool"] == "web"


@settings(deadline=None, max_examples=40)
@given(st.text(min_size=1, max_size=100))
def test_gcp_names_always_satisfy_gcp_name_rules(name: str) -> None:
    cleaned = gcp_name(name)
    assert re.fullmatch(r"[a-z]([-a-z0-9]*[a-z0-9])?", cleaned), cleaned
    assert len(cleaned) <= 55


def test_component_type_tokens_follow_pulumi_conventions() -> None:
    assert type_token("aws", "MirrorGroup") == "mirrorcast:aws:MirrorGroup"


# --------------------------------------------------------------------------- physical names


def test_auto_names_are_kept_where_they_fit_and_made_valid_where_not() -> None:
    from infra._common import AWS_LB_NAME, RDS_IDENTIFIER, physical_name

    assert physical_name("web-primary-front-tg", AWS_LB_NAME, scope="p/s") is None
    long = physical_name(
        "storefront-checkout-europe-abc-balancer-primary", AWS_LB_NAME, scope="p/s"
    )
    assert long is not None and len(long) <= 32 and not long.endswith("-")
    upper = physical_name("WebShop--db-primary", RDS_IDENTIFIER, scope="p/s")
    assert upper is not None and upper == upper.lower() and "--" not in upper
    # Unique per stack, and a replacement (other replace-triggering inputs) gets a new name.
    assert long != physical_name(
        "storefront-checkout-europe-abc-balancer-primary", AWS_LB_NAME, scope="p/other"
    )
    assert physical_name("x" * 40, AWS_LB_NAME, salt="80/HTTP") != physical_name(
        "x" * 40, AWS_LB_NAME, salt="443/HTTPS"
    )
