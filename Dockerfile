# syntax=docker/dockerfile:1
# CultureSafe gateway image.
#
#   docker build -t culturesafe .
#   docker run -p 8000:8000 -v culturesafe-data:/data \
#     -e CULTURESAFE_API_KEYS='["sk-...your key..."]' culturesafe
#
# The image listens on 0.0.0.0, so it refuses to start without a chat key
# (CULTURESAFE_API_KEYS or _API_KEYS_FILE) unless CULTURESAFE_ALLOW_UNAUTHENTICATED=true
# (docs/deploy.md, "Access control").
#
# The install step is scripts/install.sh, the same script that the README's `make install`
# and the outside-Docker test (tests/deploy/test_install_outside_docker.py) run; so the image
# cannot drift from the README. All configuration comes from CULTURESAFE_* environment
# variables (app/config.py); /data holds the index, the knowledge base and evaluation runs.

ARG PYTHON_IMAGE=python:3.11-slim-bookworm

# ---- builder: a virtualenv with the README's install, plus the starter index --------------
FROM ${PYTHON_IMAGE} AS builder

SHELL ["/bin/bash", "-o", "pipefail", "-c"]
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    HF_HUB_OFFLINE=1 \
    TRANSFORMERS_OFFLINE=1 \
    PATH=/opt/venv/bin:$PATH

RUN python -m venv /opt/venv

WORKDIR /src
COPY pyproject.toml README.md constraints.txt ./
COPY scripts/install.sh scripts/
COPY app/ app/
COPY retrieval/ retrieval/
COPY prompts/ prompts/
COPY eval/ eval/

# The pinned torch comes from PyTorch's CPU index: the image never gets a CUDA build.
ARG TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu
# pip's cache lives in a BuildKit cache mount, so it speeds up rebuilds without entering a layer.
RUN --mount=type=cache,target=/root/.cache/pip \
    TORCH_INDEX_URL="${TORCH_INDEX_URL}" bash scripts/install.sh /src

# The query embedder exported to ONNX (int8 for queries, fp32 for the index) and the starter
# knowledge base's indexes (MiniLM in /data/index; e5 and USE for non-English queries in
# /data/index-e5 and /data/index-use) with their intent gates, built once here instead of
# at every container start.
RUN culturesafe index export-embedder --backend all --cache-dir /data/models/embedder \
    && culturesafe index build --out /data/index --cache-dir /data/models/embedder

# ---- runtime: the virtualenv and the index, no build context, no compilers, non-root -----
FROM ${PYTHON_IMAGE} AS runtime

# CULTURESAFE_WORKERS is read by the CMD below (uvicorn worker processes), not by Settings.
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    HF_HUB_OFFLINE=1 \
    TRANSFORMERS_OFFLINE=1 \
    CULTURESAFE_HOST=0.0.0.0 \
    CULTURESAFE_PORT=8000 \
    CULTURESAFE_INDEX_DIR=/data/index \
    CULTURESAFE_EMBEDDER_CACHE_DIR=/data/models/embedder \
    CULTURESAFE_RUNS_DIR=/data/runs \
    CULTURESAFE_WORKERS=1

RUN useradd --system --user-group --uid 10001 --no-log-init \
        --home-dir /app --create-home --shell /usr/sbin/nologin culturesafe \
    && mkdir -p /data/runs \
    && chown culturesafe:culturesafe /data /data/runs

COPY --from=builder /opt/venv /opt/venv
COPY --from=builder --chown=culturesafe:culturesafe /data/index /data/index
COPY --from=builder --chown=culturesafe:culturesafe /data/index-e5 /data/index-e5
COPY --from=builder --chown=culturesafe:culturesafe /data/index-use /data/index-use
COPY --from=builder --chown=culturesafe:culturesafe /data/models /data/models

WORKDIR /app
# Numeric, so that runtimes enforcing runAsNonRoot can check it without the image's passwd.
USER 10001:10001
# A named volume here starts as a copy of the image's /data, the prebuilt index included.
VOLUME ["/data"]
EXPOSE 8000

# slim has no curl: the image's own python asks /healthz (liveness; /readyz is for balancers).
HEALTHCHECK --interval=30s --timeout=5s --start-period=180s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request as u; u.urlopen('http://127.0.0.1:%s/healthz' % os.environ.get('CULTURESAFE_PORT', '8000'), timeout=4)"]

# exec: the server replaces the shell as PID 1, so it receives SIGTERM from `docker stop`.
CMD ["/bin/sh", "-c", "exec culturesafe serve --workers \"${CULTURESAFE_WORKERS:-1}\""]
