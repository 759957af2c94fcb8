"""A WSGI model service for the multiprocess test: every request is one monitored prediction."""
import os

from mlscope import ModelMonitor
from mlscope.exposition import wsgi_app

monitor = ModelMonitor("gunicorn-model", "1")
metrics = wsgi_app()


def app(environ, start_response):
    if environ["PATH_INFO"] == "/metrics":
        return metrics(environ, start_response)
    with monitor.track() as prediction:
        prediction.output = "ok" if environ.get("QUERY_STRING") != "fail" else None
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [str(os.getpid()).encode()]
