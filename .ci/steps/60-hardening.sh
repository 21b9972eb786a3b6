#!/usr/bin/env bash
# Hardening: fuzz every decoder of untrusted bytes that no earlier
# step fuzzes, then the full crash-safety run (25 SIGKILL rounds against
# the real binary) and the full 30 s load run. The targets that
# 20-fuzz-engine.sh and 21-fuzz-ingest-api.sh fuzz are not repeated here.
# A crasher is written to the package's
# testdata/fuzz/<target>/ and fails the step: commit it as a regression case
# with the fix. go test -fuzz takes one target per run.
set -euo pipefail
fuzztime="${FUZZTIME:-12s}"
# shellcheck source=../lib/fuzz.sh
. "$(dirname "$0")/../lib/fuzz.sh"
fuzz ./internal/ingest/ FuzzCSVRoundTrip
fuzz ./internal/ingest/ FuzzJSONDataset
fuzz ./internal/jobs/ FuzzResolve
fuzz ./internal/api/ FuzzJobHandler
fuzz ./internal/api/ FuzzPredictHandler
fuzz ./internal/api/ FuzzPredictRequest
fuzz ./internal/api/ FuzzV2Infer
fuzz ./internal/api/ FuzzDatasetUpload
fuzz ./internal/store/ FuzzDecodeFrame
fuzz ./internal/store/ FuzzLoadDataset
if [ -d internal/idx ]; then fuzz ./internal/idx/ FuzzRead; fi

# run NAME ENV... -- go test args: run verbosely into a log; print the
# summary lines on success and the whole log on failure.
run() {
  local name=$1 log
  shift
  log=$(mktemp)
  if ! env "$@" >"$log" 2>&1; then
    cat "$log"
    echo "$name failed" >&2
    exit 1
  fi
  grep -E '^(--- |ok|PASS)|seed|round|accepted|predict|datasets|SIGTERM|cut off|^load ' "$log" || true
  rm -f "$log"
}

echo "--- crash safety: ${BACKPROPD_CRASH_ROUNDS:=25} SIGKILL rounds"
run crash BACKPROPD_CRASH_ROUNDS="$BACKPROPD_CRASH_ROUNDS" \
  go test -count=1 -v -run 'TestKillRestart|TestSIGTERMResumes|TestBinaryCutsSlowHeaders' ./test/crash/

echo "--- load: ${BACKPROPD_LOAD_SECONDS:=30} s, 4 training jobs and 100 prediction clients"
run load BACKPROPD_LOAD_SECONDS="$BACKPROPD_LOAD_SECONDS" \
  go test -count=1 -v -run '^TestLoad$' ./test/load/
