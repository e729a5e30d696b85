"""Configuration: names, defaults, and clear errors for bad values."""

from pathlib import Path

import pytest

from omc_pipelines import settings
from omc_pipelines.db import safe_url


def test_defaults_run_offline_free_on_sqlite_under_omc_home():
    config = settings.load({})
    assert config.home == Path(".omc")
    assert config.database_url == f"sqlite:///{Path('.omc/omc.db').resolve()}"
    assert not config.database_url_from_env
    assert config.coinspot_url == "https://www.coinspot.com.au"
    assert config.zendesk_url == "https://coinspot.zendesk.com"
    assert config.sec_data_url == "https://data.sec.gov"
    assert config.sec_archives_url == "https://www.sec.gov"
    assert config.defillama_url == "https://api.llama.fi"
    assert config.cryptopanic_url == "https://cryptopanic.com"
    assert config.reddit_url == "https://oauth.reddit.com"
    assert config.coinspot_watchlist == settings.DEFAULT_WATCHLIST


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
    assert config.database_url == "postgresql+psycopg://omc@db/omc" and config.database_url_from_env
    assert config.coinspot_url == "http://127.0.0.1:9"  # trailing slash dropped
    assert {config.zendesk_url, config.sec_data_url, config.sec_archives_url, config.defillama_url,
            config.cryptopanic_url, config.reddit_url} == {"http://127.0.0.1:9"}
    assert config.coinspot_watchlist == ("btc", "eth")
    assert settings.load({"OMC_HOME": str(tmp_path)}).database_url == f"sqlite:///{tmp_path.resolve()}/omc.db"


@pytest.mark.parametrize(
    "name, value, message",
    [
        ("OMC_COINSPOT_URL", "www.coinspot.com.au", "OMC_COINSPOT_URL must be an http"),
        ("OMC_HTTP_TIMEOUT", "ten", "OMC_HTTP_TIMEOUT='ten' is not a number"),
        ("OMC_HTTP_TIMEOUT", "0", "must be at least"),
        ("OMC_COINSPOT_WATCHLIST", "btc;eth", "comma-separated list of coin symbols"),
    ],
)
def test_a_bad_value_is_named_in_the_error(name, value, message):
    with pytest.raises(settings.SettingsError, match=message):
        settings.load({name: value})


def test_database_urls_are_shown_without_their_password():
    shown = safe_url("postgresql+psycopg://omc:hunter2@db:5432/omc")
    assert shown == "postgresql+psycopg://omc:***@db:5432/omc"
