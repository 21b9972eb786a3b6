#!/usr/bin/env bash
# The model-file and training-state decoders read bytes from disk: fuzz them
# briefly beyond their seed corpora (internal/engine/testdata/fuzz/).
set -euo pipefail
go test -run '^$' -fuzz '^FuzzDecodeModel$' -fuzztime "${FUZZTIME:-20s}" ./internal/engine/
go test -run '^$' -fuzz '^FuzzRestoreState$' -fuzztime "${FUZZTIME:-10s}" ./internal/engine/
