"""Data pipelines, batch jobs and training runs: runs, steps, records, freshness, batch checks, pushes."""
from __future__ import annotations

from .spec import MetricSpec, RecordedSpec

# The Pushgateway `job` of every pushed group (the grouping key's first label), unless a job names its own.
PUSH_JOB = "mlscope-pipelines"
PIPELINE = ("pipeline",)
STEP = ("pipeline", "step")
TRAINING = ("pipeline", "model")
#: The ``kind`` of ``mlscope_pipeline_info``: a data pipeline or batch job, or a training job (one that ran a
#: training run); the pipeline dashboard's panels read the first, its lineage panels the second.
PIPELINE_KINDS = ("pipeline", "training")
# The lineage of a model version that Prometheus holds: one series per version trained (bounded by the
# model_version cap). Run ids, data batch ids, hyperparameters and the alert that caused a retraining stay
# in the log lines (docs/pipelines.md, "Lineage").
TRAINING_INFO_LABELS = TRAINING + ("model_version", "dataset_version", "training_data_fingerprint")

# The `event` of every log line a pipeline run writes (mlscope.pipelines): its run, steps, checks and pushes.
RUN_START, RUN_END, STEP_END, BATCH_CHECK, PUSH, INVALID_INPUT = (
    "pipeline_run_start", "pipeline_run_end", "pipeline_step_end", "pipeline_batch_check", "pipeline_push",
    "pipeline_invalid_input")
# A training run whose fingerprint is not the pipeline's reference profile's source_hash (a table against a file).
FINGERPRINT_MISMATCH = "training_fingerprint_mismatch"
TRAINING_START, TRAINING_EPOCH, TRAINING_END = "training_run_start", "training_epoch", "training_run_end"
# The log-line field of a training run started by an alert (its name, fingerprint, status and start), and of
# the data batches its training set was built from.
TRIGGERED_BY, DATA_BATCH_IDS = "triggered_by", "data_batch_ids"
# The checks a batch is held to against its reference profile (the drift domain's issues, schema and drift).
CHECKS = ("missing", "infinite", "out_of_range", "wrong_type", "new_category", "schema", "drift")
#: Every reason ``mlscope_pipeline_invalid_inputs_total`` counts (the value was skipped, the job went on).
INVALID_REASONS = {
    "records_negative": "a record count below zero",
    "records_not_integer": "a record count that is not an integer (a float, NaN, a string)",
    "bytes_negative": "a byte count below zero",
    "bytes_not_integer": "a byte count that is not an integer",
    "duration_not_finite_or_negative": "a step duration given by the caller that is NaN, infinite or negative",
    "event_time_invalid": "an event time that is not a finite number of seconds since the epoch",
    "metric_not_finite": "a training metric that is NaN or infinite (a diverged epoch is logged, not published)",
    "epoch_invalid": "a training epoch number that is not an integer >= 0 (logged, not published)",
    "step_not_ended": "a step still open when its run ended (recorded as failed, error type StepNotEnded)",
    "run_not_ended": "a run still open when the process exited (recorded as failed, error type RunNotEnded)",
}
# The error type of a run ended by SIGTERM inside it, and of one never ended before the process exited.
SIGTERM_ERROR, NOT_ENDED_ERROR = "SIGTERM", "RunNotEnded"

RUNS = MetricSpec(
    "mlscope_pipeline_runs_total", "counter",
    "Pipeline runs that ended, by status (success or failure); a pushed job counts its own run only.",
    PIPELINE + ("status",))
STEPS = MetricSpec(
    "mlscope_pipeline_steps_total", "counter",
    "Pipeline steps that ended, by status (success or failure).",
    STEP + ("status",))
STEP_FAILURES = MetricSpec(
    "mlscope_pipeline_step_failures_total", "counter",
    "Pipeline steps that failed, by exception type (StepNotEnded: still open when the run ended).",
    STEP + ("error_type",))
RECORDS = MetricSpec(
    "mlscope_pipeline_records_total", "counter",
    "Records read (direction in) and written (direction out) by a pipeline step.",
    STEP + ("direction",))
