"""Static checks of the compose stack (no container engine here): schema, mounts, pins, ports, names, configs."""
from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import yaml

from mlscope import __version__
from mlscope.cli import parser as cli_parser
from mlscope.stack.nativeconf import linked_uids
from support import ROOT
from support.compose import (
    ALERTMANAGER,
    COMPOSE,
    DATASOURCES,
    PROMETHEUS,
    bind_mount_sources,
    compose,
    host_port,
    listen_port,
    published_ports,
    services,
    unpinned_images,
    validate_compose_spec,
    volume_at,
)


def test_compose_file_validates_against_the_compose_spec(tmp_path: Path) -> None:
    ok = validate_compose_spec(COMPOSE)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    broken = tmp_path / "docker-compose.yml"
    broken.write_text(COMPOSE.read_text().replace("restart: unless-stopped", "restart: [sometimes]", 1))
    assert validate_compose_spec(broken).returncode != 0


def test_every_mounted_file_exists() -> None:
    binds = bind_mount_sources(compose()) + ["./alerting/rules/fast"]  # what MLSCOPE_RULES_SUBDIR=/fast mounts
    missing = [m for m in binds if not (ROOT / m).exists()]
    assert missing == []


def test_every_image_is_pinned() -> None:
    assert unpinned_images(compose()) == []
    broken = compose()
    broken["x-images"]["grafana"] = "grafana/grafana:latest"
    broken["services"]["loki"]["image"] = "grafana/loki:3"
    assert len(unpinned_images(broken)) == 3  # the tag, and the two services not using a pin


def test_published_ports_bind_loopback_by_default() -> None:
    published = published_ports(compose())
    assert published
    for port in published:
        assert port.startswith("127.0.0.1:"), f"{port} is published beyond 127.0.0.1"


def test_healthchecks_restart_policies_and_volumes() -> None:
    for name, service in services().items():
        assert "healthcheck" in service, f"{name} has no health check"
        assert service.get("restart") == "unless-stopped", f"{name} has no restart policy"
    named = set(compose()["volumes"])
    for server, path in (("prometheus", "/prometheus"), ("alertmanager", "/alertmanager"),
                         ("pushgateway", "/pushgateway"),
                         ("loki", "/loki"), ("grafana", "/var/lib/grafana")):
        volumes = volume_at(compose(), server, path)
        assert volumes and volumes <= named, f"{server} keeps {path} outside a named volume"
    vllm = services()["vllm"]  # a model takes minutes to load; a gated one needs the user's token, never a default
    assert vllm["healthcheck"]["start_period"] and vllm["environment"] == ["HF_TOKEN"]
    command = " ".join(services()["prometheus"]["command"])
    assert "--storage.tsdb.retention.time=" in command and "--enable-feature=exemplar-storage" in command
    loki = yaml.safe_load((ROOT / "provisioning" / "loki" / "loki.yml").read_text())
    assert loki["compactor"]["retention_enabled"] and loki["limits_config"]["retention_period"]
    assert loki["schema_config"]["configs"][-1]["schema"] == "v13"
    assert loki["limits_config"]["allow_structured_metadata"] is True


def test_no_default_password_and_secure_grafana() -> None:
    env = services()["grafana"]["environment"]
    for key in ("GF_SECURITY_ADMIN_PASSWORD", "GF_SECURITY_SECRET_KEY"):
        assert re.fullmatch(r"\$\{[A-Z_]+:\?.+\}", env[key]), f"{key} must be required (${{VAR:?...}})"
        variable = env[key][2:].split(":")[0]
        assert re.search(rf"^{variable}=$", (ROOT / ".env.example").read_text(), re.M), f"{variable} undocumented"
    assert env["GF_AUTH_ANONYMOUS_ENABLED"] == "false"
    assert env["GF_USERS_ALLOW_SIGN_UP"] == "false"
    assert env["GF_SNAPSHOTS_EXTERNAL_ENABLED"] == "false"
    assert ".env" in (ROOT / ".gitignore").read_text().split()


