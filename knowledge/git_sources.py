"""Docs that live in a git repository: pull, then index the working tree.

The checkout belongs to supportbot (under the data dir) and is only ever moved to what the
remote branch says, so local edits cannot pile up. A pull that fails (network, auth, a
deleted branch) leaves the last good checkout in place and says so; a first clone is made
in a scratch folder and renamed into place, so a failed one leaves nothing half-written.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

GIT_TIMEOUT_S = 300


@dataclass(frozen=True)
class GitSync:
    ok: bool
    commit: str | None  # what the checkout holds now (None: no checkout at all)
    message: str


class GitError(RuntimeError):
    pass


def _git(*args: str, cwd: Path | None = None) -> str:
    env = {**os.environ, "GIT_TERMINAL_PROMPT": "0", "GIT_ASKPASS": "true"}  # never wait for a password
    try:
        done = subprocess.run(["git", *args], cwd=cwd, env=env, capture_output=True, text=True,
                              timeout=GIT_TIMEOUT_S, check=False)
    except FileNotFoundError:
        raise GitError("the git program is not installed") from None
    except subprocess.TimeoutExpired:
        raise GitError(f"git {args[0]} took longer than {GIT_TIMEOUT_S}s") from None
    if done.returncode != 0:
        lines = [line for line in (done.stderr or done.stdout).strip().splitlines() if line.strip()]
        raise GitError(lines[-1] if lines else f"git {args[0]} exited with {done.returncode}")
    return done.stdout.strip()


def head_commit(checkout: Path) -> str | None:
    if not (checkout / ".git").exists():
        return None
    try:
        return _git("rev-parse", "--short=12", "HEAD", cwd=checkout)
    except GitError:
        return None


def sync(url: str, checkout: Path, branch: str | None = None) -> GitSync:
    """Bring `checkout` to the tip of `branch` (default: the remote's default branch)."""
    checkout = Path(checkout)
    before = head_commit(checkout)
    try:
        if before is None:
            _clone(url, checkout, branch)
        else:
            _git("remote", "set-url", "origin", url, cwd=checkout)
            _git("fetch", "--depth", "1", "origin", branch or "HEAD", cwd=checkout)
            _git("reset", "--hard", "--quiet", "FETCH_HEAD", cwd=checkout)
            _git("clean", "-fdxq", cwd=checkout)
    except GitError as err:
        if before is None:
            return GitSync(False, None, f"git clone of {url} failed ({err}); nothing to index from it yet")
        return GitSync(False, before, f"git pull of {url} failed ({err}); indexed the last good checkout {before}")
    after = head_commit(checkout)
    if before is None:
        return GitSync(True, after, f"cloned {url} at {after}")
    return GitSync(True, after, f"{url} unchanged at {after}" if after == before else f"{url} {before} -> {after}")


def _clone(url: str, checkout: Path, branch: str | None) -> None:
    scratch = checkout.with_name(checkout.name + ".cloning")
    shutil.rmtree(scratch, ignore_errors=True)
    checkout.parent.mkdir(parents=True, exist_ok=True)
    args = ["clone", "--quiet", "--depth", "1"] + (["--branch", branch] if branch else []) + [url, str(scratch)]
    try:
        _git(*args)
    except GitError:
        shutil.rmtree(scratch, ignore_errors=True)
        raise
    shutil.rmtree(checkout, ignore_errors=True)
    scratch.rename(checkout)
