#!/usr/bin/env bash
# The SIMD kernels (GEMM and Adam): the committed assembly and stubs must be
# exactly what the avo generator in internal/kernels/asm makes (it is a
# module of its own, so this is the only place that builds it), and the
# package must build and pass its tests without the assembly (the pure-Go
# level that other architectures run).
set -euo pipefail
(cd internal/kernels/asm && go vet . &&
  go run . -out ../gemm_amd64.s -stubs ../stubs_amd64.go -pkg kernels &&
  go run . -kernels adam -out ../adam_amd64.s -stubs ../adam_stubs_amd64.go -pkg kernels)
generated=(internal/kernels/gemm_amd64.s internal/kernels/stubs_amd64.go
  internal/kernels/adam_amd64.s internal/kernels/adam_stubs_amd64.go)
# A generated file that was never committed is a difference too.
if ! git ls-files --error-unmatch -- "${generated[@]}" >/dev/null || ! git diff --exit-code -- "${generated[@]}"; then
  echo "internal/kernels: generated assembly differs from the committed one; run go generate ./internal/kernels/ and commit" >&2
  exit 1
fi
GOARCH=arm64 go vet ./internal/kernels/
GOARCH=arm64 go test -c -o /dev/null ./internal/kernels/
