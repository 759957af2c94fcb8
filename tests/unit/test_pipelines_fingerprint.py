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
