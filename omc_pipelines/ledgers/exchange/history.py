"""The Exchange ledger's price history from files: freqtrade or ccxt OHLCV into
``exchange_imported_candles``.

CoinSpot serves only recent trades, so a new user has little history; the event study and the
backtest want a year of prices from the first day. A file is parsed and checked by
:mod:`omc_pipelines.sources.ohlcv_files` (pure), then written here through the one upsert path,
in chunks, one transaction per file. A row is keyed by (source, coin, market, interval, open
time): a re-import of the same file writes nothing (its rows are compared with the stored ones
first, so ``imported_at`` keeps the time a value was first written), a corrected file updates
exactly the rows it corrects, and nothing is ever deleted.

The asset ``exchange_imported_candles`` runs by hand (the UI's launchpad or ``dg launch``);
``omc history import`` calls the same :func:`import_ohlcv`.
"""


from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pandas as pd
import sqlalchemy as sa
from dagster import AssetExecutionContext, Config, Failure, MaterializeResult, MetadataValue, asset
from pydantic import Field

from omc_pipelines.db import upsert
from omc_pipelines.db.models import ImportedCandle
from omc_pipelines.metadata import count, definition, preview
from omc_pipelines.resources import HistoryFilesResource, LedgerDatabase
from omc_pipelines.sources.ohlcv_files import (
    MAX_BAD_SHARE, TIMEFRAMES, VALUES, OhlcvFile, OhlcvFileError, check_symbol, format_number, is_supported,
    read_ohlcv_file, shown_reasons, timeframe_seconds,
)

GROUP = "exchange"
TABLE = ImportedCandle.__table__
KEY = ("source", "coin", "market", "interval_seconds", "open_time")
# A corrected file rewrites a candle's values; ``imported_at`` says when they were last written.
UPDATED = (*VALUES, "file_name", "imported_at")
# Rows a chunk writes; a bigger file logs its progress after each chunk.
CHUNK = 50_000
EXAMPLE = "BTC_AUD-1h.json"

# The open time as epoch seconds, per dialect: compared in Python without a datetime per row.
_EPOCH = {
    "postgresql": "CAST(EXTRACT(EPOCH FROM open_time) AS BIGINT)",
    "sqlite": "CAST(strftime('%s', open_time) AS INTEGER)",
}


class HistoryImportError(ValueError):
    """The import as asked cannot start (no files, a path that does not exist, a bad source or
    override): nothing was written."""


@dataclass
class FileReport:
    """What one file gave: rows read, imported (good), of which new, updated or unchanged in the
    ledger, rejected (with the first reasons), the time range; or why it was refused whole."""

    file_name: str
    coin: str = ""
    market: str = ""
    timeframe: str = ""
    rows_read: int = 0
    new: int = 0
    updated: int = 0
    unchanged: int = 0
    duplicates: int = 0
    rejected: int = 0
    reasons: list[str] = field(default_factory=list)
    first: datetime | None = None
    last: datetime | None = None
    refused: str | None = None

    @property
    def series(self) -> str:
        return f"{self.coin}/{self.market} {self.timeframe}" if self.coin else ""

    @property
    def imported(self) -> int:
        return self.new + self.updated + self.unchanged

    @property
    def written(self) -> int:
        return self.new + self.updated

    def summary(self) -> str:
        if self.refused:
            return f"{self.file_name}: refused, nothing imported: {self.refused}"
        text = (f"{self.file_name}: {self.series} {self.first:%Y-%m-%d %H:%M} .. {self.last:%Y-%m-%d %H:%M} UTC: "
                f"{self.rows_read:,} rows read, {self.imported:,} imported ({self.new:,} new, {self.updated:,} updated, "
                f"{self.unchanged:,} unchanged), {self.rejected:,} rejected")
        if self.duplicates:
            text += f", {self.duplicates:,} repeated rows kept once"
        if self.reasons:
            more = self.rejected - len(self.reasons)
            text += ": " + "; ".join(self.reasons) + (f"; and {more:,} more" if more > 0 else "")
        return text


