# Multi-stage build: compile in the Rust image, run on a slim Debian with only the binary and its
# data files (flows, prompts, config).
FROM rust:1-bookworm AS build
WORKDIR /src
COPY Cargo.toml Cargo.lock build.rs ./
COPY .cargo ./.cargo
COPY src ./src
COPY migrations ./migrations
COPY config ./config
COPY static ./static
COPY benches ./benches
COPY tests ./tests
RUN cargo build --release --locked --bin switchboard

FROM debian:bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends ca-certificates curl \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --home /app switchboard
WORKDIR /app
COPY --from=build /src/target/release/switchboard /usr/local/bin/switchboard
COPY config ./config
COPY flows ./flows
COPY prompts ./prompts
USER switchboard
ENV SWITCHBOARD_ENV=production
EXPOSE 8080
HEALTHCHECK --interval=10s --timeout=3s --retries=5 CMD curl -fsS http://127.0.0.1:8080/healthz || exit 1
ENTRYPOINT ["switchboard"]
CMD ["serve"]
