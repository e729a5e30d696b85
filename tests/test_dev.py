"""`omc dev`: a taken port is one line; dg dev ending by itself stops the sandbox; the code
location's name does not depend on the clone's folder. The whole of `omc dev` (the UI, the daemon,
one Ctrl-C stopping them) is tests/test_ui.py."""

import shutil
import socket
import sys
from pathlib import Path

import pytest
import yaml

from omc_pipelines import cli
from omc_pipelines.sandbox.stack import ROOT, free_port

OMC = str(Path(sys.executable).with_name("omc"))


@pytest.fixture
def taken_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        yield s.getsockname()[1]


def _main(argv, capsys):
    with pytest.raises(SystemExit) as exit_:
        cli.main(argv)
    return exit_.value.code, capsys.readouterr()


def test_a_taken_ui_port_is_one_line(taken_port, capsys, monkeypatch):
    monkeypatch.setattr(cli, "_dagster_home", lambda: pytest.fail("nothing may start when a port is taken"))
    code, out = _main(["dev", "--port", str(taken_port), "--sandbox-port", "0"], capsys)
    assert code == 1
    assert out.err == f"omc dev: port {taken_port} is in use (--port to choose another)\n"
    assert out.out == ""


def test_a_taken_sandbox_port_is_one_line(taken_port, capsys, monkeypatch):
    monkeypatch.setattr(cli, "_dagster_home", lambda: pytest.fail("nothing may start when a port is taken"))
    code, out = _main(["dev", "--port", str(free_port()), "--sandbox-port", str(taken_port)], capsys)
    assert code == 1
    assert out.err == f"omc dev: port {taken_port} is in use (--sandbox-port to choose another)\n"


def test_demo_ui_on_a_taken_port_is_one_line_before_the_demo(taken_port, capsys, monkeypatch):
    # Said at once, not after the minute the demo takes.
    monkeypatch.setattr(cli, "_dagster_home", lambda: pytest.fail("nothing may start when a port is taken"))
    code, out = _main(["demo", "--ui", "--port", str(taken_port)], capsys)
    assert code == 1
    assert out.err == f"omc demo: port {taken_port} is in use (--port to choose another)\n"
    assert out.out == ""


def test_real_sources_do_not_need_the_sandbox_port(taken_port, capsys, monkeypatch):
    # --real starts no sandbox, so its port is not checked; the UI's still is.
    ui = socket.socket()
    ui.bind(("127.0.0.1", 0))
    ui.listen()
    with ui:
        code, out = _main(["dev", "--real", "--port", str(ui.getsockname()[1]),
                           "--sandbox-port", str(taken_port)], capsys)
    assert code == 1 and "--port to choose another" in out.err and "--sandbox-port" not in out.err


def test_dg_exiting_by_itself_stops_the_sandbox_and_passes_its_code_on(tmp_path, monkeypatch, capsys):
    # A stand-in for dg: exits 3 at once. The sandbox must be stopped and the code passed on.
    fake = tmp_path / "bin"
    fake.mkdir()
    (fake / "dg").write_text("#!/bin/sh\nexit 3\n")
    (fake / "dg").chmod(0o755)
    monkeypatch.setattr(sys, "executable", str(fake / "python"))
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path))
    sandbox_port = free_port()
    code, out = _main(["dev", "--port", str(free_port()), "--sandbox-port", str(sandbox_port)], capsys)
    assert code == 3
    assert "dg dev exited with code 3" in out.err
    assert f"the sandbox at http://127.0.0.1:{sandbox_port}" in out.out
    assert not cli._port_taken(sandbox_port)  # the sandbox is gone


def test_the_code_location_name_does_not_depend_on_the_folder(tmp_path):
    from dagster_dg_core.context import DgContext

    clone = tmp_path / "my-fork-of-omc"
    clone.mkdir()
    for name in ("pyproject.toml", "workspace.yaml"):
        shutil.copy(ROOT / name, clone / name)
    (clone / "omc_pipelines").mkdir()  # dg wants the root module's folder in the project
    assert DgContext.for_project_environment(clone, {}).code_location_name == "omc_pipelines"
    [entry] = yaml.safe_load((clone / "workspace.yaml").read_text())["load_from"]
    assert entry["python_module"]["location_name"] == "omc_pipelines"
