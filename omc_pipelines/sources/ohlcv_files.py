"""OHLCV history from files: freqtrade's JSON, freqtrade's and ccxt's CSV, gzipped or not.

Pure: a file's bytes and name in, checked candles out (a pandas frame); nothing here touches
the database. The pair and the timeframe come from freqtrade's file names (``BTC_AUD-1h.json``,
``BTC_USDT-5m.csv.gz``) unless given.

What a file may hold:

- JSON (freqtrade's ``--data-format-ohlcv json``/``jsongz``): a list of
  ``[timestamp_ms, open, high, low, close, volume]``; numbers given as strings are read, and
  values after the sixth are ignored (Binance's raw klines read the same way).
- CSV: a header naming ``date`` (ISO 8601, or an epoch in ms) or ``timestamp`` (an epoch in ms
  or s, whichever the file's magnitudes say), and ``open, high, low, close, volume``, in any
  order, case ignored, other columns ignored. ISO times without an offset are UTC (as
  freqtrade and ccxt write them). Blank lines are skipped.
- Feather or parquet: only where pandas can read them (pyarrow), which this project does not
  install; otherwise the error says to convert the file.

A row is rejected, with its line (CSV) or row (JSON, 1-based) and the reason, when a price is
missing, not a number, not finite or not positive; the volume is missing, not finite or
negative; high is below low; open or close lies outside [low, high]; the time is missing, not on
the timeframe's grid (epoch-aligned, as exchanges cut candles), before 2009-01-03 or in the
future. A time that appears twice with the same values is one candle; with different values
every row of that time is rejected (which one is right is not ours to guess). The good rows
stand, unless more than ``MAX_BAD_SHARE`` of the rows are bad, or no two candles are one
timeframe apart: then it is the wrong file (a wrong timeframe, a wrong unit) and the whole
file is refused with :class:`OhlcvFileError`.
"""

from __future__ import annotations

import gzip
import importlib.util
import io
import json
import math
import re
import warnings
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path, PureWindowsPath
from typing import Any

import numpy as np
import pandas as pd

TIMEFRAMES: dict[str, int] = {
    "1m": 60, "3m": 180, "5m": 300, "15m": 900, "30m": 1800,
    "1h": 3600, "2h": 7200, "4h": 14400, "6h": 21600, "8h": 28800, "12h": 43200,
    "1d": 86400,
}
# What a file name may end in, and the format it means.
SUFFIXES: dict[str, str] = {
    ".json": "json", ".json.gz": "json", ".csv": "csv", ".csv.gz": "csv",
    ".feather": "feather", ".parquet": "parquet",
}
PRICES = ("open", "high", "low", "close")
VALUES = (*PRICES, "volume")
# More bad rows than this share of a file: the file is refused whole.
MAX_BAD_SHARE = 0.01
# The reasons an error message or a report shows; the rest are counted.
SHOWN_REASONS = 5
# No crypto market traded before Bitcoin's genesis block: an earlier time is a wrong unit.
GENESIS = datetime(2009, 1, 3, tzinfo=timezone.utc)
# Epoch numbers at or above this are milliseconds (1e11 s is the year 5138; 1e11 ms is 1973).
_MS_FROM = 1e11
# freqtrade's names: BTC_USDT-1h.json, BTC_USDT_USDT-1h-futures.feather (futures: settle currency, kind).
_NAME = re.compile(
    r"^(?P<coin>[A-Za-z0-9]+)_(?P<market>[A-Za-z0-9]+)(?:_(?P<settle>[A-Za-z0-9]+))?"
    r"-(?P<timeframe>\d+[A-Za-z]+)(?:-(?P<kind>[A-Za-z_]+))?$"
)
_SYMBOL = re.compile(r"^[a-z0-9]{1,32}$")
_MARKET = re.compile(r"^[a-z0-9]{1,16}$")
_SKIPPED_LINE = re.compile(r"Skipping line (\d+): expected (\d+) fields, saw (\d+)")


class OhlcvFileError(ValueError):
    """A file that cannot be imported: its name (never its folder) and why. Nothing of it is written."""

    def __init__(self, file_name: str, reason: str):
        self.file_name = file_name
        self.reason = reason
        super().__init__(f"{file_name}: {reason}")


@dataclass(frozen=True)
class Series:
    """Whose candles a file holds: coin and market (lower case) and the timeframe."""

    coin: str
    market: str
    timeframe: str

    @property
    def interval_seconds(self) -> int:
        return TIMEFRAMES[self.timeframe]

    def __str__(self) -> str:
        return f"{self.coin}/{self.market} {self.timeframe}"


