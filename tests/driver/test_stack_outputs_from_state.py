"""Plan- and gitops-mode drivers read a stack's outputs from its local backend's checkpoint.

They have no Pulumi CLI to ask, so ``driver.stack_outputs.read_state_outputs`` reads the file
the diy backend keeps: ``<backend>/.pulumi/stacks/<project>/<stack>.json`` (or the legacy
``<backend>/.pulumi/stacks/<stack>.json``, or either gzip-compressed), a versioned checkpoint
whose ``pulumi:pulumi:Stack`` resource holds the outputs. The checkpoints here are written in
that layout and shape (Pulumi's ``pkg/backend/diy/store.go`` and ``apitype.CheckpointV3``);
``tests/infra/test_pulumi_cli_contract.py`` reads one the real CLI wrote, where the CLI exists.
"""

from __future__ import annotations

import gzip
import json
from pathlib import Path
from typing import Any

import pytest
from driver_helpers import assert_reads_the_primarys_ids, multicloud_project

from driver.gitops import GitOpsExecutor
from driver.service import Driver
from driver.stack_outputs import (
    SECRET_SIGNATURE,
    StateOutputsUnreadable,
    read_state_outputs,
)

IDS = {
    "autoscaling_group": "checkout-primary-asg-1a2b3c4",
    "load_balancer": "net/checkout-primary-front-nlb-5d6/50dc6c495c0c9188",
    "target_group": "targetgroup/checkout-primary-front-tg-7e8/73e2d6bc24d8a067",
}


def checkpoint(stack: str, outputs: dict[str, Any] | None) -> dict[str, Any]:
    """A diy backend's checkpoint of ``stack`` in project ``mirrorcast`` after one update."""
    prefix = f"urn:pulumi:{stack}::mirrorcast"
    resources: list[dict[str, Any]] = [
        {
            "urn": f"{prefix}::pulumi:pulumi:Stack::mirrorcast-{stack}",
            "custom": False,
            "type": "pulumi:pulumi:Stack",
            "outputs": outputs or {},
            "created": "2026-11-30T09:12:44.118213Z",
            "modified": "2026-11-30T09:12:44.118213Z",
        },
        {
            "urn": f"{prefix}::pulumi:providers:aws::default_7_11_0",
            "custom": True,
            "id": "5f3c8f0e-0e0c-4d7e-9d8c-4f1e2b3a4c5d",
            "type": "pulumi:providers:aws",
            "inputs": {"region": "eu-west-1", "version": "7.11.0"},
            "outputs": {"region": "eu-west-1", "version": "7.11.0"},
            "parent": f"{prefix}::pulumi:pulumi:Stack::mirrorcast-{stack}",
        },
    ]
    return {
        "version": 3,
        "checkpoint": {
            "stack": f"organization/mirrorcast/{stack}",
            "latest": {
                "manifest": {
                    "time": "2026-11-30T09:12:44.120011Z",
                    "magic": "0f1d6b3c9a5e4f2a8b7c6d5e4f3a2b1c0d9e8f7a6b5c4d3e2f1a0b9c8d7e6f5a",
                    "version": "v3.207.0",
                },
                "secrets_providers": {
                    "type": "passphrase",
                    "state": {"salt": "v1:Zm9vYmFy:v1:YmF6cXV4:c2VjcmV0"},
                },
                "resources": resources,
            },
        },
    }


def write_state(
    backend: Path,
    stack: str,
    outputs: dict[str, Any] | None,
    *,
    legacy: bool = False,
    gz: bool = False,
) -> Path:
    stacks = backend / ".pulumi" / "stacks"
    base = stacks / stack if legacy else stacks / "mirrorcast" / stack
    path = base.with_name(f"{base.name}.json{'.gz' if gz else ''}")
    path.parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps(checkpoint(stack, outputs), indent=4).encode()
    path.write_bytes(gzip.compress(text) if gz else text)
    if not legacy:
        (backend / ".pulumi" / "meta.yaml").write_text("version: 1\n")
    return path


def pools(ids: dict[str, Any]) -> dict[str, Any]:
    return {"checkout": {"mirror_state": "paused", "ids": {"primary": ids, "mirror": {}}}}