def test_prometheus_targets_match_services_and_ports() -> None:
    config = yaml.safe_load(PROMETHEUS.read_text())
    svc = services()
    seen = set()
    for job in config["scrape_configs"]:
        assert job["sample_limit"] > 0 and job["label_limit"] > 0, job["job_name"]
        for static in job.get("static_configs", []):
            for target in static["targets"]:
                host, port = host_port(target)
                if host == "localhost":
                    continue
                assert host in svc, f"{job['job_name']} scrapes unknown service {host}"
                assert port == listen_port(host, svc[host]), f"{target}: {host} listens elsewhere"
                seen.add(host)
        for dns in job.get("dns_sd_configs", []):
            for host in dns["names"]:
                assert host in svc and dns["port"] == listen_port(host, svc[host])
                seen.add(host)
    exporters = {n for n, s in svc.items() if s["image"].startswith("mlscope")}
    assert exporters <= seen, f"not scraped: {exporters - seen}"
    pushed = [job for job in config["scrape_configs"] if job["job_name"] == "pushgateway"]
    assert len(pushed) == 1 and pushed[0]["honor_labels"] is True, "the Pushgateway's job must keep pushed labels"
    assert svc["pushgateway"]["image"] == compose()["x-images"]["pushgateway"] == "prom/pushgateway:v1.11.3"
    am_sd = config["alerting"]["alertmanagers"][0]["dns_sd_configs"][0]
    assert (am_sd["names"], am_sd["port"]) == (["alertmanager"], 9093)


def test_datasources_and_alertmanager_point_at_services() -> None:
    svc = services()
    sources = yaml.safe_load(DATASOURCES.read_text())["datasources"]
    assert {d["uid"] for d in sources} == {"prometheus", "loki", "alertmanager", "tempo"}
    for source in sources:
        host, port = host_port(source["url"])
        assert host in svc and port == listen_port(host, svc[host]), source["url"]
    prometheus = next(d for d in sources if d["uid"] == "prometheus")
    link = prometheus["jsonData"]["exemplarTraceIdDestinations"][0]
    assert link["name"] == "request_id" and link["datasourceUid"] == "loki" and "$${__value.raw}" in link["url"]
    loki = next(d for d in sources if d["uid"] == "loki")
    matcher = loki["jsonData"]["derivedFields"][0]["matcherRegex"]
    assert re.search(matcher, '{"request_id": "abc-1"}').group(1) == "abc-1"
    for source in sources:  # every link opens a datasource that is provisioned
        assert set(linked_uids(source)) <= {d["uid"] for d in sources}, source["name"]
    assert {uid for d in sources for uid in linked_uids(d)} == {"prometheus", "loki", "tempo"}
    webhooks = [w["url"] for r in yaml.safe_load(ALERTMANAGER.read_text())["receivers"]
                for w in r.get("webhook_configs", [])]
    for url in webhooks:
        host, port = host_port(url.rsplit("/", 1)[0])
        assert host in svc and port == listen_port(host, svc[host]), url


def test_mlscope_commands_are_valid_cli_invocations() -> None:
    cli = cli_parser()
    for name, service in services().items():
        if service["image"].startswith("mlscope"):
            args = cli.parse_args(service["command"])
            assert args.addr == "0.0.0.0", f"{name} must listen on the compose network"


def test_stack_files_ship_in_the_wheel_and_init_writes_them(tmp_path: Path) -> None:
    wheel_dir = tmp_path / "wheel"
    # The build backend of pyproject.toml from this environment (the test extra installs it): an isolated build
    # installs setuptools into a fresh environment first, 10-25 s of the suite for the same wheel.
    built = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
                            "-w", str(wheel_dir), str(ROOT)], capture_output=True, text=True, timeout=300)
    assert built.returncode == 0, built.stderr[-2000:]
    import zipfile

    names = zipfile.ZipFile(next(wheel_dir.glob("*.whl"))).namelist()
    for required in ("mlscope/stack/docker-compose.yml", "mlscope/stack/env.example",
                     "mlscope/stack/alerting/alertmanager.yml", "mlscope/stack/alerting/rules/mlscope-serving.yml",
                     "mlscope/stack/provisioning/prometheus/prometheus.yml", "mlscope/stack/standalone.Dockerfile",
                     "mlscope/stack/provisioning/tempo/tempo.yml", "mlscope/stack/docs/drift.md",
                     *(f"mlscope/stack/dashboards/{p.name}" for p in (ROOT / "dashboards").glob("*.py"))):
        assert required in names, f"{required} missing from the wheel"
    zipfile.ZipFile(next(wheel_dir.glob("*.whl"))).extractall(tmp_path / "site")
    standalone_folder_from_the_wheel(tmp_path / "site", tmp_path / "own")
    from mlscope.cli import main

    target = tmp_path / "stack"
    assert main(["init", str(target)]) == 0
    assert (target / "docker-compose.yml").read_text() == COMPOSE.read_text()
    assert (target / ".env.example").exists() and (target / "alerting" / "rules" / "mlscope-serving.yml").exists()
    assert (target / "provisioning" / "tempo" / "tempo.yml").read_text() == (ROOT / "provisioning" / "tempo" /
                                                                            "tempo.yml").read_text()
    assert main(["init", str(target)]) == 1  # no silent overwrite
    assert main(["init", str(target), "--force"]) == 0


