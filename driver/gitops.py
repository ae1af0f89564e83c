"""``gitops`` mode: propose the plan as a commit on a branch and a pull request.

The change is written into ``stacks/Pulumi.<stack>.yaml`` (only the changed keys differ, see
:mod:`driver.stack_yaml`) in a temporary ``git worktree`` checked out from the remote's base
branch, so the person's own checkout, index and current branch are never touched. The commit
message carries the plan's explanation; the branch is pushed and, when a token is in the
environment variable named by ``driver.gitops.token_env``, a pull request is opened through the
GitHub REST API. Deployment then happens in the repository's pipeline
(``.github/workflows/mirrorcast.yml``).
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import requests
from tenacity import Retrying, retry_if_exception, stop_after_attempt, wait_exponential

from driver.executor import ApplyOutcome, DriverError
from driver.redact import redact_text
from driver.stack_yaml import StackFileError, edit_stack_text
from forecasting.sources import bounded_request
from infra.config import GitOpsSettings, UserError
from policies import Plan

__all__ = ["GitError", "GitOpsExecutor", "PullRequestError"]

logger = logging.getLogger(__name__)

_COMMITTER = {
    "GIT_AUTHOR_NAME": "mirrorcast",
    "GIT_AUTHOR_EMAIL": "mirrorcast@localhost",
    "GIT_COMMITTER_NAME": "mirrorcast",
    "GIT_COMMITTER_EMAIL": "mirrorcast@localhost",
}


class GitError(UserError, RuntimeError):
    """A git command failed; the message has the command and git's own last line."""


class PullRequestError(UserError, RuntimeError):
    """The GitHub API refused the pull request; the message says why and what to do."""

    def __init__(self, message: str, *, retryable: bool = False, wait: float = 0.0) -> None:
        super().__init__(message)
        self.retryable = retryable
        self.wait = wait


_API_DEADLINE = 30.0
"""Seconds for one whole GitHub API request, answer included."""
_API_MAX_BYTES = 4 * 1024 * 1024
"""Largest GitHub API answer read (a pull request object is a few KiB)."""
_GIT_TIMEOUT = 300.0
"""Seconds for one git command (a push of a stack file takes seconds)."""


