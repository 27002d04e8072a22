#!/usr/bin/env bash
# Installs what `npm test` runs besides Node.js: squid, PostgreSQL, redis-server, Debian's python3-httpx
# and openssl with apt-get (Debian, Ubuntu) or Homebrew (macOS), and cfn-lint and moto_server with pipx,
# at the versions CI uses. Installs only what is missing, so it is quick to run again. `.ci/run` and the
# pull-request workflow run this same script; `node scripts/preflight.mjs` then checks the result.
#
#   sudo bash scripts/install-prerequisites.sh      # Debian or Ubuntu
#   bash scripts/install-prerequisites.sh           # macOS
set -euo pipefail
cd "$(dirname "$0")/.."

CFN_LINT='cfn-lint==1.51.0'
MOTO='moto[server]==5.2.1'

have() { command -v "$1" >/dev/null 2>&1; }
say() { echo "install-prerequisites: $*"; }

system_packages=()
case "$(uname -s)" in
  Linux)
    if ! have apt-get; then
      say "this script knows apt-get (Debian, Ubuntu) and Homebrew (macOS); install the tools 'node scripts/preflight.mjs' names by hand" >&2
      exit 1
    fi
    have squid || [ -x /usr/sbin/squid ] || system_packages+=(squid)
    ls /usr/lib/postgresql/*/bin/postgres >/dev/null 2>&1 || system_packages+=(postgresql)
    have redis-server || system_packages+=(redis-server)
    { [ -x /usr/bin/python3 ] && /usr/bin/python3 -c 'import httpx' 2>/dev/null; } || system_packages+=(python3-httpx)
    have openssl || system_packages+=(openssl)
    have git || system_packages+=(git)
    if ! have cfn-lint || ! have moto_server; then have pipx || system_packages+=(pipx); fi
    if [ "${#system_packages[@]}" -gt 0 ]; then
      sudo=()
      if [ "$(id -u)" -ne 0 ]; then
        have sudo || { say "need root for apt-get install ${system_packages[*]}" >&2; exit 1; }
        sudo=(sudo)
      fi
      say "apt-get install ${system_packages[*]}"
      "${sudo[@]}" apt-get update -qq
      DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq "${system_packages[@]}" >/dev/null
    fi
    ;;
  Darwin)
    have brew || { say "Homebrew is needed on macOS (https://brew.sh)" >&2; exit 1; }
    have squid || system_packages+=(squid)
    have pg_config || system_packages+=(postgresql@16)
    have redis-server || system_packages+=(redis)
    have pipx || system_packages+=(pipx)
    if [ "${#system_packages[@]}" -gt 0 ]; then
      say "brew install ${system_packages[*]}"
      brew install "${system_packages[@]}"
    fi
    /usr/bin/python3 -c 'import httpx' 2>/dev/null || /usr/bin/python3 -m pip install --user --quiet httpx
    ;;
  *)
    say "unsupported system $(uname -s); install the tools 'node scripts/preflight.mjs' names by hand" >&2
    exit 1
    ;;
esac

# cfn-lint and moto_server: Python tools, each in its own pipx environment, pinned to CI's versions.
if ! have cfn-lint; then
  say "pipx install $CFN_LINT"
  pipx install --quiet "$CFN_LINT"
fi
if ! have moto_server; then
  say "pipx install $MOTO"
  pipx install --quiet "$MOTO"
fi
if ! have cfn-lint || ! have moto_server; then
  say "pipx put cfn-lint and moto_server in $(pipx environment --value PIPX_BIN_DIR 2>/dev/null || echo '~/.local/bin'); add it to PATH (pipx ensurepath)" >&2
  exit 1
fi
say "done"
