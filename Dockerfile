# Command Center bot image: slim Python 3.11, non-root, state on a volume.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    CC_DATA_DIR=/data \
    CC_LISTEN_HOST=0.0.0.0 \
    CC_LISTEN_PORT=8080

RUN groupadd --system --gid 10001 commandcenter \
 && useradd --system --uid 10001 --gid commandcenter --home-dir /app --shell /usr/sbin/nologin commandcenter

WORKDIR /app
COPY requirements.txt .
RUN pip install --no-cache-dir -r requirements.txt

COPY bot.py settings.py version.py ./
COPY domain ./domain
COPY gateway ./gateway
COPY plugins ./plugins
COPY backstage ./backstage
COPY services ./services
COPY storage ./storage
COPY telemetry ./telemetry

RUN mkdir -p /data && chown commandcenter:commandcenter /data
VOLUME ["/data"]
USER commandcenter
EXPOSE 8080

HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
  CMD python -c "import os,sys,urllib.request; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:%s/healthz' % os.environ.get('CC_LISTEN_PORT','8080'), timeout=4).status == 200 else 1)"

CMD ["python", "bot.py"]
