"""Price history from files: the parsers (every format, every bad row), the import on both
databases (a re-import changes nothing, a corrected file updates its rows, nothing deleted),
the asset through Dagster, the command line."""

import gzip
import importlib.util
import json
import math
import os
import re
import subprocess
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np
import pytest
import sqlalchemy as sa
from dagster import materialize
from hypothesis import HealthCheck, event, given, settings as hypothesis_settings
from hypothesis import strategies as st

from omc_pipelines import cli, settings
from omc_pipelines.db import get_engine
from omc_pipelines.db.models import ImportedCandle
from omc_pipelines.definitions import build_resources
from omc_pipelines.ledgers.exchange.history import HistoryImportError, exchange_imported_candles, import_ohlcv
from omc_pipelines.resources import HistoryFilesResource, LedgerDatabase
from omc_pipelines.sources.ohlcv_files import (
    TIMEFRAMES, OhlcvFileError, format_number, parse_ohlcv, read_ohlcv_file, series_from_name,
)

START = 1704067200  # 2024-01-01 00:00 UTC
HOUR = 3600
OMC = str(Path(sys.executable).with_name("omc"))


# --- files -------------------------------------------------------------------------------------


def candles(n: int = 200, start: int = START, step: int = HOUR, price: float = 100.0) -> list[list]:
    """``n`` consistent candles as freqtrade writes them: [ms, open, high, low, close, volume]."""
    rows = []
    for i in range(n):
        open_, close = price + i % 7, price + (i + 3) % 7
        rows.append([(start + i * step) * 1000, open_, max(open_, close) + 0.5, min(open_, close) - 0.5, close,
                     10.0 + i])
    return rows


def as_json(rows: list) -> bytes:
    return json.dumps(rows).encode()


def as_csv(rows: list, time: str = "date", order=("open", "high", "low", "close", "volume"), extra: bool = False) -> bytes:
    """A CSV of ``rows``; ``time``: date (ISO, +00:00), date_z, date_naive, date_ms, timestamp (ms), timestamp_s."""
    column = "timestamp" if time.startswith("timestamp") else "date"
    lines = [",".join([column, *order] + (["trades"] if extra else []))]
    for row in rows:
        ms = row[0]
        if isinstance(ms, (int, float)) and not isinstance(ms, bool):
            when = datetime.fromtimestamp(ms / 1000, timezone.utc)
            shown = {"date": when.isoformat(), "date_z": when.strftime("%Y-%m-%dT%H:%M:%SZ"),
                     "date_naive": when.strftime("%Y-%m-%d %H:%M:%S"), "date_ms": str(ms), "timestamp": str(ms),
                     "timestamp_s": str(ms // 1000)}[time]
        else:
            shown = "" if ms is None else str(ms)
        values = dict(zip(("open", "high", "low", "close", "volume"), row[1:]))
        cells = [shown, *("" if values[c] is None else str(values[c]) for c in order)] + (["7"] if extra else [])
        lines.append(",".join(cells))
    return ("\n".join(lines) + "\n").encode()


def write(folder: Path, name: str, data: bytes) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_bytes(gzip.compress(data) if name.endswith(".gz") else data)
    return path


def frame_values(parsed) -> list[tuple]:
    frame = parsed.candles
    return list(zip(frame["open_time"].astype("int64") // 10**6, *(frame[c] for c in ("open", "high", "low", "close",
                                                                                          "volume"))))


# --- formats and names -------------------------------------------------------------------------


def test_freqtrade_json_gives_the_pair_and_timeframe_from_its_name():
    parsed = parse_ohlcv(as_json(candles()), "BTC_AUD-1h.json")
    assert (parsed.series.coin, parsed.series.market, parsed.series.timeframe) == ("btc", "aud", "1h")
    assert parsed.series.interval_seconds == 3600
    assert parsed.format == "json" and parsed.rows_read == 200 and len(parsed.candles) == 200
    assert parsed.rejected == [] and parsed.duplicates == 0
    assert parsed.first == datetime(2024, 1, 1, tzinfo=timezone.utc)
    assert parsed.last == datetime(2024, 1, 1, tzinfo=timezone.utc) + timedelta(hours=199)
    assert parsed.first.utcoffset() == timedelta(0)
    row = parsed.candles.iloc[3]
    assert (row["open"], row["high"], row["low"], row["close"], row["volume"]) == (103.0, 106.5, 102.5, 106.0, 13.0)


@pytest.mark.parametrize("time", ["date", "date_z", "date_naive", "date_ms", "timestamp", "timestamp_s"])
def test_csv_reads_iso_dates_and_epochs_in_ms_or_s_alike(time):
    expected = frame_values(parse_ohlcv(as_json(candles()), "BTC_USDT-1h.json"))
    parsed = parse_ohlcv(as_csv(candles(), time=time), "BTC_USDT-1h.csv")
    assert parsed.format == "csv" and parsed.rejected == []
    assert frame_values(parsed) == expected


