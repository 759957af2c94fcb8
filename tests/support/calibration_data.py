"""Uncalibrated models on scikit-learn's bundled data sets, split into training, labelled reference, production."""
from __future__ import annotations

from functools import cache
from typing import Any

from sklearn import datasets
from sklearn.ensemble import RandomForestClassifier
from sklearn.model_selection import train_test_split
from sklearn.naive_bayes import GaussianNB

MODELS = {"random_forest": lambda: RandomForestClassifier(n_estimators=50, random_state=0), "naive_bayes": GaussianNB}


@cache
def split(dataset: str, model: str, seed: int = 0) -> dict[str, Any]:
    """Model, reference (labels, probabilities) and production (labels, probabilities, predictions)."""
    bunch = getattr(datasets, f"load_{dataset}")()
    x_fit, x_rest, y_fit, y_rest = train_test_split(bunch.data, bunch.target, test_size=2 / 3, random_state=seed,
                                                    stratify=bunch.target)
    x_ref, x_prod, y_ref, y_prod = train_test_split(x_rest, y_rest, test_size=0.5, random_state=seed, stratify=y_rest)
    fitted = MODELS[model]().fit(x_fit, y_fit)
    return {"model": fitted, "x_ref": x_ref, "y_ref": y_ref, "p_ref": fitted.predict_proba(x_ref),
            "x_prod": x_prod, "y_prod": y_prod, "p_prod": fitted.predict_proba(x_prod),
            "predicted": fitted.predict(x_prod)}
