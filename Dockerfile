# The container action's image. The runner starts it with the checkout as the working
# directory (/github/workspace), owned by another user than root: safe.directory is set
# system-wide so git accepts it.
#
# Reproducible: the base is python:3.12-slim's multi-arch index pinned by digest (kept equal
# to .github/base-image/Dockerfile, the copy Dependabot can read and bump: it does not read an
# ARG's default), and the runtime dependencies come from requirements.txt, exact versions
# with their hashes, as wheels only. `make image-demo` builds on a local base instead:
# --build-arg BASE=<image with /usr/local/bin/python, pip and git's dependencies>.
ARG BASE=python:3.12-slim@sha256:78387bc3881b8273120a12ebe6c1ab22b018ccc2c9adf565ae1ac9b536e184ea
FROM ${BASE}

ENV PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

# git for the checkout; the package lists and downloaded .debs removed in the same layer.
RUN apt-get update \
    && apt-get install -y --no-install-recommends git ca-certificates \
    && apt-get clean \
    && rm -rf /var/lib/apt/lists/* /var/cache/apt/*.bin /var/log/apt /var/log/dpkg.log \
    && git config --system --add safe.directory '*'

# Hash-checked wheels only (no sdist, so nothing is compiled and no compiler is needed), no
# resolver: the lock is the whole set. pip writes their bytecode as it installs them.
COPY requirements.txt /tmp/requirements.txt
RUN pip install --no-deps --require-hashes --only-binary :all: -r /tmp/requirements.txt \
    && rm -rf /tmp/requirements.txt /root/.cache

# Our own code is not pip-installed: installing a source tree needs its build backend
# (setuptools, fetched unhashed by build isolation). The entrypoint imports ci_deploy from
# /opt/ci-deploy, its own folder, where no bytecode is ever written at run time
# (PYTHONDONTWRITEBYTECODE, and a fresh container per job): compiled here once.
COPY entrypoint.py /opt/ci-deploy/
COPY ci_deploy /opt/ci-deploy/ci_deploy
RUN python -m compileall -q /opt/ci-deploy/ci_deploy

ENTRYPOINT ["/usr/local/bin/python", "/opt/ci-deploy/entrypoint.py"]