class TestAPlanOrGitopsDriverReadsTheLocalState:
    def test_plan_mode_reads_the_backend_apply_mode_writes(
        self, tmp_path: Path, private_state: Path
    ) -> None:
        write_state(private_state / "backend", "multicloud", {"pools": pools(IDS)})
        driver = Driver(stack="multicloud", root=multicloud_project(tmp_path), mode="plan")
        resolved = driver.resolve_metric_outputs(driver.load_config())
        assert resolved.unresolved == {}
        assert_reads_the_primarys_ids(resolved.config, IDS)

    def test_gitops_mode_reads_the_configured_backend(self, tmp_path: Path) -> None:
        backend = tmp_path / "pipeline-state"
        write_state(backend, "multicloud", {"pools": pools(IDS)}, legacy=True, gz=True)
        root = multicloud_project(tmp_path / "project")
        stack_file = root / "stacks" / "Pulumi.multicloud.yaml"
        text = stack_file.read_text()
        assert "  mirrorcast:driver:\n" in text
        stack_file.write_text(
            text.replace(
                "  mirrorcast:driver:\n",
                f"  mirrorcast:driver:\n    backend_url: file://{backend}\n",
                1,
            )
        )
        # The config as loaded from the working tree (a gitops driver loads it from the
        # remote's base branch, the same file there).
        config = Driver(stack="multicloud", root=root, mode="plan").load_config()
        driver = Driver(stack="multicloud", root=root, mode="gitops")
        assert isinstance(driver.executor, GitOpsExecutor)
        resolved = driver.resolve_metric_outputs(config)
        assert resolved.unresolved == {}
        dims = resolved.config.pools["checkout"].metrics["unhealthy_hosts"].dimensions
        assert dims["TargetGroup"] == IDS["target_group"]

    def test_a_secret_output_is_named_not_used(self, tmp_path: Path, private_state: Path) -> None:
        secret = {SECRET_SIGNATURE: "1b47061264138c4ac30d75fd1eb44270", "ciphertext": "v1:abc"}
        write_state(
            private_state / "backend",
            "multicloud",
            {"pools": pools({**IDS, "target_group": secret})},
        )
        driver = Driver(stack="multicloud", root=multicloud_project(tmp_path), mode="plan")
        resolved = driver.resolve_metric_outputs(driver.load_config())
        assert resolved.unresolved[("checkout", "healthy_hosts")].endswith(
            "refers to stack output pools.checkout.ids.primary.target_group, which is a secret "
            "in the stack's state (encrypted); a metric cannot name a secret output"
        )
        assert ("checkout", "cpu") not in resolved.unresolved

    def test_a_remote_backend_says_what_to_do_without_its_credentials(self, tmp_path: Path) -> None:
        root = multicloud_project(tmp_path)
        stack_file = root / "stacks" / "Pulumi.multicloud.yaml"
        stack_file.write_text(
            stack_file.read_text().replace(
                "  mirrorcast:driver:\n",
                "  mirrorcast:driver:\n    backend_url: https://ci:s3cr3t-t0ken@api.pulumi.com\n",
                1,
            )
        )
        driver = Driver(stack="multicloud", root=root, mode="plan")
        resolved = driver.resolve_metric_outputs(driver.load_config())
        sentence = resolved.unresolved[("checkout", "cpu")]
        assert "s3cr3t-t0ken" not in sentence
        assert sentence.endswith(
            "but the stack's state is in a https backend (https://api.pulumi.com), which the "
            "driver does not read without the Pulumi CLI (it reads file:// and s3://); run the "
            "driver in apply mode, point driver.backend_url at a file:// or s3:// copy of the "
            "state, or write the deployed value into the config (`pulumi stack output pools` "
            "shows it)"
        )


