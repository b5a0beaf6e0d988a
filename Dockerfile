# syntax=docker/dockerfile:1
#
# image-processor: one statically configured Rust binary on distroless, plus the shared
# libraries of its HEIC/HEIF/AVIF decoders (libheif, libde265, libdav1d).
#
#   docker build -t image-processor:dev .
#
# Stages: `chef` (toolchain + cargo-chef) -> `planner` (dependency recipe) ->
# `builder` (dependencies cooked in their own layer, then the crate) -> `runtime`
# (distroless cc: glibc + libgcc, no shell, no package manager, no build tools).
# The UI (ui/) and migrations (sql/) are embedded at compile time, so the final
# image holds the binary and nothing else of ours.
#
# Bump RUST_VERSION together with Cargo.toml's rust-version policy; the builder and
# the runtime must share a Debian release (bookworm = cc-debian12) so glibc matches.
#
# Cache mounts keep the crates.io downloads and cargo's target directory between builds
# on the same machine (BuildKit and buildah both support them); they never end up in a
# layer. They are shared, not `sharing=locked`: cargo locks its registry and target
# directory itself, and buildah 1.28 (Debian 12) holds a locked cache until the whole
# build ends, so the second RUN using it waits forever. scripts/check-image builds and
# runs this file with buildah and podman.

ARG RUST_VERSION=1.95
ARG CARGO_CHEF_VERSION=0.1.78

FROM rust:${RUST_VERSION}-slim-bookworm AS chef
ARG CARGO_CHEF_VERSION
WORKDIR /src
# nasm: without it mozjpeg-sys (and rav1e) silently build their plain C paths, and JPEG
# work runs several times slower than with SIMD. Pinned to bookworm's version.
RUN apt-get update \
    && apt-get install -y --no-install-recommends nasm=2.16.01-1 \
    && rm -rf /var/lib/apt/lists/*
RUN --mount=type=cache,id=image-processor-cargo-registry,target=/usr/local/cargo/registry \
    cargo install --locked "cargo-chef@${CARGO_CHEF_VERSION}"
# HEIC/HEIF and AVIF input: libheif built as a shared library (LGPL-3: it stays a replaceable
# file, see README "Licences") from the source the libheif-sys crate vendors, at the version and
# checksum Cargo.lock pins; it decodes HEVC with Debian's libde265 and AV1 with Debian's dav1d.
# Pinned to bookworm's versions, like nasm (bump them with Debian's security updates).
RUN apt-get update \
    && apt-get install -y --no-install-recommends cmake=3.25.1-1 make=4.3-4.1 g++=4:12.2.0-3 \
       pkg-config=1.8.1-1 curl=7.88.1-10+deb12u15 libde265-dev=1.0.11-1+deb12u4 \
       libdav1d-dev=1.0.0-2+deb12u1 \
    && rm -rf /var/lib/apt/lists/*
COPY scripts/build-libheif scripts/build-libheif
COPY Cargo.lock Cargo.lock
RUN scripts/build-libheif /usr/local

# The recipe only changes when Cargo.toml / Cargo.lock / the target list change,
# so the dependency layer below survives ordinary source edits.
FROM chef AS planner
COPY . .
RUN cargo chef prepare --recipe-path recipe.json

FROM chef AS builder
COPY --from=planner /src/recipe.json recipe.json
RUN --mount=type=cache,id=image-processor-cargo-registry,target=/usr/local/cargo/registry \
    --mount=type=cache,id=image-processor-target,target=/src/target \
    cargo chef cook --release --locked --bin image-processor --recipe-path recipe.json
COPY . .
# The target directory outlives this layer, so cargo must not mistake the last build of
# our crate (or cook's stub) for this one: the crate roots are touched to force it.
RUN --mount=type=cache,id=image-processor-cargo-registry,target=/usr/local/cargo/registry \
    --mount=type=cache,id=image-processor-target,target=/src/target \
    touch src/main.rs src/lib.rs \
    && cargo build --release --locked --bin image-processor \
    && install -D -m 0555 target/release/image-processor /out/image-processor \
    && mkdir -p /out/lib /out/doc/libheif /out/doc/libde265-0 /out/doc/libdav1d6 \
    && cp -L /usr/local/lib/libheif.so.1 /usr/lib/x86_64-linux-gnu/libde265.so.0 \
       /usr/lib/x86_64-linux-gnu/libdav1d.so.6 /out/lib/ \
    && cp /usr/local/share/doc/libheif/COPYING /out/doc/libheif/ \
    && cp /usr/share/doc/libde265-0/copyright /out/doc/libde265-0/ \
    && cp /usr/share/doc/libdav1d6/copyright /out/doc/libdav1d6/

FROM gcr.io/distroless/cc-debian12:nonroot AS runtime
# checkov:skip=CKV_DOCKER_2:Kubernetes ignores HEALTHCHECK; the pods probe /healthz and /readyz, and the runtime has no shell or curl to run one.
LABEL org.opencontainers.image.title="image-processor" \
      org.opencontainers.image.description="Event-driven image processing service on PostgreSQL" \
      org.opencontainers.image.licenses="MIT"
COPY --from=builder /out/image-processor /usr/local/bin/image-processor
# The HEIC/HEIF/AVIF decoders' shared libraries (libstdc++ is in the base already), with their
# licences: libheif and libde265 are LGPL-3, dav1d BSD-2.
COPY --from=builder /out/lib/ /usr/lib/x86_64-linux-gnu/
COPY --from=builder /out/doc/ /usr/share/doc/
# 65532 is distroless's `nonroot`; numeric so `runAsNonRoot` can verify it.
USER 65532:65532
ENV LISTEN_ADDR=0.0.0.0:8080
EXPOSE 8080
# Probes live in the orchestrator (GET /healthz, GET /readyz): no HEALTHCHECK (see
# the checkov:skip above).
ENTRYPOINT ["/usr/local/bin/image-processor"]
CMD ["run"]
