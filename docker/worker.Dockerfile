# syntax=docker/dockerfile:1
# psd3d-worker on CUDA: the PSD engine on CUDA LibTorch with the project's CUDA kernels, the tiny model
# pack baked in (/opt/psd3d/models/tiny), production packs mounted at /packs, non-root.
#
# LibTorch is not downloaded here (builds may have no network): put a CUDA LibTorch archive, C++11 ABI
# ("libtorch-cxx11-abi-shared-with-deps-<version>+cu126.zip" or, from 2.7 on,
# "libtorch-shared-with-deps-<version>+cu126.zip", matching CUDA_VERSION below) in docker/third_party/
# and name it in LIBTORCH_ZIP:
#   docker build -f docker/worker.Dockerfile \
#     --build-arg LIBTORCH_ZIP=libtorch-shared-with-deps-2.7.1+cu126.zip -t psd3d-worker .
# CUDA_ARCHS picks the GPUs the kernels are built for (default: A100, L4/L40S/RTX 40, H100/H200).
# The same image runs DRAFT jobs on CPU (--device=cpu) where no GPU is present.
ARG CUDA_VERSION=12.6.3
ARG UBUNTU=ubuntu24.04

FROM nvidia/cuda:${CUDA_VERSION}-devel-${UBUNTU} AS build
ARG LIBTORCH_ZIP
ARG CUDA_ARCHS="80;89;90"
RUN apt-get update \
 && apt-get install -y --no-install-recommends \
      cmake ninja-build g++ pkg-config unzip \
      libgrpc++-dev protobuf-compiler-grpc libprotobuf-dev protobuf-compiler \
      libabsl-dev libhiredis-dev prometheus-cpp-dev libssl-dev zlib1g-dev \
      libpng-dev libtinygltf-dev nlohmann-json3-dev \
 && rm -rf /var/lib/apt/lists/*
COPY docker/third_party/ /tmp/third_party/
RUN test -n "${LIBTORCH_ZIP}" || { echo "set --build-arg LIBTORCH_ZIP (docker/worker.Dockerfile)"; exit 1; } \
 && unzip -q "/tmp/third_party/${LIBTORCH_ZIP}" -d /opt \
 && rm -rf /tmp/third_party
WORKDIR /src
COPY CMakeLists.txt ./
COPY cmake cmake
COPY proto proto
COPY common common
COPY server server
COPY worker worker
COPY client client
COPY tools/tinyworld tools/tinyworld
COPY tools/eval tools/eval
RUN cmake -S . -B /build -G Ninja -DCMAKE_BUILD_TYPE=Release -DCMAKE_PREFIX_PATH=/opt/libtorch \
      -DPSD3D_CUDA=ON -DCMAKE_CUDA_ARCHITECTURES="${CUDA_ARCHS}" \
      -DPSD3D_BUILD_TESTS=OFF -DPSD3D_BUILD_BENCH=OFF \
 && cmake --build /build --target psd3d-worker psd3d \
 && install -D -s /build/worker/psd3d-worker /out/bin/psd3d-worker \
 && install -D -s /build/client/psd3d /out/bin/psd3d
COPY docker/runtime-packages.sh /usr/local/bin/
RUN LD_LIBRARY_PATH=/opt/libtorch/lib runtime-packages.sh /out/bin/psd3d-worker /out/bin/psd3d > /out/runtime-packages.txt

FROM nvidia/cuda:${CUDA_VERSION}-runtime-${UBUNTU} AS worker
COPY --from=build /out/runtime-packages.txt /tmp/
RUN apt-get update \
 && xargs apt-get install -y --no-install-recommends ca-certificates < /tmp/runtime-packages.txt \
 && rm -rf /var/lib/apt/lists/* /tmp/runtime-packages.txt \
 && groupadd --system --gid 10001 psd3d \
 && useradd --system --uid 10001 --gid psd3d --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin psd3d
# LibTorch's shared libraries (with its cuDNN, cuBLAS, NCCL) only, not its headers or CMake files.
COPY --from=build /opt/libtorch/lib/ /opt/libtorch/lib/
COPY --from=build /out/bin/ /usr/local/bin/
COPY models/tiny /opt/psd3d/models/tiny
ENV LD_LIBRARY_PATH=/opt/libtorch/lib \
    PSD3D_PACK_DIR=/opt/psd3d/models/tiny \
    HOME=/tmp
VOLUME ["/packs"]
USER 10001:10001
EXPOSE 9465
# The worker serves no RPC; /metrics answering means the process and its threads are up.
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
  CMD ["bash", "-c", "exec 3<>/dev/tcp/127.0.0.1/9465 && printf 'GET /metrics HTTP/1.0\\r\\n\\r\\n' >&3 && grep -q '^psd3d_worker_busy' <&3"]
ENTRYPOINT ["psd3d-worker"]
CMD ["--metrics_address=0.0.0.0:9465", "--device=auto"]
