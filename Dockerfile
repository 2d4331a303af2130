# pyq worker image: the package, its Lua scripts, the config and the example jobs.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app

# Dependencies first, so a code-only change reuses the layer.
COPY pyproject.toml README.md ./
COPY src ./src
COPY lua ./lua
RUN pip install .

COPY config ./config
COPY examples ./examples

RUN useradd --system --uid 10001 --home-dir /app --shell /usr/sbin/nologin pyq
USER pyq

# TERM: stop fetching, finish running jobs within `timeout` (25 s), put the rest back, exit 0.
STOPSIGNAL SIGTERM
CMD ["pyq", "-C", "config/queue.yml"]
