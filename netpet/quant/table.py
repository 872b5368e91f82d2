"""The study table: one row per lesion finding, the single source of truth of the study.

Rows are keyed by (patient_id, session_id, modality, tracer, reader, lesion_id). Writing is an
upsert by key: a row with a known key updates it, a new key adds a row; columns the table has
that a write does not mention (a reader's notes, a cause column) are kept. The table lives in
one file:

* CSV (default): a write takes an exclusive lock on ``<table>.lock``, reads the table, merges,
  writes a temporary file beside it, flushes it to disk and renames it over the table, so a
  crash leaves either the old or the new table, and two processes writing at once both land.
* SQLite (``.sqlite``, ``.sqlite3`` or ``.db``): one transaction per write with
  ``INSERT ... ON CONFLICT DO UPDATE``; SQLite provides the atomicity and the locking.

A file that exists but is not a study table (it lacks the key columns) is refused, untouched.
"""

from __future__ import annotations

import csv
import math
import os
import sqlite3
import tempfile
import time
from contextlib import contextmanager
from typing import Any, Dict, Iterable, Iterator, List, Sequence, Tuple

from netpet.errors import NetpetError

KEY: Tuple[str, ...] = ("patient_id", "session_id", "modality", "tracer", "reader", "lesion_id")
REQUIRED: Tuple[str, ...] = KEY + (
    "region", "suv_max", "suv_peak", "suv_mean", "mtv_ml", "tla", "tb_ratio", "tl_ratio", "liver_suv_mean",
    "liver_suv_sd", "krenning", "call", "centroid_r", "centroid_a", "centroid_s", "segmentation_file", "suv_type",
)
#: The columns NETPET writes, in order (REQUIRED first); further columns of a table are kept after them.
COLUMNS: Tuple[str, ...] = REQUIRED + (
    "suv_min", "suv_sd", "voxels", "longest_diameter_mm", "threshold_suv", "method", "background_suv_mean",
    "background_suv_sd", "spleen_suv_mean", "liver_suv_max", "liver_center_r", "liver_center_a", "liver_center_s",
    "seed_r", "seed_a", "seed_s", "suv_peak_center_r", "suv_peak_center_a", "suv_peak_center_s", "series_uid",
    "suv_units", "suv_decay_correction", "suv_reference_time", "suv_reference_rule", "suv_injection_time",
    "suv_dose_mbq", "suv_weight_kg", "suv_factor", "suv_warnings", "netpet_version", "updated",
)
SQLITE_SUFFIXES = (".sqlite", ".sqlite3", ".db")
LOCK_TIMEOUT_S = 60.0


class TableError(NetpetError):
    """The study table cannot be read or written as asked."""


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        if math.isnan(value):
            return ""
        return repr(round(value, 6)) if abs(value) < 1e15 else repr(value)
    return str(value)


def _key(row: Dict[str, Any]) -> Tuple[str, ...]:
    return tuple(_text(row.get(k)) for k in KEY)


def _check_rows(rows: Sequence[Dict[str, Any]]) -> None:
    for number, row in enumerate(rows):
        missing = [k for k in KEY if _text(row.get(k)) == "" and k != "lesion_id"]
        if missing:
            raise TableError(f"Row {number + 1} to write lacks the key column(s) {', '.join(missing)}; every row needs "
                             f"{', '.join(KEY)}.")


try:
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None


def _try_lock(handle) -> bool:
    if fcntl is not None:
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            return True
        except OSError:
            return False
    import msvcrt  # pragma: no cover - Windows

    try:  # pragma: no cover - Windows
        msvcrt.locking(handle.fileno(), msvcrt.LK_NBLCK, 1)
        return True
    except OSError:  # pragma: no cover - Windows
        return False


def _unlock(handle) -> None:
    if fcntl is not None:
        fcntl.flock(handle.fileno(), fcntl.LOCK_UN)
    else:  # pragma: no cover - Windows
        import msvcrt

        msvcrt.locking(handle.fileno(), msvcrt.LK_UNLCK, 1)


@contextmanager
def _locked(path: str) -> Iterator[None]:
    """An exclusive, cross-process lock on ``path + '.lock'`` (released on exit or crash)."""
    lock_path = path + ".lock"
    with open(lock_path, "a+") as handle:
        deadline = time.monotonic() + LOCK_TIMEOUT_S
        while not _try_lock(handle):
            if time.monotonic() > deadline:
                raise TableError(f"{path} is locked by another writer for over {LOCK_TIMEOUT_S:.0f} s (lock file "
                                 f"{lock_path}); retry when it has finished.")
            time.sleep(0.02)
        try:
            yield
        finally:
            _unlock(handle)


