#!/usr/bin/env bash
# test/realdata trains on the Palmer penguins tables. Debian's
# r-cran-palmerpenguins ships them as CSV; apt-get download and dpkg -x
# unpack them into a cache directory without installing R. The test looks
# there, or in $BACKPROPD_PENGUINS_DIR, and fails under CI=true when the
# files are absent.
set -euo pipefail
dir="${BACKPROPD_PENGUINS_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/backpropd/penguins}"
csv="$dir/usr/lib/R/site-library/palmerpenguins/extdata/penguins_raw.csv"
if [ -f "$csv" ]; then
  exit 0
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cd "$tmp"
if ! apt-get download -qq r-cran-palmerpenguins 2>/dev/null; then
  if [ "$(id -u)" = 0 ]; then
    apt-get update -qq
    apt-get download -qq r-cran-palmerpenguins
  else
    echo "apt-get download r-cran-palmerpenguins failed (run apt-get update as root first)" >&2
    exit 1
  fi
fi
mkdir -p "$dir"
dpkg -x r-cran-palmerpenguins_*.deb "$dir"
test -f "$csv"
echo "penguins tables in $dir"
