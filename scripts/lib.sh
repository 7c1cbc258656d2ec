# Shared by scripts/up.sh and scripts/test.sh: make sure this machine has what sovstack
# needs (Debian packages, then a virtualenv in .venv with sovstack installed from this
# checkout). Usage: ensure_venv [EXTRAS]
set -euo pipefail

ensure_venv() {
  local extras="${1:-}"
  if [ "$(id -u)" -ne 0 ]; then
    echo "sovstack: run this as root (the rig needs a container engine and a network)" >&2
    exit 1
  fi
  local missing=()
  command -v python3 >/dev/null || missing+=(python3)
  python3 -c 'import ensurepip, venv' 2>/dev/null || missing+=(python3-venv)
  command -v ssh >/dev/null || missing+=(openssh-client)
  command -v ip >/dev/null || missing+=(iproute2)
  if [ "${#missing[@]}" -gt 0 ]; then
    echo "== apt: installing ${missing[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
  fi
  if [ ! -x .venv/bin/python ]; then
    echo "== venv: .venv"
    python3 -m venv .venv
  fi
  echo "== pip: sovstack${extras:+[$extras]} and its dependencies"
  .venv/bin/pip install -q --upgrade pip >/dev/null
  .venv/bin/pip install -q ".${extras:+[$extras]}"
  # Always the checkout as it is now, even when the version number did not change.
  .venv/bin/pip install -q --force-reinstall --no-deps .
  export PATH="$PWD/.venv/bin:$PATH"
}
