#!/usr/bin/env bash
# cmd/server's TestWalkthrough runs the README's curl walk-through as
# written; it needs curl (bash, sed and grep are in every Debian image).
set -euo pipefail
if ! command -v curl >/dev/null; then
  if [ "$(id -u)" = 0 ]; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends curl ca-certificates
  else
    echo "missing curl (run as root to install it)" >&2
    exit 1
  fi
fi
