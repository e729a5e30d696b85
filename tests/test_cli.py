"""The `omc` command as a new user meets it."""

import json
import os
import re
import subprocess
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
import sqlalchemy as sa

from omc_pipelines import cli, settings
from omc_pipelines.db import get_engine
from omc_pipelines.sandbox.coinspot import TAPE_PERIOD
from omc_pipelines.db.engine import current_revision, head_revision
from omc_pipelines.sandbox.stack import ROOT, free_port

pytestmark = [pytest.mark.integration, pytest.mark.slow]
OMC = str(Path(sys.executable).with_name("omc"))


def run(args, cwd, extra_env=None, timeout=240):
    env = {k: v for k, v in os.environ.items() if k not in ("DAGSTER_HOME", "OMC_DATABASE_URL", "OMC_HOME")}
    return subprocess.run([OMC, *args], cwd=cwd, env={**env, **(extra_env or {})}, capture_output=True,
                          text=True, timeout=timeout)


def _human_items(box) -> tuple:
    feeds = {name: feed.render() for name, feed in box.human.news.feeds.items()}
    return feeds, box.human.cryptopanic.posts, box.human.reddit.listings


def test_the_demos_human_items_do_not_depend_on_the_hour_it_runs():
    """The demo's sentiment per UTC day depended on the time of day: the items, anchored at the
    current hour, straddled midnight differently each hour. The demo's sandbox anchors them to
    the day: at 00:30 and at 23:30 the same items at the same times, all before today."""
    from omc_pipelines.cli import demo_sandbox

    early = demo_sandbox(datetime(2031, 3, 4, 0, 30, tzinfo=timezone.utc))
    late = demo_sandbox(datetime(2031, 3, 4, 23, 30, tzinfo=timezone.utc))
    assert _human_items(early) == _human_items(late)
    today = datetime(2031, 3, 4, tzinfo=timezone.utc)
    assert all(datetime.fromisoformat(p["published_at"].replace("Z", "+00:00")) < today for p in early.human.cryptopanic.posts)
    assert all(c["data"]["created_utc"] < today.timestamp() for ch in early.human.reddit.listings.values() for c in ch)
    # and the trades need no such help: the tape gives a trade one time in every sandbox


@pytest.fixture
def in_a_new_folder(tmp_path, monkeypatch):
    """A user's fresh folder: no OMC_* or DAGSTER_HOME from the caller, no dagster.yaml; what the
    command puts in the environment (the sandbox's URLs, DAGSTER_HOME) is gone afterwards."""
    saved = dict(os.environ)
    for name in list(os.environ):
        if name.startswith(settings.PREFIX) or name == "DAGSTER_HOME":
            del os.environ[name]
    monkeypatch.chdir(tmp_path)
    yield tmp_path
    os.environ.clear()
    os.environ.update(saved)


def _omc(capsys, *args) -> tuple[int, str]:
    with pytest.raises(SystemExit) as done:
        cli.main(list(args))
    out, err = capsys.readouterr()
    return done.value.code, out + err


@pytest.fixture
def fake_dg(tmp_path, monkeypatch):
    """A stand-in for `dg dev`: records where it ran and its environment, asks the sandbox it was
    given for a price, and exits 0 (as dg dev does when stopped)."""
    seen = tmp_path / "dg-saw.json"
    script = tmp_path / "dg"
    script.write_text(f"""#!{sys.executable}
import json, os, sys, urllib.request
price = json.load(urllib.request.urlopen(os.environ["OMC_COINSPOT_URL"] + "/pubapi/v2/latest/btc", timeout=10))
json.dump({{"argv": sys.argv[1:], "cwd": os.getcwd(), "env": dict(os.environ), "price": price}}, open({str(seen)!r}, "w"))
""")
    script.chmod(0o755)
    monkeypatch.setattr(cli, "_dg", lambda: script)
    return seen


