#!/usr/bin/env bash
# Deployment files, checked as far as they can be without a container engine.
#
# 1. The deploy/ module's tests: the Kubernetes manifests decoded strictly
#    into the k8s.io/api types, the compose file through docker-compose
#    (accepted with BACKPROPD_AUTH_TOKEN, refused without), the Prometheus
#    config through promtool, the Grafana provisioning, the Dockerfile through
#    BuildKit's parser and .dockerignore against the server's sources; and
#    the server, built from ./cmd/server, started with the environment each
#    of the Deployment, the compose service and the image gives it (it must
#    require that token, and the image alone must refuse to start). Under
#    CI=true a test that lacks what it needs fails rather than skips.
# 2. The image without an engine: for each variant the Dockerfile builds
#    (static and openblas), build the binary the same way, lay out the same
#    root with deploy/docker/rootfs.sh, and run it the way the container
#    would: a private mount namespace where that root is bind-mounted
#    read-only and only /data is writable, chrooted into it, as uid 65532,
#    in a network namespace of its own listening on :8080 (the image's
#    BACKPROPD_ADDR), with a clean environment. Then:
#      - without a token it must refuse to start;
#      - `backpropd healthcheck` (the image's HEALTHCHECK) fails while nothing
#        listens and passes once the server is up;
#      - deploy/cmd/smoke uploads a dataset, trains, predicts and scrapes,
#        and leaves a long job running;
#      - SIGTERM makes it exit 0 within its shutdown timeout, having
#        checkpointed that job into /data;
#      - everything it wrote is under /data and owned by 65532;
#      - (once) Prometheus, with deploy/prometheus/prometheus.yml unchanged,
#        scrapes it without credentials.
# This needs root (namespaces, chroot), which CI is.
set -euo pipefail
cd "$(dirname "$0")/../.."

need=()
command -v docker-compose >/dev/null || need+=(docker-compose)
command -v promtool >/dev/null || need+=(prometheus)
command -v ip >/dev/null || need+=(iproute2)
command -v curl >/dev/null || need+=(curl)
command -v unshare >/dev/null || need+=(util-linux)
[ -f /usr/include/x86_64-linux-gnu/cblas.h ] || [ -f /usr/include/cblas.h ] || [ -f /usr/include/x86_64-linux-gnu/openblas-pthread/cblas.h ] || need+=(libopenblas-dev)
if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ]; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}"
  else
    echo "missing Debian packages (run as root to install): ${need[*]}" >&2
    exit 1
  fi
fi

echo "--- deploy module: go vet and go test"
unformatted=$(cd deploy && gofmt -l .)
if [ -n "$unformatted" ]; then echo "gofmt would change: $unformatted" >&2; exit 1; fi
(cd deploy && go vet ./... && CI=true go test -count=1 ./...)

if [ "$(id -u)" != 0 ]; then
  if [ "${CI:-}" = true ]; then echo "the image check needs root" >&2; exit 1; fi
  echo "--- skipping the image check: it needs root (namespaces, chroot)"
  exit 0
fi

