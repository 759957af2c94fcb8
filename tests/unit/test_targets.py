"""Scrape targets of your own services: `[NAME=]HOST:PORT` parsing, the targets folder, `mlscope targets`,
and a service registering itself through `start_metrics_server` with `$MLSCOPE_TARGETS_DIR`."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import requests
import yaml

from mlscope.cli import main
from mlscope.stack.modelservers import model_server_relabelling
from mlscope.stack.native import NativeStack
from mlscope.stack.targets import TargetsFolder, compose_folder, native_folder
from mlscope.targets import Target, TargetError, parse, parse_server, server_target
from support import ROOT


@pytest.mark.parametrize(("spec", "expected"), [
    ("my-model=127.0.0.1:8001", Target("my-model", "127.0.0.1", 8001)),
    ("127.0.0.1:8001", Target("127.0.0.1-8001", "127.0.0.1", 8001)),
    ("svc_a.v2=model_a:65535", Target("svc_a.v2", "model_a", 65535)),
    ("v6=[::1]:9000", Target("v6", "::1", 9000)),
    ("[::1]:8005", Target("ipv6-1-8005", "::1", 8005)),            # the name keeps the address's digits
    ("[fe80::2:1]:80", Target("ipv6-fe80-2-1-80", "fe80::2:1", 80)),
    ("host.docker.internal:1", Target("host.docker.internal-1", "host.docker.internal", 1)),
])
def test_specs_parse(spec: str, expected: Target) -> None:
    assert parse(spec) == expected


@pytest.mark.parametrize(("spec", "says"), [
    ("127.0.0.1", "expected [NAME=]HOST:PORT"), ("a=:80", "expected [NAME=]HOST:PORT"),
    ("a=h:0", "outside 1-65535"), ("a=h:65536", "outside 1-65535"), ("a=h:http", "not a number"),
    ("a b=h:80", "target name 'a b'"), ("../x=h:80", "target name '../x'"), ("=h:80", "target name ''"),
    ("a=bad host:80", "neither an IP address nor a host name"), ("a=::1:80", "IPv6 address in brackets"),
    ("a=h:80/metrics", "not a number"), (f"{'n' * 64}=h:80", "1-63"),
])
def test_bad_specs_are_refused_with_the_reason(spec: str, says: str) -> None:
    with pytest.raises(TargetError) as raised:
        parse(spec)
    assert says in str(raised.value)


def test_a_file_is_a_file_sd_group_that_yaml_reads(tmp_path: Path) -> None:
    folder = TargetsFolder(tmp_path)
    path, changed = folder.add(parse("v6=[::1]:9000"))
    assert changed and path == tmp_path / "v6.yml"
    assert yaml.safe_load(path.read_text()) == [{"targets": ["[::1]:9000"], "labels": {"service": "v6"}}]
    assert not list(tmp_path.glob(".*"))  # no temporary file left behind


def test_folder_refuses_duplicates_and_lists_hand_written_files(tmp_path: Path) -> None:
    folder = TargetsFolder(tmp_path)
    folder.add(parse("a=127.0.0.1:8001"))
    assert folder.add(parse("a=127.0.0.1:8001")) == (tmp_path / "a.yml", False)  # again: idempotent
    with pytest.raises(TargetError, match="already a target, as 'a'"):
        folder.add(parse("b=127.0.0.1:8001"))
    with pytest.raises(TargetError, match="use --replace"):
        folder.add(parse("a=127.0.0.1:8002"))
    folder.add(parse("a=127.0.0.1:8002"), replace=True)
    (tmp_path / "by-hand.yml").write_text('- targets: ["svc:8000", "svc:8001"]\n')
    (tmp_path / "README.md").write_text("not a target file")
    assert [(t.name, t.address) for t in folder.list()] == [
        ("a", "127.0.0.1:8002"), ("by-hand", "svc:8000"), ("by-hand", "svc:8001")]
    with pytest.raises(TargetError, match="as 'by-hand'"):
        folder.add(parse("c=svc:8001"))
    (tmp_path / "broken.yml").write_text("targets: [")
    with pytest.raises(TargetError, match="broken.yml: not a file_sd target list"):
        folder.list()


def test_targets_command_native_and_compose(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    state = tmp_path / "state"
    assert main(["targets", "add", "--state-dir", str(state), "a=127.0.0.1:8001", "127.0.0.1:8002"]) == 0
    assert sorted(p.name for p in native_folder(state).iterdir()) == ["127.0.0.1-8002.yml", "a.yml"]
    assert main(["targets", "list", "--state-dir", str(state)]) == 0
    listed = capsys.readouterr().out
    assert "a " in listed and "127.0.0.1:8002" in listed
    assert main(["targets", "remove", "--state-dir", str(state), "nope"]) == 1
    assert "no target 'nope'" in capsys.readouterr().err
    assert main(["targets", "remove", "--state-dir", str(state), "a"]) == 0
    assert [p.name for p in native_folder(state).iterdir()] == ["127.0.0.1-8002.yml"]

    assert main(["targets", "add", "--stack-dir", str(tmp_path / "nowhere"), "a=svc:8000"]) == 1
    assert "not a compose stack folder" in capsys.readouterr().err
    assert main(["init", str(tmp_path / "stack")]) == 0
    assert main(["targets", "add", "--stack-dir", str(tmp_path / "stack"), "m=my-model:8000"]) == 0
    written = compose_folder(tmp_path / "stack") / "m.yml"
    # The compose Prometheus reads exactly this folder's *.yml (mounted at /etc/prometheus/targets/).
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    assert "./provisioning/prometheus/targets:/etc/prometheus/targets:ro" in compose["services"]["prometheus"][
        "volumes"]
    jobs = yaml.safe_load((tmp_path / "stack" / "provisioning" / "prometheus" / "prometheus.yml").read_text())
    files = next(j for j in jobs["scrape_configs"] if j["job_name"] == "model-services")["file_sd_configs"][0]
    assert files["files"] == ["/etc/prometheus/targets/*.yml"] and written.exists()
    with pytest.raises(SystemExit):
        main(["targets", "add", "--state-dir", str(state), "bad:port:x"])


SERVICE = textwrap.dedent("""
    import sys
    from mlscope.exposition import start_metrics_server
    start_metrics_server(0)
    print("ready", flush=True)
    sys.stdin.read()  # until the test closes stdin: then a clean exit