def test_csv_columns_in_any_order_and_case_with_extra_columns_ignored():
    expected = frame_values(parse_ohlcv(as_json(candles()), "ETH_AUD-1h.json"))
    data = as_csv(candles(), order=("volume", "close", "open", "low", "high"), extra=True)
    data = data.replace(b"date,volume,close", b" Date ,VOLUME,Close", 1)
    assert frame_values(parse_ohlcv(data, "ETH_AUD-1h.csv")) == expected
    assert frame_values(parse_ohlcv(b"\xef\xbb\xbf" + data, "ETH_AUD-1h.csv")) == expected  # a BOM


def test_gzipped_files_read_as_their_plain_selves():
    rows = candles()
    plain = frame_values(parse_ohlcv(as_json(rows), "BTC_AUD-1h.json"))
    assert frame_values(parse_ohlcv(gzip.compress(as_json(rows)), "BTC_AUD-1h.json.gz")) == plain
    assert frame_values(parse_ohlcv(gzip.compress(as_csv(rows)), "BTC_AUD-1h.CSV.GZ")) == plain


def test_rows_arrive_sorted_whatever_the_file_order():
    rows = candles()
    parsed = parse_ohlcv(as_json(list(reversed(rows))), "BTC_AUD-1h.json")
    assert frame_values(parsed) == frame_values(parse_ohlcv(as_json(rows), "BTC_AUD-1h.json"))


@pytest.mark.parametrize("name, expected", [
    ("BTC_AUD-1h.json", ("btc", "aud", "1h")),
    ("BTC_USDT-5m.json", ("btc", "usdt", "5m")),
    ("BTC_USDT-5m.csv.gz", ("btc", "usdt", "5m")),
    ("1INCH_USDT-15m.json.gz", ("1inch", "usdt", "15m")),
    ("pepe_aud-1d.csv", ("pepe", "aud", "1d")),
    ("/some/where/SOL_AUD-4h.json", ("sol", "aud", "4h")),
    ("C:\\data\\XRP_AUD-12h.json", ("xrp", "aud", "12h")),
])
def test_the_series_comes_from_freqtrades_file_names(name, expected):
    series = series_from_name(name.replace("\\", "/").rsplit("/", 1)[-1])
    assert (series.coin, series.market, series.timeframe) == expected


def test_every_timeframe_maps_to_its_seconds():
    assert TIMEFRAMES == {"1m": 60, "3m": 180, "5m": 300, "15m": 900, "30m": 1800, "1h": 3600, "2h": 7200,
                          "4h": 14400, "6h": 21600, "8h": 28800, "12h": 43200, "1d": 86400}


def test_arguments_override_the_name_and_stand_in_for_a_name_that_says_nothing():
    rows = candles(step=300)
    parsed = parse_ohlcv(as_json(rows), "BTC_AUD-1h.json", coin="ETH", market="usdt", timeframe="5m")
    assert (parsed.series.coin, parsed.series.market, parsed.series.timeframe) == ("eth", "usdt", "5m")
    assert len(parsed.candles) == 200
    parsed = parse_ohlcv(as_csv(rows), "binance export.csv", coin="btc", market="aud", timeframe="5m")
    assert str(parsed.series) == "btc/aud 5m"
    with pytest.raises(OhlcvFileError, match=r"^binance export\.csv: cannot tell the market and timeframe from the "
                                             r"name .*give market, timeframe$"):
        parse_ohlcv(as_csv(rows), "binance export.csv", coin="btc")


@pytest.mark.parametrize("name, kwargs, message", [
    ("BTC_AUD-1w.json", {}, "timeframe '1w' is not supported: one of 1m, 3m, 5m"),
    ("BTC_AUD-1h.json", {"timeframe": "90m"}, "timeframe '90m' is not supported"),
    ("BTC_AUD-1h.json", {"coin": "bt c"}, "coin 'bt c' is not a symbol"),
    ("BTC_USDT_USDT-1h-futures.json", {}, "a freqtrade futures file: only spot candles are imported"),
    ("BTC_USDT_USDT-8h-funding_rate.json", {}, "a freqtrade funding_rate file"),
])
def test_names_and_overrides_that_cannot_be_are_refused(name, kwargs, message):
    with pytest.raises(OhlcvFileError, match=message):
        parse_ohlcv(as_json(candles()), name, **kwargs)


# --- bad rows ----------------------------------------------------------------------------------

def _set(index, value):
    def mutate(row):
        row[index] = value
    return mutate


# (mutation of candle 57, the reason's words); candle 57: open 101, high 104.5, low 100.5, close 104.
BAD_ROWS = {
    "zero price": (_set(1, 0), "open 0 is not positive"),
    "negative price": (_set(4, -1.5), "close -1.5 is not positive"),
    "infinite price": (_set(2, math.inf), "high inf is not finite"),
    "NaN price": (_set(3, math.nan), "low is missing or NaN"),
    "missing price": (_set(1, None), "open is missing"),
    "text price": (_set(1, "abc"), "open 'abc' is not a number"),
    "high below low": (lambda r: r.__setitem__(slice(1, 5), [104, 101, 102.5, 103]), "high 101 is below low 102.5"),
    "open above high": (_set(1, 105), "open 105 is outside [low 100.5, high 104.5]"),
    "close below low": (_set(4, 100), "close 100 is outside [low 100.5, high 104.5]"),
    "negative volume": (_set(5, -2), "volume -2 is negative"),
    "missing volume": (_set(5, None), "volume is missing"),
    "off the grid": (lambda r: r.__setitem__(0, r[0] + 60_000), "time 2024-01-03 09:01 is not on the 1h grid"),
    "in the future": (_set(0, 4102444800000), "time 2100-01-01 00:00 is in the future"),
    "before bitcoin": (_set(0, 1_000_000_000), "time 1970-01-12 13:46:40 is before 2009-01-03"),
    "missing time": (_set(0, None), "the time is missing"),
}


