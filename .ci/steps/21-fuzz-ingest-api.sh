#!/usr/bin/env bash
# The CSV dataset parser, the JSON records parser, the job request
# decoder, the prediction path's hand-written JSON scanner and encoder,
# raw-row predictions and per-column /v2 tensors for a typed model, and the
# model name rule read untrusted bytes: fuzz each briefly beyond its seed
# corpus. A crasher lands in the package's testdata/fuzz and must be
# committed as a regression case.
set -euo pipefail
go test -run '^$' -fuzz '^FuzzReadCSV$' -fuzztime "${FUZZTIME:-15s}" ./internal/ingest/
go test -run '^$' -fuzz '^FuzzJSONRecords$' -fuzztime "${FUZZTIME:-15s}" ./internal/ingest/
go test -run '^$' -fuzz '^FuzzJobRequest$' -fuzztime "${FUZZTIME:-15s}" ./internal/api/
go test -run '^$' -fuzz '^FuzzPredictJSON$' -fuzztime "${FUZZTIME:-15s}" ./internal/api/
go test -run '^$' -fuzz '^FuzzPredictTyped$' -fuzztime "${FUZZTIME:-15s}" ./internal/api/
go test -run '^$' -fuzz '^FuzzV2InferTyped$' -fuzztime "${FUZZTIME:-15s}" ./internal/api/
go test -run '^$' -fuzz '^FuzzValidModelName$' -fuzztime "${FUZZTIME:-15s}" ./internal/store/
