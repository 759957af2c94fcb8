"""`mlscope demo inject`: a non-positive duration is refused, and a wrong `--url` says so in one line."""
from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from types import SimpleNamespace
from typing import Any

import pytest

from mlscope.cli import main
from mlscope.demo.service import DemoService
from mlscope.stack.servers import free_port


@pytest.mark.parametrize("seconds", ["-5", "0", "nan", "inf", "soon"])
def test_non_positive_or_non_numeric_seconds_are_refused(seconds: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["demo", "inject", "errors", "--seconds", seconds, "--url", f"http://127.0.0.1:{free_port()}"])
    assert exited.value.code == 2
    assert "argument --seconds" in capsys.readouterr().err
    with pytest.raises(ValueError, match="positive number of seconds"):  # and over HTTP (POST /faults)
        DemoService.inject(SimpleNamespace(), "errors", float(seconds) if seconds != "soon" else -1.0)  # type: ignore[arg-type]


@pytest.fixture
def not_the_demo() -> Iterator[str]:
    class Html(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            if self.path.startswith("/json/"):  # another JSON server, e.g. the quality exporter
                body = b'{"error": "not found"}'
                self.send_response(404)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
                return
            body = b"<html>hello</html>"
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    server = HTTPServer(("127.0.0.1", 0), Html)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    server.server_close()


def test_a_wrong_url_is_one_line(not_the_demo: str, capsys: pytest.CaptureFixture[str]) -> None:
    nobody = f"http://127.0.0.1:{free_port()}"
    for url, says in [(nobody, f"mlscope: no demo answers at {nobody} (cannot connect)"),
                      ("127.0.0.1:8000", "mlscope: --url '127.0.0.1:8000' is not an http:// URL"),
                      (not_the_demo, f"mlscope: {not_the_demo} answered 200 without JSON"),
                      (f"{not_the_demo}/json", f"mlscope: {not_the_demo}/json has no /faults (404: not found): "
                                               "is it the demo's URL?")]:
        assert main(["demo", "inject", "drift", "--url", url]) == 1
        err = capsys.readouterr().err
        assert err.startswith(says) and err.count("\n") == 1, err