# A CSV writes NaN as text.
CSV_REASONS = {"NaN price": "low 'nan' is not a number"}


@pytest.mark.parametrize("kind", list(BAD_ROWS))
@pytest.mark.parametrize("fmt", ["json", "csv"])
def test_each_kind_of_bad_row_is_rejected_with_its_place_and_reason_and_the_rest_imported(kind, fmt):
    mutate, reason = BAD_ROWS[kind]
    rows = candles()
    mutate(rows[57])
    if fmt == "json":
        parsed = parse_ohlcv(json.dumps(rows).encode(), "BTC_AUD-1h.json")
        where = "row 58"  # the 58th row of the list
    else:
        reason = CSV_REASONS.get(kind, reason)
        parsed = parse_ohlcv(as_csv(rows), "BTC_AUD-1h.csv")
        where = "line 59"  # the header is line 1
    assert parsed.rows_read == 200 and len(parsed.candles) == 199
    [rejected] = parsed.rejected
    assert str(rejected).startswith(f"{where}: ") and reason in str(rejected), str(rejected)


@pytest.mark.parametrize("row, reason", [
    ([START * 1000, 1, 2, 0.5, 1], "row 58: has 5 values, expected 6 (time, open, high, low, close, volume)"),
    ({"time": START}, "row 58: is a dict, not a [time, open, ...] list"),
    ([START * 1000 + 57 * HOUR * 1000, True, 2, 0.5, 1, 3], "row 58: open True is not a number"),
    ([str((START + 57 * HOUR) * 1000), "104", "104.5", "102.5", "103", "5"], None),  # numbers as text: read
    ([(START + 57 * HOUR) * 1000, 104, 104.5, 102.5, 103, 5, 1704070800000, "42"], None),  # extra values ignored
])
def test_json_rows_of_the_wrong_shape_are_bad_rows(row, reason):
    rows = candles()
    rows[57] = row
    parsed = parse_ohlcv(json.dumps(rows).encode(), "BTC_AUD-1h.json")
    if reason is None:
        assert len(parsed.candles) == 200 and parsed.rejected == []
        assert parsed.candles.iloc[57]["open"] == 104.0
    else:
        assert [str(r) for r in parsed.rejected] == [reason]


def test_csv_lines_with_too_many_fields_are_rejected_by_line_and_blank_lines_skipped():
    data = as_csv(candles()).decode().splitlines()
    data[10] += ",1,2"  # line 11: two fields too many
    data.insert(20, "")  # a blank line: no row at all
    parsed = parse_ohlcv(("\n".join(data) + "\n").encode(), "BTC_AUD-1h.csv")
    assert parsed.rows_read == 200 and len(parsed.candles) == 199
    assert [str(r) for r in parsed.rejected] == ["line 11: has 8 fields, the header 6"]
    data[30] = data[30].replace(",", ",-", 1)  # line 31 (after the blank line 21): a negative open
    parsed = parse_ohlcv(("\n".join(data) + "\n").encode(), "BTC_AUD-1h.csv")
    assert [str(r).split(":")[0] for r in parsed.rejected] == ["line 11", "line 31"]


def test_an_identical_repeat_is_one_candle_and_a_conflicting_one_rejects_that_time():
    rows = candles()
    rows.insert(30, list(rows[29]))  # the same candle twice
    rows.insert(80, [rows[79][0], 1, 2, 0.5, 1.5, 3])  # one time, two sets of values
    parsed = parse_ohlcv(as_json(rows), "BTC_AUD-1h.json")
    assert parsed.rows_read == 202 and parsed.duplicates == 1
    assert len(parsed.candles) == 200 - 1  # the conflicting time is gone, both its rows rejected
    assert [str(r) for r in parsed.rejected] == [
        "row 80: time 2024-01-04 06:00 appears again with other values (row 81)",
        "row 81: time 2024-01-04 06:00 appears again with other values (row 80)",
    ]
    times = parsed.candles["open_time"]
    assert times.is_unique and times.is_monotonic_increasing


def test_more_than_one_percent_bad_refuses_the_whole_file():
    rows = candles()
    for i in (5, 6, 7):
        rows[i][5] = -1
    with pytest.raises(OhlcvFileError) as refused:
        parse_ohlcv(as_json(rows), "BTC_AUD-1h.json")
    message = str(refused.value)
    assert message.startswith("BTC_AUD-1h.json: 3 of 200 rows are bad (1.5 %, more than 1 % allowed)")
    assert "Nothing imported" in message and "row 6: volume -1 is negative" in message and "\n" not in message
    assert len(parse_ohlcv(as_json(rows), "BTC_AUD-1h.json", max_bad_share=0.02).candles) == 197
    rows[8][5] = -1
    with pytest.raises(OhlcvFileError, match="4 of 200"):
        parse_ohlcv(as_json(rows), "BTC_AUD-1h.json", max_bad_share=0.015)


