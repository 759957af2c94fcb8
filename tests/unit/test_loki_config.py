"""Loki's configurations (compose single binary, simple scalable, native) against Loki's own reference.

Loki does not run here: these checks are static, against the keys and path defaults Loki 3.8's configuration
reference documents (tests/support/loki_reference.py names the source).
"""
from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from mlscope.stack import nativeconf
from support import ROOT
from support.compose import compose, volume_at
from support.loki_reference import OBJECT_STORE_PATHS, PATHS, lookup, path_values, undocumented

SINGLE = ROOT / "provisioning" / "loki" / "loki.yml"
SCALABLE = ROOT / "provisioning" / "loki" / "loki-simple-scalable.yml"


def native(state_dir: Path) -> dict:
    return nativeconf.loki_config(state_dir, 3100, 9096)


def test_every_storage_and_working_path_is_set_in_the_native_config(tmp_path: Path) -> None:
    config = native(tmp_path / "state")
    unset = [".".join(path) + f" (default {default})" for path, default in PATHS.items()
             if lookup(config, path) is None]
    assert unset == []


def test_every_path_of_the_native_config_is_under_the_state_dir(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    state = Path(".state")  # relative, as `mlscope up` passes it: Loki would resolve it against its own cwd
    found = dict(path_values(native(state)))
    assert set(PATHS) <= set(found)
    outside = {".".join(k): v for k, v in found.items()
               if not (Path(v).is_absolute() and Path(v).is_relative_to((tmp_path / ".state").resolve()))}
    assert outside == {}
    assert nativeconf.loki_root(state) == (tmp_path / ".state" / "loki").resolve()


def test_relocation_moves_only_the_volume_paths(tmp_path: Path) -> None:
    moved = nativeconf._relocate({"a": "/loki", "b": ["/loki/wal"], "c": "/lokiX/wal", "d": "loki"}, tmp_path)
    assert moved == {"a": str(tmp_path), "b": [str(tmp_path / "wal")], "c": "/lokiX/wal", "d": "loki"}


@pytest.mark.parametrize("source, file, services", [
    (SINGLE, None, ["loki"]),
    (SCALABLE, "docker-compose.loki-scalable.yml", ["loki-read", "loki-write", "loki-backend"]),
])
def test_compose_loki_writes_only_inside_its_volume(source: Path, file: str | None, services: list[str]) -> None:
    config = yaml.safe_load(source.read_text())
    found = dict(path_values(config))
    outside = {".".join(k): v for k, v in found.items() if not (v == "/loki" or v.startswith("/loki/"))}
    assert outside == {}
    # Every local working path is set (a bucket-backed config has no object-store folder).
    required = set(PATHS) - (OBJECT_STORE_PATHS if file else set())
    assert sorted(".".join(p) for p in required if lookup(config, p) is None) == []
    data = yaml.safe_load((ROOT / file).read_text()) if file else compose()
    for service in services:
        assert volume_at(data, service, "/loki"), f"{service} has no volume at /loki"


@pytest.mark.parametrize("name", ["loki.yml", "loki-simple-scalable.yml", "native"])
def test_loki_configs_use_only_documented_keys(name: str, tmp_path: Path) -> None:
    config = native(tmp_path) if name == "native" else yaml.safe_load((SINGLE.parent / name).read_text())
    assert list(undocumented(config)) == []


def test_the_key_check_finds_an_undocumented_key() -> None:
    config = yaml.safe_load(SINGLE.read_text())
    config["storage_config"]["filesystem"]["dir"] = "/loki/x"            # the Thanos spelling, wrong block
    config["common"]["storage"]["filesytem"] = {}
    config["schema_config"]["configs"][0]["index"]["period_"] = "24h"
    assert sorted(undocumented(config)) == ["common.storage.filesytem", "schema_config.configs[0].index.period_",
                                            "storage_config.filesystem.dir"]