@dataclass(frozen=True)
class Rejected:
    """One bad row: where it is in the file (a line of a CSV, a row of a JSON list) and why."""

    number: int
    reason: str
    unit: str = "line"

    def __str__(self) -> str:
        return f"{self.unit} {self.number}: {self.reason}"


@dataclass
class OhlcvFile:
    """A file's good candles, and what was wrong with the rest."""

    file_name: str
    format: str
    series: Series
    # open_time (datetime64, UTC), open, high, low, close, volume (float64); sorted, one row a time.
    candles: pd.DataFrame
    rows_read: int
    rejected: list[Rejected] = field(default_factory=list)
    # Rows that repeated another row exactly (same time, same values): kept once.
    duplicates: int = 0

    @property
    def first(self) -> datetime:
        return self.candles["open_time"].iloc[0].to_pydatetime()

    @property
    def last(self) -> datetime:
        return self.candles["open_time"].iloc[-1].to_pydatetime()


# --- names and formats -----------------------------------------------------------------------


def file_format(file_name: str) -> tuple[str, bool]:
    """The format a name says (``json``, ``csv``, ``feather``, ``parquet``) and whether it is gzipped."""
    lower = file_name.lower()
    for suffix in sorted(SUFFIXES, key=len, reverse=True):
        if lower.endswith(suffix):
            return SUFFIXES[suffix], suffix.endswith(".gz")
    suffix = "".join(Path(file_name).suffixes[-2:]) or "no extension"
    raise OhlcvFileError(file_name, f"unknown format ({suffix}): expected freqtrade or ccxt OHLCV as "
                                    f"{', '.join(SUFFIXES)}")


def is_supported(file_name: str) -> bool:
    try:
        file_format(file_name)
    except OhlcvFileError:
        return False
    return True


def _stem(file_name: str) -> str:
    lower = file_name.lower()
    for suffix in sorted(SUFFIXES, key=len, reverse=True):
        if lower.endswith(suffix):
            return file_name[: -len(suffix)]
    return file_name


def timeframe_seconds(timeframe: str) -> int:
    """A timeframe's length; ValueError naming the supported ones otherwise."""
    if timeframe not in TIMEFRAMES:
        raise ValueError(f"timeframe {timeframe!r} is not supported: one of {', '.join(TIMEFRAMES)}")
    return TIMEFRAMES[timeframe]


def check_symbol(value: str, what: str) -> str:
    """A coin or market symbol as the ledgers store it (lower case, letters and digits)."""
    symbol = str(value).strip().lower()
    if not (_SYMBOL if what == "coin" else _MARKET).match(symbol):
        raise ValueError(f"{what} {value!r} is not a symbol (letters and digits, like btc or aud)")
    return symbol


def series_from_name(file_name: str, coin: str | None = None, market: str | None = None,
                     timeframe: str | None = None) -> Series:
    """Pair and timeframe from a freqtrade file name, each overridden by the argument given."""
    match = _NAME.match(_stem(file_name))
    if match and match["kind"] and match["kind"].lower() != "spot":
        raise OhlcvFileError(file_name, f"a freqtrade {match['kind']} file: only spot candles are imported")
    found = {"coin": coin or (match and match["coin"]), "market": market or (match and match["market"]),
             "timeframe": timeframe or (match and match["timeframe"])}
    missing = [what for what, value in found.items() if not value]
    if missing:
        raise OhlcvFileError(file_name, f"cannot tell the {' and '.join(missing)} from the name (expected one like "
                                        f"BTC_AUD-1h.json): rename the file or give {', '.join(missing)}")
    try:
        return Series(check_symbol(found["coin"], "coin"), check_symbol(found["market"], "market"),
                      _known_timeframe(found["timeframe"]))
    except ValueError as exc:
        raise OhlcvFileError(file_name, str(exc)) from None


def _known_timeframe(timeframe: str) -> str:
    timeframe_seconds(timeframe)
    return timeframe


# --- reading ---------------------------------------------------------------------------------


def read_ohlcv_file(path: str | Path, *, coin: str | None = None, market: str | None = None,
                    timeframe: str | None = None, max_bad_share: float = MAX_BAD_SHARE) -> OhlcvFile:
    """:func:`parse_ohlcv` of a file on disk."""
    path = Path(path)
    file_format(path.name)  # an unknown format is refused before the file is read
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise OhlcvFileError(path.name, f"cannot be read ({exc.strerror or type(exc).__name__})") from None
    return parse_ohlcv(data, path.name, coin=coin, market=market, timeframe=timeframe, max_bad_share=max_bad_share)


