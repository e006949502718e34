# syntax=docker/dockerfile:1
# Siraya Model Router. Build: docker build -t siraya-router .
# Run:   docker run -p 8080:8080 -p 50051:50051 -v $PWD/siraya.yaml:/etc/siraya/siraya.yaml:ro siraya-router

FROM python:3.11-slim AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY server server
COPY http_bridge http_bridge
COPY siraya siraya
RUN pip install --no-cache-dir --prefix=/install ".[fast,otel]"

FROM python:3.11-slim
RUN useradd --create-home --uid 10001 siraya && mkdir -p /var/lib/siraya && chown siraya /var/lib/siraya
COPY --from=build /install /usr/local
ENV SIRAYA_CONFIG=/etc/siraya/siraya.yaml \
    PYTHONUNBUFFERED=1
WORKDIR /var/lib/siraya
USER siraya
EXPOSE 8080 50051 9090
# Ready means: config loaded, stores reachable, a provider configured, and not draining.
HEALTHCHECK --interval=10s --timeout=3s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import sys, urllib.request; sys.exit(urllib.request.urlopen('http://127.0.0.1:8080/health/ready', timeout=2).status != 200)"]
# SIGTERM drains: open streams finish within server.drain_seconds, then the process exits 0.
STOPSIGNAL SIGTERM
ENTRYPOINT ["siraya-router"]
CMD ["serve", "--host", "0.0.0.0"]