@dataclass
class ImportReport:
    source: str
    files: list[FileReport]

    @property
    def refused(self) -> list[FileReport]:
        return [f for f in self.files if f.refused]

    @property
    def imported(self) -> int:
        return sum(f.imported for f in self.files)

    @property
    def written(self) -> int:
        return sum(f.written for f in self.files)

    @property
    def rejected(self) -> int:
        return sum(f.rejected for f in self.files)

    def summary(self) -> str:
        refused = f", {len(self.refused)} refused" if self.refused else ""
        return (f"{len(self.files)} file(s) from {self.source}{refused}: {self.imported:,} rows imported "
                f"({self.written:,} written, the rest unchanged), {self.rejected:,} rejected")


def find_files(paths: Iterable[str | Path]) -> list[Path]:
    """The files to import: each file named, and every supported file in each folder named
    (not its subfolders), in name order, each once."""
    found: dict[Path, Path] = {}
    empty: list[str] = []
    for given in paths:
        path = Path(given).expanduser()
        if path.is_dir():
            inside = sorted(p for p in path.iterdir() if p.is_file() and is_supported(p.name))
            if not inside:
                empty.append(str(path))
            found.update((p.resolve(), p) for p in inside)
        elif path.is_file():
            found.setdefault(path.resolve(), path)
        else:
            raise HistoryImportError(f"{given}: no such file or folder")
    if not found:
        where = ", ".join(empty) or "the paths given"
        raise HistoryImportError(f"no OHLCV files in {where}: put freqtrade JSON or CSV files there (named like "
                                 f"{EXAMPLE}; .json.gz and .csv.gz too)")
    return list(found.values())


def import_ohlcv(
    engine: sa.Engine, paths: Iterable[str | Path], source: str, coin: str | None = None, market: str | None = None,
    timeframe: str | None = None, log: Callable[[str], None] = print, *, max_bad_share: float = MAX_BAD_SHARE,
    chunk: int = CHUNK,
) -> ImportReport:
    """Import OHLCV files into ``exchange_imported_candles`` under ``source``.

    ``paths`` are files or folders; ``coin``, ``market`` and ``timeframe`` override what the
    file names say. A file that cannot be read, or has more than ``max_bad_share`` bad rows, is
    refused (in the report; nothing of it written) and the others are imported; bad input as a
    whole (no files, a wrong override) raises :class:`HistoryImportError` before anything is read.
    """
    source = _checked_source(source)
    try:
        coin = check_symbol(coin, "coin") if coin else None
        market = check_symbol(market, "market") if market else None
        if timeframe:
            timeframe_seconds(timeframe)
    except ValueError as exc:
        raise HistoryImportError(str(exc)) from None
    reports = []
    for path in find_files(paths):
        try:
            parsed = read_ohlcv_file(path, coin=coin, market=market, timeframe=timeframe, max_bad_share=max_bad_share)
        except OhlcvFileError as exc:
            report = FileReport(exc.file_name, refused=exc.reason)
        else:
            report = _write(engine, parsed, source, log, chunk)
        log(report.summary())
        reports.append(report)
    return ImportReport(source, reports)


def _checked_source(source: str) -> str:
    source = (source or "").strip()
    if not source:
        raise HistoryImportError("give the source: who made the history, e.g. freqtrade:binance")
    if len(source) > 64:
        raise HistoryImportError(f"source {source[:70]!r}... is longer than 64 characters")
    return source


def _write(engine: sa.Engine, parsed: OhlcvFile, source: str, log: Callable[[str], None], chunk: int) -> FileReport:
    """One file's candles into the ledger, in one transaction: only rows that are new or whose
    values differ from the stored ones are written."""
    series = parsed.series
    candles = parsed.candles
    seconds = candles["open_time"].dt.as_unit("s").astype("int64").to_numpy()
    key = {"source": source, "coin": series.coin, "market": series.market, "interval_seconds": series.interval_seconds}
    with engine.begin() as conn:
        stored = _stored(conn, key, parsed.first, parsed.last)
        found = stored.reindex(seconds)
        known = found["open"].notna().to_numpy()
        same = known & np.logical_and.reduce([found[c].to_numpy() == candles[c].to_numpy() for c in VALUES])
        todo = np.flatnonzero(~same)
        imported_at = datetime.now(timezone.utc)
        times = candles["open_time"].dt.to_pydatetime().tolist()
        columns = {c: candles[c].to_numpy() for c in VALUES}
        for start in range(0, len(todo), chunk):
            part = todo[start : start + chunk]
            rows = [
                {**key, "open_time": times[i], "open": o, "high": h, "low": lo, "close": c, "volume": v,
                 "file_name": parsed.file_name[:256], "imported_at": imported_at}
                for i, o, h, lo, c, v in zip(part.tolist(), *(columns[c][part].tolist() for c in VALUES))
            ]
            upsert(conn, TABLE, rows, KEY, update=UPDATED)
            if len(todo) > chunk:
                log(f"{parsed.file_name}: {min(start + chunk, len(todo)):,} / {len(todo):,} rows written")
    new = int((~known).sum())
    return FileReport(
        parsed.file_name, series.coin, series.market, series.timeframe, parsed.rows_read, new=new, updated=len(todo) - new,
        unchanged=int(same.sum()), duplicates=parsed.duplicates, rejected=len(parsed.rejected),
        reasons=shown_reasons(parsed.rejected), first=parsed.first, last=parsed.last,
    )