class TestReadStateOutputs:
    def test_the_project_layout_wins_over_a_legacy_file(self, tmp_path: Path) -> None:
        write_state(tmp_path, "web", {"pools": {"new": {}}})
        write_state(tmp_path, "web", {"pools": {"old": {}}}, legacy=True)
        assert read_state_outputs(
            backend_url=f"file://{tmp_path}", project="mirrorcast", stack="web"
        ) == {"pools": {"new": {}}}

    def test_a_query_on_the_url_and_a_home_directory_are_read_as_the_cli_does(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setenv("HOME", str(tmp_path))
        write_state(tmp_path, "web", {"pools": {"web": {}}}, gz=True)
        assert read_state_outputs(
            backend_url="file://~?no_tmp_dir=true", project="mirrorcast", stack="web"
        ) == {"pools": {"web": {}}}

    def test_no_file_and_a_stack_never_updated_have_no_outputs(self, tmp_path: Path) -> None:
        url = f"file://{tmp_path}"
        assert read_state_outputs(backend_url=url, project="mirrorcast", stack="web") is None
        path = write_state(tmp_path, "web", None)
        document = json.loads(path.read_text())
        del document["checkpoint"]["latest"]  # `pulumi stack init`, no update yet
        path.write_text(json.dumps(document))
        assert read_state_outputs(backend_url=url, project="mirrorcast", stack="web") is None

    @pytest.mark.parametrize(
        ("content", "expected"),
        [
            (b"{not json", "cannot be read"),
            (b'{"version": 3, "deployment": {}}', "is not a Pulumi checkpoint"),
            (b'{"version": 9, "checkpoint": {}}', "is checkpoint version 9"),
        ],
    )
    def test_a_file_that_is_not_a_checkpoint_is_refused_with_its_path(
        self, tmp_path: Path, content: bytes, expected: str
    ) -> None:
        path = tmp_path / ".pulumi" / "stacks" / "mirrorcast" / "web.json"
        path.parent.mkdir(parents=True)
        path.write_bytes(content)
        with pytest.raises(StateOutputsUnreadable, match=expected) as raised:
            read_state_outputs(backend_url=f"file://{tmp_path}", project="mirrorcast", stack="web")
        assert str(path) in str(raised.value)

    def test_a_zstd_state_says_how_to_get_one_the_driver_reads(self, tmp_path: Path) -> None:
        path = tmp_path / ".pulumi" / "stacks" / "mirrorcast" / "web.json.zst"
        path.parent.mkdir(parents=True)
        path.write_bytes(b"\x28\xb5\x2f\xfd")
        with pytest.raises(StateOutputsUnreadable, match="zstd-compressed"):
            read_state_outputs(backend_url=f"file://{tmp_path}", project="mirrorcast", stack="web")


class TestALargeStateIsReadOnce:
    def test_a_root_stack_resource_written_after_others_is_still_found(
        self, tmp_path: Path
    ) -> None:
        path = write_state(tmp_path, "web", {"pools": {"web": {"mirror_state": "paused"}}})
        document = json.loads(path.read_text())
        resources = document["checkpoint"]["latest"]["resources"]
        resources.reverse()  # the provider first: only the whole document says where it is
        path.write_text(json.dumps(document))
        assert read_state_outputs(
            backend_url=f"file://{tmp_path}", project="mirrorcast", stack="web"
        ) == {"pools": {"web": {"mirror_state": "paused"}}}

    def test_an_unchanged_state_is_not_parsed_again(self, tmp_path: Path) -> None:
        import os

        path = write_state(tmp_path, "web", {"pools": {"web": {}}})
        url = f"file://{tmp_path}"
        first = read_state_outputs(backend_url=url, project="mirrorcast", stack="web")
        stat = path.stat()
        # Same size and modification time: the CLI has not written it since.
        path.write_bytes(b"x" * stat.st_size)
        os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))
        assert read_state_outputs(backend_url=url, project="mirrorcast", stack="web") == first
        # Written again (a new update): read again.
        path.write_bytes(b"x" * (stat.st_size + 1))
        with pytest.raises(StateOutputsUnreadable, match="cannot be read"):
            read_state_outputs(backend_url=url, project="mirrorcast", stack="web")

    def test_the_other_resources_of_a_large_state_are_not_decoded(self, tmp_path: Path) -> None:
        path = write_state(tmp_path, "big", {"pools": {"web": {"mirror_state": "active"}}})
        text = path.read_text()
        # Everything after the root stack resource is left undecoded: a resource there that
        # the decoder would refuse does not stop the read.
        head, provider = text.split('"urn": "urn:pulumi:big::mirrorcast::pulumi:providers', 1)
        path.write_text(head + '"urn": [[[' + provider)
        assert read_state_outputs(
            backend_url=f"file://{tmp_path}", project="mirrorcast", stack="big"
        ) == {"pools": {"web": {"mirror_state": "active"}}}