REJECTED = MetricSpec(
    "mlscope_pipeline_records_rejected_total", "counter",
    "Records a pipeline step rejected, by reason (the job's own, bounded by the label cap).",
    STEP + ("reason",))
BYTES = MetricSpec(
    "mlscope_pipeline_bytes_total", "counter",
    "Bytes read (direction in) and written (direction out) by a pipeline step, where the job knows them.",
    STEP + ("direction",), unit="bytes")
LAST_RECORDS = MetricSpec(
    "mlscope_pipeline_last_records", "gauge",
    "Records of the step's last run: kind in (read), out (written), rejected (every reason).",
    STEP + ("kind",), multiprocess_mode="mostrecent")
LAST_SUCCESS = MetricSpec(
    "mlscope_pipeline_last_success_timestamp_seconds", "gauge",
    "When the pipeline's last successful run ended (Unix time): what the stale-pipeline alert reads.",
    PIPELINE, unit="seconds", multiprocess_mode="max")
LAST_FAILURE = MetricSpec(
    "mlscope_pipeline_last_failure_timestamp_seconds", "gauge",
    "When the pipeline's last failed run ended (Unix time): later than the last success means its last run failed.",
    PIPELINE, unit="seconds", multiprocess_mode="max")
LAST_START = MetricSpec(
    "mlscope_pipeline_last_start_timestamp_seconds", "gauge",
    "When the pipeline's last run started (Unix time; pushed at the start): a pipeline that never succeeded is "
    "stale from it, and a start later than the last end is a run still going or killed.",
    PIPELINE, unit="seconds", multiprocess_mode="max")
LAST_ERROR = MetricSpec(
    "mlscope_pipeline_last_error_info", "gauge",
    "Always 1: the error type of the pipeline's last failed run (SIGTERM: terminated inside the run; "
    "RunNotEnded: never ended before the process exited).",
    PIPELINE + ("error_type",), unit="info", multiprocess_mode="mostrecent")
LAST_RUN_DURATION = MetricSpec(
    "mlscope_pipeline_last_run_duration_seconds", "gauge",
    "Duration of the pipeline's last run, whatever its outcome.",
    PIPELINE, unit="seconds", multiprocess_mode="mostrecent")
LAST_STEP_DURATION = MetricSpec(
    "mlscope_pipeline_last_step_duration_seconds", "gauge",
    "Duration of the step's last run, whatever its outcome.",
    STEP, unit="seconds", multiprocess_mode="mostrecent")
NEWEST_EVENT = MetricSpec(
    "mlscope_pipeline_newest_event_timestamp_seconds", "gauge",
    "Event time of the newest record the step has seen (Unix time): the data's age is time() minus it.",
    STEP, unit="seconds", multiprocess_mode="max")
EXPECTED_INTERVAL = MetricSpec(
    "mlscope_pipeline_expected_interval_seconds", "gauge",
    "How often the pipeline is expected to succeed (PipelineMonitor(expected_interval_s=...)): the stale "
    "alert's interval for it.",
    PIPELINE, unit="seconds", multiprocess_mode="max")
MAX_DATA_AGE = MetricSpec(
    "mlscope_pipeline_max_data_age_seconds", "gauge",
    "Age of a step's newest event above which the pipeline's data is late (PipelineMonitor(max_data_age_s=...)): "
    "the freshness alert's threshold for it.",
    PIPELINE, unit="seconds", multiprocess_mode="max")
INFO = MetricSpec(
    "mlscope_pipeline_info", "gauge",
    "Always 1: the pipeline's owner (alerts about the pipeline carry it, for routing) and kind (" +
    ", ".join(PIPELINE_KINDS) + ": a training job once it started a training run).",
    PIPELINE + ("owner", "kind"), unit="info", multiprocess_mode="max")
CHECK_FAILURES = MetricSpec(
    "mlscope_pipeline_batch_check_failures", "gauge",
    "Features of the pipeline's last checked batch that failed a check against the reference profile, by check "
    "(" + ", ".join(CHECKS) + "); 0: the batch passed it.",
    PIPELINE + ("check",), multiprocess_mode="mostrecent")
