# syntax=docker/dockerfile:1
#
# chatstream server image.
#   CPU:  docker build -t chatstream:1.0.0 .
#   GPU:  docker build --build-arg VARIANT=cuda -t chatstream:1.0.0-cuda .
# The model is not in the image: set CHATSTREAM_MODEL to a hub id (downloaded at start into HF_HOME,
# mount a volume there to keep it) or to a path on a mounted volume; CHATSTREAM_USE_MOCK_RESPONSE=true
# serves canned replies without one. `chatstream migrate` upgrades the history database.

# cpu or cuda: the base image of every stage below and where torch comes from.
ARG VARIANT=cpu
ARG PYTHON_IMAGE=python:3.12-slim-bookworm
ARG CUDA_IMAGE=nvidia/cuda:12.8.1-cudnn-runtime-ubuntu24.04

FROM ${PYTHON_IMAGE} AS base-cpu

# Ubuntu 24.04's Python 3.12 on the CUDA runtime (cuDNN and the driver libraries come from NVIDIA).
FROM ${CUDA_IMAGE} AS base-cuda
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends python3 python3-venv ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && ln -s /usr/bin/python3 /usr/local/bin/python

# hadolint ignore=DL3006
FROM base-${VARIANT} AS base
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1

# --- build: a virtual environment with torch and the package, copied whole into the runtime stage ---
FROM base AS build
ARG VARIANT
ARG TORCH_VERSION=2.13.0
ARG ACCELERATE_VERSION=1.15.0
ARG TORCH_CPU_INDEX=https://download.pytorch.org/whl/cpu
ARG TORCH_CUDA_INDEX=https://download.pytorch.org/whl/cu128
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
# torch first, from the index matching the variant, so `pip install .` finds it satisfied and never
# pulls the default (CUDA) wheel into the CPU image.
RUN if [ "$VARIANT" = "cuda" ]; then index="$TORCH_CUDA_INDEX"; else index="$TORCH_CPU_INDEX"; fi \
    && pip install --no-cache-dir --index-url "$index" "torch==${TORCH_VERSION}"
WORKDIR /src
COPY pyproject.toml README.md ./
COPY service ./service
# the CUDA image can spread one model over several GPUs (--num-gpus): accelerate comes with it
RUN pip install --no-cache-dir . \
    && if [ "$VARIANT" = "cuda" ]; then pip install --no-cache-dir "accelerate==${ACCELERATE_VERSION}"; fi \
    && pip check

# --- runtime ---
FROM base AS runtime
ARG VARIANT
LABEL org.opencontainers.image.title="chatstream" \
      org.opencontainers.image.description="Streaming chat service for HuggingFace causal LMs" \
      org.opencontainers.image.licenses="Apache-2.0" \
      io.chatstream.variant="${VARIANT}"
RUN groupadd --system --gid 10001 chatstream \
    && useradd --system --uid 10001 --gid 10001 --home-dir /home/chatstream --create-home \
       --shell /usr/sbin/nologin chatstream \
    && mkdir -p /var/cache/chatstream \
    && chown 10001:10001 /var/cache/chatstream
COPY --from=build /opt/venv /opt/venv
WORKDIR /app
# Alembic's configuration and revisions for `chatstream migrate` (run from this directory).
COPY alembic.ini ./
COPY migrations ./migrations
ENV PATH=/opt/venv/bin:$PATH \
    HF_HOME=/var/cache/chatstream/huggingface \
    CHATSTREAM_HOST=0.0.0.0 \
    CHATSTREAM_PORT=8000
USER 10001:10001
EXPOSE 8000
VOLUME ["/var/cache/chatstream"]
HEALTHCHECK --interval=30s --timeout=5s --start-period=120s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/healthz' % os.environ.get('CHATSTREAM_PORT', '8000'), timeout=4)"]
ENTRYPOINT ["chatstream"]
CMD ["serve"]
