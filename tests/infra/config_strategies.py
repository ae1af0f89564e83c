"""Hypothesis strategies for stack configs the config model accepts: every cloud, balancer kind,
paused strategy and placement, database replicas on and off, pool names up to the allowed length.

The strategies build plain stack-file mappings (what a person writes); the tests hand them to the
config model first, so anything generated here that the model refuses is simply not a config.
"""

from __future__ import annotations

from typing import Any

from hypothesis import strategies as st

REGIONS = {
    "aws": ("us-east-1", "us-west-2", "eu-west-1"),
    "azure": ("westeurope", "northeurope"),
    "gcp": ("europe-west1", "us-central1"),
}
MACHINES = {"aws": "m6i.large", "azure": "Standard_D2s_v5", "gcp": "n2-standard-2"}
SUBSCRIPTION = "/subscriptions/00000000-0000-0000-0000-000000000000"
SSH_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGeneratedForTestsOnly mirrorcast@test"
SECRETS = {
    "mirrorcast-secrets:databasePassword": "correct-horse-battery-staple",
    "mirrorcast-secrets:azureSshPublicKey": SSH_KEY,
}

# Pool names as the model allows them: a letter, then letters, digits and '-', at most 30.
pool_names = st.one_of(
    st.from_regex(r"\A[a-z][a-z0-9-]{0,29}\Z"),
    st.from_regex(r"\A[A-Za-z][A-Za-z0-9-]{0,29}\Z"),
    st.from_regex(r"\A[a-z][a-z0-9]{29}\Z"),  # always the longest name
)


def _network(cloud: str, region: str, tag: str) -> dict[str, Any]:
    if cloud == "aws":
        return {
            "vpc_id": f"vpc-0{tag}{region.replace('-', '')}",
            "subnet_ids": [
                f"subnet-0{tag}{region.replace('-', '')}a",
                f"subnet-0{tag}{region.replace('-', '')}b",
            ],
        }
    if cloud == "azure":
        group = f"rg-{tag}-{region}"
        return {
            "resource_group": group,
            "subnet_id": f"{SUBSCRIPTION}/resourceGroups/{group}/providers/Microsoft.Network/virtualNetworks/v/subnets/s",
        }
    return {
        "network": f"projects/acme/global/networks/{tag}",
        "subnetwork": f"projects/acme/regions/{region}/subnetworks/{tag}",
    }


def _images(locations: list[tuple[str, str]]) -> dict[str, str]:
    images = {}
    for cloud, region in locations:
        if cloud == "aws":
            images[f"aws:{region}"] = f"ami-0{abs(hash(region)) % 10**12:012d}"[:21]
        elif cloud == "azure":
            images["azure"] = (
                f"{SUBSCRIPTION}/resourceGroups/img/providers/Microsoft.Compute/galleries/g/images/app/versions/1.0.0"
            )
        else:
            images["gcp"] = "projects/acme/global/images/app-1-0-0"
    return images


def _balancers(primary: str, mirror: str, same_region: bool) -> list[str]:
    kinds = []
    if primary == mirror:
        in_cloud = {"aws": "alb", "gcp": "gcp_url_map", "azure": "azure_front_door"}[primary]
        if in_cloud != "alb" or same_region:
            kinds.append(in_cloud)
    kinds.append("route53")
    if "azure" in (primary, mirror):
        kinds.append("azure_traffic_manager")
    if "aws" not in (primary, mirror):
        kinds.append("gcp_cloud_dns")
    return kinds