def parse_ohlcv(data: bytes, file_name: str, *, coin: str | None = None, market: str | None = None,
                timeframe: str | None = None, max_bad_share: float = MAX_BAD_SHARE,
                now: datetime | None = None) -> OhlcvFile:
    """A file's good candles and its rejected rows, or :class:`OhlcvFileError`.

    ``file_name`` gives the format and, unless ``coin``, ``market`` or ``timeframe`` say
    otherwise, the series; only its last part is used (and shown)."""
    name = PureWindowsPath(file_name).name
    kind, gzipped = file_format(name)
    series = series_from_name(name, coin, market, timeframe)
    if gzipped:
        data = _gunzip(data, name)
    if not data.strip():
        raise OhlcvFileError(name, "the file is empty: no candles to import")
    if kind == "json":
        raw = _from_json(data, name)
    elif kind == "csv":
        raw = _from_csv(data, name)
    else:
        raw = _from_arrow(data, name, kind)
    return _checked(raw, name, kind, series, max_bad_share, now or datetime.now(timezone.utc))


def _gunzip(data: bytes, name: str) -> bytes:
    try:
        return gzip.decompress(data)
    except (OSError, EOFError, zlib.error) as exc:
        raise OhlcvFileError(name, f"is not a readable gzip file ({exc})") from None


@dataclass
class _Raw:
    """A file's rows before any check: one float array per value, times as epoch seconds
    (NaN where missing or not a time), and how to show a row's original values."""

    numbers: np.ndarray  # the line or row number of each row
    unit: str  # "line" or "row"
    seconds: np.ndarray
    values: dict[str, np.ndarray]
    original: Callable[[str, int], Any]  # (column, index) -> the value as the file wrote it
    broken: dict[int, str] = field(default_factory=dict)  # index -> why the row cannot be read at all
    unread: list[Rejected] = field(default_factory=list)  # rows the reader could not even place


def _from_json(data: bytes, name: str) -> _Raw:
    try:
        rows = json.loads(data)
    except (ValueError, RecursionError) as exc:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
        raise OhlcvFileError(name, f"is not valid JSON ({str(exc).splitlines()[0][:120]})") from None
    if not isinstance(rows, list):
        raise OhlcvFileError(name, f"expected a JSON list of [time, open, high, low, close, volume] rows, "
                                   f"got {type(rows).__name__}")
    if not rows:
        raise OhlcvFileError(name, "the file holds no candles (an empty list)")
    n = len(rows)
    lengths = np.fromiter((len(r) if type(r) is list else -1 for r in rows), dtype=np.int64, count=n)
    broken = {}
    for i in np.flatnonzero(lengths < 6).tolist():
        row = rows[i]
        broken[i] = (f"has {len(row)} values, expected 6 (time, open, high, low, close, volume)"
                     if isinstance(row, list) else f"is a {type(row).__name__}, not a [time, open, ...] list")
    if broken or (lengths != 6).any():
        table = [r[:6] if type(r) is list and len(r) >= 6 else [None] * 6 for r in rows]
    else:
        table = rows
    frame = pd.DataFrame(table, columns=["time", *VALUES])
    columns = {column: _numbers(frame[column]) for column in frame.columns}
    seconds = _epoch_seconds(columns.pop("time"))

    def original(column: str, index: int) -> Any:
        return table[index][(["time", *VALUES]).index(column)]

    return _Raw(np.arange(1, n + 1), "row", seconds, columns, original, broken)


