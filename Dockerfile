# The connector's image: every `connector` sub-command (workers, sandbox, operator tools).
FROM python:3.11-slim AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY connector ./connector
RUN pip wheel --no-cache-dir --wheel-dir /wheels ".[otlp]"

FROM python:3.11-slim
# confluent-kafka's wheel bundles librdkafka: no system packages needed.
RUN useradd --create-home --uid 10001 connector
COPY --from=build /wheels /wheels
RUN pip install --no-cache-dir /wheels/*.whl && rm -rf /wheels
COPY schemas /app/schemas
WORKDIR /app
ENV CONNECTOR_SERDE__SCHEMAS_DIR=/app/schemas \
    PYTHONUNBUFFERED=1
USER connector
ENTRYPOINT ["connector"]
CMD ["--help"]
