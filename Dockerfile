# The mlscope image: exporters, alert receiver and demo. Slim base, non-root, no build tools left behind.
FROM python:3.11-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /opt/mlscope
COPY pyproject.toml README.md ./
COPY exporters ./exporters
COPY alerting ./alerting
COPY provisioning ./provisioning
RUN pip install --no-cache-dir . \
    && useradd --system --uid 10001 --no-create-home --shell /usr/sbin/nologin mlscope

USER 10001
EXPOSE 8000 9095 9102 9839
ENTRYPOINT ["mlscope"]
CMD ["--help"]