def _numbers(column: pd.Series) -> np.ndarray:
    """Floats from what a file gave; NaN for what is not a number (a bool is not one)."""
    kind = column.dtype.kind
    if kind in "iuf":
        return column.to_numpy(dtype=np.float64, na_value=np.nan)
    if kind == "b":
        return np.full(len(column), np.nan)
    if isinstance(column.dtype, pd.StringDtype):  # text (a CSV column): pandas converts it in C
        return pd.to_numeric(column, errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
    return np.fromiter((_number(v) for v in column.tolist()), dtype=np.float64, count=len(column))


def _number(value: Any) -> float:
    if isinstance(value, bool) or value is None:
        return math.nan
    if isinstance(value, (int, float)):
        try:
            return float(value)
        except OverflowError:
            return math.inf if value > 0 else -math.inf
    if isinstance(value, str):
        try:
            return float(value.strip())
        except ValueError:
            return math.nan
    return math.nan


def _epoch_seconds(numbers: np.ndarray) -> np.ndarray:
    """Epoch numbers in seconds: the file's magnitudes say whether they are ms or s."""
    finite = numbers[np.isfinite(numbers)]
    if finite.size and np.median(np.abs(finite)) >= _MS_FROM:
        return numbers / 1000.0
    return numbers.astype(np.float64, copy=True)


def _from_csv(data: bytes, name: str) -> _Raw:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            frame = pd.read_csv(
                # A stray byte that is not UTF-8 spoils its cell (a bad row if it is a number), not the file.
                io.BytesIO(data), encoding="utf-8-sig", encoding_errors="replace", skip_blank_lines=False,
                keep_default_na=False,
                na_values=[""], on_bad_lines="warn", low_memory=False,
            )
        except (pd.errors.ParserError, pd.errors.EmptyDataError, ValueError, OverflowError) as exc:
            raise OhlcvFileError(name, f"is not a readable CSV file ({str(exc).strip().splitlines()[0][:120]})") \
                from None
    skipped = [(int(m[1]), int(m[2]), int(m[3])) for w in caught for m in _SKIPPED_LINE.finditer(str(w.message))]
    # Line numbers of the rows read: the lines after the header, less those the reader skipped.
    numbers = np.arange(2, len(frame) + len(skipped) + 2)
    if skipped:
        kept = np.ones(len(numbers), dtype=bool)
        kept[[line - 2 for line, _, _ in skipped if 2 <= line < len(numbers) + 2]] = False
        numbers = numbers[kept]
        if len(numbers) != len(frame):  # the reader's line count is not ours (quoted newlines): drop the numbers
            numbers = np.arange(2, len(frame) + 2)
    unread = [Rejected(line, f"has {saw} fields, the header {expected}") for line, expected, saw in skipped]
    # A blank line (every field empty) is no row at all.
    blank = frame.isna().all(axis=1).to_numpy()
    if blank.any():
        frame, numbers = frame.loc[~blank].reset_index(drop=True), numbers[~blank]
    return _from_frame(frame, name, numbers, "line", unread)


def _from_arrow(data: bytes, name: str, kind: str) -> _Raw:
    engines = ("pyarrow",) if kind == "feather" else ("pyarrow", "fastparquet")
    if not any(importlib.util.find_spec(engine) for engine in engines):
        raise OhlcvFileError(name, f"{kind} files need pyarrow, which is not installed: convert to JSON or CSV "
                                   f"(freqtrade convert-data --format-from {kind} --format-to json)")
    try:
        frame = pd.read_feather(io.BytesIO(data)) if kind == "feather" else pd.read_parquet(io.BytesIO(data))
    except Exception as exc:  # the engines raise their own types for a broken file
        raise OhlcvFileError(name, f"is not a readable {kind} file ({type(exc).__name__})") from None
    return _from_frame(frame, name, np.arange(1, len(frame) + 1), "row", [])


def _from_frame(frame: pd.DataFrame, name: str, numbers: np.ndarray, unit: str, unread: list[Rejected]) -> _Raw:
    """A table with a header (CSV, feather, parquet): the columns found by name."""
    frame.columns = [str(c).strip().lower() for c in frame.columns]
    header = ", ".join(frame.columns[:8]) + (", ..." if len(frame.columns) > 8 else "")
    time_column = next((c for c in ("date", "timestamp") if c in frame.columns), None)
    missing = [c for c in VALUES if c not in frame.columns]
    if time_column is None or missing:
        needed = ["date (or timestamp)"] * (time_column is None) + missing
        raise OhlcvFileError(name, f"no {', '.join(needed)} column: the first line must be a header naming "
                                   f"date (or timestamp), open, high, low, close, volume; it is: {header[:200]}")
    for column in (time_column, *VALUES):
        if list(frame.columns).count(column) > 1:
            raise OhlcvFileError(name, f"has two {column} columns")
    values = {column: _numbers(frame[column]) for column in VALUES}
    seconds = _time_seconds(frame[time_column], time_column)

    def original(column: str, index: int) -> Any:
        return frame[time_column if column == "time" else column].iloc[index]

    return _Raw(numbers, unit, seconds, values, original, {}, unread)


def _time_seconds(column: pd.Series, name: str) -> np.ndarray:
    """A time column as epoch seconds: datetimes, ISO text (date only) or epoch numbers."""
    if column.dtype.kind == "M":
        return _datetime_seconds(pd.to_datetime(column, utc=True))
    if name == "timestamp" or column.dtype.kind in "iuf" or _mostly_numbers(column):
        return _epoch_seconds(_numbers(column))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            times = pd.to_datetime(column, utc=True, format="ISO8601", errors="coerce")
        except (ValueError, OverflowError, TypeError):
            times = pd.Series([_iso(v) for v in column.tolist()], dtype="datetime64[us, UTC]")
    return _datetime_seconds(times)


def _mostly_numbers(column: pd.Series) -> bool:
    """Whether a date column holds epoch numbers rather than ISO text, judged on a sample."""
    sample = column.dropna().iloc[:: max(1, len(column) // 200)].tolist()[:200]
    return sum(math.isfinite(_number(value)) for value in sample) * 2 > len(sample)


def _iso(value: Any) -> pd.Timestamp:
    """One ISO time, or NaT: the slow path when a column defeats pandas' vectorised parse."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return pd.to_datetime(value, utc=True, format="ISO8601")
    except (ValueError, OverflowError, TypeError):
        return pd.NaT


def _datetime_seconds(times: pd.Series) -> np.ndarray:
    micros = times.dt.as_unit("us").astype("int64") if not times.isna().any() else None
    if micros is not None:
        return micros.to_numpy() / 1e6
    out = np.full(len(times), np.nan)
    present = times.notna().to_numpy()
    out[present] = times[present].dt.as_unit("us").astype("int64").to_numpy() / 1e6
    return out


# --- checking --------------------------------------------------------------------------------


def _checked(raw: _Raw, name: str, kind: str, series: Series, max_bad_share: float, now: datetime) -> OhlcvFile:
    n = len(raw.seconds)
    rows_read = n + len(raw.unread)
    if rows_read == 0:
        raise OhlcvFileError(name, "the file holds no candles (a header and nothing else)")
    interval = series.interval_seconds
    t = raw.seconds
    o, h, low, c, v = (raw.values[column] for column in VALUES)
    with np.errstate(invalid="ignore"):
        checks: list[tuple[np.ndarray, Callable[[int], str]]] = [
            (np.isin(np.arange(n), list(raw.broken)), lambda i: raw.broken[i]),
            (~np.isfinite(t), lambda i: _why_not_a_time(raw.original("time", i))),
            (t < GENESIS.timestamp(), lambda i: f"time {_when(t[i])} is before {GENESIS:%Y-%m-%d}: "
                                                "no crypto market traded then (a timestamp in the wrong unit?)"),
            (t > now.timestamp(), lambda i: f"time {_when(t[i])} is in the future"),
            (np.mod(t, interval) != 0, lambda i: f"time {_when(t[i])} is not on the {series.timeframe} grid"),
            *[(~(np.isfinite(values) & (values > 0)), _price_reason(column, values, raw))
              for column, values in zip(PRICES, (o, h, low, c))],
            (~(np.isfinite(v) & (v >= 0)), _volume_reason(v, raw)),
            (h < low, lambda i: f"high {_num(h[i])} is below low {_num(low[i])}"),
            ((o < low) | (o > h), lambda i: f"open {_num(o[i])} is outside [low {_num(low[i])}, high {_num(h[i])}]"),
            ((c < low) | (c > h), lambda i: f"close {_num(c[i])} is outside [low {_num(low[i])}, high {_num(h[i])}]"),
        ]
    # Each row is judged by the first check it fails; the reasons are written only for the rows shown.
    failed = np.full(n, -1, dtype=np.int16)
    for number, (bad, _) in enumerate(checks):
        failed[(failed < 0) & bad] = number
    good = failed < 0
    candles = pd.DataFrame({"t": t[good].astype(np.int64), **{col: raw.values[col][good] for col in VALUES},
                            "number": raw.numbers[good]})
    candles = candles.sort_values("t", kind="stable").reset_index(drop=True)
    duplicates, clashes = 0, candles.iloc[:0]
    if (np.diff(candles["t"].to_numpy()) == 0).any():
        # The same candle twice is one candle; one time with two sets of values is no candle at all.
        repeated = candles.duplicated(subset=["t", *VALUES], keep="first").to_numpy()
        duplicates = int(repeated.sum())
        candles = candles.loc[~repeated]
        clashing = candles.duplicated(subset=["t"], keep=False).to_numpy()
        clashes = candles.loc[clashing]
        candles = candles.loc[~clashing].reset_index(drop=True)

    bad_count = len(raw.unread) + int((~good).sum()) + len(clashes)

    def reasons(limit: int | None) -> list[Rejected]:
        found = list(raw.unread)
        for i in np.flatnonzero(~good)[:limit].tolist():
            found.append(Rejected(int(raw.numbers[i]), checks[failed[i]][1](i), raw.unit))
        if len(clashes):
            lines = clashes.groupby("t")["number"].apply(list)
            for row in clashes.itertuples():
                others = ", ".join(str(x) for x in lines[row.t] if x != row.number)
                found.append(Rejected(int(row.number), f"time {_when(row.t)} appears again with other values "
                                                       f"({raw.unit} {others})", raw.unit))
        found.sort(key=lambda r: r.number)
        return found if limit is None else found[:limit]

    if candles.empty:
        shown = "; ".join(str(r) for r in reasons(SHOWN_REASONS))
        raise OhlcvFileError(name, f"no good rows among {rows_read:,}: {shown}")
    if bad_count > max_bad_share * rows_read:
        shown = "; ".join(str(r) for r in reasons(SHOWN_REASONS))
        raise OhlcvFileError(
            name, f"{bad_count:,} of {rows_read:,} rows are bad ({100 * bad_count / rows_read:.1f} %, more than "
                  f"{100 * max_bad_share:g} % allowed): is it the file it claims to be ({series})? Nothing imported. "
                  f"First: {shown}")
    gaps = np.diff(candles["t"].to_numpy())
    if len(gaps) >= 10:
        step = int(np.gcd.reduce(gaps))
        if step > interval:
            raise OhlcvFileError(
                name, f"no two candles are {series.timeframe} apart (every gap is a multiple of {_duration(step)}): "
                      f"the timeframe is not {series.timeframe}; name the file for its timeframe or give it")
    frame = pd.DataFrame({"open_time": pd.to_datetime(candles["t"].to_numpy(), unit="s", utc=True),
                          **{column: candles[column].to_numpy() for column in VALUES}})
    return OhlcvFile(name, kind, series, frame, rows_read, reasons(None) if bad_count else [], duplicates)


def _price_reason(column: str, values: np.ndarray, raw: _Raw) -> Callable[[int], str]:
    def reason(i: int) -> str:
        value = values[i]
        if math.isnan(value):
            return _not_a_number(column, raw.original(column, i))
        if math.isinf(value):
            return f"{column} {_num(value)} is not finite"
        return f"{column} {_num(value)} is not positive"
    return reason


def _volume_reason(values: np.ndarray, raw: _Raw) -> Callable[[int], str]:
    def reason(i: int) -> str:
        value = values[i]
        if math.isnan(value):
            return _not_a_number("volume", raw.original("volume", i))
        if math.isinf(value):
            return f"volume {_num(value)} is not finite"
        return f"volume {_num(value)} is negative"
    return reason


def _not_a_number(column: str, given: Any) -> str:
    if given is None or (isinstance(given, str) and not given.strip()):
        return f"{column} is missing"
    if isinstance(given, float) and math.isnan(given):  # an empty CSV cell reads as NaN, as does JSON's NaN
        return f"{column} is missing or NaN"
    return f"{column} {_shown(given)} is not a number"


def _why_not_a_time(given: Any) -> str:
    if given is None or given is pd.NaT or (isinstance(given, str) and not given.strip()):
        return "the time is missing"
    if isinstance(given, float) and math.isnan(given):
        return "the time is missing or NaN"
    return f"time {_shown(given)} is not a time"


def _shown(value: Any) -> str:
    text = repr(value) if not isinstance(value, float) else _num(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _when(seconds: float) -> str:
    try:
        return datetime.fromtimestamp(seconds, timezone.utc).strftime("%Y-%m-%d %H:%M:%S").removesuffix(":00")
    except (ValueError, OverflowError, OSError):
        return _num(seconds) + " (epoch s)"


def _duration(seconds: int) -> str:
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def format_number(value: float) -> str:
    """A number as people read prices: positional (never 1e-05), shortest exact digits."""
    if not math.isfinite(value):
        return str(value)
    if value != 0 and not 1e-12 <= abs(value) < 1e16:
        return repr(value)
    return np.format_float_positional(value, trim="-")


_num = format_number


def shown_reasons(rejected: Sequence[Rejected], limit: int = SHOWN_REASONS) -> list[str]:
    return [str(r) for r in rejected[:limit]]
