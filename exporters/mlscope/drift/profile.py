"""Versioned reference profiles: the baseline drift is measured against, stored as readable JSON.

A profile holds, per numeric feature, the quantile bin edges (a coarse set for
PSI/JS/chi-square and a finer one for KS), reference proportions, min/max,
mean/std, missing rate, a bounded sample (the reference's quantiles, for the exact
in-process KS and Wasserstein) and calibrated thresholds; per categorical feature the top-K
categories with their shares plus an ``__other__`` share. The model output is
profiled the same way under the reserved name ``__prediction__``. Built with the model's
labelled predictions, it also carries the probability calibration quality estimates use
(:class:`mlscope.drift.score_calibration.Calibration`, under ``calibration`` at the end). The file
carries a content hash (checked on load), the model name and version, the
source data's hash and its creation time.

The format is versioned (:data:`FORMAT`): what a saved profile means changes with
its version, so an older one is refused with the command that rebuilds it.
"""
from __future__ import annotations

import hashlib
import itertools
import json
import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Literal

import numpy as np

from .score_calibration import Calibration, CalibrationError

FORMAT_NAME = "mlscope-reference-profile"
FORMAT_VERSION = 2
FORMAT = f"{FORMAT_NAME}/{FORMAT_VERSION}"
# What each version changed, for the message that refuses an older profile.
CHANGES = {
    2: "edges between the values of integer-valued features, leave-one-chunk-out thresholds with a stated "
       "false-alarm rate, the exact snapshot's sample taken at the reference's quantiles, and room for "
       "the CBPE calibration",
}
NUMERIC: Literal["numeric"] = "numeric"
CATEGORICAL: Literal["categorical"] = "categorical"
Kind = Literal["numeric", "categorical"]
OTHER = "__other__"
PREDICTION = "__prediction__"
RESERVED_PREFIX = "__"


class ProfileError(ValueError):
    """A reference profile is malformed, corrupted, or cannot be used as asked."""


class ProfileFormatError(ProfileError):
    """A saved profile has an older (or unknown) format version: it must be rebuilt."""


class ProfileMismatchError(ProfileError):
    """The profile's schema or model does not match what the monitor expects."""


class SeriesBudgetError(ProfileError):
    """Tracking the profile would publish more series per model version than the budget allows."""


@dataclass(frozen=True)
class NumericFeature:
    """Reference of one numeric feature. Bins are ``(-inf, e0], (e0, e1], ..., (e_last, +inf)``.

    ``discrete``: every reference value was an integer, so the edges lie half-way between integers
    (``k + 0.5``) and no value falls on an edge: right-closed bins count as left-closed ones would.
    ``sample``: the reference's quantiles at ``(i + 0.5) / size`` (or every value, when fewer).
    """

    name: str
    psi_edges: tuple[float, ...]
    fine_edges: tuple[float, ...]
    reference_bins: tuple[float, ...]   # share of present values in each PSI bin
    reference_cdf: tuple[float, ...]    # share of present values <= each fine edge
    min: float | None
    max: float | None
    mean: float | None
    std: float | None
    missing_ratio: float
    rows: int
    sample: tuple[float, ...] = ()
    thresholds: dict[str, float] = field(default_factory=dict)
    discrete: bool = False
    kind: ClassVar[Kind] = NUMERIC

    def __post_init__(self) -> None:
        _check_name(self.name)
        for edges, label in ((self.psi_edges, "psi_edges"), (self.fine_edges, "fine_edges")):
            if any(not math.isfinite(e) for e in edges) or any(a >= b for a, b in itertools.pairwise(edges)):
                raise ProfileError(f"feature {self.name!r}: {label} must be finite and strictly increasing")
        if not set(self.psi_edges) <= set(self.fine_edges):
            raise ProfileError(f"feature {self.name!r}: every PSI edge must also be a fine edge")
        if len(self.reference_bins) != len(self.psi_edges) + 1 or len(self.reference_cdf) != len(self.fine_edges):
            raise ProfileError(f"feature {self.name!r}: reference shares do not match the edges")

    def fine_to_psi(self) -> np.ndarray:
        """PSI bin of each fine bin (fine bins nest in PSI bins because PSI edges are fine edges)."""
        fine = np.asarray(self.fine_edges + (math.inf,))
        return np.searchsorted(np.asarray(self.psi_edges), fine, side="left")

    @property
    def present(self) -> int:
        """Values of the reference that were present (what the sample stands for)."""
        return round(self.rows * (1.0 - self.missing_ratio))


