"""Metric dimensions that name what a cloud calls a resource once deployed, from stack outputs.

An auto-named resource's name is known only after ``pulumi up`` (an NLB target group is
``targetgroup/checkout-primary-front-tg-3f9a2c1/6d0ecf831eec9f09``), so a stack cannot write it
by hand. A metric's dimension value names it as ``${outputs.<path>}``
(:data:`infra.config.OUTPUT_REFERENCE`): the program exports each side's ids
(``pools.<pool>.ids.<role>``, docs/architecture.md "Stack outputs"), and before collecting the
driver replaces each reference with the value at that path of the stack's outputs. A reference
that cannot be resolved costs only its series: one sentence naming the stack, the pool, the
metric and the output, in the cycle's degraded lines.

Where the outputs come from: an apply-mode driver asks the Pulumi CLI (the executor's
``pools_output``). A plan- or gitops-mode driver has no CLI to ask, so it reads the stack's
checkpoint itself when the backend is a ``file://`` directory or an ``s3://`` bucket
(:func:`read_state_outputs`): the root stack resource's outputs, as the CLI last wrote them.
Any other backend (Pulumi Cloud, ``gs://``, ``azblob://``) is not read; the sentence says what
to do instead.
"""

from __future__ import annotations

import gzip
import io
import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from infra.config import OUTPUT_REFERENCE, MetricSpec, MirrorcastConfig, MirrorcastError

__all__ = [
    "SECRET_SIGNATURE",
    "ResolvedMetrics",
    "StateOutputsUnreadable",
    "has_output_references",
    "pulumi_project_name",
    "read_state_outputs",
    "resolve_output_references",
]

SECRET_SIGNATURE = "4dabf18193072939515e22adb298388d"
"""The key that marks a secret value in Pulumi's state (``sig.Secret`` in the Pulumi SDK's
``go/common/resource/sig``); its ``ciphertext`` is the passphrase-encrypted value."""

_STATE_EXTENSIONS = (".json", ".json.gz", ".json.zst")
"""What the diy backend names a stack's checkpoint (``StackBasePath`` + one of these, Pulumi's
``pkg/backend/diy/store.go``)."""

_MAX_STATE_BYTES = 1024 * 1024 * 1024
"""Largest checkpoint read (decompressed); a state this large is a stack to read with the CLI."""

_READ: dict[str, tuple[tuple[Any, ...], dict[str, Any] | None]] = {}
"""The outputs last read from each state file, by what says it changed (mtime and size; a
bucket's ETag): a driver cycles every few minutes and the state changes only with an update,
so it is decoded again only then."""
_READ_KEEP = 8
"""State files remembered at most (a driver reads one stack's)."""

_VERSION = re.compile(r'\A\s*\{\s*"version"\s*:\s*(\d+)\s*,')
_RESOURCES = re.compile(r'"latest"\s*:\s*\{.*?"resources"\s*:\s*\[\s*', re.DOTALL)


class StateOutputsUnreadable(MirrorcastError):
    """The stack's outputs cannot be read from its state here; the message says why and what
    to do."""


