"""Configuration: names, defaults, and clear errors for bad values; no setting switches a limit off."""

import subprocess
import sys
from pathlib import Path

import pytest

from omc_pipelines import settings
from omc_pipelines.db import safe_url

ROOT = Path(__file__).resolve().parent.parent


def test_defaults_run_offline_free_on_sqlite_under_omc_home():
    config = settings.load({})
    assert config.home == Path(".omc")
    assert config.ledger_database_url == f"sqlite:///{Path('.omc/omc.db').resolve()}"
    assert not config.database_url_from_env
    assert config.coinspot_url == "https://www.coinspot.com.au"
    assert config.zendesk_url == "https://coinspot.zendesk.com"
    assert config.sec_data_url == "https://data.sec.gov"
    assert config.sec_archives_url == "https://www.sec.gov"
    assert config.defillama_url == "https://api.llama.fi"
    assert config.cryptopanic_url == "https://cryptopanic.com"
    assert config.reddit_url == "https://oauth.reddit.com"
    assert config.coinspot_watchlist == settings.DEFAULT_WATCHLIST
    assert (config.http_timeout, config.http_retries, config.sec_rate_limit) == (10.0, 4, 10.0)


def test_every_source_url_and_the_database_come_from_the_environment(tmp_path):
    env = {
        "OMC_HOME": str(tmp_path),
        "OMC_DATABASE_URL": "postgresql+psycopg://omc@db/omc",
        "OMC_COINSPOT_URL": "http://127.0.0.1:9/",
        "OMC_ZENDESK_URL": "http://127.0.0.1:9",
        "OMC_SEC_DATA_URL": "http://127.0.0.1:9",
        "OMC_SEC_ARCHIVES_URL": "http://127.0.0.1:9",
        "OMC_DEFILLAMA_URL": "http://127.0.0.1:9",
        "OMC_CRYPTOPANIC_URL": "http://127.0.0.1:9",
        "OMC_REDDIT_URL": "http://127.0.0.1:9",
        "OMC_COINSPOT_WATCHLIST": " BTC, eth,btc ,",
    }
    config = settings.load(env)
    assert config.ledger_database_url == "postgresql+psycopg://omc@db/omc" and config.database_url_from_env
    assert config.coinspot_url == "http://127.0.0.1:9"  # trailing slash dropped
    assert {config.zendesk_url, config.sec_data_url, config.sec_archives_url, config.defillama_url,
            config.cryptopanic_url, config.reddit_url} == {"http://127.0.0.1:9"}
    assert config.coinspot_watchlist == ("btc", "eth")
    assert settings.load({"OMC_HOME": str(tmp_path)}).ledger_database_url == f"sqlite:///{tmp_path.resolve()}/omc.db"