class StudyTable:
    """The study table file (CSV or SQLite by extension); see the module docstring."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.sqlite = path.lower().endswith(SQLITE_SUFFIXES)

    # -- reading -----------------------------------------------------------------------------------
    def read(self) -> List[Dict[str, str]]:
        """All rows as dicts of text (an absent or empty file is an empty table)."""
        if self.sqlite:
            return self._read_sqlite()
        header, rows = self._read_csv()
        return rows

    def columns(self) -> List[str]:
        if self.sqlite:
            if not os.path.exists(self.path):
                return []
            with sqlite3.connect(self.path, timeout=LOCK_TIMEOUT_S) as db:
                return [r[1] for r in db.execute("PRAGMA table_info(lesions)")]
        return self._read_csv()[0]

    def _read_csv(self) -> Tuple[List[str], List[Dict[str, str]]]:
        if not os.path.exists(self.path) or os.path.getsize(self.path) == 0:
            return [], []
        try:
            with open(self.path, newline="", encoding="utf-8-sig") as handle:
                reader = csv.DictReader(handle)
                header = list(reader.fieldnames or [])
                rows = [dict(r) for r in reader]
        except (OSError, UnicodeDecodeError, csv.Error) as exc:
            raise TableError(f"Cannot read the study table {self.path}: {exc}; fix or move the file.") from exc
        missing = [k for k in KEY if k not in header]
        if missing:
            raise TableError(f"{self.path} is not a NETPET study table: it lacks the column(s) {', '.join(missing)} "
                             f"(its columns: {', '.join(header[:8])}{'...' if len(header) > 8 else ''}); give another "
                             "table path, the file was left untouched.")
        for number, row in enumerate(rows):
            if None in row:
                raise TableError(f"{self.path} row {number + 2} has more fields than the header; fix the file "
                                 "(it was left untouched).")
        return header, rows

    def _read_sqlite(self) -> List[Dict[str, str]]:
        if not os.path.exists(self.path):
            return []
        try:
            with sqlite3.connect(self.path, timeout=LOCK_TIMEOUT_S) as db:
                db.row_factory = sqlite3.Row
                tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
                if "lesions" not in tables:
                    if tables:
                        raise TableError(f"{self.path} is an SQLite file without a 'lesions' table; give another path.")
                    return []
                return [{k: _text(r[k]) for k in r.keys()} for r in db.execute("SELECT * FROM lesions")]
        except sqlite3.DatabaseError as exc:
            raise TableError(f"Cannot read the study table {self.path}: {exc}.") from exc

    # -- writing -----------------------------------------------------------------------------------
    def upsert(self, rows: Iterable[Dict[str, Any]]) -> Tuple[int, int]:
        """Insert or update rows by key; returns (inserted, updated)."""
        rows = [dict(r) for r in rows]
        _check_rows(rows)
        if not rows:
            return 0, 0
        folder = os.path.dirname(os.path.abspath(self.path))
        os.makedirs(folder, exist_ok=True)
        if self.sqlite:
            return self._upsert_sqlite(rows)
        with _locked(self.path):
            header, existing = self._read_csv()
            index = {_key(r): i for i, r in enumerate(existing)}
            inserted = updated = 0
            for row in rows:
                text = {k: _text(v) for k, v in row.items()}
                position = index.get(_key(text))
                if position is None:
                    index[_key(text)] = len(existing)
                    existing.append(text)
                    inserted += 1
                else:
                    existing[position].update(text)
                    updated += 1
            names = list(COLUMNS) + [c for c in header if c not in COLUMNS]
            names += sorted({k for r in existing for k in r} - set(names))
            self._replace(names, existing)
        return inserted, updated

    def _replace(self, names: List[str], rows: List[Dict[str, str]]) -> None:
        folder = os.path.dirname(os.path.abspath(self.path))
        descriptor, temporary = tempfile.mkstemp(prefix=".netpet-table-", suffix=".csv", dir=folder)
        try:
            with os.fdopen(descriptor, "w", newline="", encoding="utf-8") as handle:
                writer = csv.DictWriter(handle, names, lineterminator="\n", extrasaction="ignore")
                writer.writeheader()
                for row in rows:
                    writer.writerow({k: row.get(k, "") for k in names})
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(temporary, self.path)
        except BaseException:
            if os.path.exists(temporary):
                os.unlink(temporary)
            raise

    def _upsert_sqlite(self, rows: List[Dict[str, Any]]) -> Tuple[int, int]:
        names = list(COLUMNS) + sorted({k for r in rows for k in r} - set(COLUMNS))
        try:
            db = sqlite3.connect(self.path, timeout=LOCK_TIMEOUT_S, isolation_level=None)
            try:
                db.execute("BEGIN IMMEDIATE")
                tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
                if "lesions" not in tables:
                    if tables:
                        raise TableError(f"{self.path} is an SQLite file without a 'lesions' table; give another path.")
                    columns = ", ".join(f'"{n}"' for n in names)
                    db.execute(f"CREATE TABLE lesions ({columns}, PRIMARY KEY ({', '.join(KEY)}))")
                present = [r[1] for r in db.execute("PRAGMA table_info(lesions)")]
                missing = [k for k in KEY if k not in present]
                if missing:
                    raise TableError(f"{self.path}: the lesions table lacks the key column(s) {', '.join(missing)}.")
                for name in names:
                    if name not in present:
                        db.execute(f'ALTER TABLE lesions ADD COLUMN "{name}"')
                inserted = updated = 0
                for row in rows:
                    text = {k: _text(v) for k, v in row.items()}
                    exists = db.execute(f"SELECT 1 FROM lesions WHERE {' AND '.join(f'{k} = ?' for k in KEY)}",
                                        _key(text)).fetchone()
                    cols = list(text)
                    assignments = ", ".join(f'"{c}" = excluded."{c}"' for c in cols if c not in KEY)
                    statement = (f"INSERT INTO lesions ({', '.join(chr(34) + c + chr(34) for c in cols)}) VALUES "
                                 f"({', '.join('?' for _ in cols)}) ON CONFLICT ({', '.join(KEY)}) DO "
                                 + (f"UPDATE SET {assignments}" if assignments else "NOTHING"))
                    db.execute(statement, [text[c] for c in cols])
                    if exists:
                        updated += 1
                    else:
                        inserted += 1
                db.execute("COMMIT")
            except BaseException:
                if db.in_transaction:
                    db.execute("ROLLBACK")
                raise
            finally:
                db.close()
        except sqlite3.DatabaseError as exc:
            raise TableError(f"Cannot write the study table {self.path}: {exc}.") from exc
        return inserted, updated
