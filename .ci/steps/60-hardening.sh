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
# A run that ends in Go's "context deadline exceeded" without a crasher is
# run once more, loudly; a crasher or an assertion failure fails at once.
# That error comes from the Go 1.26 fuzz coordinator, not from a target:
# when -fuzztime runs out, context's cancel closes the deadline's Done
# channel before it cancels the workers' child context, and a coordinator
# woken in between sees the parent's error without the child's, so
# internal/fuzz's stop() does not recognise the deadline as the normal end
# (src/internal/fuzz/fuzz.go, src/context/context.go). A loaded machine
# widens that gap. Stretches of "0/sec" in the log are workers minimizing
# a new input that grew coverage: for a 90 KB prediction body that is one
# run of the target per byte it tries to remove, for up to
# -fuzzminimizetime (60 s by default).
fuzz() { # package target
  echo "--- fuzz $2 ($1, $fuzztime)"
  local out
  if out=$(go test -run '^$' -fuzz "^$2\$" -fuzztime "$fuzztime" "$1" 2>&1); then
    echo "$out" | tail -n 2
    return 0
  fi
  echo "$out"
  if grep -q 'context deadline exceeded' <<<"$out" && ! grep -q 'Failing input written' <<<"$out"; then
    echo "WARNING: $2 ended in 'context deadline exceeded' with no crasher; running it once more" >&2
    go test -run '^$' -fuzz "^$2\$" -fuzztime "$fuzztime" "$1"
    return
  fi
  return 1
}
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