def _stored(conn: sa.Connection, key: dict, first: datetime, last: datetime) -> pd.DataFrame:
    """The series' stored candles in [first, last], indexed by open time in epoch seconds.

    Read through the driver's own cursor, as plain tuples: SQLAlchemy's Row objects and
    UtcDateTime's per-row work cost seconds for a year of minutes, and only numbers are needed."""
    sqlite = conn.dialect.name == "sqlite"
    mark = "?" if sqlite else "%s"
    sql = (f"SELECT {_EPOCH[conn.dialect.name]}, {', '.join(VALUES)} FROM {TABLE.name} "
           f"WHERE source = {mark} AND coin = {mark} AND market = {mark} AND interval_seconds = {mark} "
           f"AND open_time >= {mark} AND open_time <= {mark}")
    # SQLite keeps UtcDateTime as naive UTC text in SQLAlchemy's format; PostgreSQL takes aware times.
    bounds = [when.astimezone(timezone.utc) for when in (first, last)]
    if sqlite:
        bounds = [when.strftime("%Y-%m-%d %H:%M:%S.%f") for when in bounds]
    cursor = conn.connection.driver_connection.cursor()
    try:
        cursor.execute(sql, (key["source"], key["coin"], key["market"], key["interval_seconds"], *bounds))
        rows = cursor.fetchall()
    finally:
        cursor.close()
    table = np.array(rows, dtype=np.float64).reshape(len(rows), 1 + len(VALUES))
    return pd.DataFrame(table[:, 1:], columns=list(VALUES), index=table[:, 0].astype(np.int64))


# --- the asset -------------------------------------------------------------------------------


class HistoryImportConfig(Config):
    """What to import: the run config of ``exchange_imported_candles``."""

    source: str = Field(description="Who made the history, e.g. freqtrade:binance: part of every row's key.")
    paths: list[str] = Field(default=[], description="Files or folders (a folder: every .json, .json.gz, .csv, "
                             ".csv.gz in it). Empty: the folder OMC_HISTORY_DIR (default <OMC_HOME>/history).")
    coin: str | None = Field(default=None, description="The coin of every file, instead of its name's "
                             "(BTC_AUD-1h.json: btc).")
    market: str | None = Field(default=None, description="The quote currency of every file, instead of its "
                               "name's (BTC_AUD-1h.json: aud).")
    timeframe: str | None = Field(default=None, description="The timeframe of every file, instead of its name's: "
                                  "1m 3m 5m 15m 30m 1h 2h 4h 6h 8h 12h 1d.")


