#!/usr/bin/env bash
# Resources: the full resource battery against the built binary with
# --memory-limit 2GiB: every attack a hostile client with a valid token could make, at full
# size (a 1,048,576-row dataset with oversized job specs, uploads
# announcing 2 GiB, a 50 MiB JSON dataset (under the
# cell cap of 8.4 million at that memory limit), 8 parallel 50 MiB CSV
# uploads and 8 parallel 7.5 MB inline-data jobs, deep and wide models, long
# names, 2,000 unauthenticated slow bodies, the metrics series cap), while
# the server's RSS is sampled every 50 ms; then a restart on the same data
# directory. Prints the peak RSS per attack and overall, and the slowest
# /healthz answer. go test ./... runs the short battery.
set -euo pipefail
log=$(mktemp)
if ! BACKPROPD_RESOURCES=full go test -count=1 -v -timeout 10m -run '^TestResourceBattery$' ./test/resources/ >"$log" 2>&1; then
  cat "$log"
  echo "resource battery failed" >&2
  exit 1
fi
grep -E '^(--- |ok|PASS)|peak RSS|took|stored|accepted|answered|announcing|unknown keys|history|never read|names|failed:' "$log" || true
rm -f "$log"
