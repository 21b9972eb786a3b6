#!/usr/bin/env bash
# The model-file decoder reads untrusted bytes: fuzz it briefly beyond its
# committed seed corpus (internal/engine/testdata/fuzz/FuzzDecodeModel).
set -euo pipefail
go test -run '^$' -fuzz '^FuzzDecodeModel$' -fuzztime "${FUZZTIME:-20s}" ./internal/engine/