""")


def _service(env: dict[str, str]) -> subprocess.Popen[str]:
    proc = subprocess.Popen([sys.executable, "-c", SERVICE], env={**os.environ, **env}, text=True,
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert proc.stdout is not None and proc.stdout.readline() == "ready\n", proc.stderr
    return proc


def test_a_service_registers_itself_and_deregisters_at_a_clean_exit(tmp_path: Path) -> None:
    folder = tmp_path / "targets"
    proc = _service({"MLSCOPE_TARGETS_DIR": str(folder), "MLSCOPE_TARGET_NAME": "my-model"})
    (listed,) = TargetsFolder(folder).list()
    assert listed.name == "my-model" and listed.address.startswith("127.0.0.1:")
    assert requests.get(f"http://{listed.address}/metrics", timeout=5).status_code == 200
    proc.communicate("", timeout=30)
    assert proc.returncode == 0 and not (folder / "my-model.yml").exists()

    crashed = _service({"MLSCOPE_TARGETS_DIR": str(folder)})  # default name from its address
    (listed,) = TargetsFolder(folder).list()
    crashed.send_signal(signal.SIGKILL)  # a crash: the target stays, so MLScopeTargetDown tells
    crashed.wait(10)
    assert [t.name for t in TargetsFolder(folder).list()] == [listed.name]


OWN_SIGTERM_HANDLER = """
import signal, sys
signal.signal(signal.SIGTERM, lambda *_: (print("own handler", flush=True), sys.exit(3)))
"""


@pytest.mark.parametrize(("own_handler", "exit_code"), [(False, -signal.SIGTERM), (True, 3)])
def test_sigterm_deregisters_and_then_does_what_it_did(tmp_path: Path, own_handler: bool, exit_code: int) -> None:
    """SIGTERM (kill, systemd, docker stop) removed nothing: Python dies of it without `atexit`, and the
    target left behind fired a false MLScopeTargetDown. The process's own handler still runs after."""
    folder = tmp_path / "targets"
    env = {"MLSCOPE_TARGETS_DIR": str(folder), "MLSCOPE_TARGET_NAME": "svc"}
    code = (OWN_SIGTERM_HANDLER if own_handler else "") + SERVICE
    proc = subprocess.Popen([sys.executable, "-c", code], env={**os.environ, **env}, text=True,
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert proc.stdout is not None and proc.stdout.readline() == "ready\n", proc.stderr
    assert (folder / "svc.yml").exists()
    proc.send_signal(signal.SIGTERM)
    out, _ = proc.communicate(timeout=30)
    assert proc.returncode == exit_code and not (folder / "svc.yml").exists()
    assert ("own handler" in out) is own_handler


def test_remove_by_address_and_list_says_what_it_found(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    state = tmp_path / "state"
    assert main(["targets", "list", "--state-dir", str(state)]) == 1  # no such stack: not a silent success
    assert "no stack state in" in capsys.readouterr().err
    state.mkdir()
    assert main(["targets", "list", "--state-dir", str(state)]) == 0
    assert "no targets in" in capsys.readouterr().out
    assert main(["targets", "add", "--state-dir", str(state), "[::1]:8005",
                 "a-long-name=host.docker.internal:8001"]) == 0
    capsys.readouterr()
    assert main(["targets", "list", "--state-dir", str(state)]) == 0
    rows = [line.split() for line in capsys.readouterr().out.splitlines()]
    assert [row[:2] for row in rows] == [["a-long-name", "host.docker.internal:8001"], ["ipv6-1-8005", "[::1]:8005"]]
    assert main(["targets", "remove", "--state-dir", str(state), "[::1]:8005"]) == 0
    assert [t.name for t in TargetsFolder(native_folder(state)).list()] == ["a-long-name"]


def test_a_bad_registration_setting_is_logged_and_the_service_runs_on(tmp_path: Path) -> None:
    proc = _service({"MLSCOPE_TARGETS_DIR": str(tmp_path), "MLSCOPE_TARGET_NAME": "no/slash"})
    _, err = proc.communicate("", timeout=30)
    assert proc.returncode == 0 and list(tmp_path.iterdir()) == []
    assert "not registered in MLSCOPE_TARGETS_DIR" in err and "target name 'no/slash'" in err



def test_up_help_names_scrape_and_reads_right(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["up", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "--scrape [NAME=]HOST:PORT" in text
    assert "rule profile (default: fast): `fast` scrapes every second" in text and "default (production" not in text


def test_down_outside_a_stack_folder_says_so(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`mlscope down` from the wrong folder printed "nothing running" and exited 0: the stack ran on."""
    assert main(["down", "--state-dir", str(tmp_path / "nowhere")]) == 1
    assert "no stack state in" in capsys.readouterr().err
    assert main(["down", "--state-dir", str(tmp_path)]) == 0  # a stack folder whose stack is stopped
    assert "already stopped" in capsys.readouterr().out


def test_model_server_targets_carry_their_kind_and_mapping(tmp_path: Path,
                                                           capsys: pytest.CaptureFixture[str]) -> None:
    state = tmp_path / "state"
    assert main(["targets", "add", "--state-dir", str(state), "--kind", "vllm", "--model", "chat",
                 "--model-version", "2", "chat=127.0.0.1:8000"]) == 0
    group = yaml.safe_load((native_folder(state) / "chat.yml").read_text())[0]
    assert group["labels"] == {"service": "chat", "server": "vllm", "model": "chat", "model_version": "2"}
    assert main(["targets", "add", "--state-dir", str(state), "--model", "x", "y=127.0.0.1:8001"]) == 1
    assert "give --kind too" in capsys.readouterr().err
    assert parse_server("sglang=10.0.0.1:30000") == Target("sglang-10.0.0.1-30000", "10.0.0.1", 30000,
                                                           (("server", "sglang"),))
    for bad, says in (("tgi=h:1", "choose one of vllm, sglang"), ("h:1", "expected KIND=HOST:PORT")):
        with pytest.raises(TargetError, match=says):
            parse_server(bad)
    for half in ({"model_version": "2"}, {"model": "chat"}):  # half a mapping: model_version="unversioned"
        with pytest.raises(TargetError, match="needs both --model and --model-version"):
            server_target(parse("a=h:1"), "vllm", **half)
    assert main(["targets", "add", "--state-dir", str(state), "--kind", "vllm", "--model", "chat",
                 "x=127.0.0.1:8002"]) == 1
    assert "needs both" in capsys.readouterr().err and not (native_folder(state) / "x.yml").exists()


def test_the_documented_server_flow_reruns(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """docs/model-servers.md: `up --scrape-server`, then map the server (`targets add --replace` takes its address
    over), then the same `up` again: kept as mapped, with a line saying so; `targets list` shows kind and mapping."""
    state = tmp_path / "state"
    NativeStack(state, scrape=[parse_server("vllm=127.0.0.1:18010")])._add_targets()
    mapped = ["targets", "add", "--state-dir", str(state), "--kind", "vllm", "--model", "chat", "--model-version",
              "2", "chat-vllm=127.0.0.1:18010"]
    assert main(mapped) == 1 and "use --replace" in capsys.readouterr().err
    assert main([*mapped, "--replace"]) == 0
    folder = TargetsFolder(native_folder(state))
    assert [(t.name, t.describe()) for t in folder.list()] == [("chat-vllm", "vllm: chat 2")]
    capsys.readouterr()
    NativeStack(state, scrape=[parse_server("vllm=127.0.0.1:18010")])._add_targets()
    assert "127.0.0.1:18010 is already a target, as 'chat-vllm' (vllm: chat 2): kept" in capsys.readouterr().out
    assert [(t.name, t.describe()) for t in folder.list()] == [("chat-vllm", "vllm: chat 2")]
    with pytest.raises(TargetError, match="already a target"):  # another kind at that address is still refused
        NativeStack(state, scrape=[parse_server("sglang=127.0.0.1:18010")])._add_targets()
    (folder.path / "hand.yml").write_text('[{"targets": ["127.0.0.1:18013", "127.0.0.1:18014"]}]')
    with pytest.raises(TargetError, match="holds other targets"):  # --replace never drops a file's other targets
        folder.add(parse("new=127.0.0.1:18013"), replace=True)
    (folder.path / "hand.yml").unlink()
    assert main(["targets", "add", "--state-dir", str(state), "svc=127.0.0.1:18011"]) == 0
    assert main(["targets", "add", "--state-dir", str(state), "--kind", "sglang", "sg=127.0.0.1:18012"]) == 0
    capsys.readouterr()
    assert main(["targets", "list", "--state-dir", str(state)]) == 0
    listing = capsys.readouterr().out.splitlines()
    assert [line.split()[:4] for line in listing] == [["chat-vllm", "127.0.0.1:18010", "vllm:", "chat"],
                                                      ["sg", "127.0.0.1:18012", "sglang:", "model_name,"],
                                                      ["svc", "127.0.0.1:18011", "service",
                                                       str(folder.path / "svc.yml")]]


def test_the_compose_job_relabels_model_servers_as_the_generator_does() -> None:
    config = yaml.safe_load((ROOT / "provisioning" / "prometheus" / "prometheus.yml").read_text())
    for name in ("model-services", "model-servers"):
        job = next(j for j in config["scrape_configs"] if j["job_name"] == name)
        assert job["metric_relabel_configs"] == model_server_relabelling(), name
