# syntax=docker/dockerfile:1
# staticsite-operator image. `docker build .` works; `make image` builds it here with no
# Docker and no registry: BuildKit's built-in Dockerfile frontend (so the syntax line
# above is not fetched), PYTHON_IMAGE set to a base made from Debian packages, and the
# image stored straight into the local cluster's containerd (hack/images.sh).
#
# Two stages: the builder installs the package and its dependencies into a virtualenv;
# the final stage copies only that virtualenv onto the same slim base, so no pip cache,
# build backend or source tree ships. Every dependency is pure Python or has a manylinux
# wheel, so neither stage needs a compiler.
#
# The base is pinned to a full version. For reproducible builds also pin its digest
# (python:3.11.14-slim-bookworm@sha256:...) from the registry you pull from.
ARG PYTHON_IMAGE=python:3.11.14-slim-bookworm

FROM ${PYTHON_IMAGE} AS builder
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
WORKDIR /src
# README.md* matches nothing when there is no README yet; pyproject.toml names it as readme.
COPY pyproject.toml README.md* ./
COPY operator ./operator
# A regular (non-editable) install: the final stage gets no /src. Bytecode is compiled
# here because the operator's root filesystem is read-only at run time.
RUN pip install --no-compile . \
 && python -m compileall -q /opt/venv/lib \
 && pip uninstall -y pip setuptools wheel

FROM ${PYTHON_IMAGE}
LABEL org.opencontainers.image.title="staticsite-operator" \
      org.opencontainers.image.description="Static website hosting on Kubernetes (kopf operator)" \
      org.opencontainers.image.licenses="Apache-2.0"
COPY --from=builder /opt/venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1
# A numeric non-root UID/GID (no passwd entry needed): Kubernetes can verify runAsNonRoot.
USER 65532:65532
# 8080: liveness (GET /healthz, on by default); 9090: Prometheus metrics.
EXPOSE 8080 9090
ENTRYPOINT ["staticsite-operator"]