def read_state_outputs(*, backend_url: str, project: str, stack: str) -> dict[str, Any] | None:
    """The stack's outputs from a diy backend's checkpoint (``file://`` or ``s3://``), without
    the CLI.

    The diy backend keeps a stack's latest deployment in
    ``<root>/.pulumi/stacks/<project>/<stack>.json`` (the project layout, Pulumi 3.61 on) or
    ``<root>/.pulumi/stacks/<stack>.json`` (the legacy layout), optionally gzip- or
    zstd-compressed (Pulumi's ``pkg/backend/diy/store.go``); in a bucket, the same keys under
    the URL's path. The file is a versioned checkpoint ``{"version": 3, "checkpoint":
    {"stack", "latest": {"resources": [...]}}}`` (``apitype.VersionedCheckpoint``); the outputs
    are those of the ``pulumi:pulumi:Stack`` resource. Secret outputs stay as the state holds
    them (encrypted), so a reference to one is reported rather than guessed.

    :param backend_url: the backend: ``file://<dir>`` (``~`` expanded; a relative directory is
        taken from the current one, as the CLI does), or ``s3://<bucket>[/<prefix>]`` with the
        CLI's own query options ``region``, ``endpoint`` and ``profile``, read with the
        driver's AWS credentials (the standard chain).
    :param project: the Pulumi project's name (``name:`` in ``Pulumi.yaml``).
    :param stack: the stack's name.
    :returns: the outputs, or ``None`` when the backend holds no deployment of the stack yet.
    :raises StateOutputsUnreadable: the backend is of another kind, or its checkpoint cannot
        be read (compressed with zstd, not JSON, not a checkpoint, refused by the bucket).
    """
    names = [
        f"{base}{extension}"
        for base in (f".pulumi/stacks/{project}/{stack}", f".pulumi/stacks/{stack}")
        for extension in _STATE_EXTENSIONS
    ]
    if backend_url.startswith("s3://"):
        return _S3State(backend_url).outputs(names)
    root = _file_backend_root(backend_url)
    path = next((root / name for name in names if (root / name).is_file()), None)
    if path is None:
        return None
    _refuse_zstd(path.name, where=str(path))
    stat = path.stat()

    def read() -> bytes:
        with path.open("rb") as handle:
            return handle.read(_MAX_STATE_BYTES + 1)

    return _cached_outputs(
        str(path), (stat.st_mtime_ns, stat.st_size), read, gz=path.name.endswith(".gz")
    )


def _refuse_zstd(name: str, *, where: str) -> None:
    if name.endswith(".zst"):
        raise StateOutputsUnreadable(
            f"the stack's state {where} is zstd-compressed, which the driver cannot read; unset "
            "PULUMI_DIY_BACKEND_ZSTD (or set PULUMI_DIY_BACKEND_GZIP) and run `pulumi up` once"
        )


def _cached_outputs(
    where: str, stamp: tuple[Any, ...], read: Callable[[], bytes], *, gz: bool
) -> dict[str, Any] | None:
    """The outputs in the checkpoint ``read`` returns, decoded again only when ``stamp``
    (what says the file changed: mtime and size, a bucket's ETag) is new for ``where``."""
    known = _READ.get(where)
    if known is not None and known[0] == stamp:
        return known[1]
    try:
        raw = read()
        if gz:
            with gzip.GzipFile(fileobj=io.BytesIO(raw)) as handle:
                raw = handle.read(_MAX_STATE_BYTES + 1)
        if len(raw) > _MAX_STATE_BYTES:
            raise StateOutputsUnreadable(
                f"the stack's state {where} is over {_MAX_STATE_BYTES // 2**20} MiB; read its "
                "outputs with the CLI (apply mode) or write the deployed values into the config"
            )
        text = raw.decode("utf-8")
        del raw
        outputs = _first_resource_outputs(text)
        if outputs is None:
            outputs = _stack_outputs(json.loads(text), where=where)
    except (OSError, EOFError, ValueError) as exc:  # gzip.BadGzipFile is an OSError
        raise StateOutputsUnreadable(f"the stack's state {where} cannot be read: {exc}") from exc
    if len(_READ) >= _READ_KEEP:
        _READ.pop(next(iter(_READ)))
    _READ[where] = (stamp, outputs)
    return outputs