class TestAnS3Backend:
    """A gitops pipeline's state in an S3 bucket (``s3://<bucket>/<prefix>?region=...``), read
    from moto's server with the driver's AWS credentials, as the CLI would."""

    @pytest.fixture
    def bucket(self, moto_account: str, monkeypatch: pytest.MonkeyPatch) -> Any:
        import boto3

        monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
        monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
        s3 = boto3.client("s3", region_name="eu-west-1", endpoint_url=moto_account)
        s3.create_bucket(
            Bucket="acme-pulumi-state",
            CreateBucketConfiguration={"LocationConstraint": "eu-west-1"},
        )
        return s3

    def url(self, moto_account: str, prefix: str = "platform") -> str:
        return f"s3://acme-pulumi-state/{prefix}?region=eu-west-1&endpoint={moto_account}"

    def test_a_gitops_driver_reads_the_pipelines_bucket(
        self, tmp_path: Path, bucket: Any, moto_account: str
    ) -> None:
        body = json.dumps(checkpoint("multicloud", {"pools": pools(IDS)})).encode()
        bucket.put_object(
            Bucket="acme-pulumi-state",
            Key="platform/.pulumi/stacks/mirrorcast/multicloud.json.gz",
            Body=gzip.compress(body),
        )
        root = multicloud_project(tmp_path)
        stack_file = root / "stacks" / "Pulumi.multicloud.yaml"
        stack_file.write_text(
            stack_file.read_text().replace(
                "  mirrorcast:driver:\n",
                f'  mirrorcast:driver:\n    backend_url: "{self.url(moto_account)}"\n',
                1,
            )
        )
        config = Driver(stack="multicloud", root=root, mode="plan").load_config()
        driver = Driver(stack="multicloud", root=root, mode="gitops")
        resolved = driver.resolve_metric_outputs(config)
        assert resolved.unresolved == {}
        assert_reads_the_primarys_ids(resolved.config, IDS)

    def test_a_stack_the_bucket_does_not_hold_has_no_outputs(
        self, bucket: Any, moto_account: str
    ) -> None:
        assert (
            read_state_outputs(
                backend_url=self.url(moto_account), project="mirrorcast", stack="web"
            )
            is None
        )

    def test_an_updated_state_is_read_again_and_an_unchanged_one_is_not(
        self, bucket: Any, moto_account: str
    ) -> None:
        key = "team/.pulumi/stacks/web.json"  # the legacy layout, under another prefix
        url = self.url(moto_account, prefix="team")
        for mirror_state in ("paused", "active"):
            outputs = {"pools": {"web": {"mirror_state": mirror_state}}}
            bucket.put_object(
                Bucket="acme-pulumi-state",
                Key=key,
                Body=json.dumps(checkpoint("web", outputs)).encode(),
            )
            first = read_state_outputs(backend_url=url, project="mirrorcast", stack="web")
            assert first == outputs
            assert read_state_outputs(backend_url=url, project="mirrorcast", stack="web") is first

    def test_a_missing_bucket_says_what_the_credentials_need(
        self, moto_account: str, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
        monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
        with pytest.raises(StateOutputsUnreadable) as raised:
            read_state_outputs(
                backend_url=f"s3://no-such-bucket?region=eu-west-1&endpoint={moto_account}",
                project="mirrorcast",
                stack="web",
            )
        assert "s3://no-such-bucket/.pulumi/stacks/mirrorcast/web.json cannot be read" in str(
            raised.value
        )
        assert "s3:GetObject" in str(raised.value)

    def test_partial_credentials_are_a_sentence_not_a_crash(
        self, moto_account: str, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        # A key id without its secret: botocore refuses it while building the client.
        monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
        with pytest.raises(StateOutputsUnreadable, match="PartialCredentialsError"):
            read_state_outputs(
                backend_url=self.url(moto_account), project="mirrorcast", stack="web"
            )
