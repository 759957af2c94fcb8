"""Data pipeline health: runs and their outcome, durations, records and rejects by reason, freshness, last
success per pipeline, data-check results per batch, each run's log lines (Loki, by run id), and lineage:
which training run (pipeline, dataset version, fingerprint) each model version comes from.

Every panel reads gauges of facts (last success and failure times, last-run durations and record counts, the
newest event time, the last batch's check results) or counts runs from them (``changes()``, plus the first run
of a series that appeared, :func:`runs_ended`): a pushed job's
counters start at zero in each process and its group is overwritten at each push, so their rates mean
nothing there (docs/pipelines.md). Run ids, batch ids, hyperparameters and the alert behind a retraining are
in the log lines only: the Loki panels show them, and the datasource's derived fields open a run's or a batch's
lines from any line.
"""
from mlscope import grafana as gf
from mlscope.catalog import alerting as alert_cat
from mlscope.catalog import pipelines as cat
from mlscope.catalog import serving
from mlscope.catalog.pipelines import PUSH_JOB
from mlscope.rules import pipelines as pipelines_rules
from mlscope.rules.config import config_for

# Its alerts by name, from the rule generator: a regex of alternatives (`.*` matches newlines in Prometheus 3).
PIPELINE_ALERTS = "|".join(dict.fromkeys(r["alert"] for r in pipelines_rules.alert_rules(config_for("default"))))

P = 'pipeline=~"$pipeline"'
M = 'model=~"$model"'


# The data pipelines and batch jobs, not the training jobs (mlscope_pipeline_info's kind; a series from before
# the kind label has none, so it stays a pipeline): every pipeline panel, the "All" of $pipeline included.
PIPELINES = f'max by (pipeline) ({cat.INFO.name}{{kind!="training"}})'


def pipelines_only(expr: str) -> str:
    return f"({expr} and on (pipeline) {PIPELINES})"


def last(spec: cat.MetricSpec, by: str = "pipeline", selector: str = P) -> str:
    return pipelines_only(f"max by ({by}) ({spec.name}{{{selector}}})")


def runs_ended(spec: cat.MetricSpec, window: str) -> str:
    """Runs that ended within ``window``: each one set a new last-success (or last-failure) time, so its changes
    count them, and a series that appeared within the window (absent ``window`` ago) counts its first run, which
    ``changes()`` alone misses."""
    x = f"{spec.name}{{{P}}}"
    return pipelines_only(
        f"sum by (pipeline) (changes({x}[{window}]) + (({x} * 0 + 1 unless {x} offset {window}) or {x} * 0))")


def lines(event: str, selector: str = "", extra: str = "") -> str:
    stream = "{" + f'app="{gf.LOG_APP}"' + (f",{selector}" if selector else "") + "}"
    return f'{stream} |= "{event}" | json | event="{event}"{extra}'


# The pipelines whose runs ended (every panel above the lineage reads these gauges), not every pipeline_info.
ENDED = f'{{__name__=~"{cat.LAST_SUCCESS.name}|{cat.LAST_FAILURE.name}"}}'
SERVED = f'{M},job!="{PUSH_JOB}"'
INFO_BY = "model, model_version, training_data_fingerprint"


def state(expr: str, name: str) -> str:
    return f'label_replace({expr}, "state", "{name}", "", "")'


VERSION_STATES = " or ".join((
    state(f"max by ({INFO_BY}) ({serving.MODEL_INFO.name}{{{SERVED}}})", "serving"),
    state(f'max by ({INFO_BY}) ({serving.MODEL_INFO.name}{{{M},job="{PUSH_JOB}"}})', "pushed by a training job"),
    state(f"max by (model, model_version) ({serving.MODEL_RETIRED.name}{{{M}}})", "retired")))
PIPELINE_LINES = ' | pipeline=~"$pipeline"'
AGE = f"time() - {last(cat.LAST_SUCCESS)}"