class _S3State:
    """A stack's checkpoint in an ``s3://`` diy backend, read with boto3.

    The URL is the CLI's (gocloud.dev's ``s3blob``): ``s3://<bucket>[/<prefix>]`` with the
    query options ``region``, ``endpoint`` (an S3-compatible service) and ``profile``.
    """

    def __init__(self, backend_url: str) -> None:
        parts = urlsplit(backend_url)
        self.bucket = parts.netloc
        self.prefix = parts.path.strip("/")
        options = dict(parse_qsl(parts.query))
        self.region = options.get("region")
        self.endpoint = options.get("endpoint")
        self.profile = options.get("profile")
        self.shown = f"s3://{self.bucket}/{self.prefix}".rstrip("/")

    def outputs(self, names: list[str]) -> dict[str, Any] | None:
        import boto3
        from botocore.config import Config
        from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError

        try:
            # Credentials are resolved here already (a profile that does not exist, a key
            # without its secret), so this is inside the errors the driver reports.
            session = boto3.Session(profile_name=self.profile) if self.profile else boto3.Session()
            client = session.client(
                "s3",
                region_name=self.region,
                endpoint_url=self.endpoint,
                # One cycle's read: a bucket that does not answer costs the series, not the cycle.
                config=Config(connect_timeout=5, read_timeout=30, retries={"max_attempts": 2}),
            )
        except BotoCoreError as exc:
            raise self._refused(self.shown, exc) from exc
        for name in names:
            key = f"{self.prefix}/{name}" if self.prefix else name
            where = f"{self.shown}/{name}"
            try:
                head = client.head_object(Bucket=self.bucket, Key=key)
            except ClientError as exc:
                if exc.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
                    continue
                raise self._refused(where, exc) from exc
            except NoCredentialsError as exc:
                raise StateOutputsUnreadable(
                    f"the stack's state {where} needs AWS credentials, and the driver has none "
                    "(environment, profile or instance role); give it read access to the "
                    "bucket, or write the deployed value into the config"
                ) from exc
            except BotoCoreError as exc:
                raise self._refused(where, exc) from exc
            _refuse_zstd(name, where=where)

            def read(key: str = key, where: str = where) -> bytes:
                try:
                    body = client.get_object(Bucket=self.bucket, Key=key)["Body"]
                    return bytes(body.read(_MAX_STATE_BYTES + 1))
                except (ClientError, BotoCoreError) as exc:
                    raise self._refused(where, exc) from exc

            stamp = (head.get("ETag"), head.get("ContentLength"))
            return _cached_outputs(where, stamp, read, gz=name.endswith(".gz"))
        # HEAD answers a missing bucket as it does a missing key (404, no body): a stack never
        # deployed is one thing, a backend URL naming no bucket another.
        try:
            client.head_bucket(Bucket=self.bucket)
        except (ClientError, BotoCoreError) as exc:
            raise self._refused(f"{self.shown}/{names[0]}", exc) from exc
        return None

    @staticmethod
    def _refused(where: str, exc: Exception) -> StateOutputsUnreadable:
        return StateOutputsUnreadable(
            f"the stack's state {where} cannot be read: {type(exc).__name__}: {exc}; the "
            "driver's AWS credentials need s3:GetObject on it"
        )


def _first_resource_outputs(text: str) -> dict[str, Any] | None:
    """The outputs of the checkpoint's first resource when it is the root stack resource,
    decoded alone; ``None`` to decode the whole checkpoint instead.

    The root stack resource is registered first, so the CLI writes it first of
    ``latest.resources``; its outputs are all a driver reads, while the other resources (every
    pool's groups, balancers and their inputs and outputs: most of a large stack's state) need
    not be decoded at all. Anything unexpected (another version, another first resource)
    falls back to the whole document.
    """
    version = _VERSION.match(text)
    found = _RESOURCES.search(text, version.end()) if version else None
    if version is None or found is None or int(version.group(1)) != 3:
        return None
    try:
        first, _end = json.JSONDecoder().raw_decode(text, found.end())
    except ValueError:
        return None
    if not isinstance(first, dict) or first.get("type") != "pulumi:pulumi:Stack":
        return None
    outputs = first.get("outputs")
    return dict(outputs) if isinstance(outputs, Mapping) else {}


def pulumi_project_name(root: Path) -> str:
    """The project's name, ``name:`` in ``<root>/Pulumi.yaml`` (the state is filed under it).

    :raises StateOutputsUnreadable: there is no ``Pulumi.yaml`` with a name there.
    """
    from ruamel.yaml import YAML, YAMLError

    path = root / "Pulumi.yaml"
    try:
        document = YAML(typ="safe").load(path.read_text(encoding="utf-8"))
    except (OSError, YAMLError) as exc:
        raise StateOutputsUnreadable(f"cannot read the project's name from {path}: {exc}") from exc
    name = document.get("name") if isinstance(document, Mapping) else None
    if not isinstance(name, str) or not name:
        raise StateOutputsUnreadable(f"{path} has no 'name:', under which the state is filed")
    return name


