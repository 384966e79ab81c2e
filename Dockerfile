# The image the Helm chart deploys: every Marquee binary, nothing else. Checked by review only
# (no Docker engine on the build machines); `helm/marquee` runs each binary by its path.
FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked \
      -p queue-gateway -p booking-core -p admission-worker -p marquee-events \
 && mkdir /out \
 && cp target/release/queue-gateway target/release/booking-core \
       target/release/admission-worker target/release/marquee-events /out/

FROM debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --uid 10001 --no-create-home marquee
COPY --from=build /out/ /usr/local/bin/
COPY config/ /etc/marquee/config/
ENV MARQUEE_CONFIG_DIR=/etc/marquee/config MARQUEE_ENV=production
USER 10001
EXPOSE 8080 8081 9102 9103
