# flashotp's image: one static binary on an empty base, run as a non-root user, its data on the /data volume.
#   docker build -t flashotp --build-arg VERSION="$(git describe --always --dirty)" .
#   docker run --read-only -p 8080:8080 -v flashotp-data:/data flashotp
# (podman: add --format docker to the build, or the HEALTHCHECK is dropped.) docs/operations.md, "Shipping it".

# The build stage: any image with Go at least go.mod's version and a POSIX shell will do.
ARG GO_IMAGE=docker.io/library/golang:1.26-bookworm

FROM ${GO_IMAGE} AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=dev
# Static (no libc in the final image), no local paths in the binary, stripped, versioned as make build does.
RUN CGO_ENABLED=0 go build -trimpath -ldflags "-s -w -X main.version=${VERSION}" -o /out/flashotp ./cmd/flashotp
# The final image has no shell: its user, its directories and the CA bundle (webhooks, TLS trunks) come from here.
RUN mkdir -p /out/data /out/tmp /out/etc \
 && chmod 1777 /out/tmp \
 && printf 'root:x:0:0:root:/root:/sbin/nologin\nflashotp:x:65532:65532:flashotp:/data:/sbin/nologin\n' > /out/etc/passwd \
 && printf 'root:x:0:\nflashotp:x:65532:\n' > /out/etc/group

# scratch rather than a distroless base: nothing to pull but the build image, and nothing in it but the
# binary, the CA bundle and the two files naming its user.
FROM scratch
COPY --from=build /etc/ssl/certs/ca-certificates.crt /etc/ssl/certs/ca-certificates.crt
COPY --from=build /out/etc/passwd /out/etc/group /etc/
COPY --from=build /out/tmp /tmp
COPY --from=build --chown=65532:65532 /out/data /data
COPY --from=build /out/flashotp /usr/local/bin/flashotp
COPY deploy/flashotp.container.yaml /etc/flashotp/flashotp.yaml
USER 65532:65532
WORKDIR /data
# Everything the engine writes (the database, its server key, the lock marker) is under /data.
VOLUME ["/data"]
# HTTP API; SIP on UDP and TCP (sip.listen).
EXPOSE 8080/tcp 5060/udp 5060/tcp
HEALTHCHECK --interval=10s --timeout=5s --start-period=10s --retries=3 \
  CMD ["/usr/local/bin/flashotp", "healthcheck", "--config", "/etc/flashotp/flashotp.yaml"]
# SIGTERM drains (dialer.shutdown_timeout, http.drain_delay): give `docker stop` a longer --time.
STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/local/bin/flashotp"]
CMD ["serve", "--config", "/etc/flashotp/flashotp.yaml"]