@st.composite
def stack_configs(draw: st.DrawFn) -> dict[str, Any]:
    """One stack's ``config:`` mapping with one pool."""
    name = draw(pool_names)
    primary_cloud = draw(st.sampled_from(sorted(REGIONS)))
    primary_region = draw(st.sampled_from(REGIONS[primary_cloud]))
    mirror_cloud = draw(st.sampled_from(sorted(REGIONS)))
    mirror_region = draw(st.sampled_from(REGIONS[mirror_cloud]))
    same_region = (primary_cloud, primary_region) == (mirror_cloud, mirror_region)
    kind = draw(st.sampled_from(_balancers(primary_cloud, mirror_cloud, same_region)))
    port = draw(st.sampled_from([80, 443, 8443]))
    active = draw(st.booleans())
    strategy = draw(st.sampled_from(["warm_pool", "scale_to_zero"]))
    warm_states = {
        "aws": ["stopped", "hibernated"],
        "azure": ["deallocated"],
        "gcp": ["stopped", "suspended"],
    }
    instance_state = draw(st.sampled_from(warm_states[mirror_cloud]))
    desired = draw(st.integers(min_value=1, max_value=12))
    percent = draw(st.sampled_from([0, 10, 25, 50, 100]))
    mirror_share = draw(st.sampled_from([10, 30, 50])) if active else 0
    mirror: dict[str, Any] = {
        "percent": percent,
        "location": {"cloud": mirror_cloud, "region": mirror_region},
        "state": "active" if active else "paused",
        "paused": {"strategy": strategy, "instance_state": instance_state},
    }
    if mirror_cloud != primary_cloud:
        mirror["machine_type"] = MACHINES[mirror_cloud]
    if not same_region:
        mirror["network"] = _network(mirror_cloud, mirror_region, "dr")
    balancer: dict[str, Any] = {
        "kind": kind,
        "port": port,
        "weights": {"primary": 100 - mirror_share, "mirror": mirror_share},
    }
    if kind in ("alb", "gcp_url_map") and port == 443:
        balancer["certificate"] = (
            "arn:aws:acm:us-east-1:123456789012:certificate/0000"
            if kind == "alb"
            else "projects/acme/global/sslCertificates/app"
        )
    if kind == "route53":
        balancer["dns"] = {"zone": "Z0123456789ABCDEFGHIJ", "name": "app.example.com", "ttl": "60s"}
    elif kind == "azure_traffic_manager":
        balancer["dns"] = {
            "zone": f"{name.lower()}-tm",
            "name": f"{name.lower()}-acme.trafficmanager.net",
        }
    elif kind == "gcp_cloud_dns":
        balancer["dns"] = {"zone": "acme-zone", "name": "app.acme.example"}
    database = draw(st.one_of(st.none(), st.booleans()))
    sync: dict[str, Any] = {
        "security_rules": [
            {"name": "app", "protocol": "tcp", "ports": str(port), "sources": ["0.0.0.0/0"]},
            {"name": "ping", "protocol": "icmp", "sources": ["10.0.0.0/8"]},
        ]
    }
    if database is not None:
        engine = {"aws": "postgres", "gcp": "mysql", "azure": "sqlserver"}[primary_cloud]
        sync["database"] = {
            "engine": engine,
            "engine_version": {"postgres": "15", "mysql": "8.0", "sqlserver": "12.0"}[engine],
            "instance_class": {
                "aws": "db.r6g.large",
                "gcp": "db-custom-2-7680",
                "azure": "GP_Gen5_2",
            }[primary_cloud],
            "replica": database,
        }
    config: dict[str, Any] = {
        "mirrorcast:tags": {"cost-center": draw(st.sampled_from(["web", "Web.Platform"]))},
        "mirrorcast:pools": {
            name: {
                "primary": {
                    "cloud": primary_cloud,
                    "region": primary_region,
                    "machine_type": MACHINES[primary_cloud],
                    "app": {
                        "version": "1.0.0",
                        "images": _images(
                            [(primary_cloud, primary_region), (mirror_cloud, mirror_region)]
                        ),
                    },
                    "capacity": {"min": 1, "max": 40, "desired": desired},
                    "native_autoscaling": draw(st.booleans()),
                    "network": _network(primary_cloud, primary_region, "prod"),
                },
                "mirror": mirror,
                "balancer": balancer,
                "sync": sync,
            }
        },
    }
    if "aws" in (primary_cloud, mirror_cloud):
        config["aws:region"] = draw(st.sampled_from(REGIONS["aws"]))
    if "azure" in (primary_cloud, mirror_cloud):
        config["mirrorcast:azure"] = {
            "standby_pool_principal_id": "22222222-2222-2222-2222-222222222222"
        }
    return config
