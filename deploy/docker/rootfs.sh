#!/usr/bin/env bash
# rootfs.sh BINARY DEST: lay out the container's root file system under DEST.
#
# The Dockerfile runs it in its build stage and copies DEST into an empty
# (scratch) image; .ci/steps/50-deploy.sh runs the same script and then runs
# the server chrooted into DEST, read-only, as the same non-root user, so that
# CI checks the very layout the image gets without a container engine.
#
# DEST gets:
#   /usr/local/bin/backpropd   the server
#   /etc/passwd, /etc/group    root and nonroot (65532), so tools show names
#   /data                      the volume, owned by nonroot
#   /tmp                       for a tmpfs mount (mode 1777)
#   the shared libraries that `ldd BINARY` lists, at the paths it lists them,
#   symlinks resolved: nothing for the static build; glibc, libopenblas and
#   libgfortran for the OpenBLAS build.
set -euo pipefail

if [ $# -ne 2 ]; then
  echo "usage: $0 BINARY DEST" >&2
  exit 2
fi
bin=$1
dest=$2
uid=65532
[ -x "$bin" ] || { echo "rootfs.sh: $bin is not an executable" >&2; exit 1; }

mkdir -p "$dest/usr/local/bin" "$dest/etc" "$dest/data" "$dest/tmp"
cp "$bin" "$dest/usr/local/bin/backpropd"
printf 'root:x:0:0:root:/root:/sbin/nologin\nnonroot:x:%d:%d:nonroot:/data:/sbin/nologin\n' "$uid" "$uid" >"$dest/etc/passwd"
printf 'root:x:0:\nnonroot:x:%d:\n' "$uid" >"$dest/etc/group"
chmod 1777 "$dest/tmp"
chmod 0750 "$dest/data"
chown "$uid:$uid" "$dest/data"

# ldd prints "name => /path (addr)" for libraries and "/path (addr)" for the
# dynamic loader; a static binary makes it print "not a dynamic executable"
# and exit non-zero. The loader finds the copies without an ld.so.cache,
# because ldd reports them in the multiarch directories glibc searches anyway.
if libs=$(ldd "$bin" 2>/dev/null); then
  paths=$(printf '%s\n' "$libs" | awk '$2 == "=>" && $3 ~ /^\// { print $3 } $1 ~ /^\// { print $1 }' | sort -u)
  for lib in $paths; do
    cp --parents -L "$lib" "$dest"
  done
  # The loader must exist; if ldd listed none the binary cannot start.
  printf '%s\n' "$libs" | grep -q 'ld-linux' || { echo "rootfs.sh: ldd named no dynamic loader for $bin" >&2; exit 1; }
fi