def test_demo_fills_the_ledgers_trades_a_listing_converges_and_hands_over_to_the_ui(in_a_new_folder, fake_dg,
                                                                                   capsys):
    # In process (the `omc` entry point as a subprocess is tested in test_cli_commands.py):
    # two subprocess demos cost twice the imports and definitions for nothing more.
    folder = in_a_new_folder
    started = datetime.now(timezone.utc)
    code, first = _omc(capsys, "demo", "--hours", "4")
    assert code == 0, first
    assert "exchange_market_data: succeeded" in first
    assert "one run: succeeded" in first
    # Progress: every stage has a line as it starts and one as it ends, with the seconds.
    for stage in ("loading the definitions", "exchange_market_data", "catalyst_filings", "glass_chain_tvl",
                  "human_coin_sentiment", "catalyst_listings for the new listing"):
        starts = re.search(rf"^\[\s*(\d+\.\d) s\] {stage}.* \.\.\.$", first, re.M)
        ends = re.search(rf"^\[\s*(\d+\.\d) s\] {stage}.*: (succeeded|done) in \d+\.\d s", first, re.M)
        assert starts and ends and float(starts[1]) <= float(ends[1]), (stage, first)
    # The sandbox's listing became a paper order, with its reason and risk decision.
    assert "signal:   buy demo" in first and "risk:     accepted: within limits" in first
    assert "order:    filled (paper): 100.00 AUD" in first
    assert "See them in the UI: .venv/bin/omc dev" in first  # not a bare `dg dev`, which is not on PATH
    database = folder / ".omc" / "omc.db"
    assert database.exists()  # the embedded default, migrated on first use
    engine = get_engine(f"sqlite:///{database}")
    with engine.connect() as conn:
        counts = lambda: {t: conn.execute(sa.text(f"SELECT count(*) FROM {t}")).scalar_one()  # noqa: E731
                          for t in ("exchange_price_snapshots", "exchange_trades", "exchange_candles",
                                    "catalyst_events", "glass_chain_tvl", "human_items", "human_coin_sentiment_daily")}
        before = counts()
    assert all(before.values()), before
    assert re.search(rf"exchange_trades\s+{before['exchange_trades']}\n", first)
    # No DAGSTER_HOME and no dagster.yaml here: the instance lives under .omc, not in ~/.dagster.
    dagster_home = folder / ".omc" / "dagster"
    assert dagster_home.is_dir()

    ui_port = free_port()
    code, second = _omc(capsys, "demo", "--hours", "4", "--ui", "--port", str(ui_port))
    assert code == 0, second
    # The second listing of the same coin within the hour meets the cooldown: refused, said why.
    assert "risk:     refused: cooldown" in second and "order:    none" in second
    with engine.connect() as conn:
        after = counts()
        assert conn.execute(sa.text("SELECT count(*) FROM trading_orders")).scalar_one() == 1
    # Same trades (the second sandbox serves every trade at the time the first did; only when an
    # hour turned between the two may the tape have moved on to newer ones), same candles;
    # snapshots grow only by a new minute's observation.
    same_hour = started.replace(minute=0, second=0, microsecond=0) == datetime.now(timezone.utc).replace(
        minute=0, second=0, microsecond=0)
    with engine.connect() as conn:
        rows = conn.execute(sa.text("SELECT coin, market, side, amount, rate, sold_at FROM exchange_trades")).all()
    times = {}
    for coin, market, side, amount, rate, sold_at in rows:
        times.setdefault((coin, market, side, amount, rate), []).append(datetime.fromisoformat(str(sold_at)))
    # A trade is never re-dated: the same trade at two times is the tape's next round (when an hour
    # turned between the demos), exactly TAPE_PERIOD later, never an hour or two.
    repeats = {trade: sorted(t) for trade, t in times.items() if len(t) > 1}
    assert all((b - a) % TAPE_PERIOD == timedelta(0) for t in repeats.values() for a, b in zip(t, t[1:])), repeats
    assert same_hour is False or not repeats, "a trade stored twice, under two times"
    if same_hour:  # across an hour, the demo's window of candles moves on by one too
        assert after["exchange_trades"] == before["exchange_trades"]
        assert after["exchange_candles"] == before["exchange_candles"]
    assert after["exchange_price_snapshots"] in (before["exchange_price_snapshots"], 2 * before["exchange_price_snapshots"])

    # --ui: then `dg dev` from the project, on the demo's instance and ledger database (pinned:
    # relative to the project's folder, the default home would be another file), and on the
    # demo's sandbox, still serving.
    saw = json.loads(fake_dg.read_text())
    assert saw["argv"] == ["dev", "--port", str(ui_port)] and saw["cwd"] == str(ROOT)
    assert saw["env"]["DAGSTER_HOME"] == str(dagster_home)
    assert settings.load(saw["env"]).ledger_database_url == f"sqlite:///{database}"
    sandbox = re.search(r"sandbox serving every source at (\S+)", second)[1]
    assert saw["env"]["OMC_COINSPOT_URL"] == sandbox and saw["price"]["status"] == "ok"
    assert f"Dagster UI at http://127.0.0.1:{ui_port} on the sandbox at {sandbox}" in second
    assert not cli._port_taken(int(sandbox.rsplit(":", 1)[1]))  # and stopped with the UI


@pytest.mark.postgres
def test_db_upgrade_migrates_the_configured_database(postgres_database, tmp_path):
    # The session database is migrated already: the command must be a no-op that says so.
    result = run(["db", "upgrade"], cwd=tmp_path, extra_env={"OMC_DATABASE_URL": postgres_database})
    assert result.returncode == 0, result.stderr
    assert f"-> {head_revision()}" in result.stdout
    assert current_revision(get_engine(postgres_database)) == head_revision()


def test_the_kill_switch_from_the_command_line(tmp_path, monkeypatch, capsys):
    # In process (the command as a subprocess is tested in test_cli_commands.py): each call reads
    # the settings and the database anew, as a separate `omc` would.
    monkeypatch.chdir(tmp_path)
    for name in ("DAGSTER_HOME", "OMC_DATABASE_URL", "OMC_HOME", "OMC_TRADING_MODE", "OMC_KILL_SWITCH"):
        monkeypatch.delenv(name, raising=False)

    def omc(*args, **env):
        with monkeypatch.context() as scoped:
            for name, value in env.items():
                scoped.setenv(name, value)
            with pytest.raises(SystemExit) as done:
                cli.main(list(args))
        out, err = capsys.readouterr()
        return done.value.code, out, err

    assert omc("trading", "halt", "--reason", "exchange incident")[0] == 0
    code, status, _ = omc("trading", "status")
    assert code == 0 and "kill switch on: halted by" in status and "exchange incident" in status
    assert "mode: paper" in status
    live = omc("trading", "status", OMC_TRADING_MODE="live")[1]
    assert "live requested but OMC_TRADING_LIVE_CONFIRM is not yes" in live
    forced = omc("trading", "resume", OMC_KILL_SWITCH="on")[1]
    assert "OMC_KILL_SWITCH=on still refuses every order" in forced
    assert "kill switch off: trading" in omc("trading", "status")[1]
    code, _, err = omc("trading", "halt")
    assert code == 2 and "--reason" in err