def test_a_file_of_another_timeframe_is_refused():
    # 5-minute candles called hourly: most are off the hourly grid.
    with pytest.raises(OhlcvFileError, match=r"rows are bad .*not on the 1h grid"):
        parse_ohlcv(as_json(candles(step=300)), "BTC_AUD-1h.json")
    # Hourly candles called 5-minute: on the grid, but no two are 5 minutes apart.
    with pytest.raises(OhlcvFileError, match=r"no two candles are 5m apart \(every gap is a multiple of 1h\)"):
        parse_ohlcv(as_json(candles()), "BTC_AUD-5m.json")
    # A few gaps are normal (an exchange's downtime): a gap is no reason to refuse.
    rows = candles(step=300)
    del rows[40:60]
    assert len(parse_ohlcv(as_json(rows), "BTC_AUD-5m.json").candles) == 180


@pytest.mark.parametrize("name, data, message", [
    ("BTC_AUD-1h.json", b"", "the file is empty: no candles to import"),
    ("BTC_AUD-1h.csv", b"  \n\n", "the file is empty: no candles to import"),
    ("BTC_AUD-1h.json.gz", gzip.compress(b"", mtime=0), "the file is empty: no candles to import"),
    ("BTC_AUD-1h.json", b"[]", "the file holds no candles (an empty list)"),
    ("BTC_AUD-1h.csv", b"date,open,high,low,close,volume\n", "the file holds no candles (a header and nothing else)"),
    ("BTC_AUD-1h.json", b"[[1704067200000, 0, 0, 0, 0, 0]]", "no good rows among 1: row 1: open 0 is not positive"),
])
def test_an_empty_file_is_a_clear_error(name, data, message):
    with pytest.raises(OhlcvFileError) as refused:
        parse_ohlcv(data, name)
    assert str(refused.value) == f"{name}: {message}"


@pytest.mark.parametrize("name, data, message", [
    ("BTC_AUD-1h.txt", b"x", "unknown format (.txt): expected freqtrade or ccxt OHLCV as .json, .json.gz, .csv"),
    ("BTC_AUD-1h.xlsx", b"x", "unknown format (.xlsx)"),
    ("README", b"x", "unknown format (no extension)"),
    ("BTC_AUD-1h.json.gz", b"not gzip", "is not a readable gzip file"),
    ("BTC_AUD-1h.json", b"[[1, 2", "is not valid JSON"),
    ("BTC_AUD-1h.json", b'{"data": []}', "expected a JSON list of [time, open, high, low, close, volume] rows, got dict"),
    ("BTC_AUD-1h.json", b"\xff\xfe\x00", "is not valid JSON"),
    ("BTC_AUD-1h.csv", b"1704067200000,1,2,0.5,1.5,3\n", "no date (or timestamp), open, high, low, close, volume "
                                                        "column: the first line must be a header"),
    ("BTC_AUD-1h.csv", b"date;open;high;low;close;volume\n", "no date (or timestamp), open, high, low, close, volume"),
    ("BTC_AUD-1h.csv", b"date,open,high,low,close\n2024-01-01,1,2,0.5,1.5\n", "no volume column"),
    ("BTC_AUD-1h.csv", b"date,open,Open,high,low,close,volume\n", "has two open columns"),
    ("BTC_AUD-1h.csv", b"\xff\xfe\x00\x81,1\n", "no date (or timestamp), open, high, low, close, volume column"),
])
def test_an_unknown_or_unreadable_file_is_a_one_line_error(name, data, message):
    with pytest.raises(OhlcvFileError) as refused:
        parse_ohlcv(data, name)
    assert str(refused.value).startswith(f"{name}: {message}") and "\n" not in str(refused.value)
    assert isinstance(refused.value, ValueError) and refused.value.file_name == name


@pytest.mark.parametrize("suffix", [".feather", ".parquet"])
def test_feather_and_parquet_without_pyarrow_say_to_convert(suffix):
    if any(importlib.util.find_spec(m) for m in ("pyarrow", "fastparquet")):
        pytest.skip("pyarrow is installed here: these formats are read")
    with pytest.raises(OhlcvFileError, match=r"files need pyarrow, which is not installed: convert to JSON or CSV "
                                             r"\(freqtrade convert-data --format-from"):
        parse_ohlcv(b"ARROW1", f"BTC_AUD-1h{suffix}")


def test_the_error_names_the_file_and_never_its_folder(tmp_path):
    folder = tmp_path / "private-folder"
    path = write(folder, "BTC_AUD-1h.json", b"[[1, 2")
    with pytest.raises(OhlcvFileError) as refused:
        read_ohlcv_file(path)
    assert str(refused.value).startswith("BTC_AUD-1h.json: ") and "private-folder" not in str(refused.value)
    with pytest.raises(OhlcvFileError, match=r"^BTC_AUD-1h\.csv: cannot be read"):
        read_ohlcv_file(folder / "BTC_AUD-1h.csv")


