#!/usr/bin/env bash
# Set up a virtual environment in .venv and run the test suite (unit + integration).
# Integration tests start real OpenSSH sshd boards and PostgreSQL servers on loopback: as
# root with apt, openssh-server, chromium, pypy3 and postgresql are installed here; elsewhere those tests skip with a loud reason
# (under CI=true they fail instead of skipping).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}

if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  need=()
  command -v sshd >/dev/null || [ -x /usr/sbin/sshd ] || need+=(openssh-server)
  command -v chromium >/dev/null || need+=(chromium)
  command -v pypy3 >/dev/null || need+=(pypy3 pypy3-venv)  # an older Python for the agent (3.9)
  ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || need+=(postgresql)  # the results-store tests (initdb, pg_ctl)
  if [ ${#need[@]} -gt 0 ]; then
    export DEBIAN_FRONTEND=noninteractive
    # the tests start PostgreSQL servers of their own: Debian's package need not make and start one
    mkdir -p /etc/postgresql-common
    grep -qs create_main_cluster /etc/postgresql-common/createcluster.conf ||
      echo 'create_main_cluster = false' >>/etc/postgresql-common/createcluster.conf
    apt-get update -qq && apt-get install -y -qq "${need[@]}" >/dev/null || echo "warning: could not install ${need[*]}" >&2
  fi
fi

[ -x .venv/bin/python ] || "$PY" -m venv .venv
# torch==2.13.0 first: it is the CPU build; an unpinned torch pulls a CUDA build of several GB.
.venv/bin/pip install -q torch==2.13.0
.venv/bin/pip install -q -e '.[dev,torch,tflite,postgres,lab]'
# PyPy 3.9 + numpy: tests/integration/test_agent_old_python.py runs the agent on it (skips without).
if command -v pypy3 >/dev/null && ! .venv-pypy/bin/python -c 'import numpy' 2>/dev/null; then
  { pypy3 -m venv .venv-pypy && .venv-pypy/bin/pip install -q --only-binary=:all: 'numpy<2'; } ||
    echo "warning: could not make .venv-pypy (PyPy + numpy)" >&2
fi
# Two workers (pytest-xdist), a test file per worker at a time: the suite waits mostly on agent
# processes and servers, so both cores are used; each worker has its own farm, lock and cache.
exec .venv/bin/pytest -p no:cacheprovider -n "${EDGEBENCH_TEST_WORKERS:-2}" --dist loadfile "$@"
