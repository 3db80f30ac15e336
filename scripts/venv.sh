#!/usr/bin/env bash
# Create .venv and install the project with every backend SDK ("all"), plus the
# test extras when called as `scripts/venv.sh test`.
set -euo pipefail
cd "$(dirname "$0")/.."
extras="all"
[ "${1:-}" = "test" ] && extras="all,test"
[ -x .venv/bin/python ] || python3 -m venv .venv
.venv/bin/python -m pip install -q --disable-pip-version-check --upgrade pip 2>&1 | grep -v "is ignored" || true
.venv/bin/python -m pip install -q --disable-pip-version-check -e ".[${extras}]" 2>&1 | grep -v "is ignored" || true
.venv/bin/python -c "import zerotrust_admin" # fail here, clearly, if the install did not work
# An editable install leaves the package uncompiled, and with PYTHONDONTWRITEBYTECODE
# set (as on these machines) every command would recompile it at start-up:
# +0.1-0.3 s per run. compileall writes the caches regardless of that variable.
.venv/bin/python -m compileall -q zerotrust_admin zerotrust_kerberos >/dev/null
