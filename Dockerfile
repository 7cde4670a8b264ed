# The connector's image: every `connector` sub-command (workers, sandbox, operator tools).
# The build stage has gcc and Python's headers: it generates the native core's generated source
# (connector/serde/precompiled.py, not in git) and compiles the core (connector/native.py) into
# the wheel, so the image runs the normalizer compiled.
ARG PYTHON=3.11
FROM python:${PYTHON} AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY connector ./connector
COPY schemas ./schemas
COPY scripts/build_native.py scripts/build_backend.py ./scripts/
# Editable: the generator and the compiler need the dependencies, not an installed copy (whose
# build would generate the source once more, in an isolated environment of its own).
RUN pip install --no-cache-dir -e ".[native]" \
 && python scripts/build_native.py \
 && pip wheel --no-cache-dir --wheel-dir /wheels ".[otlp]"

FROM python:${PYTHON}-slim
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
