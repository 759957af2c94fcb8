"""The README's instrumentation example runs as written and its metrics come out."""
from __future__ import annotations

import re

import requests

from mlscope.stack.servers import free_port
from support import ROOT


def test_three_line_example_runs() -> None:
    readme = (ROOT / "README.md").read_text()
    section = readme[readme.index("## Instrument a model service"):]
    code = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    assert "start_metrics_server(8001)" in code
    port = free_port()
    namespace: dict = {}
    exec(compile(code.replace("8001", str(port)), "README.md", "exec"), namespace)
    x = namespace["x"]
    predicted = [namespace["predict"](row) for row in x[:20]]  # the example's own 20 predictions
    predicted += [namespace["predict"](row) for row in x[20:30]]
    text = requests.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
    assert 'mlscope_predictions_total{model="iris",model_version="1.0.0"} 50.0' in text
    for cls in set(predicted):
        count = predicted.count(cls) + list(predicted[:20]).count(cls)  # the example predicted rows 0-19 too
        assert f'mlscope_predicted_class_total{{class="{cls}",model="iris",model_version="1.0.0"}} {count:.1f}' in text
