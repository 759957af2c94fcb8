"""The library's optional-dependency paths, run in interpreters where the extra's package cannot be imported.

The test environment installs every extra; ``support.hidden`` hides one from a fresh interpreter (a finder that
raises ModuleNotFoundError, as a missing package does), so the "without the extra" branches really run.
"""
from __future__ import annotations

import json

import pytest

from support.hidden import run_hidden


def run_json(code: str, hidden: tuple[str, ...]) -> dict:
    """Run ``code`` (which prints one JSON object as its last line) with ``hidden`` packages hidden."""
    done = run_hidden(code, hidden)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_the_hiding_is_real() -> None:
    out = run_json("""
        import importlib.util, json
        try:
            import opentelemetry.trace
            found = True
        except ModuleNotFoundError as exc:
            found, name = False, exc.name
        print(json.dumps({"found": found, "name": name}))
    """, ("opentelemetry",))
    assert out == {"found": False, "name": "opentelemetry.trace"} or out == {"found": False, "name": "opentelemetry"}


def test_without_opentelemetry_no_trace_ids_and_nothing_breaks() -> None:
    out = run_json("""
        import json, logging, sys
        from prometheus_client import CollectorRegistry
        from prometheus_client.openmetrics.exposition import generate_latest
        from mlscope import ModelMonitor, tracing
        from mlscope.logs import JsonFormatter

        registry = CollectorRegistry()
        monitor = ModelMonitor("m", "1", registry=registry)
        with monitor.track(request_id="req-1") as p:
            p.output = "yes"
        record = logging.LogRecord("svc", logging.INFO, "svc.py", 1, "served", None, None)
        line = json.loads(JsonFormatter().format(record))
        exemplars = [l for l in generate_latest(registry).decode().splitlines() if " # {" in l]
        print(json.dumps({"otel": tracing._otel_trace is not None, "ids": tracing.current_ids(),
                          "exemplar": tracing.exemplar("req-1"), "line": line, "exemplars": exemplars,
                          "loaded": sorted(m for m in sys.modules if m.startswith("opentelemetry"))}))
    """, ("opentelemetry",))
    assert out["otel"] is False and out["ids"] is None and out["loaded"] == []
    assert out["exemplar"] == {"request_id": "req-1"}
    assert out["line"]["message"] == "served" and "trace_id" not in out["line"] and "span_id" not in out["line"]
    assert out["exemplars"] and all('request_id="req-1"' in e and "trace_id" not in e for e in out["exemplars"])


def test_with_opentelemetry_the_same_code_carries_the_span_ids() -> None:
    """The contrast: the same calls with the extra and an active span add the ids (the test above could fail)."""
    out = run_json("""
        import json, logging
        from opentelemetry.sdk.trace import TracerProvider
        from mlscope import tracing
        from mlscope.logs import JsonFormatter

        with TracerProvider().get_tracer("t").start_as_current_span("s"):
            record = logging.LogRecord("svc", logging.INFO, "svc.py", 1, "served", None, None)
            line = json.loads(JsonFormatter().format(record))
            print(json.dumps({"exemplar": tracing.exemplar("req-1"), "line": line}))
    """, ())
    assert set(out["exemplar"]) == {"request_id", "trace_id", "span_id"}
    assert out["line"]["trace_id"] == out["exemplar"]["trace_id"]


def test_without_cramjam_json_ships_and_protobuf_fails_at_configuration() -> None:
    out = run_json("""
        import json, logging
        from prometheus_client import CollectorRegistry
        from mlscope.logs import HttpTransport, LokiHandler
        from support.loki_receiver import LokiReceiver

        rx = LokiReceiver()
        handler = LokiHandler(rx.url, registry=CollectorRegistry(), flush_interval=0.01)
        logger = logging.getLogger("svc")
        logger.propagate = False
        logger.addHandler(handler)
        logger.warning("shipped as json")
        drained = handler.drain(10)
        handler.close()
        try:
            HttpTransport(rx.url, encoding="protobuf")
            error = None
        except ImportError as exc:  # at configuration, not on the first push
            error = str(exc)
        rx.close()
        print(json.dumps({"drained": drained, "lines": [e.line for e in rx.lines], "error": error}))
    """, ("cramjam",))
    assert out["drained"] is True and any("shipped as json" in line for line in out["lines"])
    assert out["error"] and "cramjam" in out["error"] and "mlscope[loki-protobuf]" in out["error"]


def test_protobuf_encoding_needs_no_protobuf_package() -> None:
    """mlscope writes logproto.PushRequest by hand: google.protobuf hidden, the push still decodes."""
    out = run_json("""
        import json
        from mlscope.logs.payload import encode_protobuf
        body = encode_protobuf({(("app", "a"), ("level", "info")): [(1_700_000_000_000_000_000, "line", ())]})
        print(json.dumps({"bytes": len(body)}))
    """, ("google.protobuf",))
    assert out["bytes"] > 0