CHECK_FEATURE_FAILED = MetricSpec(
    "mlscope_pipeline_batch_check_feature_failed", "gauge",
    "Where a feature of the reference profile failed the check on the pipeline's last checked batch, how badly "
    "(its share of rows with the issue; its PSI for drift; 1 for schema), else 0: one series per profile feature "
    "and check, what the batch alert names, worst first.",
    PIPELINE + ("check", "feature"), multiprocess_mode="mostrecent")
CHECKED_ROWS = MetricSpec(
    "mlscope_pipeline_batch_checked_rows", "gauge",
    "Rows of the pipeline's last batch checked against the reference profile.",
    PIPELINE, multiprocess_mode="mostrecent")
INVALID_INPUTS = MetricSpec(
    "mlscope_pipeline_invalid_inputs_total", "counter",
    "Values handed to the pipeline monitor that were rejected (counted and skipped), by reason: "
    + ", ".join(INVALID_REASONS) + ".",
    PIPELINE + ("reason",))
PUSH_FAILURES = MetricSpec(
    "mlscope_pipeline_push_failures_total", "counter",
    "Pushes to the Pushgateway that failed (the job went on), by reason (connection, timeout, http_<status>); "
    "a pushed job's own count never reaches Prometheus (the push failed): see run.exit_code.",
    PIPELINE + ("reason",))

TRAINING_RUNS = MetricSpec(
    "mlscope_training_runs_total", "counter",
    "Training runs that ended, by status (success or failure).",
    TRAINING + ("status",))
TRAINING_LAST_SUCCESS = MetricSpec(
    "mlscope_training_last_success_timestamp_seconds", "gauge",
    "When the model's last successful training run ended (Unix time).",
    TRAINING, unit="seconds", multiprocess_mode="max")
TRAINING_LAST_FAILURE = MetricSpec(
    "mlscope_training_last_failure_timestamp_seconds", "gauge",
    "When the model's last failed training run ended (Unix time): later than the last success means it failed.",
    TRAINING, unit="seconds", multiprocess_mode="max")
TRAINING_LAST_DURATION = MetricSpec(
    "mlscope_training_last_duration_seconds", "gauge",
    "Duration of the model's last training run, whatever its outcome.",
    TRAINING, unit="seconds", multiprocess_mode="mostrecent")
TRAINING_LAST_EPOCH = MetricSpec(
    "mlscope_training_last_epoch", "gauge",
    "The last epoch the training run reported.",
    TRAINING, multiprocess_mode="mostrecent")
TRAINING_EPOCH_METRIC = MetricSpec(
    "mlscope_training_epoch_metric", "gauge",
    "An evaluation metric of the last reported epoch (loss, accuracy...), by metric name.",
    TRAINING + ("metric",), multiprocess_mode="mostrecent")
TRAINING_FINAL_METRIC = MetricSpec(
    "mlscope_training_final_metric", "gauge",
    "A final evaluation metric of the last finished training run, by metric name.",
    TRAINING + ("metric",), multiprocess_mode="mostrecent")
TRAINING_INFO = MetricSpec(
    "mlscope_training_info", "gauge",
    "Always 1: a model version a training run of the pipeline produced, with its dataset version and "
    "training-data fingerprint (the value mlscope_model_info{training_data_fingerprint} of the version carries).",
    TRAINING_INFO_LABELS, unit="info", multiprocess_mode="max")

METRICS = (RUNS, STEPS, STEP_FAILURES, RECORDS, REJECTED, BYTES, LAST_RECORDS, LAST_SUCCESS, LAST_FAILURE,
           LAST_START, LAST_ERROR, LAST_RUN_DURATION, LAST_STEP_DURATION, NEWEST_EVENT, EXPECTED_INTERVAL,
           MAX_DATA_AGE, INFO, CHECK_FAILURES, CHECK_FEATURE_FAILED, CHECKED_ROWS, INVALID_INPUTS, PUSH_FAILURES,
           TRAINING_RUNS, TRAINING_LAST_SUCCESS, TRAINING_LAST_FAILURE, TRAINING_LAST_DURATION, TRAINING_LAST_EPOCH,
           TRAINING_EPOCH_METRIC, TRAINING_FINAL_METRIC, TRAINING_INFO)
RECORDED: tuple[RecordedSpec, ...] = ()
