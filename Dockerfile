# A drop-in cache: docker build -t ember . && docker run -p 6379:6379 ember
FROM rust:1-bookworm AS build
WORKDIR /src
COPY Cargo.toml Cargo.lock rustfmt.toml clippy.toml ./
COPY .cargo ./.cargo
COPY src ./src
COPY vendor ./vendor
COPY benches ./benches
RUN cargo build --release --locked --bin ember-server

FROM debian:bookworm-slim
COPY --from=build /src/target/release/ember-server /usr/local/bin/ember-server
WORKDIR /data
EXPOSE 6379 9121
# Data files go to /data (mount a volume there to keep them). Clients reach the container
# from outside its loopback interface, so protected mode is off, as in Redis's image.
# Prometheus metrics on 9121 (redis_exporter's port, so scrape configs carry over).
CMD ["ember-server", "--dir", "/data", "--protected-mode", "no", "--metrics-port", "9121"]
