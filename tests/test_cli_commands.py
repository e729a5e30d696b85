"""The `omc` command's answers: in process through `main([...])`, and a few as a user runs them.

Fast: no demo, no Dagster run; each test has its own SQLite file (or an unreachable URL).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from datetime import datetime, timedelta, timezone
from importlib.metadata import version
from pathlib import Path

import pytest
import sqlalchemy as sa

from omc_pipelines import cli, settings
from omc_pipelines.db import get_engine, upgrade
from omc_pipelines.db.engine import head_revision
from omc_pipelines.db.models import PriceSnapshot

OMC = str(Path(sys.executable).with_name("omc"))
UNREACHABLE = "postgresql+psycopg://u:secret@127.0.0.1:1/x"


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch, tmp_path):
    """No OMC_* from the caller's shell; the embedded default under this test's folder."""
    for name in list(os.environ):
        if name.startswith(settings.PREFIX) or name == "DAGSTER_HOME":
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)


@pytest.fixture
def ledger(monkeypatch, tmp_path) -> str:
    url = f"sqlite:///{tmp_path / 'ledger.db'}"
    monkeypatch.setenv(settings.DATABASE_URL, url)
    return url


def omc(capsys, *args) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as done:
        cli.main(list(args))
    out, err = capsys.readouterr()
    return done.value.code, out, err


def run(args, extra_env=None, **kwargs) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith(settings.PREFIX)}
    return subprocess.run([OMC, *args], env={**env, **(extra_env or {})}, capture_output=True, text=True,
                          timeout=60, **kwargs)


def one_line(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


# --- 1. the sandbox's exports survive the shell ----------------------------------------------


def test_the_sandbox_exports_source_whole_in_a_shell(tmp_path):
    box = subprocess.Popen([OMC, "sandbox", "--port", "0"], stdout=subprocess.PIPE, text=True)
    try:
        lines = [box.stdout.readline()]  # the exports are flushed at once, after this line
        while "OMC_SEC_USER_AGENT" not in lines[-1]:
            assert lines[-1], lines
            lines.append(box.stdout.readline())
    finally:
        box.terminate()
        rest, _ = box.communicate(timeout=20)
    assert box.returncode == 0
    exports = [line for line in lines + rest.splitlines() if line.startswith("export ")]
    agent = next(line for line in exports if "OMC_SEC_USER_AGENT" in line)
    assert " " in agent.partition("=")[2]  # the value holds spaces: the case that broke
    script = "\n".join(exports) + '\nprintf %s "$OMC_SEC_USER_AGENT"'
    read_back = subprocess.run(["bash", "-c", script], capture_output=True, text=True, check=True).stdout
    assert read_back.startswith("OMC Pipelines sandbox") and " " in read_back


# --- 2. a mistake is one line ---------------------------------------------------------------


def test_an_unreachable_database_is_one_line_without_the_password(capsys, monkeypatch):
    monkeypatch.setenv(settings.DATABASE_URL, UNREACHABLE)
    code, _, err = omc(capsys, "db", "current")
    line = one_line(err)
    assert code == 1 and "secret" not in err
    assert line.startswith("omc db current: cannot connect to OMC_DATABASE_URL=postgresql+psycopg://u:***@127.0.0.1:1/x")


def test_the_one_line_error_as_a_user_sees_it(tmp_path):
    result = run(["db", "upgrade"], extra_env={settings.DATABASE_URL: UNREACHABLE}, cwd=tmp_path)
    assert result.returncode == 1 and "secret" not in result.stderr + result.stdout
    assert one_line(result.stderr).startswith("omc db upgrade: cannot connect to OMC_DATABASE_URL=")


@pytest.mark.postgres
def test_a_wrong_role_is_named(capsys, monkeypatch):
    from conftest import POSTGRES_SERVER, _postgres_missing

    url = sa.make_url(POSTGRES_SERVER).set(drivername="postgresql+psycopg", username="no_such_role_omc",
                                           password="hunter2")
    monkeypatch.setenv(settings.DATABASE_URL, url.render_as_string(hide_password=False))
    code, _, err = omc(capsys, "db", "current")
    line = one_line(err)
    if "Connection refused" in line:
        _postgres_missing(line)  # a skip here, a failure in CI
    assert code == 1 and "no_such_role_omc" in line and "hunter2" not in err
    assert "OMC_DATABASE_URL" in line


def test_a_bad_migration_revision(capsys, ledger):
    code, _, err = omc(capsys, "db", "upgrade", "nosuch")
    line = one_line(err)
    assert code == 1 and "nosuch" in line and line.startswith("omc db upgrade: migration:")


def test_a_bad_setting_names_its_variable(capsys, monkeypatch):
    monkeypatch.setenv(settings.HTTP_TIMEOUT, "nan")
    code, _, err = omc(capsys, "config")
    assert code == 1 and one_line(err) == "omc config: OMC_HTTP_TIMEOUT='nan': must be a finite number"


def test_a_sqlite_file_in_a_missing_folder_is_refused(capsys, monkeypatch, tmp_path):
    monkeypatch.setenv(settings.DATABASE_URL, f"sqlite:///{tmp_path / 'nowhere' / 'omc.db'}")
    code, _, err = omc(capsys, "db", "upgrade")
    assert code == 1 and "which does not exist" in one_line(err) and "OMC_DATABASE_URL" in err
    assert not (tmp_path / "nowhere").exists()


@pytest.mark.parametrize("hours", ["0", "-3", "two"])
def test_demo_hours_must_be_at_least_one(capsys, hours):
    code, _, err = omc(capsys, "demo", "--hours", hours)
    assert code == 2 and "--hours" in err


# --- 3. version and help ----------------------------------------------------------------------


def test_version(capsys):
    code, out, _ = omc(capsys, "--version")
    assert code == 0 and out.strip() == f"omc {version('omc-pipelines')}"


def _parsers(parser: argparse.ArgumentParser, path=("omc",)):
    yield path, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from _parsers(sub, (*path, name))


def test_every_command_has_a_description_and_every_option_help():
    for path, parser in _parsers(cli.build_parser()):
        assert parser.description, path
        for action in parser._actions:
            if not isinstance(action, argparse._SubParsersAction):
                assert action.help, (path, action.dest)


# --- 4. db current, db history ------------------------------------------------------------------


def test_db_current_and_history(capsys, ledger):
    code, out, _ = omc(capsys, "db", "current")
    assert code == 0 and "empty, no migration applied" in out and head_revision() in out
    upgrade(get_engine(ledger), "0003")
    code, out, _ = omc(capsys, "db", "current")
    assert code == 0 and f"0003, behind the newest {head_revision()}" in out
    code, out, _ = omc(capsys, "db", "history")
    revisions = [line.split()[0 if not line.startswith("*") else 1] for line in out.splitlines()[2:-1]]
    assert revisions[0] == head_revision() and revisions == sorted(revisions, reverse=True)
    assert [line for line in out.splitlines() if line.startswith("*")][0].split()[1] == "0003"
    omc(capsys, "db", "upgrade")
    code, out, _ = omc(capsys, "db", "current")
    assert code == 0 and f"{head_revision()} (the newest)" in out


# --- 5. status --------------------------------------------------------------------------------


def test_status(capsys, ledger, monkeypatch):
    upgrade(get_engine(ledger))
    now = datetime.now(timezone.utc)
    with get_engine(ledger).begin() as conn:
        conn.execute(sa.insert(PriceSnapshot), [
            {"coin": "btc", "market": "aud", "bid": 1.0, "ask": 1.1, "last": 1.0, "observed_at": now - timedelta(minutes=m),
             "collected_at": now} for m in (1, 30)])
    monkeypatch.setenv(settings.CRYPTOPANIC_TOKEN, "tok-123")
    monkeypatch.setenv(settings.FRESHNESS_MINUTES, "5")
    code, out, _ = omc(capsys, "status")
    assert code == 0 and "tok-123" not in out
    assert f"migration revision: {head_revision()} (the newest)" in out
    rows = {line.split()[0]: line for line in out.splitlines() if line.startswith(("exchange_", "glass_", "trading_"))}
    assert rows["exchange_price_snapshots"].split()[1] == "2"
    assert f"{now - timedelta(minutes=1):%Y-%m-%d %H:%M}" in rows["exchange_price_snapshots"]
    assert "fresh (within 5 min)" in rows["exchange_price_snapshots"]
    assert rows["exchange_candles"].split()[1] == "0" and "empty" in rows["exchange_candles"]
    assert "trading_orders" in rows
    sources = {line.split("  ")[0]: line.split()[-1] for line in out.splitlines() if line.strip()}
    assert sources["CryptoPanic token"] == "yes" and sources["SEC user agent"] == "no"

    with get_engine(ledger).begin() as conn:
        conn.execute(sa.delete(PriceSnapshot).where(PriceSnapshot.observed_at > now - timedelta(minutes=10)))
    _, out, _ = omc(capsys, "status")
    assert "stale (within 5 min)" in next(line for line in out.splitlines() if line.startswith("exchange_price_"))


# --- 6. config ---------------------------------------------------------------------------------


def test_config_says_where_each_setting_came_from_and_masks_secrets(capsys, monkeypatch):
    secrets = {settings.env_name(field): f"value-{field}" for field in settings.SECRETS}
    secrets[settings.DATABASE_URL] = "postgresql+psycopg://omc:hunter2@db/omc"
    secrets[settings.NEWS_FEEDS] = "mine=https://feeds.example/rss?key=feed-key-1"
    for name, value in {**secrets, settings.HTTP_TIMEOUT: "5"}.items():
        monkeypatch.setenv(name, value)
    code, out, _ = omc(capsys, "config")
    assert code == 0
    rows = {line.split()[0]: line.split()[1:] for line in out.splitlines()[2:]}
    assert set(rows) == {settings.env_name(field) for field in settings.Settings.model_fields}
    assert rows[settings.HTTP_TIMEOUT] == ["5.0", "environment"]
    assert rows[settings.HTTP_RETRIES] == ["4", "default"]
    for name, value in secrets.items():
        assert rows[name] == ["***", "environment"] and value not in out
    assert "hunter2" not in out and "feed-key-1" not in out


def test_config_shows_the_embedded_database_by_default(capsys, tmp_path):
    _, out, _ = omc(capsys, "config")
    line = next(line for line in out.splitlines() if line.startswith(settings.DATABASE_URL))
    assert str((tmp_path / ".omc" / "omc.db").resolve()) in line and line.endswith("default")
