# The container action's image. The runner starts it with the checkout as the working
# directory (/github/workspace), owned by another user than root: safe.directory is set
# system-wide so git accepts it.
FROM python:3.12-slim

ENV PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

RUN apt-get update \
    && apt-get install -y --no-install-recommends git ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && git config --system --add safe.directory '*'

COPY pyproject.toml README.md entrypoint.py /opt/ci-deploy/
COPY ci_deploy /opt/ci-deploy/ci_deploy
# The entrypoint imports ci_deploy from /opt/ci-deploy, where no bytecode is ever written
# (PYTHONDONTWRITEBYTECODE, and a fresh container per job): compiled here once, not at every start.
RUN pip install /opt/ci-deploy \
    && python -m compileall -q /opt/ci-deploy/ci_deploy

ENTRYPOINT ["/usr/local/bin/python", "/opt/ci-deploy/entrypoint.py"]
