#!/usr/bin/env bash
# Set everything up on a fresh machine (Python 3.11 and the OS package manager)
# and run every test: unit, property, CLI, store contract (with a real
# PostgreSQL server started by the tests), browser (real headless Chromium).
set -euo pipefail
cd "$(dirname "$0")/.."

# OS packages the tests drive for real: Chromium and the PostgreSQL server binaries.
missing=()
command -v chromium >/dev/null 2>&1 || missing+=(chromium)
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || missing+=(postgresql)
if ((${#missing[@]})); then
  sudo=""
  [ "$(id -u)" = 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" fonts-dejavu-core
fi

python3 -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
.venv/bin/python -m pip install -q -e ".[test]"
export HYPOTHESIS_PROFILE="${HYPOTHESIS_PROFILE:-ci}"
exec .venv/bin/python -m pytest "$@"
