# Sourced by the fuzz steps: fuzz PACKAGE TARGET [FUZZTIME] runs one fuzz
# target for FUZZTIME (default $fuzztime, then 15s).
#
# A run that ends in Go's "context deadline exceeded" without a crasher is
# run again, loudly, up to twice; a crasher or an assertion failure fails at once.
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
fuzz() { # package target [fuzztime]
  local t="${3:-${fuzztime:-15s}}"
  echo "--- fuzz $2 ($1, $t)"
  local out
  if out=$(go test -run '^$' -fuzz "^$2\$" -fuzztime "$t" "$1" 2>&1); then
    echo "$out" | tail -n 2
    return 0
  fi
  echo "$out"
  local try
  for try in 1 2; do
    if ! grep -q 'context deadline exceeded' <<<"$out" || grep -q 'Failing input written' <<<"$out"; then
      return 1
    fi
    echo "WARNING: $2 ended in 'context deadline exceeded' with no crasher; running it again ($try of 2)" >&2
    if out=$(go test -run '^$' -fuzz "^$2\$" -fuzztime "$t" "$1" 2>&1); then
      echo "$out" | tail -n 2
      return 0
    fi
    echo "$out"
  done
  return 1
}