def test_small_prices_are_kept_exactly_and_written_out_without_exponents():
    rows = [[(START + i * HOUR) * 1000, 1.234e-05, 1.3e-05, 1.2e-05, 1.25e-05, 5e9] for i in range(20)]
    parsed = parse_ohlcv(as_json(rows), "PEPE_AUD-1h.json")
    assert parsed.candles["open"].iloc[0] == 1.234e-05
    assert format_number(1.234e-05) == "0.00001234" and format_number(5e9) == "5000000000"
    assert format_number(102345.5) == "102345.5" and format_number(0.0) == "0"


# --- property: anything in, candles or OhlcvFileError out --------------------------------------

odd = st.one_of(
    st.sampled_from([None, "", "nan", "NaN", "inf", "-1", "0", "1e999", "abc", True, False, [], {}, 1e308, -1e308,
                     10**400, "2024-01-01T00:00:00Z", "\x00", ",", '"', "\n"]),
    st.floats(allow_nan=True, allow_infinity=True),
    st.integers(min_value=-(10**20), max_value=10**20),
    st.text(max_size=12),
)


@st.composite
def files(draw):
    rows = candles(n=draw(st.integers(min_value=0, max_value=40)), step=draw(st.sampled_from([60, 300, HOUR])))
    for _ in range(draw(st.integers(min_value=0, max_value=6))):
        if not rows:
            break
        i = draw(st.integers(min_value=0, max_value=len(rows) - 1))
        action = draw(st.sampled_from(["value", "drop", "repeat", "truncate", "replace"]))
        row = rows[i]
        if action == "drop":
            del rows[i]
        elif action == "replace" or not isinstance(row, list):
            rows[i] = draw(odd)
        elif action == "value" and row:
            row[draw(st.integers(min_value=0, max_value=len(row) - 1))] = draw(odd)
        elif action == "repeat":
            rows.insert(i, list(row))
        elif action == "truncate":
            rows[i] = row[: draw(st.integers(min_value=0, max_value=5))]
    fmt = draw(st.sampled_from(["json", "csv", "csv-timestamp"]))
    if fmt == "json":
        try:
            data = json.dumps(rows).encode()
        except (ValueError, TypeError):
            data = b"[]"
        name = "BTC_AUD-1h.json"
    else:
        lines = ["timestamp" if fmt == "csv-timestamp" else "date", "open", "high", "low", "close", "volume"]
        text = ",".join(lines) + "\n" + "\n".join(
            ",".join("" if v is None else str(v) for v in (r if isinstance(r, list) else [r])) for r in rows)
        data = text.encode("utf-8", errors="replace")
        name = "BTC_AUD-1h.csv"
    if draw(st.booleans()):
        cut = draw(st.integers(min_value=0, max_value=len(data)))
        data = data[:cut] + draw(st.binary(max_size=8)) + data[cut:]
    return name, data, draw(st.sampled_from([None, "1m", "5m", "1h"]))