class GitOpsExecutor:
    """Proposes plans for one stack as pull requests.

    :param stack: the stack name.
    :param repo_root: the git work tree holding ``stacks/``.
    :param settings: remote, base branch, branch prefix, GitHub repository, API URL, token env.
    :param session: HTTP session for the GitHub API; default a new ``requests.Session``.
    :param api_attempts: tries for rate-limited or failing API calls; default 3.
    :param max_wait: longest wait (seconds) honoured from ``Retry-After``/rate-limit reset;
        longer waits fail now and the next cycle tries again; default 60.
    :param backoff: first wait in seconds between retries of failing API calls, doubled per
        try (capped at 30 s); default 1.
    :param api_deadline: seconds for one whole GitHub API request, answer included; default 30.
    """

    mode = "gitops"

    def __init__(
        self,
        *,
        stack: str,
        repo_root: Path,
        settings: GitOpsSettings,
        session: requests.Session | None = None,
        api_attempts: int = 3,
        max_wait: float = 60.0,
        backoff: float = 1.0,
        api_deadline: float = _API_DEADLINE,
    ) -> None:
        self.stack_name = stack
        self.repo_root = repo_root
        self.settings = settings
        self.session = session or requests.Session()
        self.api_attempts = api_attempts
        self.max_wait = max_wait
        self.backoff = backoff
        self.api_deadline = api_deadline
        # The driver's fencing check, called before each push and pull request; the driver
        # sets it, a bare executor checks nothing.
        self.fence: Callable[[], None] = lambda: None

    # ------------------------------------------------------------------ setup

    @property
    def remote(self) -> str:
        """``driver.gitops.remote``; :class:`DriverError` when it is unset (nothing is pushed)."""
        if self.settings.remote is None:
            raise DriverError(
                "gitops mode pushes to the git remote named in driver.gitops.remote, which is "
                f"not set in stacks/Pulumi.{self.stack_name}.yaml; set it to the remote of the "
                "repository your pipeline deploys from (the name of a git remote of this "
                "checkout, such as origin)."
            )
        return self.settings.remote

    def remote_url(self) -> str:
        """Where :attr:`remote` points, without credentials, for messages."""
        try:
            url = self._git("remote", "get-url", self.remote)
        except GitError:
            return "its URL unknown"
        return redact_text(re.sub(r"//[^/@]+@", "//", url))  # no user:token@ in messages

    def check_ready(self) -> None:
        remote = self.remote
        if shutil.which("git") is None:
            raise DriverError("gitops mode needs git on PATH; install git or use --mode plan.")
        try:
            self._git("rev-parse", "--is-inside-work-tree")
        except GitError:
            raise DriverError(
                f"gitops mode needs a git repository, and {self.repo_root} is not one."
            ) from None
        try:
            self._git("remote", "get-url", remote)
        except GitError:
            raise DriverError(
                f"gitops mode pushes to the git remote '{remote}' (driver.gitops.remote), which "
                "this repository does not have; add it (git remote add) or change the setting."
            ) from None

    def base_stack_text(self) -> tuple[str, str]:
        """The stack file as it is on the remote's base branch (what the pipeline deploys).

        Returns the text and a source name for error messages.
        """
        remote, base = self.remote, self.settings.base_branch
        relative = f"stacks/Pulumi.{self.stack_name}.yaml"
        self._git("fetch", "--quiet", remote, base)
        text = self._git("show", f"{remote}/{base}:{relative}", strip=False)
        return text, f"{remote}/{base}:{relative}"

    # ------------------------------------------------------------------ act

    def apply(self, plan: Plan, *, plan_id: str, retry_update: bool = False) -> ApplyOutcome:
        if not plan.changes:
            return ApplyOutcome(status="planned", summary="no changes to propose")
        branch = f"{self.settings.branch_prefix}{plan_id}"
        try:
            pushed = self._push_branch(plan, plan_id=plan_id, branch=branch)
        except (GitError, StackFileError) as exc:
            return ApplyOutcome(status="failed", summary=redact_text(str(exc)))
        where = f"{self.remote} ({self.remote_url()})"
        details: dict[str, Any] = {"branch": branch, "commit": pushed, "remote": where}
        token = os.environ.get(self.settings.token_env)
        if not token or not self.settings.github_repo:
            why = (
                f"no token in ${self.settings.token_env}"
                if not token
                else "driver.gitops.github_repo is not set"
            )
            return ApplyOutcome(
                status="proposed",
                summary=f"pushed {branch} to {where}; {why}, so open the pull request yourself",
                details=details,
            )
        try:
            url = self._open_pull_request(plan, branch=branch, token=token)
        except PullRequestError as exc:
            return ApplyOutcome(
                status="failed",
                summary=redact_text(f"pushed {branch} to {where}; {exc}"),
                details=details,
            )
        details["pull_request"] = url
        return ApplyOutcome(
            status="proposed",
            summary=f"pushed {branch} to {where}; opened pull request {url}",
            details=details,
        )

    # ------------------------------------------------------------------ git

    def _git(self, *args: str, cwd: Path | None = None, strip: bool = True) -> str:
        env = {**os.environ, "GIT_TERMINAL_PROMPT": "0"}
        for key, value in _COMMITTER.items():
            env.setdefault(key, value)
        try:
            result = subprocess.run(
                ["git", *args],
                cwd=cwd or self.repo_root,
                env=env,
                capture_output=True,
                text=True,
                check=False,
                timeout=_GIT_TIMEOUT,
            )
        except subprocess.TimeoutExpired:
            # A remote that accepts the connection and never answers must not hang the cycle.
            raise GitError(f"git {args[0]} did not finish within {_GIT_TIMEOUT:g} s") from None
        if result.returncode != 0:
            lines = [ln for ln in (result.stderr or result.stdout).splitlines() if ln.strip()]
            detail = "; ".join(lines[-2:]) if lines else f"exit code {result.returncode}"
            raise GitError(f"git {args[0]} failed: {redact_text(detail)}")
        return result.stdout.strip() if strip else result.stdout

    def _remote_has(self, branch: str) -> str | None:
        out = self._git("ls-remote", "--heads", self.remote, f"refs/heads/{branch}")
        return out.split()[0] if out else None

    def _push_branch(self, plan: Plan, *, plan_id: str, branch: str) -> str:
        remote, base = self.remote, self.settings.base_branch
        existing = self._remote_has(branch)
        if existing is not None:
            # Same plan id, so the same change: an earlier cycle pushed it and then failed on
            # the pull request. Do not push a second commit.
            logger.info("branch %s already on %s at %s; reusing it", branch, remote, existing[:8])
            return existing
        self._git("fetch", "--quiet", remote, base)
        try:
            self._git("rev-parse", "--verify", "--quiet", f"refs/heads/{branch}")
            # A local branch of that name that never reached the remote is a leftover of an
            # interrupted run of this very plan; start it again from the base.
            self._git("branch", "-D", branch)
        except GitError:
            pass
        relative = Path("stacks") / f"Pulumi.{self.stack_name}.yaml"
        with tempfile.TemporaryDirectory(prefix="mirrorcast-gitops-") as tmp:
            worktree = Path(tmp) / "tree"
            self._git("worktree", "add", "--quiet", "-b", branch, str(worktree), f"{remote}/{base}")
            try:
                path = worktree / relative
                if not path.is_file():
                    raise GitError(f"{relative} does not exist on {remote}/{base}")
                text = path.read_text(encoding="utf-8")
                path.write_text(
                    edit_stack_text(text, plan.changes, source=str(relative)), encoding="utf-8"
                )
                self._git("add", str(relative), cwd=worktree)
                self._git("commit", "--quiet", "-m", _commit_message(plan, plan_id), cwd=worktree)
                commit = self._git("rev-parse", "HEAD", cwd=worktree)
                self.fence()
                try:
                    self._git(
                        "push", "--quiet", remote, f"{branch}:refs/heads/{branch}", cwd=worktree
                    )
                except GitError as exc:
                    raise GitError(
                        f"push of {branch} to {remote} was rejected ({exc}); check the remote's "
                        "permissions and branch protection"
                    ) from None
            finally:
                self._git("worktree", "remove", "--force", str(worktree))
        logger.info("pushed %s (%s) to %s", branch, commit[:8], remote)
        return commit

    # ------------------------------------------------------------------ GitHub

    def _open_pull_request(self, plan: Plan, *, branch: str, token: str) -> str:
        repo = self.settings.github_repo
        api = self.settings.github_api.rstrip("/")
        headers = {
            "Authorization": f"Bearer {token}",
            "Accept": "application/vnd.github+json",
            "X-GitHub-Api-Version": "2022-11-28",
            "User-Agent": "mirrorcast",
        }
        body = {
            "title": _title(plan),
            "head": branch,
            "base": self.settings.base_branch,
            "body": redact_text(_pr_body(plan), extra_env=[self.settings.token_env]),
        }

        def attempt() -> str:
            self.fence()
            response = bounded_request(
                self.session,
                "POST",
                f"{api}/repos/{repo}/pulls",
                json=body,
                headers=headers,
                deadline=self.api_deadline,
                max_bytes=_API_MAX_BYTES,
            )
            if response.status_code == 201:
                return str(response.json()["html_url"])
            if response.status_code == 422 and "already exists" in response.text:
                owner = (repo or "").split("/")[0]
                found = bounded_request(
                    self.session,
                    "GET",
                    f"{api}/repos/{repo}/pulls",
                    params={"head": f"{owner}:{branch}", "state": "open"},
                    headers=headers,
                    deadline=self.api_deadline,
                    max_bytes=_API_MAX_BYTES,
                )
                if found.ok and found.json():
                    return str(found.json()[0]["html_url"])
            raise _api_error(response, max_wait=self.max_wait)

        def wait(state: Any) -> float:
            exc = state.outcome.exception() if state.outcome else None
            hinted = exc.wait if isinstance(exc, PullRequestError) else 0.0
            return hinted or float(wait_exponential(multiplier=self.backoff, max=30)(state))

        retrying = Retrying(
            retry=retry_if_exception(lambda e: isinstance(e, PullRequestError) and e.retryable),
            wait=wait,
            stop=stop_after_attempt(self.api_attempts),
            reraise=True,
        )
        try:
            return retrying(attempt)
        except requests.RequestException as exc:
            raise PullRequestError(f"cannot reach the GitHub API at {api}: {exc}") from None