# The Dockerfile's ARG VERSION default, so both builds are the same command.
VERSION="${VERSION:-devel}"
work=$(mktemp -d)
server=""
cleanup() {
  if [ -n "$server" ] && kill -0 "$server" 2>/dev/null; then kill -KILL "$server" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT

uid=65532
# env -i empties PATH, so chroot is named by its path.
chroot=$(command -v chroot)
head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$work/token"
(cd deploy && go build -o "$work/smoke" ./cmd/smoke)

# run_in_image ROOT DATA [ENV...] -- ARGS...: run /usr/local/bin/backpropd
# ARGS as the container would, in new mount and network namespaces. Run it
# in the background: it execs all the way down, so $! is the server itself.
run_in_image() {
  local root=$1 data=$2
  shift 2
  local env=()
  while [ "$1" != -- ]; do env+=("$1"); shift; done
  shift
  exec unshare --mount --net --propagation private -- bash -c '
    set -e
    root=$1 data=$2 uid=$3; shift 3
    ip link set lo up
    mount --bind "$root" "$root"
    mount -o remount,bind,ro "$root"
    mount --bind "$data" "$root/data"
    exec "$@"
  ' _ "$root" "$data" "$uid" \
    env -i "${env[@]}" "$chroot" --userspec="$uid:$uid" --groups="$uid" "$root" /usr/local/bin/backpropd "$@"
}

# wait_exit PID SECONDS: set exit_status to PID's exit status, or to
# "timeout" after killing it when it outlives SECONDS. (Not in a $(...):
# only this shell can wait for its children.)
exit_status=""
wait_exit() {
  local pid=$1 start=$SECONDS
  while kill -0 "$pid" 2>/dev/null; do
    if [ $((SECONDS - start)) -ge "$2" ]; then
      kill -KILL "$pid" 2>/dev/null || true
      wait "$pid" 2>/dev/null || true
      exit_status=timeout
      return
    fi
    sleep 0.1
  done
  exit_status=0
  wait "$pid" || exit_status=$?
}

# in_server_ns CMD...: run CMD on the host's file system inside the
# server's network namespace (to reach its :8080).
in_server_ns() { nsenter --target "$server" --net -- "$@"; }

# healthcheck_in_server_ns ROOT: the image's HEALTHCHECK, run as Docker runs
# it: inside the container's namespaces, root and user, with its env.
healthcheck_in_server_ns() {
  nsenter --target "$server" --net --mount -- \
    env -i BACKPROPD_ADDR=:8080 "$chroot" --userspec="$uid:$uid" --groups="$uid" "$1" /usr/local/bin/backpropd healthcheck
}

# check_prometheus_scrape DIR: run Prometheus with deploy/prometheus/prometheus.yml
# as shipped, in the server's network namespace, where /etc/hosts (in a mount
# namespace of its own) sends the compose service name "backpropd" to
# loopback; it must scrape the server without credentials (up == 1) and
# store a backpropd_ series.
check_prometheus_scrape() {
  local dir=$1
  printf '127.0.0.1 localhost backpropd\n' >"$dir/hosts"
  nsenter --target "$server" --net -- unshare --mount -- bash -c '
    mount --bind "$1" /etc/hosts
    exec prometheus --config.file=deploy/prometheus/prometheus.yml --storage.tsdb.path="$2" \
      --web.listen-address=127.0.0.1:9090 --log.level=warn
  ' _ "$dir/hosts" "$dir/prometheus" >"$dir/prometheus.log" 2>&1 &
  local prom=$! up=""
  for _ in $(seq 60); do
    if in_server_ns curl -fsS 'http://127.0.0.1:9090/api/v1/query?query=up%7Bjob%3D%22backpropd%22%7D%3D%3D1' 2>/dev/null | grep -q '"value"' &&
       in_server_ns curl -fsS 'http://127.0.0.1:9090/api/v1/query?query=backpropd_build_info' 2>/dev/null | grep -q '"value"'; then
      up=1; break
    fi
    sleep 0.5
  done
  kill -TERM "$prom" 2>/dev/null || true
  wait "$prom" 2>/dev/null || true
  if [ -z "$up" ]; then echo "Prometheus with deploy/prometheus/prometheus.yml did not scrape backpropd within 30 s:" >&2; cat "$dir/prometheus.log" >&2; exit 1; fi
  echo "ok: deploy/prometheus/prometheus.yml scrapes backpropd:8080 (up == 1, backpropd_build_info stored)"
}

check_variant() {
  local variant=$1 dir="$work/$1"
  local root="$dir/root" data="$dir/data"
  echo "--- image check: $variant"
  mkdir -p "$dir"
  case "$variant" in
    # The same commands as the Dockerfile's build stage.
    static) CGO_ENABLED=0 go build -trimpath -ldflags "-s -w -X main.buildVersion=${VERSION}" -o "$dir/backpropd" ./cmd/server ;;
    openblas) CGO_ENABLED=1 go build -trimpath -tags openblas,netgo,osusergo -ldflags "-s -w -X main.buildVersion=${VERSION}" -o "$dir/backpropd" ./cmd/server ;;
  esac
  bash deploy/docker/rootfs.sh "$dir/backpropd" "$root"
  case "$variant" in
    static)
      if ldd "$dir/backpropd" >/dev/null 2>&1; then echo "static build is dynamically linked" >&2; exit 1; fi ;;
    openblas)
      ldd "$dir/backpropd" | grep -q libopenblas || { echo "openblas build does not link libopenblas" >&2; exit 1; } ;;
  esac
  echo "root: $(du -sh "$root" | cut -f1), files: $(find "$root" -type f | sed "s|^$root||" | tr '\n' ' ')"
  # The image's /data must belong to nonroot; Docker initialises a new named
  # volume from it, owner and mode included, and so does this copy.
  local owner
  owner=$(stat -c %u:%g:%a "$root/data")
  [ "$owner" = "$uid:$uid:750" ] || { echo "the root's /data is $owner, want $uid:$uid:750" >&2; exit 1; }
  cp -a "$root/data" "$data"

  echo "refuses to start on :8080 without a token"
  run_in_image "$root" "$data" BACKPROPD_ADDR=:8080 BACKPROPD_DATA_DIR=/data -- >"$dir/notoken.log" 2>&1 &
  wait_exit $! 20
  if [ "$exit_status" = 0 ] || [ "$exit_status" = timeout ]; then
    echo "backpropd did not refuse to start without a token ($exit_status):" >&2; cat "$dir/notoken.log" >&2; exit 1
  fi
  grep -q -- "--auth-token" "$dir/notoken.log" || { echo "the refusal does not name --auth-token:" >&2; cat "$dir/notoken.log" >&2; exit 1; }

  echo "healthcheck fails while nothing listens"
  if unshare --net -- bash -c 'ip link set lo up; exec "$@"' _ \
      env -i BACKPROPD_ADDR=:8080 "$chroot" --userspec="$uid:$uid" --groups="$uid" "$root" /usr/local/bin/backpropd healthcheck; then
    echo "healthcheck passed with no server" >&2; exit 1
  fi

  echo "serves as uid $uid on a read-only root"
  run_in_image "$root" "$data" \
    BACKPROPD_ADDR=:8080 BACKPROPD_DATA_DIR=/data BACKPROPD_AUTH_TOKEN="$(cat "$work/token")" \
    BACKPROPD_SHUTDOWN_TIMEOUT=15s BACKPROPD_LOG_FORMAT=text -- >"$dir/server.log" 2>&1 &
  server=$!
  local up=""
  for _ in $(seq 100); do
    if ! kill -0 "$server" 2>/dev/null; then break; fi
    if healthcheck_in_server_ns "$root" 2>/dev/null; then up=1; break; fi
    sleep 0.2
  done
  if [ -z "$up" ]; then echo "server did not come up:" >&2; cat "$dir/server.log" >&2; exit 1; fi
  grep -q "^Uid:[[:space:]]*$uid[[:space:]]" "/proc/$server/status" || { echo "server does not run as uid $uid" >&2; exit 1; }
  # The server's own view: / read-only, /data writable.
  awk '$5 == "/" { root = 1; if ($6 !~ /^ro(,|$)/) bad = 1 }
       $5 == "/data" { data = 1; if ($6 !~ /^rw(,|$)/) bad = 1 }
       END { exit !(root && data && !bad) }' "/proc/$server/mountinfo" ||
    { echo "want / read-only and /data writable, the server sees:" >&2; cat "/proc/$server/mountinfo" >&2; exit 1; }

  if ! in_server_ns "$work/smoke" -url http://127.0.0.1:8080 -token-file "$work/token" -leave-running-job "$dir/running-job"; then
    echo "smoke failed; server log:" >&2; cat "$dir/server.log" >&2; exit 1
  fi

  if [ "$variant" = static ]; then check_prometheus_scrape "$dir"; fi

  echo "exits 0 on SIGTERM within the shutdown timeout"
  local t0
  t0=$(date +%s.%N)
  kill -TERM "$server"
  # 15 s of BACKPROPD_SHUTDOWN_TIMEOUT and 5 s for the process to wind down.
  wait_exit "$server" 20
  server=""
  if [ "$exit_status" != 0 ]; then echo "after SIGTERM: $exit_status (want exit status 0 within 20 s):" >&2; cat "$dir/server.log" >&2; exit 1; fi
  echo "exited 0, $(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.2f", b - a }') s after SIGTERM"

  # The job left running was checkpointed into the volume on the way out.
  local job
  job=$(cat "$dir/running-job")
  [ -s "$data/checkpoints/$job.ckpt" ] || { echo "no checkpoint of the running job $job under /data:" >&2; find "$data" >&2; cat "$dir/server.log" >&2; exit 1; }
  local foreign
  foreign=$(find "$data" ! -user "$uid" -print)
  [ -z "$foreign" ] || { echo "files under /data not owned by $uid: $foreign" >&2; exit 1; }
  echo "ok: $variant ($(find "$data" -type f | wc -l) files written under /data)"
}

check_variant static
check_variant openblas
echo "image check: 2 passed, 0 failed (static and openblas)"
