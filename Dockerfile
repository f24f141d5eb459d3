# Build: a release binary.
FROM rust:1-bookworm AS build
WORKDIR /src
# Dependencies first, in their own layer, so code changes rebuild only the crate.
COPY Cargo.toml Cargo.lock ./
RUN mkdir -p src tests/api \
    && echo 'fn main() {}' > src/main.rs && touch src/lib.rs && echo '' > tests/api/main.rs \
    && cargo build --release --locked \
    && rm -rf src tests
COPY src src
COPY migrations migrations
RUN touch src/main.rs src/lib.rs && cargo build --release --locked --bin switchboard

# Run: a small image, a non-root user.
FROM debian:bookworm-slim
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 --home-dir /app --shell /usr/sbin/nologin switchboard
WORKDIR /app
COPY --from=build /src/target/release/switchboard /usr/local/bin/switchboard
COPY static static
ENV BIND=0.0.0.0:8080 \
    STATIC_DIR=/app/static \
    RUST_LOG=info
USER switchboard
EXPOSE 8080
ENTRYPOINT ["switchboard"]
CMD ["serve"]
