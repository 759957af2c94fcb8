# The mlscope image of a stack folder written by `mlscope init`: exporters, alert receiver and demo, from the
# published package (or from a wheel you put in wheels/, e.g. `pip wheel --no-deps -w wheels mlscope==VERSION`),
# with this folder's alerting/ and provisioning/ (the alert receiver serves these runbooks).
FROM python:3.11-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /opt/mlscope
COPY wheels ./wheels
# hadolint ignore=DL3013
RUN pip install --no-cache-dir --find-links ./wheels "mlscope[stack,gpu,demo,reports]=={version}" \
    && rm -rf ./wheels \
    && useradd --system --uid 10001 --no-create-home --shell /usr/sbin/nologin mlscope
COPY alerting ./alerting
COPY provisioning ./provisioning

USER 10001
EXPOSE 8000 9095 9102 9839
ENTRYPOINT ["mlscope"]
CMD ["--help"]
