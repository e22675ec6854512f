# Build: docker build -t faro .
FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release -p faro-cli \
 && cp target/release/faro /faro

FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /faro /usr/local/bin/faro
USER 65532:65532
ENTRYPOINT ["/usr/local/bin/faro"]
CMD ["run", "--config", "/etc/faro/faro.yaml"]