def _api_error(response: requests.Response, *, max_wait: float) -> PullRequestError:
    status = response.status_code
    try:
        message = str(response.json().get("message", ""))
    except ValueError:
        message = response.text[:200]
    remaining = response.headers.get("X-RateLimit-Remaining")
    retry_after = response.headers.get("Retry-After")
    if status in (403, 429) and (remaining == "0" or retry_after is not None):
        if retry_after is not None:
            wait = float(retry_after)
        else:
            reset = float(response.headers.get("X-RateLimit-Reset", "0") or 0)
            wait = max(0.0, reset - time.time())
        if wait > max_wait:
            return PullRequestError(
                f"GitHub API rate limit reached; it resets in {wait:.0f}s, the next cycle retries"
            )
        return PullRequestError(
            f"GitHub API rate limit reached ({message or status})", retryable=True, wait=wait
        )
    if status == 401:
        return PullRequestError(
            "the GitHub API rejected the token (401); check the token and its 'pull requests' permission"
        )
    if status == 404:
        return PullRequestError(
            "the GitHub API does not know the repository (404); check driver.gitops.github_repo "
            "and that the token can see it"
        )
    if status >= 500:
        return PullRequestError(f"GitHub API error {status}: {message}", retryable=True)
    return PullRequestError(f"GitHub API refused the pull request ({status}): {message}")


def _title(plan: Plan) -> str:
    actions = [d for d in plan.decisions if d.action != "hold"]
    if actions:
        first = actions[0]
        more = f" (+{len(actions) - 1} more)" if len(actions) > 1 else ""
        return f"mirrorcast: {first.action.replace('_', ' ')} on {first.pool}{more}"
    return f"mirrorcast: {len(plan.changes)} config change(s)"


def _pr_body(plan: Plan) -> str:
    changes = "\n".join(f"- `{c.path}`: `{c.old!r}` -> `{c.new!r}`" for c in plan.changes)
    return (
        f"{plan.explanation.strip() or 'No explanation given.'}\n\n"
        f"### Changes\n{changes}\n\nPlanned at {plan.now.isoformat()} by the mirrorcast driver."
    )


def _commit_message(plan: Plan, plan_id: str) -> str:
    return redact_text(f"{_title(plan)}\n\n{_pr_body(plan)}\n\nMirrorcast-Plan: {plan_id}\n")
