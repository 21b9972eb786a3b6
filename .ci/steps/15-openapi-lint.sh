#!/usr/bin/env bash
# Lints api/openapi.yaml with the Redocly CLI version pinned in
# .ci/lint/package-lock.json, under the rules of .ci/lint/redocly.yaml;
# any error fails the step. Node and npm come from 00-packages.sh.
set -euo pipefail
cd "$(dirname "$0")/../lint"
# No usage reports or update checks from the linter: CI reaches only the
# package registries.
export REDOCLY_TELEMETRY=off REDOCLY_SUPPRESS_UPDATE_NOTICE=true
# The lock file pins every package; no install script is needed to lint.
npm ci --ignore-scripts --no-audit --no-fund
npx --no-install redocly lint ../../api/openapi.yaml --config redocly.yaml --format=stylish
