# backpropd container image.
#
#   docker build -t backpropd .                              # OpenBLAS build (default)
#   docker build --build-arg VARIANT=static -t backpropd .   # pure-Go static build
#
# Both variants end in an empty (scratch) image that holds only what
# deploy/docker/rootfs.sh puts there: the binary, the shared libraries ldd
# names for it, /etc/passwd and /etc/group, an empty /data and /tmp.
#
# Why scratch and not a distro image:
#   - static: the pure-Go binary needs nothing at all; scratch is the smallest
#     image there is (a distroless "static" image would only add CA
#     certificates and time zone data, which backpropd does not use).
#   - openblas: the cgo binary needs glibc, libopenblas, libgfortran,
#     libquadmath and libgcc_s. Copied from the Debian 12 build stage into
#     scratch they add 41 MB (libopenblas alone is 35 MB) to the 17 MB
#     binary: 58 MB in all, as .ci/steps/50-deploy.sh lays it out. Any base
#     image that carries glibc needs those same OpenBLAS files on top: a
#     distroless "cc" image adds its own 20-odd MB, debian:bookworm-slim
#     about 75 MB and a shell and apt besides. The libraries come from the
#     same Debian release as the build stage, so the glibc the binary was
#     linked against is the glibc it runs on.
# Neither variant has a shell, so the HEALTHCHECK runs the binary itself.
#
# Base images are referenced by tag. For reproducible builds pin the digest,
# e.g. --build-arg GO_IMAGE=golang:1.26-bookworm@sha256:<digest>; the digest
# is what `docker buildx imagetools inspect golang:1.26-bookworm` prints.
# scratch has no digest: it is the empty image.

ARG GO_IMAGE=golang:1.26-bookworm

FROM ${GO_IMAGE} AS build
# openblas: cgo build against Debian's libopenblas-dev (build tag "openblas").
# static:   CGO_ENABLED=0, gonum's pure-Go BLAS.
ARG VARIANT=openblas
# VERSION is what the server reports (/v2, backpropd_build_info), e.g.
# docker build --build-arg VERSION=$(git describe --tags --always) .
ARG VERSION=devel
RUN case "$VARIANT" in \
      openblas) apt-get update \
        && apt-get install -y --no-install-recommends libopenblas-dev \
        && rm -rf /var/lib/apt/lists/* ;; \
      static) ;; \
      *) echo "VARIANT must be openblas or static, not '$VARIANT'" >&2; exit 1 ;; \
    esac
WORKDIR /src
COPY go.mod go.sum ./
RUN --mount=type=cache,target=/go/pkg/mod go mod download
COPY . .
# netgo and osusergo keep the cgo build off glibc's NSS, which would dlopen
# libraries that ldd cannot see and the image does not carry.
RUN --mount=type=cache,target=/go/pkg/mod --mount=type=cache,target=/root/.cache/go-build \
    case "$VARIANT" in \
      openblas) CGO_ENABLED=1 go build -trimpath -tags openblas,netgo,osusergo \
        -ldflags "-s -w -X main.buildVersion=${VERSION}" -o /out/backpropd ./cmd/server ;; \
      static) CGO_ENABLED=0 go build -trimpath \
        -ldflags "-s -w -X main.buildVersion=${VERSION}" -o /out/backpropd ./cmd/server ;; \
    esac \
    && bash deploy/docker/rootfs.sh /out/backpropd /rootfs

FROM scratch
# COPY --from keeps the owners the build stage set: root for everything but
# /data, which rootfs.sh gives to nonroot so the server can write the volume
# (Docker initialises a new named volume from it, owner included).
COPY --from=build /rootfs/ /
# Listen on every interface of the container. The server refuses a
# non-loopback address without a token, so the container needs
# BACKPROPD_AUTH_TOKEN or BACKPROPD_AUTH_TOKEN_FILE to start.
ENV BACKPROPD_ADDR=:8080 \
    BACKPROPD_DATA_DIR=/data
# nonroot, numeric so that Kubernetes' runAsNonRoot can verify it.
USER 65532:65532
EXPOSE 8080
VOLUME ["/data"]
# `backpropd healthcheck` GETs /healthz on the loopback address of
# BACKPROPD_ADDR's port and exits 0 or 1.
HEALTHCHECK --interval=30s --timeout=5s --start-period=15s --retries=3 \
    CMD ["/usr/local/bin/backpropd", "healthcheck"]
ENTRYPOINT ["/usr/local/bin/backpropd"]
