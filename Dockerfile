# DeskClone Sources: one image for `deskclone api`, `deskclone worker` and `deskclone migrate`.
# Built by docker-compose.yml; every setting and secret comes from the environment at run
# time (docs/operations.md), none is baked in here.

FROM python:3.11-slim AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m venv /opt/deskclone
WORKDIR /src
COPY pyproject.toml README.md ./
COPY deskclone ./deskclone
COPY core ./core
COPY ingest ./ingest
COPY api ./api
COPY activities ./activities
COPY workflows ./workflows
COPY domain ./domain
COPY store ./store
COPY providers ./providers
COPY emulator ./emulator
COPY worker.py ./
# The project without its test extras (no pytest, ruff, mypy, browsers or test server).
RUN /opt/deskclone/bin/pip install --upgrade pip \
    && /opt/deskclone/bin/pip install .


FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PATH=/opt/deskclone/bin:$PATH \
    DESKCLONE_DATA_DIR=/var/lib/deskclone \
    DESKCLONE_API_HOST=0.0.0.0 \
    DESKCLONE_API_PORT=8000
RUN groupadd --system --gid 10001 deskclone \
    && useradd --system --uid 10001 --gid deskclone --home-dir /var/lib/deskclone \
       --create-home --shell /usr/sbin/nologin deskclone
COPY --from=build /opt/deskclone /opt/deskclone
COPY deploy/healthcheck.py /usr/local/bin/deskclone-healthcheck
WORKDIR /var/lib/deskclone
USER deskclone:deskclone
EXPOSE 8000

# The API answers /healthz once the database and Temporal do; docker-compose.yml points the
# worker's check at its metrics endpoint instead and turns it off for one-shot jobs.
HEALTHCHECK --interval=10s --timeout=5s --start-period=20s --retries=3 \
    CMD ["python", "/usr/local/bin/deskclone-healthcheck"]

CMD ["deskclone", "api"]