@dataclass(frozen=True)
class CategoricalFeature:
    """Reference of one categorical feature: top-K categories, then one ``__other__`` bin."""

    name: str
    categories: tuple[str, ...]
    reference_bins: tuple[float, ...]   # share of present values per category, then __other__
    known: tuple[str, ...] | None       # every category seen, or None when there were too many to list
    missing_ratio: float
    rows: int
    thresholds: dict[str, float] = field(default_factory=dict)
    kind: ClassVar[Kind] = CATEGORICAL

    def __post_init__(self) -> None:
        _check_name(self.name)
        if len(set(self.categories)) != len(self.categories) or OTHER in self.categories:
            raise ProfileError(f"feature {self.name!r}: categories must be distinct and not {OTHER!r}")
        if len(self.reference_bins) != len(self.categories) + 1:
            raise ProfileError(f"feature {self.name!r}: reference shares do not match the categories")

    @property
    def bins(self) -> tuple[str, ...]:
        return self.categories + (OTHER,)

    @property
    def present(self) -> int:
        """Values of the reference that were present (the count the reference shares are shares of)."""
        return round(self.rows * (1.0 - self.missing_ratio))


Feature = NumericFeature | CategoricalFeature


def _check_name(name: str) -> None:
    if not isinstance(name, str) or not name or len(name) > 128:
        raise ProfileError(f"feature names are non-empty strings of at most 128 characters, got {name!r:.80}")


@dataclass(frozen=True)
class ReferenceProfile:
    """The reference of one model version. ``output`` profiles the model's output (or None)."""

    model: str
    model_version: str
    features: tuple[Feature, ...]
    output: Feature | None
    rows: int
    created_at: str
    source_hash: str
    settings: dict[str, Any] = field(default_factory=dict)
    # Probability calibration fitted on the reference's labelled predictions (for estimates), or None.
    calibration: Calibration | None = None
    # Mean absolute attribution per feature on the reference rows (build_profile(attributions=)), or None.
    attributions: dict[str, float] | None = None

    def __post_init__(self) -> None:
        names = [f.name for f in self.features]
        if self.attributions is not None:
            unknown = sorted(set(self.attributions) - set(names))
            bad = [k for k, v in self.attributions.items() if not (isinstance(v, (int, float)) and 0 <= v < math.inf)]
            if unknown or bad:
                raise ProfileError(f"reference attributions: features not in the profile {unknown[:5]}, "
                                   f"values that are not finite numbers >= 0 {bad[:5]}")
        if len(set(names)) != len(names):
            raise ProfileError("feature names in a profile must be distinct")
        reserved = [n for n in names if n.startswith(RESERVED_PREFIX)]
        if reserved:
            raise ProfileError(f"feature names starting with {RESERVED_PREFIX!r} are reserved: {reserved}")
        if self.output is not None and self.output.name != PREDICTION:
            raise ProfileError(f"the output profile must be named {PREDICTION!r}")

    # -- schema ---------------------------------------------------------------------------------

    @property
    def schema(self) -> dict[str, Kind]:
        """Feature name -> ``"numeric"`` or ``"categorical"``, in column order."""
        return {f.name: f.kind for f in self.features}

    def check_schema(self, expected: Mapping[str, str]) -> None:
        """Raise :class:`ProfileMismatchError` listing every difference from ``expected`` (name -> kind)."""
        problems = []
        missing = [n for n in expected if n not in self.schema]
        extra = [n for n in self.schema if n not in expected]
        changed = [f"{n} ({self.schema[n]} in the profile, {k} expected)"
                   for n, k in expected.items() if n in self.schema and self.schema[n] != k]
        if missing:
            problems.append(f"missing from the profile: {', '.join(missing)}")
        if extra:
            problems.append(f"not expected by the model: {', '.join(extra)}")
        if changed:
            problems.append(f"type changed: {', '.join(changed)}")
        if problems:
            raise ProfileMismatchError(
                f"reference profile of {self.model} {self.model_version} ({self.content_hash[:19]}) does not match "
                f"the model's schema: {'; '.join(problems)}. Rebuild it with `mlscope reference build` from the "
                "model's current training data, or pass the schema the model really uses.")

    # -- serialisation --------------------------------------------------------------------------

    def _body(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "model": self.model,
            "model_version": self.model_version,
            "created_at": self.created_at,
            "source_hash": self.source_hash,
            "rows": self.rows,
            "settings": dict(self.settings),
            "features": [_feature_dict(f) for f in self.features],
            "output": None if self.output is None else _feature_dict(self.output),
            # Only when present: profiles without one keep their content hash.
            **({} if self.calibration is None else {"calibration": self.calibration.to_dict()}),
            **({} if self.attributions is None else {"attributions": dict(self.attributions)}),
        }

    @property
    def content_hash(self) -> str:
        """``sha256:<hex>`` of the canonical JSON of everything but the hash itself."""
        canonical = json.dumps(self._body(), sort_keys=True, separators=(",", ":"), allow_nan=False)
        return "sha256:" + hashlib.sha256(canonical.encode()).hexdigest()

    def to_dict(self) -> dict[str, Any]:
        return {"content_hash": self.content_hash, **self._body()}

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=1, allow_nan=False) + "\n"

    def save(self, path: str | Path) -> Path:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(self.to_json())
        return path

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ReferenceProfile:
        """Rebuild a profile; the stored content hash must match (edited or truncated files are refused)."""
        check_format(data)
        try:
            profile = cls(
                model=str(data["model"]), model_version=str(data["model_version"]),
                features=tuple(_feature_from(f) for f in data["features"]),
                output=None if data.get("output") is None else _feature_from(data["output"]),
                rows=int(data["rows"]), created_at=str(data["created_at"]),
                source_hash=str(data["source_hash"]), settings=dict(data.get("settings") or {}),
                calibration=None if data.get("calibration") is None else Calibration.from_dict(data["calibration"]),
                attributions=None if data.get("attributions") is None else {
                    str(k): float(v) for k, v in dict(data["attributions"]).items()})
        except (KeyError, TypeError, ValueError) as exc:
            if isinstance(exc, ProfileError):
                raise
            if isinstance(exc, CalibrationError):
                raise ProfileError(f"reference profile: {exc}") from exc
            raise ProfileError(f"malformed reference profile: {type(exc).__name__}: {exc}") from exc
        stored = data.get("content_hash")
        if stored != profile.content_hash:
            raise ProfileError(f"reference profile content hash mismatch (stored {stored}, computed "
                               f"{profile.content_hash}): the file was edited or damaged; rebuild it with "
                               f"`mlscope reference build TRAINING_DATA --model {profile.model} --model-version "
                               f"{profile.model_version} --out PROFILE.json`")
        return profile

    @classmethod
    def load(cls, path: str | Path) -> ReferenceProfile:
        try:
            data = json.loads(Path(path).read_text())
        except (OSError, json.JSONDecodeError) as exc:
            raise ProfileError(f"cannot read reference profile {path}: {exc}") from exc
        try:
            return cls.from_dict(data)
        except ProfileFormatError:
            raise
        except ProfileError as exc:
            raise ProfileError(f"{path}: {exc}") from exc


