"""Which commit of the benchmarked project a run measured: the run file's ``commit_info`` block.

pytest-benchmark fills ``commit_info`` (``id``, ``time``, ``author_time``, ``dirty``,
``project``, ``branch``) from ``git`` in the working directory. That is often wrong or
empty where benchmarks run: a CI job checks out a merge commit or a detached head, a
nightly runs outside the checkout. `resolve` lays over it, first to last winning:

1. ``git`` in the working directory (pytest-benchmark's answer, passed in);
2. the CI's variables: ``GITHUB_SHA`` / ``CI_COMMIT_SHA`` (GitLab) for the commit,
   ``GITHUB_HEAD_REF`` (a pull request's branch), ``GITHUB_REF_NAME``,
   ``CI_COMMIT_BRANCH`` / ``CI_COMMIT_REF_NAME`` (GitLab) for the branch;
3. what the user said: ``edgebench run/nightly --commit/--branch``, passed to the
   harness as ``EDGEBENCH_COMMIT`` / ``EDGEBENCH_BRANCH`` (set them yourself when you
   run the pytest harness directly).

``dirty`` is git's, and only when git's commit is the one recorded; otherwise it is
``null`` (unknown). ``source`` says where the commit came from (``git``, ``ci``,
``option``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

ENV_COMMIT, ENV_BRANCH = "EDGEBENCH_COMMIT", "EDGEBENCH_BRANCH"
CI_COMMIT = ("GITHUB_SHA", "CI_COMMIT_SHA")
CI_BRANCH = ("GITHUB_HEAD_REF", "GITHUB_REF_NAME", "CI_COMMIT_BRANCH", "CI_COMMIT_REF_NAME")
NO_COMMIT = ("", "unversioned", "unknown")  # pytest-benchmark's words for "no checkout"


def _first(env: Mapping[str, str], names: tuple[str, ...]) -> str | None:
    return next((env[n].strip() for n in names if env.get(n, "").strip()), None)


def resolve(git: Mapping[str, Any], env: Mapping[str, str]) -> dict[str, Any]:
    """The ``commit_info`` block: git's, overlaid by the CI's variables, then by the user's.

    Args:
        git: what pytest-benchmark found (``get_commit_info``), possibly ``{}``.
        env: the environment (``os.environ``).

    Returns:
        The block, with ``id``, ``branch``, ``dirty`` and ``source`` set (None when unknown).
    """
    out = dict(git)
    git_id = str(git.get("id") or "")
    commit, source = (git_id, "git") if git_id not in NO_COMMIT else (None, None)
    branch = git.get("branch") if git.get("branch") not in (None, "(unknown)", "(detached head)") else None
    layers = ((CI_COMMIT, CI_BRANCH, "ci"), ((ENV_COMMIT,), (ENV_BRANCH,), "option"))
    for commit_vars, branch_vars, where in layers:
        c, b = _first(env, commit_vars), _first(env, branch_vars)
        if c:
            commit, source = c, where
        if b:
            branch = b
    if commit is None:
        out.setdefault("id", "unversioned")
    else:
        out["id"] = commit
    same = commit is not None and commit == git_id
    out.update(branch=branch, dirty=git.get("dirty") if same else None, source=source)
    return out


def label(info: Mapping[str, Any]) -> str | None:
    """A run's commit as reports show it: the short id, ``*`` when the checkout was dirty.

    Args:
        info: a run's ``commit_info`` block.

    Returns:
        For example ``1a2b3c4*``; None when the run has no commit.
    """
    commit = str(info.get("id") or "")
    if commit in NO_COMMIT:
        return None
    return f"{commit[:7]}{'*' if info.get('dirty') is True else ''}"


def of(info: Mapping[str, Any]) -> tuple[str | None, str | None]:
    """A run's commit (as `label` writes it) and branch, None for what was not recorded.

    Args:
        info: a run's ``commit_info`` block.
    """
    return label(info), str(info.get("branch") or "") or None
