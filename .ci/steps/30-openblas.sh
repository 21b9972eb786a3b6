#!/usr/bin/env bash
# The engine's whole test suite and the openblas package again, built with
# the openblas tag so that every blas64 and blas32 call runs on OpenBLAS through cgo
# (Debian's libopenblas-dev, installed by 00-packages.sh).
set -euo pipefail
export CGO_ENABLED=1
go vet -tags openblas ./internal/engine/ ./internal/openblas/ ./bench/...
go test -tags openblas -count=1 ./internal/engine/ ./internal/openblas/
go test -tags openblas -count=1 -run TestServerSizesOpenBLASThreads ./cmd/server/
# The tag must really switch the implementation: a build that silently kept
# gonum's pure-Go BLAS would pass the suite above.
# (Output goes to a variable first: grep -q on a pipe exits at the first
# match, and the SIGPIPE it leaves would fail the step under pipefail.)
out=$(go test -tags openblas -count=1 -run 'TestUseRoutesBlas64ToOpenBLAS|TestUseRoutesBlas32ToOpenBLAS|TestDgemmMatchesGonum|TestSgemmMatchesGonum|TestCoreNameNamesAKernel|TestAdamMatchesGoLoop' -v ./internal/openblas/)
echo "$out" | tail -n 3
for t in TestUseRoutesBlas64ToOpenBLAS TestUseRoutesBlas32ToOpenBLAS TestDgemmMatchesGonum \
  TestSgemmMatchesGonum TestCoreNameNamesAKernel TestAdamMatchesGoLoop; do
  if ! grep -q -- "--- PASS: $t " <<<"$out"; then
    echo "$t did not pass under -tags openblas" >&2
    exit 1
  fi
done