def standalone_folder_from_the_wheel(site: Path, folder: Path) -> None:
    """`mlscope init` from the unpacked wheel, outside the repository (its other dependencies: this venv's);
    then the folder's own dashboards and rules build and check in it, and its image's Dockerfile is there."""
    env = {"PYTHONPATH": str(site), "PATH": str(Path(sys.executable).parent), "HOME": str(folder.parent)}

    def cli(*args: str, cwd: Path = folder) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "mlscope.cli", *args], cwd=cwd, env=env, capture_output=True,
                              text=True, timeout=120)

    assert cli("init", str(folder), cwd=folder.parent).returncode == 0
    code = "import mlscope.stack.assets as a; print(a.__file__, a.stack_root())"
    where = subprocess.run([sys.executable, "-c", code], cwd=folder, env=env, capture_output=True, text=True,
                           timeout=60).stdout.split()
    assert where == [str(site / "mlscope" / "stack" / "assets.py"), str(folder)]  # the wheel's code, the folder's files
    assert sorted(p.name for p in (folder / "dashboards").glob("*.py")) == sorted(
        p.name for p in (ROOT / "dashboards").glob("*.py"))
    checked = cli("dashboards", "check")
    sources = len([p for p in (ROOT / "dashboards").glob("*.py") if not p.name.startswith("_")])
    assert checked.returncode == 0 and f"{sources} dashboards" in checked.stdout, checked.stdout + checked.stderr
    assert cli("rules", "check").returncode == 0
    source = folder / "dashboards" / "model_overview.py"  # the folder's own sources are the ones built
    source.write_text(source.read_text().replace('"Requests/s"', '"Requests each second"'))
    stale = cli("dashboards", "check")
    assert stale.returncode == 1
    assert "stale: provisioning/grafana/dashboards/mlscope-model-overview.json" in stale.stderr
    assert cli("dashboards", "build").returncode == 0 and cli("dashboards", "check").returncode == 0
    compose = yaml.safe_load((folder / "docker-compose.yml").read_text())
    assert compose["x-mlscope"]["build"] == "." and (folder / "Dockerfile").exists()
    copied = re.findall(r"^COPY (\S+) ", (folder / "Dockerfile").read_text(), re.MULTILINE)
    assert copied == ["wheels", "alerting", "provisioning"] and all((folder / c).exists() for c in copied)
    assert f'mlscope[stack,gpu,demo,reports]=={__version__}"' in (folder / "Dockerfile").read_text()


def test_the_compose_receiver_retrains_the_demo_in_its_volume() -> None:
    """The feedback loop in compose: the receiver (the mlscope image, with the demo extra's scikit-learn) runs the
    demo's retraining job on its drift and quality alerts, in the demo's volume mounted read-write."""
    from mlscope.demo import retrain
    from mlscope.stack.alertreceiver import load_commands

    data = compose()
    commands = load_commands(ROOT / "alerting" / "alert-receiver.yml")
    demo_volume = volume_at(data, "demo", "/data")
    receiver = data["services"]["alert-receiver"]
    for name in retrain.TRIGGERS:
        args = cli_parser().parse_args(list(commands[name].argv[1:]))
        assert (args.action, args.url, args.pushgateway) == ("retrain", "http://demo:8000", "pushgateway:9091"), name
        assert volume_at(data, "alert-receiver", args.state_dir) == demo_volume, name
        mount = next(v for v in receiver["volumes"] if v.split(":")[1] == args.state_dir)
        assert not mount.endswith(":ro"), mount  # it writes the new version there
    assert "demo" in re.search(r'pip install [^\n]*"\.\[([a-z,]+)\]"', (ROOT / "Dockerfile").read_text())[1]
    import tomllib

    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    assert any(d.startswith("scikit-learn") for d in extras["demo"])