def _file_backend_root(backend_url: str) -> Path:
    """The directory of a ``file://`` backend; a sentence for any other backend."""
    if not backend_url.startswith("file://"):
        scheme = urlsplit(backend_url).scheme or backend_url
        raise StateOutputsUnreadable(
            f"the stack's state is in a {scheme} backend ({_without_credentials(backend_url)}), "
            "which the driver does not read without the Pulumi CLI (it reads file:// and "
            "s3://); run the driver in apply mode, point driver.backend_url at a file:// or "
            "s3:// copy of the state, or write the deployed value into the config "
            "(`pulumi stack output pools` shows it)"
        )
    # The CLI's own reading: file://~ is the home directory; a query (?no_tmp_dir=...) is
    # an option of the bucket, not part of the path.
    location = backend_url.removeprefix("file://").split("?", 1)[0]
    return Path(location).expanduser()


def _without_credentials(url: str) -> str:
    parts = urlsplit(url)
    if parts.username or parts.password:
        host = parts.hostname or ""
        return parts._replace(netloc=host + (f":{parts.port}" if parts.port else "")).geturl()
    return url


def _stack_outputs(document: Any, *, where: str) -> dict[str, Any] | None:
    """The ``pulumi:pulumi:Stack`` resource's outputs in a versioned checkpoint."""
    checkpoint = document.get("checkpoint") if isinstance(document, Mapping) else None
    if not isinstance(checkpoint, Mapping):
        raise StateOutputsUnreadable(
            f"the stack's state {where} is not a Pulumi checkpoint (no 'checkpoint' object)"
        )
    version = document.get("version")
    if version not in (1, 2, 3):
        raise StateOutputsUnreadable(
            f"the stack's state {where} is checkpoint version {version!r}; the driver reads "
            "versions 1 to 3 (read this stack's outputs in apply mode, with the CLI)"
        )
    latest = checkpoint.get("latest")
    if latest is None:
        return None  # a stack initialised but never updated
    resources = latest.get("resources") if isinstance(latest, Mapping) else None
    for resource in resources or []:
        if isinstance(resource, Mapping) and resource.get("type") == "pulumi:pulumi:Stack":
            outputs = resource.get("outputs")
            return dict(outputs) if isinstance(outputs, Mapping) else {}
    return None


@dataclass(frozen=True)
class ResolvedMetrics:
    """The config with every resolvable reference replaced, and why the others were not.

    :param config: the stack config, each metric's dimension references replaced by their
        values (itself when it held none).
    :param unresolved: ``(pool, metric) -> sentence`` for each series whose references could
        not all be resolved; it is not collected this cycle.
    """

    config: MirrorcastConfig
    unresolved: dict[tuple[str, str], str] = field(default_factory=dict)


def _source_resource(config: MirrorcastConfig) -> str | None:
    """The Azure Monitor source's ``resource_id`` when it refers to a stack output."""
    resource = getattr(config.metrics, "resource_id", None)
    return resource if isinstance(resource, str) and OUTPUT_REFERENCE.search(resource) else None


def has_output_references(config: MirrorcastConfig) -> bool:
    """Whether any pool metric refers to a stack output (so outputs must be read)."""
    return _source_resource(config) is not None or any(
        OUTPUT_REFERENCE.search(value)
        for pool in config.pools.values()
        for spec in pool.metrics.values()
        for value in [*spec.dimensions.values(), spec.resource or ""]
    )


