# The Cosmos agent (`cosmos watch`) as a container image.
#
# Build (no network needed inside the build: everything comes from a wheelhouse):
#   make image                     # = pip wheel -w build/wheels . plugins/...; docker build -t cosmos-agent .
# Run: see docs/docker.md (docker run, Compose next to HAProxy, least privilege).
#
# Settings come from COSMOS_* environment variables (README: Configuration).
# The agent runs as uid 10001; give it the Docker socket's group with
# `--group-add $(stat -c %g /var/run/docker.sock)`.

FROM python:3.11-slim AS build
# Cosmos and the agent's plugins; add cosmos-storage-dynamodb (and its wheels) for a shared DynamoDB store.
ARG PACKAGES="cosmos-core cosmos-events-docker cosmos-reload-docker-exec cosmos-routing-host-path cosmos-emit-remote"
COPY build/wheels/ /wheels/
RUN ["python", "-m", "venv", "--without-pip", "/opt/cosmos"]
RUN ["sh", "-c", "python -m pip --python /opt/cosmos/bin/python install --no-cache-dir --no-index --find-links /wheels $PACKAGES"]
RUN ["/opt/cosmos/bin/python", "-c", "import compileall, os; compileall.compile_dir('/opt/cosmos', quiet=1); os.makedirs('/var/lib/cosmos', mode=0o750); os.chown('/var/lib/cosmos', 10001, 0)"]

FROM python:3.11-slim
COPY --from=build /opt/cosmos /opt/cosmos
COPY --from=build --chown=10001:0 /var/lib/cosmos /var/lib/cosmos
ENV PATH=/opt/cosmos/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    HOME=/var/lib/cosmos \
    XDG_STATE_HOME=/var/lib/cosmos \
    COSMOS_LOG_FORMAT=json \
    COSMOS_METRICS_PORT=9101
USER 10001:0
WORKDIR /var/lib/cosmos
VOLUME ["/var/lib/cosmos"]
EXPOSE 9101
# /healthz on the metrics port: 200 while the agent runs, 503 while a failed pass (store, HAProxy) is retried.
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request as u; u.build_opener(u.ProxyHandler({})).open('http://127.0.0.1:%s/healthz' % os.environ['COSMOS_METRICS_PORT'], timeout=4)"]
ENTRYPOINT ["cosmos"]
CMD ["watch"]