def test_without_pandas_columns_and_arrays_feed_the_drift_tracker() -> None:
    out = run_json("""
        import json, sys
        import numpy as np
        from prometheus_client import CollectorRegistry
        from mlscope import ModelMonitor
        from mlscope.drift import build_profile
        from mlscope.drift.build import read_table
        from mlscope.drift.profile import ProfileError

        rng = np.random.default_rng(0)
        profile = build_profile({"x": rng.normal(size=2000), "c": np.array(["a", "b"] * 1000)}, model="m",
                                model_version="1")
        registry = CollectorRegistry()
        monitor = ModelMonitor("m", "1", registry=registry, reference=profile)
        monitor.record_feature_batch({"x": rng.normal(size=300), "c": np.array(["a"] * 300)})
        total = sum(registry.get_sample_value("mlscope_feature_bin_total", {"model": "m", "model_version": "1",
                                              "feature": "x", "bin": str(k)}) or 0 for k in range(10))
        try:
            read_table("train.csv")
            error = None
        except ProfileError as exc:
            error = str(exc)
        print(json.dumps({"counted": total, "error": error, "pandas": "pandas" in sys.modules}))
    """, ("pandas", "pyarrow"))
    assert out["counted"] == 300 and out["pandas"] is False
    assert out["error"] and "mlscope[data]" in out["error"]


def test_data_frame_and_mapping_inputs_count_the_same() -> None:
    """With the extra: a pandas data frame (nullable dtypes included) counts as the same columns as a mapping."""
    pd = pytest.importorskip("pandas")
    import numpy as np
    from prometheus_client import CollectorRegistry

    from mlscope import ModelMonitor
    from mlscope.drift import build_profile
    from support.helpers import series

    rng = np.random.default_rng(1)
    x, c = rng.normal(size=500), np.array(["a", "b", "c", "a", "b"] * 100)
    profile = build_profile({"x": x, "c": c}, model="m", model_version="1")
    as_mapping, as_frame = CollectorRegistry(), CollectorRegistry()
    ModelMonitor("m", "1", registry=as_mapping, reference=profile).record_feature_batch({"x": x[:200], "c": c[:200]})
    frame = pd.DataFrame({"x": pd.array(x[:200], dtype="Float64"), "c": c[:200]})
    ModelMonitor("m", "1", registry=as_frame, reference=profile).record_feature_batch(frame)
    drift = lambda registry: {k: v for k, v in series(registry).items() if k[0].startswith("mlscope_feature")}  # noqa: E731
    assert drift(as_frame) == drift(as_mapping) and drift(as_mapping)


def test_without_nvidia_ml_py_the_import_names_the_extra() -> None:
    """nvidia-ml-py is part of `mlscope[resources]`: without it the import says which extra to install."""
    out = run_json("""
        import json
        try:
            import mlscope.resources
            error = None
        except ImportError as exc:
            error = str(exc)
        print(json.dumps({"error": error}))
    """, ("pynvml",))
    assert out["error"] and "pynvml" in out["error"] and "mlscope[resources]" in out["error"]


def test_without_the_nvml_library_host_and_process_metrics_still_come() -> None:
    """pynvml installed, no NVIDIA driver (this machine, a CPU-only host): no GPU series, nothing breaks."""
    pynvml = pytest.importorskip("pynvml")
    try:
        pynvml.nvmlInit()
    except pynvml.NVMLError:
        pass
    else:
        pynvml.nvmlShutdown()
        pytest.skip("this machine has an NVML library")
    from prometheus_client import CollectorRegistry, generate_latest

    from mlscope.resources import ResourceMonitor

    registry = CollectorRegistry()
    ResourceMonitor(registry).sample_once()
    text = generate_latest(registry).decode()
    assert "mlscope_host_memory_total_bytes" in text and "mlscope_process_" in text
    assert not [line for line in text.splitlines() if line.startswith("mlscope_gpu_") and "gpu=" in line]


def test_without_opentelemetry_spans_asked_for_name_the_extra() -> None:
    out = run_json("""
        import json
        from prometheus_client import CollectorRegistry
        from mlscope import ModelMonitor
        try:
            ModelMonitor("m", "1", registry=CollectorRegistry(), tracing=True)
            said = None
        except ImportError as exc:
            said = str(exc)
        try:
            import mlscope.otel
            otel = None
        except ImportError as exc:
            otel = str(exc)
        print(json.dumps({"said": said, "otel": otel}))
    """, ("opentelemetry",))
    assert "pip install 'mlscope[otel]'" in out["said"] and "pip install 'mlscope[otel]'" in out["otel"]


def test_without_the_sdk_the_api_alone_makes_no_spans_and_export_names_the_extra() -> None:
    out = run_json("""
        import json
        from prometheus_client import CollectorRegistry
        from mlscope import ModelMonitor
        monitor = ModelMonitor("m", "1", registry=CollectorRegistry())
        with monitor.track() as p:
            p.output = 1
        try:
            import mlscope.otel
            otel = None
        except ImportError as exc:
            otel = str(exc)
        print(json.dumps({"spans": monitor._spans.tracer() is not None, "otel": otel}))
    """, ("opentelemetry.sdk",))
    assert out["spans"] is False and "mlscope[otel]" in out["otel"] and "opentelemetry.sdk" in out["otel"]