@hypothesis_settings(max_examples=300, deadline=None, derandomize=True, database=None,
                     suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(files())
def test_any_file_gives_checked_candles_or_the_typed_error(case):
    name, data, timeframe = case
    try:
        parsed = parse_ohlcv(data, name, timeframe=timeframe, max_bad_share=0.5)
    except OhlcvFileError as exc:
        assert str(exc).startswith(f"{name}: ") and "\n" not in str(exc)
        event("refused: " + re.sub(r"[\d,.]+", "N", " ".join(exc.reason.split()[:4])))
        return
    event("parsed, with rejected rows" if parsed.rejected else "parsed")
    frame = parsed.candles
    assert not frame.empty and list(frame.columns) == ["open_time", "open", "high", "low", "close", "volume"]
    assert str(frame["open_time"].dt.tz) == "UTC"
    seconds = frame["open_time"].astype("int64") // 10**6
    assert (seconds % parsed.series.interval_seconds == 0).all()
    assert frame["open_time"].is_unique and frame["open_time"].is_monotonic_increasing
    values = frame[["open", "high", "low", "close", "volume"]].to_numpy()
    assert np.isfinite(values).all() and (values[:, :4] > 0).all() and (values[:, 4] >= 0).all()
    assert ((frame["low"] <= frame["open"]) & (frame["open"] <= frame["high"])).all()
    assert ((frame["low"] <= frame["close"]) & (frame["close"] <= frame["high"])).all()
    assert parsed.rows_read == len(frame) + len(parsed.rejected) + parsed.duplicates
    assert all(r.number >= 1 and r.reason for r in parsed.rejected)


# --- the import, on SQLite and PostgreSQL ------------------------------------------------------


# database_url and engine: conftest's, on SQLite and PostgreSQL (a missing PostgreSQL fails in CI).


def stored(engine) -> list[tuple]:
    c = ImportedCandle.__table__.c
    with engine.connect() as conn:
        return [tuple(r) for r in conn.execute(sa.select(
            c.id, c.source, c.coin, c.market, c.interval_seconds, c.open_time, c.open, c.high, c.low, c.close,
            c.volume, c.file_name, c.imported_at).order_by(c.source, c.open_time))]


@pytest.mark.integration
def test_a_reimport_changes_nothing_and_a_corrected_file_updates_only_its_rows(engine, tmp_path):
    rows = candles(n=300)
    rows[10][1:5] = [1.234e-05, 1.3e-05, 1.2e-05, 1.25e-05]  # a PEPE-sized price survives exactly
    path = write(tmp_path / "v1", "BTC_AUD-1h.json", as_json(rows))
    lines: list[str] = []
    report = import_ohlcv(engine, [path], "freqtrade:binance", log=lines.append, chunk=64)
    [file] = report.files
    assert (file.rows_read, file.imported, file.new, file.updated, file.unchanged, file.rejected) == (300, 300, 300, 0, 0, 0)
    assert (file.first, file.last) == (datetime(2024, 1, 1, tzinfo=timezone.utc),
                                       datetime(2024, 1, 1, tzinfo=timezone.utc) + timedelta(hours=299))
    # Progress for a big file: every chunk, rows so far of the total.
    assert [line for line in lines if "rows written" in line] == [
        f"BTC_AUD-1h.json: {n} / 300 rows written" for n in (64, 128, 192, 256, 300)]
    assert lines[-1].startswith("BTC_AUD-1h.json: btc/aud 1h 2024-01-01 00:00 .. 2024-01-13 11:00 UTC: 300 rows read, "
                                "300 imported (300 new, 0 updated, 0 unchanged), 0 rejected")
    first = stored(engine)
    assert len(first) == 300 and first[10][6:11] == (1.234e-05, 1.3e-05, 1.2e-05, 1.25e-05, 20.0)
    assert {r[1:5] for r in first} == {("freqtrade:binance", "btc", "aud", 3600)}
    assert first[0][5] == datetime(2024, 1, 1, tzinfo=timezone.utc) and first[0][11] == "BTC_AUD-1h.json"

    again = import_ohlcv(engine, [path], "freqtrade:binance", log=lines.append, chunk=64).files[0]
    assert (again.imported, again.new, again.updated, again.unchanged) == (300, 0, 0, 300)
    assert stored(engine) == first  # not a value, not an imported_at, not an id changed

    # A corrected file: one close mended, one candle more; its other rows are as they were.
    rows[20][4] = rows[20][4] + 0.25
    rows.append([(START + 300 * HOUR) * 1000, 100.0, 101.0, 99.0, 100.5, 1.0])
    corrected = write(tmp_path / "v2", "BTC_AUD-1h.csv", as_csv(rows))
    fixed = import_ohlcv(engine, [corrected], "freqtrade:binance", log=lines.append).files[0]
    assert (fixed.imported, fixed.new, fixed.updated, fixed.unchanged) == (301, 1, 1, 299)
    after = stored(engine)
    assert len(after) == 301
    assert after[20][9] == rows[20][4] and after[20][11] == "BTC_AUD-1h.csv" and after[20][12] > first[20][12]
    assert after[:20] == first[:20] and after[21:300] == first[21:300]

    # A shorter file deletes nothing; another source keeps its own rows beside these.
    short = write(tmp_path / "v3", "BTC_AUD-1h.json", as_json(rows[:50]))
    assert import_ohlcv(engine, [short], "freqtrade:binance", log=lines.append).files[0].unchanged == 50
    assert import_ohlcv(engine, [short], "ccxt:kraken", log=lines.append).files[0].new == 50
    assert len(stored(engine)) == 351


@pytest.mark.integration
def test_a_folder_imports_each_supported_file_and_a_refused_file_writes_nothing(engine, tmp_path):
    folder = tmp_path / "history"
    write(folder, "BTC_AUD-1h.json", as_json(candles()))
    write(folder, "ETH_AUD-5m.csv.gz", as_csv(candles(step=300, price=3000.0)))
    bad = candles()
    for i in range(10):
        bad[i][2] = 1.0  # high below low: 5 % of the file
    write(folder, "SOL_AUD-1h.json", as_json(bad))
    write(folder, "notes.txt", b"not a candle")  # not a supported name: not even looked at
    write(folder / "nested", "XRP_AUD-1h.json", as_json(candles()))  # subfolders are not walked
    lines: list[str] = []
    report = import_ohlcv(engine, [folder], "freqtrade:binance", log=lines.append)
    assert [f.file_name for f in report.files] == ["BTC_AUD-1h.json", "ETH_AUD-5m.csv.gz", "SOL_AUD-1h.json"]
    [refused] = report.refused
    assert refused.refused.startswith("10 of 200 rows are bad (5.0 %") and "row 1: high 1 is below low" in refused.refused
    assert lines[-1].startswith("SOL_AUD-1h.json: refused, nothing imported: 10 of 200 rows are bad")
    assert report.imported == 400 and report.rejected == 0
    assert {(r[2], r[4]) for r in stored(engine)} == {("btc", 3600), ("eth", 300)}
    assert report.summary() == ("3 file(s) from freqtrade:binance, 1 refused: 400 rows imported (400 written, the "
                                "rest unchanged), 0 rejected")


@pytest.mark.integration
def test_rejected_rows_are_reported_and_the_good_ones_imported(engine, tmp_path):
    rows = candles(n=1000)
    rows[3][5] = -1
    rows[500][0] += 1000
    path = write(tmp_path, "BTC_AUD-1h.json", as_json(rows))
    [file] = import_ohlcv(engine, [path], "freqtrade:binance", log=lambda line: None).files
    assert (file.rows_read, file.imported, file.rejected) == (1000, 998, 2)
    assert file.reasons == ["row 4: volume -1 is negative", "row 501: time 2024-01-21 20:00:01 is not on the 1h grid"]
    assert len(stored(engine)) == 998


@pytest.mark.parametrize("paths, kwargs, message", [
    (["missing.json"], {}, "missing.json: no such file or folder"),
    ([], {}, "no OHLCV files in the paths given"),
    (["{empty}"], {}, "no OHLCV files in {empty}: put freqtrade JSON or CSV files there (named like BTC_AUD-1h.json"),
    (["{empty}"], {"source": " "}, "give the source: who made the history, e.g. freqtrade:binance"),
    (["{empty}"], {"timeframe": "1w"}, "timeframe '1w' is not supported"),
    (["{empty}"], {"market": "a-u-d"}, "market 'a-u-d' is not a symbol"),
])
def test_bad_input_is_refused_before_anything_is_read(tmp_path, paths, kwargs, message):
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "README.md").write_text("no candles here")
    engine = get_engine(f"sqlite:///{tmp_path / 'never.db'}")
    arguments = {"source": "freqtrade:binance", **kwargs}
    with pytest.raises(HistoryImportError) as refused:
        import_ohlcv(engine, [p.format(empty=empty) for p in paths], **arguments)
    assert str(refused.value).startswith(message.format(empty=empty))


