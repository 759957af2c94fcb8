"""docs/metrics.md and the runbooks' thresholds blocks: fresh, complete, and right about known names."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from mlscope import catalog
from mlscope.cli import main
from mlscope.rules import anomaly, config_for, reference
from mlscope.rules.versions import comparison_rules

ROOT = Path(__file__).resolve().parents[2]
METRICS_MD = ROOT / reference.REFERENCE


def entry(name: str) -> str:
    """The section of docs/metrics.md about one name."""
    text = METRICS_MD.read_text()
    start = text.index(f"### `{name}`\n")
    end = text.find("\n### ", start + 1)
    return text[start:end if end > 0 else len(text)]


def test_committed_files_are_fresh() -> None:
    assert reference.stale(ROOT) == [], "run `mlscope docs build` (make generate)"


def test_every_catalog_name_has_an_entry() -> None:
    text = METRICS_MD.read_text()
    for name in catalog.BY_NAME:
        assert f"### `{name}`\n" in text, name


@pytest.mark.parametrize("name, alert, board, panel", [
    ("mlscope_predictions_total", "ModelErrorRateHigh", "mlscope / Model overview", "Requests/s"),
    ("mlscope_prediction_latency_seconds", "ModelLatencySLOBurn", "mlscope / Model overview", None),
    ("feature:mlscope_feature_bin:psi", "FeatureDriftHigh", "mlscope / Data drift", "PSI by feature"),
    ("mlscope_feature_bin_total", "PredictionDriftHigh", "mlscope / Data drift", None),
    ("mlscope_gpu_temperature_celsius", "GPUTemperatureHigh", "mlscope / Resources", None),
    ("mlscope_log_lines_dropped_total", "MLScopeLogShipperDroppingLines", "mlscope / Stack health", None),
    ("mlscope_quality_confusion_total", "ModelQualityBelowBaseline", "mlscope / Model quality", None),
])
def test_known_names_map_to_their_alert_and_panel(name: str, alert: str, board: str, panel: str | None) -> None:
    section = entry(name)
    assert f"[`{alert}`](../alerting/runbooks/{alert}.md)" in section
    panels = next(line for line in section.splitlines() if line.startswith("- Panels: "))
    assert f"*{board}* (`" in panels  # the title, then the uid runbooks name
    if panel:
        assert panel in panels.split(f"*{board}* (`")[1].split("; ")[0]


def test_recorded_series_name_what_they_are_computed_from() -> None:
    section = entry("model_version:mlscope_prediction_errors:ratio_rate")
    assert "- Computed from: [`mlscope_prediction_errors_total`]" in section
    assert "`window` default: 5m, 1h · fast: 1m, 5m" in section


def test_the_owner_join_is_not_counted_as_a_read() -> None:
    alerts = next(line for line in entry("mlscope_model_info").splitlines() if line.startswith("- Alerts: "))
    # Read by ModelNoPredictions, and by the version comparisons through the declared roles (its role label).
    assert alerts == ("- Alerts: [`ModelCandidateOutputsDiverge`](../alerting/runbooks/ModelCandidateOutputsDiverge.md)"
                      ", [`ModelCandidateWorseThanBaseline`](../alerting/runbooks/ModelCandidateWorseThanBaseline.md)"
                      ", [`ModelNoPredictions`](../alerting/runbooks/ModelNoPredictions.md)")


def test_alert_settings_name_real_alerts_and_appear_in_their_expressions() -> None:
    rules = reference.alert_rules("default")
    # Settings that reach the expression transformed (a product, a bucket of a recorded series) or as `for`.
    derived = {"thresholds.latency_slo_seconds", "thresholds.latency_slo_objective",
               "thresholds.regression_max_error_increase", "profile.burn_windows", "profile.for_no_traffic",
               "profile.for_target_down",
               "resources.gpu_throttle_reasons",
               # the generative SLOs: a bucket of a recorded series and a burn-rate product, as latency's
               "thresholds.genai_ttft_slo_seconds", "thresholds.genai_ttft_slo_objective",
               "thresholds.genai_tpot_slo_seconds", "thresholds.genai_tpot_slo_objective",
               # durations the pipeline alerts compare in seconds (time() minus a timestamp)
               "profile.pipeline_expected_interval", "profile.pipeline_max_data_age",
               # the divergence's resolve level: output_js_distance minus it
               "versions.output_js_hysteresis"}
    cfg = config_for("default")
    anomaly_text = json.dumps(anomaly.groups(cfg))
    for alert, settings in reference.ALERT_SETTINGS.items():
        assert alert in rules, alert
        exprs = " ".join(r["expr"] for r in rules[alert])
        for path in settings:
            assert path in reference.SETTING_TITLES
            if alert in reference.APPLIED_BY_THE_JOB:
                continue  # test_batch_checks_apply_the_rule_configuration
            if path.startswith("profile.warmup.versions_"):  # guarded in the comparisons the alert reads
                domain = path.removeprefix("profile.warmup.versions_")
                guarded = {r["record"] for r in comparison_rules(cfg)
                           if f'mlscope_versions_guard:bool{{domain="{domain}"' in r["expr"]}
                assert any(name in exprs for name in guarded), (alert, path)
            elif path.startswith("profile.warmup."):  # read through the guard's recorded state of that domain
                assert f'mlscope_window_warm:bool{{domain="{path.rsplit(".", 1)[1]}"' in exprs, (alert, path)
            elif path.startswith("profile.anomaly."):  # read by the signal's recording rules, or its `for`
                value = reference.setting_value(cfg, path)
                if path.endswith(".for_duration"):
                    assert value in {r["for"] for r in rules[alert]}, (alert, path)
                elif path.endswith(".direction"):
                    assert {"up": "> ", "down": "< -", "both": " or "}[str(value)] in exprs, (alert, path)
                elif isinstance(value, tuple):  # the offsets
                    assert all(f"offset {o}" in anomaly_text for o in value), (alert, path)
                elif value:  # a floor of 0 is not written
                    assert reference.format_value(value) in anomaly_text, (alert, path)
            elif path not in derived:
                assert reference.format_value(reference.setting_value(cfg, path)) in exprs, (alert, path)


def test_batch_checks_apply_the_rule_configuration() -> None:
    """The batch checks' defaults are the settings PipelineBatchChecksFailing's runbook shows."""
    import inspect

    from mlscope.pipelines import check_batch

    defaults = {k: p.default for k, p in inspect.signature(check_batch).parameters.items()}
    cfg = config_for("default")
    assert reference.ALERT_SETTINGS["PipelineBatchChecksFailing"] == (
        "thresholds.data_quality_ratio", "thresholds.drift_psi_floor", "profile.warmup.drift",
        "profile.warmup.data_quality")
    assert (defaults["quality_ratio"], defaults["psi_floor"], defaults["min_values"], defaults["min_rows"]) == (
        cfg.thresholds.data_quality_ratio, cfg.thresholds.drift_psi_floor, cfg.profile.warmup.drift.min_count,
        cfg.profile.warmup.data_quality.min_count)


def test_runbook_shows_both_profiles_and_keeps_numbers_out_of_its_prose() -> None:
    text = (ROOT / "alerting/runbooks/FeatureDriftHigh.md").read_text()
    block = text[text.index(reference.BEGIN):text.index(reference.END)]
    assert "| windows the expression reads | 1h | 1m |" in block
    assert "| `for` | 15m | 5s |" in block
    assert "(`thresholds.drift_psi_floor`) | 0.1 | 0.1 |" in block
    assert ("(`profile.warmup.drift`) | at least 100, series a whole window old "
            "| at least 100, series a whole window old |") in block
    prose = text.replace(block, "")
    for hard_coded in ("0.1 floor", "100 values", "`1h` by default"):
        assert hard_coded not in prose
    assert "## What it means" in prose and "## Mitigation" in prose


def test_check_command_names_the_stale_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    for folder in (reference.DASHBOARDS, reference.RUNBOOKS, reference.REFERENCE.parent):
        shutil.copytree(ROOT / folder, tmp_path / folder)
    assert main(["docs", "check", "--root", str(tmp_path)]) == 0
    (tmp_path / reference.REFERENCE).write_text("# stale\n")
    assert main(["docs", "check", "--root", str(tmp_path)]) == 1
    assert "stale: docs/metrics.md" in capsys.readouterr().err
    assert main(["docs", "build", "--root", str(tmp_path)]) == 0
    assert (tmp_path / reference.REFERENCE).read_text() == METRICS_MD.read_text()
    assert main(["docs", "check", "--root", str(tmp_path / "nowhere")]) == 2
