# syntax=docker/dockerfile:1
#
# One Dockerfile, two ways to get the binary into the image:
#
#   docker build -t rocketmq-exporter .
#       compiles a static binary (CGO_ENABLED=0) in a golang stage.
#
#   promu crossbuild && docker build --build-arg BINARY=prebuilt -t rocketmq-exporter .
#       copies the binary promu already built for the target platform from
#       .build/<os>-<arch>/rocketmq_exporter, as the Prometheus projects' images do.
#
# BuildKit (the default builder since Docker 23) builds only the stages the
# final image needs, so the prebuilt path never starts the compiler and the
# source path never needs .build/. See docs/deployment.md.

ARG GO_IMAGE=golang:1.26
# busybox rather than scratch/distroless: `wget` gives docker-compose a
# healthcheck and `kubectl exec` a shell. Same base as the Prometheus images.
ARG BASE_IMAGE=quay.io/prometheus/busybox:latest
# source | prebuilt
ARG BINARY=source

FROM --platform=$BUILDPLATFORM ${GO_IMAGE} AS source
WORKDIR /src
# Modules first, so a source change does not re-download them.
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG TARGETOS
ARG TARGETARCH
ARG VERSION=unknown
ARG REVISION=unknown
# netgo/osusergo keep the binary static even where cgo would be available;
# the ldflags are the ones the Makefile and .promu.yml pass.
RUN CGO_ENABLED=0 GOOS=${TARGETOS} GOARCH=${TARGETARCH} \
    go build -trimpath -tags netgo,osusergo \
      -ldflags "-s -w -X github.com/prometheus/common/version.Version=${VERSION} -X github.com/prometheus/common/version.Revision=${REVISION}" \
      -o /out/rocketmq_exporter ./cmd/rocketmq_exporter

FROM scratch AS prebuilt
ARG TARGETOS=linux
ARG TARGETARCH=amd64
COPY .build/${TARGETOS}-${TARGETARCH}/rocketmq_exporter /out/rocketmq_exporter

FROM ${BINARY} AS binary

FROM ${BASE_IMAGE}
LABEL org.opencontainers.image.title="rocketmq_exporter" \
      org.opencontainers.image.description="Prometheus exporter for Apache RocketMQ" \
      org.opencontainers.image.source="https://github.com/rocketmq-exporter/rocketmq_exporter" \
      org.opencontainers.image.licenses="Apache-2.0"
COPY --from=binary /out/rocketmq_exporter /bin/rocketmq_exporter
# Numeric, so the kubelet can enforce runAsNonRoot without /etc/passwd: nobody.
USER 65534:65534
EXPOSE 9187
ENTRYPOINT ["/bin/rocketmq_exporter"]
