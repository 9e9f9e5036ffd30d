"""The run's commit_info: git's, overlaid by CI variables, then by --commit/--branch."""

from __future__ import annotations

from edgebench.results.commit import resolve

GIT = {"id": "a" * 40, "time": "t", "author_time": "t", "dirty": True, "project": "p", "branch": "main"}


def test_git_alone_is_kept() -> None:
    got = resolve(GIT, {})
    assert (got["id"], got["branch"], got["dirty"], got["source"]) == ("a" * 40, "main", True, "git")


def test_ci_variables_win_over_git_and_dirty_becomes_unknown() -> None:
    got = resolve(GIT, {"GITHUB_SHA": "b" * 40, "GITHUB_REF_NAME": "12/merge", "GITHUB_HEAD_REF": "feature"})
    assert (got["id"], got["branch"], got["dirty"], got["source"]) == ("b" * 40, "feature", None, "ci")
    gitlab = resolve({}, {"CI_COMMIT_SHA": "c" * 40, "CI_COMMIT_BRANCH": "dev"})
    assert (gitlab["id"], gitlab["branch"], gitlab["source"]) == ("c" * 40, "dev", "ci")


def test_the_users_options_win_over_everything() -> None:
    env = {"GITHUB_SHA": "b" * 40, "EDGEBENCH_COMMIT": "d" * 40, "EDGEBENCH_BRANCH": "release"}
    got = resolve(GIT, env)
    assert (got["id"], got["branch"], got["source"]) == ("d" * 40, "release", "option")
    same = resolve(GIT, {"EDGEBENCH_COMMIT": "a" * 40})  # the commit git sees: its dirty flag holds
    assert same["dirty"] is True and same["branch"] == "main"


def test_no_checkout_and_no_ci_is_unversioned() -> None:
    got = resolve({"id": "unversioned", "dirty": False, "branch": "(unknown)"}, {"GITHUB_SHA": "  "})
    assert (got["id"], got["branch"], got["dirty"], got["source"]) == ("unversioned", None, None, None)