@asset(
    group_name=GROUP,
    kinds={"sql"},
    **definition(ImportedCandle, group=GROUP, source="files"),
    description="OHLCV history imported from files (freqtrade JSON, freqtrade or ccxt CSV, gzipped too), kept "
    "apart from the candles built from CoinSpot's trades. Run by hand with run config: source (required), paths "
    "(default OMC_HISTORY_DIR), optional coin, market, timeframe. Bad rows are rejected with their line and reason; "
    "a file with more than 1 % bad rows is refused whole. A re-import changes nothing; nothing is ever deleted.",
)
def exchange_imported_candles(context: AssetExecutionContext, config: HistoryImportConfig, ledger_db: LedgerDatabase,
                              history_files: HistoryFilesResource) -> MaterializeResult:
    paths = config.paths or [history_files.folder]
    try:
        if not config.paths and not Path(history_files.folder).is_dir():
            raise HistoryImportError(f"the history folder {history_files.folder} does not exist")
        report = import_ohlcv(ledger_db.engine(), paths, config.source, config.coin, config.market, config.timeframe,
                              log=context.log.info)
    except HistoryImportError as exc:
        hint = "" if config.paths else (f" (OMC_HISTORY_DIR): put freqtrade JSON or CSV files in {history_files.folder} "
                                        f"(named like {EXAMPLE}), or give paths in the run config")
        raise Failure(description=f"{exc}{hint}; nothing was written") from None
    for file in report.refused:
        context.log.warning(file.summary())
    metadata = _metadata(ledger_db.engine(), report)
    if report.refused:
        raise Failure(
            description=f"{len(report.refused)} of {len(report.files)} file(s) refused, nothing of them written (the "
            "others were imported): " + "; ".join(f"{f.file_name}: {f.refused}" for f in report.refused),
            metadata=metadata,
        )
    return MaterializeResult(metadata=metadata)


def _metadata(engine: sa.Engine, report: ImportReport) -> dict:
    imported = [f for f in report.files if not f.refused]
    ranges: dict[str, tuple[datetime, datetime]] = {}
    for f in imported:
        first, last = ranges.get(f.series, (f.first, f.last))
        ranges[f.series] = (min(first, f.first), max(last, f.last))
    with engine.connect() as conn:
        total = count(conn, TABLE)
        newest = _newest(conn, report.source, imported)
    return {
        "source": report.source,
        "files": preview([_file_row(f) for f in report.files], limit=len(report.files)),
        "rows_imported": report.imported,
        "rows_written": report.written,
        "rows_rejected": report.rejected,
        "rejected": MetadataValue.json({f.file_name: f.reasons for f in imported if f.reasons}),
        "refused": MetadataValue.json({f.file_name: f.refused for f in report.refused}),
        "time_range": MetadataValue.json({series: f"{first:%Y-%m-%d %H:%M} .. {last:%Y-%m-%d %H:%M} UTC"
                                          for series, (first, last) in sorted(ranges.items())}),
        "preview": preview(newest),
        "dagster/row_count": total,
        "dagster/table_name": TABLE.name,
    }


def _file_row(f: FileReport) -> dict:
    if f.refused:
        return {"file": f.file_name, "series": "", "read": "", "imported": "", "new": "", "updated": "",
                "rejected": "", "from": "", "to": "", "refused": f.refused}
    return {"file": f.file_name, "series": f.series, "read": f"{f.rows_read:,}", "imported": f"{f.imported:,}",
            "new": f"{f.new:,}", "updated": f"{f.updated:,}", "rejected": f"{f.rejected:,}",
            "from": f"{f.first:%Y-%m-%d %H:%M}", "to": f"{f.last:%Y-%m-%d %H:%M}", "refused": ""}


def _newest(conn: sa.Connection, source: str, files: Sequence[FileReport], limit: int = 10) -> list[dict]:
    """The newest stored candles of each series the files held (at least two each, about ``limit``
    in all), prices written out (no 1e-05)."""
    c = TABLE.c
    every = sorted({(f.coin, f.market, f.timeframe) for f in files})
    rows = []
    for coin, market, timeframe in every[:limit]:
        rows += conn.execute(
            sa.select(c.coin, c.market, c.interval_seconds, c.open_time, *(c[v] for v in VALUES), c.file_name)
            .where(c.source == source, c.coin == coin, c.market == market,
                   c.interval_seconds == timeframe_seconds(timeframe))
            .order_by(c.open_time.desc()).limit(max(2, limit // len(every)))
        ).mappings().all()
    return [
        {"coin": r["coin"], "market": r["market"], "timeframe": _timeframe(r["interval_seconds"]),
         "open_time": f"{r['open_time']:%Y-%m-%d %H:%M}", **{v: format_number(r[v]) for v in VALUES},
         "file": r["file_name"]}
        for r in rows
    ]


def _timeframe(seconds: int) -> str:
    return next((name for name, size in TIMEFRAMES.items() if size == seconds), f"{seconds}s")
