#!/usr/bin/env bash
# The model-file and training-state decoders read bytes from disk: fuzz them
# briefly beyond their seed corpora (internal/engine/testdata/fuzz/).
set -euo pipefail
# shellcheck source=../lib/fuzz.sh
. "$(dirname "$0")/../lib/fuzz.sh"
fuzz ./internal/engine/ FuzzDecodeModel "${FUZZTIME:-20s}"
fuzz ./internal/engine/ FuzzRestoreState "${FUZZTIME:-10s}"
