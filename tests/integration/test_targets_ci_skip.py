"""Without sshd the farm tests skip loudly, but under CI=true they fail instead."""

from __future__ import annotations

import pytest

from conftest import require_sshd


def test_missing_sshd_skips_loudly_but_fails_under_ci(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(require_sshd.__globals__, "find_sshd", lambda: None)
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="CI=true"):
        require_sshd()
    monkeypatch.delenv("CI")
    with pytest.warns(UserWarning, match="NOT INSTALLED"), pytest.raises(pytest.skip.Exception, match="openssh-server"):
        require_sshd()