dashboard = gf.dashboard(
    "mlscope-pipelines", "mlscope / Data pipeline health",
    description="Pipelines, batch jobs and training runs: outcomes, durations, records, rejects, freshness, "
                "batch checks, each run's log lines, and the lineage of model versions.",
    variables=[gf.label_variable("pipeline", "Pipeline", ENDED),
               gf.label_variable("model", "Model", serving.MODEL_INFO.name), gf.textbox("run_id", "Run id")],
    rows=[
        [gf.stat("Pipelines", gf.prom(f"count({last(cat.INFO)}) or on() vector(0)"), "short",
                 description="Data pipelines and batch jobs; training jobs (kind=\"training\") are in the lineage "
                             "row."),
         gf.stat("Last run failed", gf.prom(
             f"count({last(cat.LAST_FAILURE)} > on (pipeline) ({last(cat.LAST_SUCCESS)} or {last(cat.LAST_FAILURE)} "
             "* 0)) or on() vector(0)"), "short", steps=gf.thresholds((None, "green"), (1, "red"))),
         gf.stat("Longest since a success", gf.prom(f"max({AGE})"), "s"),
         gf.stat("Pipeline alerts firing", gf.prom(
             f'count(ALERTS{{alertstate="firing",alertname=~"{PIPELINE_ALERTS}"}}) or on() vector(0)'),
             "short", steps=gf.thresholds((None, "green"), (1, "orange")))],
        [gf.table("Last run per pipeline", gf.prom(
            (AGE, ""), (last(cat.LAST_RUN_DURATION), ""), (last(cat.EXPECTED_INTERVAL), ""),
            (f"{last(cat.LAST_FAILURE)} > bool on (pipeline) {last(cat.LAST_SUCCESS)}", "")),
            "s", columns=["seconds since last success", "last run took (s)", "expected every (s)", "last run failed"],
            sort_by="seconds since last success",
            description="Pipelines that never failed have no 'last run failed' value; one that never succeeded has "
                        "no age. Stale: no success for 1.5 times its expected interval (PipelineStale)."),
         gf.table("Last success and last failure per pipeline", gf.prom(
             (f"{last(cat.LAST_SUCCESS)} * 1000", ""), (f"{last(cat.LAST_FAILURE)} * 1000", "")),
             "dateTimeAsIso", columns=["last success", "last failure"], sort_by="last success")],
        [gf.timeseries("Successful runs (each interval)", gf.prom(
            (runs_ended(cat.LAST_SUCCESS, "$__rate_interval"), "{{pipeline}}")), "short", stacked=True,
            description="Counted from the last-success time, which each successful run sets anew: right for pushed "
                        "jobs (whose counters restart in every process) and scraped ones alike."),
         gf.timeseries("Failed runs (each interval)", gf.prom(
             (runs_ended(cat.LAST_FAILURE, "$__rate_interval"), "{{pipeline}}")), "short", stacked=True),
         gf.table("Runs over the dashboard's range", gf.prom(
             (runs_ended(cat.LAST_SUCCESS, "$__range"), ""), (runs_ended(cat.LAST_FAILURE, "$__range"), "")),
             "short", columns=["successful", "failed"], sort_by="failed")],
        gf.row("Durations, records, freshness"),
        [gf.timeseries("Last run duration", gf.prom((last(cat.LAST_RUN_DURATION), "{{pipeline}}")), "s"),
         gf.timeseries("Last step durations", gf.prom(
             (last(cat.LAST_STEP_DURATION, "pipeline, step"), "{{pipeline}} {{step}}")), "s"),
         gf.timeseries("Data age (newest event time behind now)", gf.prom(
             (f"time() - {last(cat.NEWEST_EVENT, 'pipeline, step')}", "{{pipeline}} {{step}}")), "s",
             description="Freshness: the age of the newest record a step has seen (PipelineDataFreshnessLag).")],
        [gf.timeseries("Records of each step's last run: in, out, rejected", gf.prom(
            (last(cat.LAST_RECORDS, "pipeline, step, kind"), "{{pipeline}} {{step}} {{kind}}")), "short"),
         gf.bargauge("Rejected share of each step's last run", gf.prom((
             f"sum by (pipeline, step) ({cat.LAST_RECORDS.name}{{{P},kind=\"rejected\"}}) / sum by (pipeline, step) "
             f"({cat.LAST_RECORDS.name}{{{P},kind=\"in\"}} > 0)", "{{pipeline}} {{step}}")), "percentunit",
             max_=1, steps=gf.thresholds((None, "green"), (0.05, "red")),
             description="PipelineRejectedRecordsHigh fires above 5 %."),
         gf.bargauge("Rejected records by reason (a pushed job: its last run; a scraped one: since it started)",
                     gf.prom((f"sort_desc({last(cat.REJECTED, 'pipeline, step, reason')})",
                              "{{pipeline}} {{step}} {{reason}}")), "short", steps=gf.BASE)],
        gf.row("Data checks per batch"),
        [gf.timeseries("Features failing each check, per checked batch", gf.prom(
            (last(cat.CHECK_FAILURES, "pipeline, check"), "{{pipeline}} {{check}}")), "short",
            description="The last checked batch's verdict against the reference profile (missing, out of range, "
                        "wrong type, new category, schema, drift): each batch's is kept in the series' history "
                        "and, with its batch id, in its pipeline_batch_check line below."),
         gf.timeseries("Rows of each checked batch", gf.prom((last(cat.CHECKED_ROWS), "{{pipeline}}")), "short")],
        [gf.logs("Batch checks (batch id, failures per check, PSI per feature)",
                 lines(cat.BATCH_CHECK, extra=PIPELINE_LINES),
                 description="Open a line's data_batch_id (log details) for every run and prediction of the batch.")],
        gf.row("Runs and their log lines"),
        [gf.logs("Run ends (run id, batch id, status, error type, failed steps)",
                 lines(cat.RUN_END, extra=PIPELINE_LINES),
                 description="Each line's run_id opens every line of that run (log details; the Loki datasource's "
                             "derived field), as does the Run id box above."),
         gf.logs("Lines of run $run_id (type or paste a run id above)",
                 f'{{app="{gf.LOG_APP}"}} |= "$run_id" | json | run_id="$run_id"')],
        gf.row("Lineage: model version -> training run -> data"),
        [gf.table("Model versions: serving now, pushed by a training job, retired (mlscope_model_info)", gf.prom(
            (VERSION_STATES, "")), "none", hide=["Value"],
            description="state: serving = scraped from a model service now; pushed by a training job = the "
                        "training run's mlscope_model_info on the Pushgateway (job " + PUSH_JOB + "), not serving; "
                        "retired = a newer version replaced it (mlscope_model_retired_info)."),
         gf.table("Trained versions: pipeline, dataset version, fingerprint (mlscope_training_info)", gf.prom(
             (f"max by ({', '.join(cat.TRAINING_INFO_LABELS)}) ({cat.TRAINING_INFO.name}{{{M}}})", "")), "none",
             hide=["Value"],
             description="Bounded: one series per model version a training job produced. Run ids, batch ids, "
                         "hyperparameters and the triggering alert are in the training run's log lines."),
         gf.stat("Serving versions no training run reported", gf.prom(
             f"count(max by (model, model_version, training_data_fingerprint) ({serving.MODEL_INFO.name}{{{SERVED}}}) "
             f"unless on (model, model_version, training_data_fingerprint) {cat.TRAINING_INFO.name}) "
             "or on() vector(0)"), "short",
             description="Versions whose fingerprint matches no mlscope_training_info series: trained outside a "
                         "reported training run, or with other data than it says.")],
        [gf.logs("Training runs (dataset version, data batches, hyperparameters, triggering alert)",
                 lines(cat.TRAINING_END, 'model=~"$model"')),
         gf.timeseries("Retraining and other alert commands run by the receiver (each interval)", gf.prom(
             (f"sum by (alertname, result) (increase({alert_cat.COMMANDS.name}[$__rate_interval])) or on() vector(0)",
              "{{alertname}} {{result}}")), "short",
             description="The feedback loop: a drift or quality alert runs its alert_commands entry (retraining); "
                         "`mlscope lineage MODEL VERSION` prints the chain back to the alert. The receiver creates "
                         "each configured command's counters at 0, so the first run counts; skipped_running: a "
                         "notification that came while the same command still ran for that alert (not started).")],
    ])