@pytest.mark.parametrize(
    "name, value, message",
    [
        ("OMC_COINSPOT_URL", "www.coinspot.com.au", "OMC_COINSPOT_URL='www.coinspot.com.au': must be an http"),
        ("OMC_HTTP_TIMEOUT", "ten", "OMC_HTTP_TIMEOUT='ten': must be a number"),
        ("OMC_HTTP_TIMEOUT", "0", "OMC_HTTP_TIMEOUT='0': must be at least 0.1"),
        ("OMC_COINSPOT_WATCHLIST", "btc;eth", "comma-separated list of coin symbols"),
        # A limit that NaN or infinity would switch off (145 requests/s were measured with nan).
        ("OMC_SEC_RATE_LIMIT", "nan", "OMC_SEC_RATE_LIMIT='nan': must be a finite number"),
        ("OMC_SEC_RATE_LIMIT", "11", "must be at most 10"),
        ("OMC_COINSPOT_RATE_LIMIT", "inf", "OMC_COINSPOT_RATE_LIMIT='inf': must be a finite number"),
        ("OMC_HTTP_TIMEOUT", "NaN", "must be a finite number"),
        ("OMC_HTTP_TIMEOUT", "1e9", "must be at most 300"),
        ("OMC_HTTP_RETRIES", "1e9", "OMC_HTTP_RETRIES='1e9': must be a whole number"),
        ("OMC_HTTP_RETRIES", "1000", "must be at most 10"),
        ("OMC_CATALYST_HISTORY_DAYS", "-1", "must be at least 0"),
        ("OMC_CATALYST_HISTORY_DAYS", "1e400", "must be a whole number"),
        ("OMC_LISTING_SENSOR_SECONDS", "1", "must be at least 5"),
        ("OMC_CANDLES_START", "2025-13-01", "OMC_CANDLES_START='2025-13-01': must be a day like 2025-01-01"),
        ("OMC_CANDLES_START", "2025-13-01-00:00", "must be a day like"),
        ("OMC_CANDLES_START", "2999-01-01", "is in the future"),
        ("OMC_DAILY_START", "yesterday", "OMC_DAILY_START='yesterday': must be a day like 2025-01-01"),
        ("OMC_DATABASE_URL", "not a url", "OMC_DATABASE_URL: is not a database URL"),
        ("OMC_DATABASE_URL", "mysql://u:pw@db/x", "only sqlite and postgresql"),
        ("OMC_DATABASE_URL", "sqlite:////no/such/folder/omc.db", "/no/such/folder, which does not exist"),
        ("OMC_NEWS_FEEDS", "coindesk", "name=url pairs"),
        ("OMC_SEC_CIKS", "1050446,strategy", "CIK numbers"),
    ],
)
def test_a_bad_value_is_named_in_the_error(name, value, message):
    with pytest.raises(settings.SettingsError, match=message.replace("(", r"\(").replace(".", r"\.")):
        settings.load({name: value})


def test_every_bad_variable_is_named_at_once():
    with pytest.raises(settings.SettingsError) as caught:
        settings.load({"OMC_HTTP_TIMEOUT": "nan", "OMC_SEC_RATE_LIMIT": "50"})
    assert "OMC_HTTP_TIMEOUT" in str(caught.value) and "OMC_SEC_RATE_LIMIT" in str(caught.value)


def test_a_bad_database_url_never_shows_its_password():
    with pytest.raises(settings.SettingsError) as caught:
        settings.load({"OMC_DATABASE_URL": "mysql://omc:hunter2@db/omc"})
    assert "hunter2" not in str(caught.value) and "OMC_DATABASE_URL" in str(caught.value)
    assert "hunter2" not in repr(settings.load({"OMC_DATABASE_URL": "postgresql://omc:hunter2@db/omc"}))


def test_secrets_are_hidden_in_the_settings_repr():
    config = settings.load({"OMC_CRYPTOPANIC_TOKEN": "tok-123", "OMC_REDDIT_CLIENT_SECRET": "sec-456"})
    assert "tok-123" not in repr(config) and "sec-456" not in repr(config)
    assert config.secret("cryptopanic_token") == "tok-123"


def test_variable_names_come_from_the_fields():
    assert settings.DATABASE_URL == "OMC_DATABASE_URL" and settings.SEC_USER_AGENT == "OMC_SEC_USER_AGENT"
    with pytest.raises(AttributeError):
        settings.NO_SUCH_SETTING  # noqa: B018


def test_importing_the_project_reads_no_environment():
    """The definitions are built when Dagster asks for them, not at import: a bad value breaks
    loading the code location with the variable's name, never an import."""
    code = (
        "import omc_pipelines.definitions as d\n"
        "try:\n    d.defs()\nexcept Exception as exc:\n    print(type(exc).__name__, exc)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120,
                            env={"PATH": "/usr/bin:/bin", "OMC_HTTP_TIMEOUT": "nan", "DAGSTER_HOME": str(ROOT)})
    assert result.returncode == 0, result.stderr
    assert "SettingsError OMC_HTTP_TIMEOUT='nan': must be a finite number" in result.stdout


def test_database_urls_are_shown_without_their_password():
    shown = safe_url("postgresql+psycopg://omc:hunter2@db:5432/omc")
    assert shown == "postgresql+psycopg://omc:***@db:5432/omc"
