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
# The extras its services use: stack (alert receiver), resources/gpu (resource exporter), demo (the demo model).
# DL3013 asks for pinned versions: this installs the checkout itself, whose pyproject.toml bounds its dependencies.
# hadolint ignore=DL3013
RUN pip install --no-cache-dir ".[stack,gpu,demo,reports]" \
    && useradd --system --uid 10001 --no-create-home --shell /usr/sbin/nologin mlscope

USER 10001
EXPOSE 8000 9095 9102 9839
ENTRYPOINT ["mlscope"]
CMD ["--help"]