def resolve_output_references(
    config: MirrorcastConfig,
    *,
    outputs: Mapping[str, Any] | None,
    stack: str,
    why_none: str = "the stack has no outputs yet (has it been deployed with `pulumi up`?)",
) -> ResolvedMetrics:
    """Replace ``${outputs.<path>}`` in every metric's dimensions and resource by the stack
    output there (an Azure Monitor source's ``resource_id`` too, as each metric's resource).

    ``$pool`` in a path is the pool's name first, so one definition serves several pools.

    :param config: the stack config as loaded.
    :param outputs: the stack's outputs (``{"pools": {...}}``), or ``None`` when they cannot
        be read.
    :param stack: the stack's name, for the sentences.
    :param why_none: the reason given when ``outputs`` is ``None``.
    """
    unresolved: dict[tuple[str, str], str] = {}
    pools: dict[str, Any] = {}
    # A source-wide resource id that names an output differs per pool: each metric reads the
    # value resolved for its own pool as its ``resource``.
    shared_resource = _source_resource(config)
    for pool_name, pool in config.pools.items():
        metrics: dict[str, MetricSpec] = {}
        for metric, spec in pool.metrics.items():
            texts = {f"dimension {key}": value for key, value in spec.dimensions.items()}
            resource = spec.resource or shared_resource
            if resource is not None:
                texts["resource" if spec.resource else "metrics.resource_id"] = resource
            resolved: dict[str, str] = {}
            for what, value in texts.items():
                text, problem = _resolve(value, pool=pool_name, outputs=outputs, why_none=why_none)
                if problem is not None:
                    unresolved.setdefault(
                        (pool_name, metric),
                        f"stack {stack}, pool {pool_name}, metric {metric}: {what} refers to "
                        f"stack output {problem}",
                    )
                resolved[what] = text
            update: dict[str, Any] = {}
            dimensions = {key: resolved[f"dimension {key}"] for key in spec.dimensions}
            if dimensions != spec.dimensions:
                update["dimensions"] = dimensions
            if resource is not None:
                new_resource = resolved.get("resource", resolved.get("metrics.resource_id"))
                if new_resource != spec.resource:
                    update["resource"] = new_resource
            if update:
                spec = spec.model_copy(update=update)
            metrics[metric] = spec
        changed = any(metrics[m] is not pool.metrics[m] for m in metrics)
        pools[pool_name] = pool.model_copy(update={"metrics": metrics}) if changed else pool
    if all(pools[name] is config.pools[name] for name in pools):
        return ResolvedMetrics(config=config, unresolved=unresolved)
    return ResolvedMetrics(config=config.model_copy(update={"pools": pools}), unresolved=unresolved)


def _resolve(
    value: str, *, pool: str, outputs: Mapping[str, Any] | None, why_none: str
) -> tuple[str, str | None]:
    """``value`` with its references replaced, and the first problem (``None``: all resolved)."""
    problems: list[str] = []

    def replace(match: Any) -> str:
        path = match.group(1).replace("$pool", pool)
        if outputs is None:
            problems.append(f"{path}, but {why_none}")
            return str(match.group(0))
        found, missing_at = _walk(outputs, path)
        if missing_at is not None:
            problems.append(f"{path}, which the stack's outputs do not have ({missing_at})")
            return str(match.group(0))
        if isinstance(found, Mapping) and SECRET_SIGNATURE in found:
            problems.append(
                f"{path}, which is a secret in the stack's state (encrypted); a metric cannot "
                "name a secret output"
            )
            return str(match.group(0))
        if not isinstance(found, str | int | float) or isinstance(found, bool):
            problems.append(f"{path}, which is not a single value in the stack's outputs")
            return str(match.group(0))
        return str(found)

    text = OUTPUT_REFERENCE.sub(replace, value)
    return text, (problems[0] if problems else None)


def _walk(outputs: Mapping[str, Any], path: str) -> tuple[Any, str | None]:
    """The value at dotted ``path``, or where the walk stopped and what was there instead."""
    node: Any = outputs
    walked: list[str] = []
    for part in path.split("."):
        if not isinstance(node, Mapping) or part not in node:
            here = ".".join(walked) or "the top level"
            keys = sorted(node) if isinstance(node, Mapping) else []
            has = f"has {', '.join(map(str, keys))}" if keys else "has no keys"
            return None, f"no {part!r} under {here}, which {has}"
        node = node[part]
        walked.append(part)
    return node, None