# --- the asset ---------------------------------------------------------------------------------


def import_config(**config) -> dict:
    return {"ops": {"exchange_imported_candles": {"config": {"source": "freqtrade:binance", **config}}}}


def failure_message(result) -> str:
    [failure] = result.get_step_failure_events()
    return failure.step_failure_data.user_failure_data.description


@pytest.mark.integration
def test_the_asset_imports_the_history_folder_and_says_what_it_did(database_url, engine, tmp_path):
    folder = tmp_path / "history"
    pepe = [[(START + i * HOUR) * 1000, 1.234e-05, 1.3e-05, 1.2e-05, 1.25e-05, 5e9] for i in range(300)]
    pepe[7][5] = -1
    write(folder, "PEPE_AUD-1h.json", as_json(pepe))
    write(folder, "BTC_AUD-1d.csv", as_csv(candles(n=30, step=86400, price=150000.0)))
    resources = {"ledger_db": LedgerDatabase(url=database_url, auto_migrate=False),
                 "history_files": HistoryFilesResource(folder=str(folder))}
    result = materialize([exchange_imported_candles], resources=resources, run_config=import_config())
    assert result.success
    metadata = {k: getattr(v, "value", v) for k, v in
                result.asset_materializations_for_node("exchange_imported_candles")[0].metadata.items()}
    assert metadata["rows_imported"] == 329 and metadata["rows_written"] == 329 and metadata["rows_rejected"] == 1
    assert metadata["dagster/row_count"] == 329 and metadata["dagster/table_name"] == "exchange_imported_candles"
    assert metadata["rejected"] == {"PEPE_AUD-1h.json": ["row 8: volume -1 is negative"]}
    assert metadata["refused"] == {}
    assert metadata["time_range"] == {"btc/aud 1d": "2024-01-01 00:00 .. 2024-01-30 00:00 UTC",
                                      "pepe/aud 1h": "2024-01-01 00:00 .. 2024-01-13 11:00 UTC"}
    [pepe_line] = [r.data for r in metadata["files"].records if r.data["file"] == "PEPE_AUD-1h.json"]
    assert [pepe_line[k] for k in ("file", "series", "read", "imported", "new", "updated", "rejected", "from")] == [
        "PEPE_AUD-1h.json", "pepe/aud 1h", "300", "299", "299", "0", "1", "2024-01-01 00:00"]
    preview = [r.data for r in metadata["preview"].records]
    cells = " ".join(str(v) for row in preview for v in row.values())
    assert "0.0000125" in cells and "5000000000" in cells and "e-0" not in cells and "e+0" not in cells
    shown = [[row[k] for k in ("coin", "market", "timeframe", "open_time")] for row in preview]
    assert shown == [["btc", "aud", "1d", f"2024-01-{day} 00:00"] for day in (30, 29, 28, 27, 26)] + \
        [["pepe", "aud", "1h", f"2024-01-13 {hour:02d}:00"] for hour in (11, 10, 9, 8, 7)]

    again = materialize([exchange_imported_candles], resources=resources, run_config=import_config())
    metadata = again.asset_materializations_for_node("exchange_imported_candles")[0].metadata
    assert metadata["rows_written"].value == 0 and metadata["dagster/row_count"].value == 329