def check_format(data: object) -> None:
    """Raise :class:`ProfileFormatError` unless ``data`` is a profile of the current format version."""
    if not isinstance(data, Mapping):
        raise ProfileError(f"not an mlscope reference profile (expected a JSON object of format {FORMAT!r})")
    found = data.get("format")
    if found == FORMAT:
        return
    name, _, version = str(found).partition("/")
    if found is not None and name != FORMAT_NAME:
        raise ProfileError(f"not an mlscope reference profile (format {found!r}, expected {FORMAT!r})")
    if found is None and not {"features", "model"} <= set(data):
        raise ProfileError(f"not an mlscope reference profile (no format; expected {FORMAT!r})")
    what = "has no format version" if found is None else f"has format {found!r}"
    newer = [v for v in CHANGES if not version.isdigit() or int(version) < v]
    changed = "; ".join(f"version {v}: {CHANGES[v]}" for v in newer) or "a newer mlscope wrote it"
    model = f"--model {data.get('model', 'NAME')} --model-version {data.get('model_version', 'VERSION')}"
    raise ProfileFormatError(
        f"reference profile {what}; this mlscope reads {FORMAT!r} only ({changed}). Its bins and thresholds "
        f"mean something else now: rebuild it from the training data with `mlscope reference build "
        f"TRAINING_DATA {model} --out PROFILE.json` (or `build_profile(...)` in Python)")


def _feature_dict(feature: Feature) -> dict[str, Any]:
    return {"kind": feature.kind, **asdict(feature)}


def _feature_from(data: Mapping[str, Any]) -> Feature:
    data = dict(data)
    kind = data.pop("kind", None)
    if kind == NUMERIC:
        for key in ("psi_edges", "fine_edges", "reference_bins", "reference_cdf", "sample"):
            data[key] = tuple(float(v) for v in data.get(key, ()))
        return NumericFeature(**data)
    if kind == CATEGORICAL:
        data["categories"] = tuple(str(c) for c in data["categories"])
        data["reference_bins"] = tuple(float(v) for v in data["reference_bins"])
        data["known"] = None if data.get("known") is None else tuple(str(c) for c in data["known"])
        return CategoricalFeature(**data)
    raise ProfileError(f"feature {data.get('name')!r}: unknown kind {kind!r}")


def load_profile(profile: ReferenceProfile | str | Path) -> ReferenceProfile:
    """A profile object, or one loaded from a JSON path."""
    return profile if isinstance(profile, ReferenceProfile) else ReferenceProfile.load(profile)
