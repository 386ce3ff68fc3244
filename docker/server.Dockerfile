# syntax=docker/dockerfile:1
# psd3d-server (default target) and the psd3d CLI (--target cli): Debian slim, runtime libraries only,
# non-root. Build from the repository root:
#   docker build -f docker/server.Dockerfile -t psd3d-server .
#   docker build -f docker/server.Dockerfile --target cli -t psd3d-cli .
# No secret is baked in: the Redis password comes from $PSD3D_REDIS_PASSWORD at run time.
ARG DEBIAN_IMAGE=debian:bookworm-slim

FROM ${DEBIAN_IMAGE} AS build
RUN apt-get update \
 && apt-get install -y --no-install-recommends \
      cmake ninja-build g++ pkg-config \
      libgrpc++-dev protobuf-compiler-grpc libprotobuf-dev protobuf-compiler \
      libabsl-dev libhiredis-dev prometheus-cpp-dev libssl-dev zlib1g-dev \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY CMakeLists.txt ./
COPY cmake cmake
COPY proto proto
COPY common common
COPY server server
COPY worker worker
COPY client client
# The service without the LibTorch engine: the server never links it and this CLI has no `generate`.
RUN cmake -S . -B /build -G Ninja -DCMAKE_BUILD_TYPE=Release -DPSD3D_BUILD_ENGINE=OFF \
      -DPSD3D_BUILD_TESTS=OFF -DPSD3D_BUILD_BENCH=OFF \
 && cmake --build /build --target psd3d-server psd3d \
 && install -D -s /build/server/psd3d-server /out/bin/psd3d-server \
 && install -D -s /build/client/psd3d /out/bin/psd3d
COPY docker/runtime-packages.sh /usr/local/bin/
RUN runtime-packages.sh /out/bin/psd3d-server /out/bin/psd3d > /out/runtime-packages.txt

# Shared by both images: the libraries the binaries load, and the unprivileged user.
FROM ${DEBIAN_IMAGE} AS runtime
COPY --from=build /out/runtime-packages.txt /tmp/
RUN apt-get update \
 && xargs apt-get install -y --no-install-recommends ca-certificates < /tmp/runtime-packages.txt \
 && rm -rf /var/lib/apt/lists/* /tmp/runtime-packages.txt \
 && groupadd --system --gid 10001 psd3d \
 && useradd --system --uid 10001 --gid psd3d --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin psd3d

FROM runtime AS cli
COPY --from=build /out/bin/psd3d /usr/local/bin/psd3d
USER 10001:10001
ENTRYPOINT ["psd3d"]
CMD ["--help"]

FROM runtime AS server
COPY --from=build /out/bin/psd3d-server /usr/local/bin/psd3d-server
USER 10001:10001
EXPOSE 50051 9464
# Same grpc.health.v1 check as the Kubernetes readiness probe: SERVING while Redis answers. A server
# run with --tls_cert needs the check to use TLS too: override it with the same --tls_cert appended.
HEALTHCHECK --interval=10s --timeout=5s --start-period=10s --retries=3 \
  CMD ["psd3d-server", "--health_check", "--listen=127.0.0.1:50051"]
ENTRYPOINT ["psd3d-server"]
CMD ["--listen=0.0.0.0:50051", "--metrics_address=0.0.0.0:9464"]
