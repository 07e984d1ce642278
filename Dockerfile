# The aideploy operator image. Build from the repository root:
#
#   docker build -t aideploy-operator:dev .
#
# Two stages: the builder installs the package into a virtualenv with the same pip steps as
# `make install` (the runtime lock instead of the dev lock, and no editable mode); the runtime
# stage copies only that virtualenv onto a clean slim base, so no compiler, pip cache or
# source tree ships.
ARG PYTHON_VERSION=3.11

FROM python:${PYTHON_VERSION}-slim AS builder
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    PYTHONDONTWRITEBYTECODE=1
RUN python -m venv /opt/aideploy
ENV PATH=/opt/aideploy/bin:$PATH
WORKDIR /src
# Dependencies first, as their own layer, at the versions CI tested (`make lock`), each
# file's hash checked: code changes do not reinstall them.
COPY requirements.lock ./
RUN pip install --quiet --require-hashes -r requirements.lock
# Then the package alone (--no-deps: nothing unpinned comes in); `pip check` fails the build
# when pyproject.toml declares a dependency the lock does not have.
COPY pyproject.toml ./
COPY operator/aideploy ./operator/aideploy
RUN pip install --quiet --no-deps . \
    && pip check \
    && python -m compileall -q /opt/aideploy

FROM python:${PYTHON_VERSION}-slim
# A fixed numeric, non-root user: Kubernetes can then check runAsNonRoot without a
# passwd lookup, and the chart's runAsUser matches.
ARG UID=65532
RUN groupadd --system --gid ${UID} aideploy \
    && useradd --system --uid ${UID} --gid ${UID} --home-dir /nonexistent --no-create-home \
       --shell /usr/sbin/nologin aideploy
COPY --from=builder /opt/aideploy /opt/aideploy
ENV PATH=/opt/aideploy/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1
USER 65532:65532
EXPOSE 8080 9090
# The chart runs the same command with these arguments first (a test keeps them equal).
ENTRYPOINT ["aideploy-operator"]
CMD ["--liveness", "http://0.0.0.0:8080/healthz", "--metrics-port", "9090", "--log-format", "json"]
