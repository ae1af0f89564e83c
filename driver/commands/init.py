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
from pathlib import Path
from typing import Annotated

import typer

from driver.commands._common import out_console, project_root, user_errors
from driver.stack_template import CLOUDS, StackAnswers, default_balancer, stack_text

__all__ = ["register"]

logger = logging.getLogger(__name__)

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
_SOURCE_FOR = {"aws": "cloudwatch", "azure": "azure_monitor", "gcp": "gcp_monitoring"}
# Which extra installs the source's client library (pyproject.toml [project.optional-dependencies]).
SOURCE_EXTRA = {
    "prometheus": None,
    "file": None,
    "cloudwatch": None,  # boto3 is a base dependency
    "azure_monitor": "clouds",
    "gcp_monitoring": "clouds",
}


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