@pytest.mark.integration
def test_an_empty_history_folder_fails_the_run_saying_where_to_put_files(database_url, engine, tmp_path):
    resources = {"ledger_db": LedgerDatabase(url=database_url, auto_migrate=False),
                 "history_files": HistoryFilesResource(folder=str(tmp_path / "history"))}
    result = materialize([exchange_imported_candles], resources=resources, run_config=import_config(),
                         raise_on_error=False)
    assert not result.success
    assert failure_message(result) == (
        f"the history folder {tmp_path / 'history'} does not exist (OMC_HISTORY_DIR): put freqtrade JSON or CSV "
        f"files in {tmp_path / 'history'} (named like BTC_AUD-1h.json), or give paths in the run config; "
        "nothing was written")
    (tmp_path / "history").mkdir()
    result = materialize([exchange_imported_candles], resources=resources, run_config=import_config(),
                         raise_on_error=False)
    assert failure_message(result).startswith(f"no OHLCV files in {tmp_path / 'history'}: put freqtrade JSON or CSV")
    assert stored(engine) == []


@pytest.mark.integration
def test_a_refused_file_fails_the_run_and_the_good_files_are_imported(database_url, engine, tmp_path):
    write(tmp_path / "in", "BTC_AUD-1h.json", as_json(candles()))
    write(tmp_path / "in", "ETH_AUD-1h.json", b"[[1, 2")
    resources = {"ledger_db": LedgerDatabase(url=database_url, auto_migrate=False),
                 "history_files": HistoryFilesResource(folder=str(tmp_path / "unused"))}
    result = materialize([exchange_imported_candles], resources=resources, raise_on_error=False,
                         run_config=import_config(paths=[str(tmp_path / "in")], timeframe="1h"))
    assert not result.success
    assert failure_message(result).startswith("1 of 2 file(s) refused, nothing of them written (the others were "
                                              "imported): ETH_AUD-1h.json: is not valid JSON")
    assert len(stored(engine)) == 200


def test_the_history_folder_setting_defaults_under_the_home_folder(tmp_path):
    assert settings.load({"OMC_HOME": str(tmp_path)}).history_folder == (tmp_path / "history").resolve()
    chosen = settings.load({"OMC_HOME": str(tmp_path), "OMC_HISTORY_DIR": str(tmp_path / "freqtrade")})
    assert chosen.history_folder == (tmp_path / "freqtrade").resolve()
    assert build_resources(chosen)["history_files"].folder == str((tmp_path / "freqtrade").resolve())


# --- the command line --------------------------------------------------------------------------


@pytest.mark.integration
def test_the_command_imports_prints_each_file_and_exits_1_on_a_refused_one(database_url, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("OMC_DATABASE_URL", database_url)
    good = write(tmp_path, "BTC_AUD-1h.json", as_json(candles()))
    with pytest.raises(SystemExit) as done:
        cli.main(["history", "import", str(good), "--source", "freqtrade:binance"])
    out = capsys.readouterr().out
    assert done.value.code == 0
    assert "BTC_AUD-1h.json: btc/aud 1h 2024-01-01 00:00 .. 2024-01-09 07:00 UTC: 200 rows read, 200 imported" in out
    assert out.splitlines()[-1] == ("1 file(s) from freqtrade:binance: 200 rows imported (200 written, the rest "
                                    "unchanged), 0 rejected")
    bad = write(tmp_path, "odd name.csv", as_csv(candles()))
    with pytest.raises(SystemExit) as done:
        cli.main(["history", "import", str(good), str(bad), "--source", "freqtrade:binance", "--coin", "BTC"])
    out = capsys.readouterr().out
    assert done.value.code == 1
    assert "odd name.csv: refused, nothing imported: cannot tell the market and timeframe from the name" in out
    with pytest.raises(SystemExit) as done:
        cli.main(["history", "import", str(bad), "--source", "s", "--coin", "btc", "--market", "aud",
                  "--timeframe", "1h"])
    assert done.value.code == 0 and "0 written" in capsys.readouterr().out


@pytest.mark.parametrize("arguments, message", [
    (["missing.json", "--source", "freqtrade:binance"], "omc history import: missing.json: no such file or folder"),
    (["BTC_AUD-1h.json", "--source", "freqtrade:binance", "--timeframe", "2w"],
     "omc history import: timeframe '2w' is not supported: one of 1m, 3m, 5m, 15m, 30m, 1h, 2h, 4h, 6h, 8h, 12h, 1d"),
    (["--source", "freqtrade:binance"], "omc history import: no OHLCV files in {home}/history: put freqtrade JSON"),
])
def test_the_command_says_what_is_wrong_in_one_line_without_a_traceback(tmp_path, arguments, message):
    write(tmp_path, "BTC_AUD-1h.json", as_json(candles()))
    (tmp_path / "home" / "history").mkdir(parents=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith("OMC_")}
    env["OMC_HOME"] = str(tmp_path / "home")
    result = subprocess.run([OMC, "history", "import", *arguments], cwd=tmp_path, env=env, capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 1
    assert result.stderr.startswith(message.format(home=(tmp_path / "home").resolve()))
    assert len(result.stderr.strip().splitlines()) == 1 and "Traceback" not in result.stderr
