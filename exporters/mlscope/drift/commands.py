"""``mlscope reference build|show``: drift reference profiles from training data."""
from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from .score_calibration import Calibration


def add_reference(p: argparse.ArgumentParser) -> None:
    p.add_argument("action", choices=["build", "show"])
    p.add_argument("path", help="build: training data (.csv, .tsv, .parquet, .npy); show: a profile .json")
    p.add_argument("--model", help="model name (build)")
    p.add_argument("--model-version", help="model version (build)")
    where = p.add_mutually_exclusive_group()
    where.add_argument("--out", help="profile path to write")
    where.add_argument("--next-to", help="model file: the profile is written beside it as <stem>.reference.json")
    p.add_argument("--columns", help="comma-separated columns to read (default: all; names for .npy)")
    p.add_argument("--categorical", help="comma-separated numeric columns to treat as categorical")
    p.add_argument("--output-column", help="column holding the model's output on these rows")
    p.add_argument("--label-column", help="column of true classes, to calibrate estimates (with --proba-columns); "
                   "the rows must be ones the model was not trained on")
    p.add_argument("--proba-columns", help="comma-separated columns of the model's predicted probabilities, one "
                   "per class in predict_proba order (with --label-column)")
    p.add_argument("--classes", help="comma-separated class labels of --proba-columns (default: the sorted labels)")
    for name, default in (("psi-bins", 10), ("fine-bins", 20), ("top-k", 20), ("sample-size", 1000)):
        p.add_argument(f"--{name}", type=int, default=default, help="default: %(default)s")
    p.add_argument("--false-alarm-rate", type=float, default=0.01,
                   help="share of windows without drift allowed above a threshold (default: %(default)s)")
    p.set_defaults(func=reference)


def reference(args: argparse.Namespace) -> int:
    if args.action == "build" and not (args.model and args.model_version and (args.out or args.next_to)):
        print("mlscope: reference build needs --model, --model-version and --out or --next-to", file=sys.stderr)
        return 2
    from . import DriftTracker, ProfileError, ReferenceProfile, build_profile, read_table, training_data_fingerprint
    from .collector import series_count

    try:
        if args.action == "show":
            profile = ReferenceProfile.load(args.path)
        else:
            data, names = read_table(args.path, args.columns.split(",") if args.columns else None)
            output = None
            if args.output_column:
                if args.output_column not in names:
                    raise ProfileError(f"output column {args.output_column!r} is not in {args.path}")
                output = _column(data, args.output_column)
            labels, proba = _labelled(args, data, names)
            outside = {args.output_column, args.label_column, *(args.proba_columns or "").split(",")}
            data = {n: data[n] for n in names if n not in outside}
            profile = build_profile(
                data, model=args.model, model_version=args.model_version, output=output, labels=labels, proba=proba,
                classes=args.classes.split(",") if args.classes else None,
                categorical=args.categorical.split(",") if args.categorical else (),
                source_hash=training_data_fingerprint(args.path),
                psi_bins=args.psi_bins, fine_bins=args.fine_bins, top_k=args.top_k,
                sample_size=args.sample_size, false_alarm_rate=args.false_alarm_rate)
            out = Path(args.out) if args.out else Path(args.next_to).with_suffix(".reference.json")
            profile.save(out)
            print(f"wrote {out}")
            window, rate = int(profile.settings["window_values"]), float(profile.settings["false_alarm_rate"])
            chunks = math.ceil(1 / rate)
            if not profile.settings["leave_one_chunk_out"]:
                print(f"mlscope: note: {profile.rows:,} rows are fewer than the {window * chunks:,} that "
                      f"leave-one-chunk-out needs ({chunks} chunks of {window} rows for a {rate:.0%} quantile), "
                      f"so the drift thresholds come from simulated windows alone: they keep their {rate:.0%} "
                      "false-alarm rate for independent rows, but cannot see how the data vary over time; build "
                      "from more rows, in time order, if you have them",
                      file=sys.stderr)
    except ProfileError as exc:
        print(f"mlscope: {exc}", file=sys.stderr)
        return 1
    series = series_count(DriftTracker(profile, profile.model, profile.model_version, lambda *_: None))
    kinds = ", ".join(f"{n} ({k})" for n, k in profile.schema.items())
    print(f"{profile.model} {profile.model_version}: {profile.rows:,} rows, {len(profile.features)} features: {kinds}"
          f"{'; output profiled' if profile.output else ''}\ncontent hash {profile.content_hash}, source "
          f"{profile.source_hash}, created {profile.created_at}; {series:,} series per model version")
    settings = profile.settings
    print(f"thresholds: at most {settings['false_alarm_rate']:.0%} of windows of at least {settings['window_values']} "
          f"values without drift above them ({'with' if settings['leave_one_chunk_out'] else 'without'} "
          "leave-one-chunk-out)")
    for line in _feature_lines(profile):
        print(line)
    if profile.calibration is not None:
        print(_calibration_line(profile.calibration))
    return 0


def _feature_lines(profile: Any) -> list[str]:
    """One aligned row per feature (and the output): kind, missing share, range or categories, thresholds."""
    rows = [("feature", "kind", "missing", "reference", "thresholds (alerts: PSI at least the rules' floor)")]
    for feature in (*profile.features, *([profile.output] if profile.output else [])):
        if feature.kind == "numeric":
            seen = f"{feature.min:.4g} .. {feature.max:.4g}" if feature.min is not None else "no values"
        else:
            seen = f"{len(feature.categories)} top categories"
        limits = " ".join(f"{k}={v:.3f}" for k, v in sorted(feature.thresholds.items())) or "none calibrated"
        rows.append((feature.name, feature.kind, f"{feature.missing_ratio:.1%}", seen, limits))
    widths = [max(len(row[i]) for row in rows) for i in range(4)]
    return ["  ".join(cell.ljust(w) for cell, w in zip(row[:4], widths, strict=True)) + "  " + row[4]
            for row in rows]


def _column(data: Any, name: str) -> np.ndarray:
    values = data[name]
    return np.asarray(values.to_numpy() if hasattr(values, "to_numpy") else values)


def _labelled(args: argparse.Namespace, data: Any, names: list[str]) -> tuple[Any, Any]:
    """(labels, probabilities) of ``--label-column`` and ``--proba-columns``, or (None, None)."""
    from .profile import ProfileError

    if not args.label_column and not args.proba_columns:
        return None, None
    wanted = [args.label_column or "", *(args.proba_columns or "").split(",")]
    missing = [c for c in wanted if c not in names]
    if not args.label_column or not args.proba_columns or missing:
        raise ProfileError(f"calibrating needs --label-column and --proba-columns naming columns of {args.path}"
                           f"{f'; not found: {missing}' if missing else ''}")
    return _column(data, wanted[0]), np.column_stack([_column(data, c).astype(np.float64) for c in wanted[1:]])


def _calibration_line(c: Calibration) -> str:
    if c.refused is not None:
        return f"estimates refused ({c.refused}): {c.detail}"
    return (f"estimates calibrated ({c.method}) on {c.rows:,} labelled predictions: held-out calibration error "
            f"{c.error_raw:.3f} raw, {c.error_calibrated:.3f} calibrated")
