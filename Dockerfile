# voiceagent in one image: slim, non-root, every dependency from the hashed lock file.
#   docker build -t voiceagent .
#   docker run --env-file .env -p 8080:8080 voiceagent                 # = voiceagent serve
#   docker run --rm -v "$PWD/config:/app/config:ro" voiceagent check-config
# `voiceagent serve` is PID 1 (exec form, no shell): `docker stop` sends it SIGTERM, it drains
# (new calls 503, calls in flight go on for DRAIN_GRACE_SECONDS), then exits. Give it longer
# than that to stop: `docker stop -t 45`, compose's stop_grace_period (compose.yaml).

FROM python:3.11-slim-bookworm AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
COPY requirements/runtime.txt requirements/runtime.txt
RUN python -m venv /opt/voiceagent \
 && /opt/voiceagent/bin/pip install --require-hashes -r requirements/runtime.txt
COPY pyproject.toml README.md ./
COPY voiceagent voiceagent
RUN /opt/voiceagent/bin/pip install --no-deps --no-build-isolation .

FROM python:3.11-slim-bookworm
RUN useradd --system --uid 10001 --user-group --home-dir /app --create-home voiceagent
COPY --from=build /opt/voiceagent /opt/voiceagent
WORKDIR /app
COPY --chown=root:root config/voiceagent.yaml config/voiceagent.yaml
USER voiceagent
ENV PATH=/opt/voiceagent/bin:$PATH PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1 \
    HOST=0.0.0.0 PORT=8080 DATABASE_URL=sqlite+aiosqlite:////app/data/voiceagent.sqlite3
RUN mkdir /app/data
VOLUME /app/data
EXPOSE 8080
STOPSIGNAL SIGTERM
# 503 while draining: the container reads unhealthy, as a load balancer should see it
HEALTHCHECK --interval=10s --timeout=3s --start-period=15s --retries=3 \
  CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen(f'http://127.0.0.1:{os.environ.get(\"PORT\", \"8080\")}/healthz', timeout=2)"]
ENTRYPOINT ["voiceagent"]
CMD ["serve"]
