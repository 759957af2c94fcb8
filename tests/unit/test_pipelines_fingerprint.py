"""The demo's model version carries its training set's fingerprint: the function the build and training runs use."""
from __future__ import annotations

from pathlib import Path

from mlscope.demo.service import MODEL, DemoService
from mlscope.demo.workload import train
from mlscope.pipelines import training_data_fingerprint
from support.helpers import series


def test_the_demo_model_info_carries_the_training_data_fingerprint(tmp_path: Path) -> None:
    demo = DemoService(state_dir=tmp_path, schedule=False, rate=1, host_resources=False, simulated_gpus=0,
                       say=lambda line: None).start()
    try:
        info = {dict(ls)["model"]: dict(ls) for (n, ls), _ in series(demo.registry).items()
                if n == "mlscope_model_info"}
        reference = demo.monitor._drift.profile  # type: ignore[union-attr]
    finally:
        demo.stop()
    trained = train("breast_cancer")
    expected = training_data_fingerprint(trained.x_train, trained.feature_names)
    assert info[MODEL]["training_data_fingerprint"] == expected == reference.source_hash
    assert expected != reference.content_hash  # what the demo used to put there (the profile's own hash)


def test_a_file_and_the_table_read_from_it_are_two_fingerprints_and_a_training_run_says_so(tmp_path: Path) -> None:
    import hashlib
    import logging

    import numpy as np
    from prometheus_client import CollectorRegistry

    from mlscope.drift import build_profile
    from mlscope.pipelines import LOGGER, PipelineMonitor

    rng = np.random.default_rng(5)
    csv = tmp_path / "train.csv"
    np.savetxt(csv, rng.normal(size=(300, 2)), delimiter=",", header="a,b", comments="")
    table = np.genfromtxt(csv, delimiter=",", names=True)
    columns = {"a": table["a"], "b": table["b"]}
    file_fingerprint = "sha256:" + hashlib.sha256(csv.read_bytes()).hexdigest()
    # `mlscope reference build train.csv` hashes the file: the profile's source_hash is the file's.
    profile = build_profile(columns, model="m", model_version="1", source_hash=training_data_fingerprint(csv))
    assert profile.source_hash == file_fingerprint != training_data_fingerprint(columns)
    seen: list[logging.LogRecord] = []
    handler = logging.Handler()
    handler.emit = seen.append  # type: ignore[method-assign]
    logger = logging.getLogger(LOGGER)
    logger.addHandler(handler)
    try:
        monitor = PipelineMonitor("train", registry=CollectorRegistry(), reference=profile)
        with monitor.training_run("m", dataset_version="v1", training_data=columns) as from_table:
            pass
        with monitor.training_run("m", dataset_version="v1", training_data=str(csv)) as from_file:
            pass
    finally:
        logger.removeHandler(handler)
    mismatches = [r for r in seen if getattr(r, "event", "") == "training_fingerprint_mismatch"]
    assert len(mismatches) == 1 and mismatches[0].run_id == from_table.run_id  # type: ignore[attr-defined]
    assert mismatches[0].levelno == logging.WARNING and "the file's path to both" in mismatches[0].getMessage()
    assert from_file.fingerprint == file_fingerprint
