#!/usr/bin/env bash
# The CSV dataset parser (and its parallel path against the serial one, and
# its number fast path against strconv), the JSON records parser, the job request
# decoder, the prediction path's hand-written JSON scanner and encoder,
# raw-row predictions and per-column /v2 tensors for a typed model, and the
# model name rule read untrusted bytes: fuzz each briefly beyond its seed
# corpus. A crasher lands in the package's testdata/fuzz and must be
# committed as a regression case.
set -euo pipefail
# shellcheck source=../lib/fuzz.sh
. "$(dirname "$0")/../lib/fuzz.sh"
fuzz ./internal/ingest/ FuzzReadCSV "${FUZZTIME:-15s}"
fuzz ./internal/ingest/ FuzzParallelCSV "${FUZZTIME:-15s}"
fuzz ./internal/ingest/ FuzzParseCell "${FUZZTIME:-15s}"
fuzz ./internal/ingest/ FuzzJSONRecords "${FUZZTIME:-15s}"
fuzz ./internal/api/ FuzzJobRequest "${FUZZTIME:-15s}"
fuzz ./internal/api/ FuzzPredictJSON "${FUZZTIME:-15s}"
fuzz ./internal/api/ FuzzPredictTyped "${FUZZTIME:-15s}"
fuzz ./internal/api/ FuzzV2InferTyped "${FUZZTIME:-15s}"
fuzz ./internal/store/ FuzzValidModelName "${FUZZTIME:-15s}"
