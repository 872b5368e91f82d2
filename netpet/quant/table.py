"""The study table: one row per lesion finding, the single source of truth of the study.

Rows are keyed by (patient_id, session_id, modality, tracer, reader, lesion_id). Writing is an
upsert by key: a row with a known key updates it, a new key adds a row; columns the table has
that a write does not mention (a reader's notes, a cause column) are kept. The key, the columns
and the rules that fill the key (session id, modality, tracer, region, lesion type, reader) are
defined once in :mod:`netpet.schema`, for the command line and Slicer alike. The table lives in
one file:

* CSV (for small studies): a write takes an exclusive lock on ``<table>.lock``, reads the table,
  merges, writes a temporary file beside it, flushes it to disk and renames it over the table, so a
  crash leaves either the old or the new table, and two processes writing at once both land. Every
  write rewrites the whole file: its cost grows with the table (about 20 ms at 1,000 rows, 0.2 s at
  10,000, 1 s at 50,000 on one core; ``benchmarks/bench_table.py``).
* SQLite (``.sqlite``, ``.sqlite3`` or ``.db``), for large studies: one transaction per write with
  ``INSERT ... ON CONFLICT DO UPDATE`` on the key (the table's primary key), in WAL mode; a
  single-row write costs about 1-2 ms whatever the size of the table. ``netpet stats`` reads both.

Rules every write follows (both backends unless said):

* A table reached through a symbolic link stays a link: the link's target is written (and locked).
* A read-only table (no write permission bit, or not writable by this user) is refused, untouched;
  so is a CSV table with several hard links (an atomic rename would detach it from the others).
* The file's permission bits (and, where allowed, its owner) are kept when a CSV table is rewritten;
  a new table gets the default mode of the process (0666 minus the umask).
* Every value round-trips: CR, LF, quotes, commas and cells of any length (the reader lifts
  ``csv.field_size_limit``); a NUL character or text that is not valid Unicode is refused.
* CSV cells (and column names) that a spreadsheet would run as a formula, those starting with
  ``=``, ``+``, ``-``, ``@``, a tab or a CR (OWASP, "CSV Injection"), are written with a leading
  single quote, which the reader removes again; numbers such as ``-3.5`` are written as they are.
  To keep this exact, a value that itself starts with quotes followed by one of those characters
  gets one more quote. A hand-written cell starting with ``'=`` therefore reads as ``=``.
* Lesion ids are at most 64 characters without control characters, line or paragraph
  separators, backslashes or leading/trailing spaces: the id becomes the DICOM SEG SegmentLabel
  (VR LO, DICOM PS3.5 section 6.2) and a segment name in the ``.seg.nrrd`` header (one line per field).

A file that exists but is not a study table (it lacks the key columns) is refused, untouched.

The audit trail (issue 14)
--------------------------
Every write through :class:`StudyTable` (:meth:`~StudyTable.upsert`, :meth:`~StudyTable.record`,
:meth:`~StudyTable.retract`, :meth:`~StudyTable.restore`, :meth:`~StudyTable.adjudicate`) records each cell it
changes: :data:`AUDIT_COLUMNS` = when (UTC, ISO 8601, one time per write), who (``by``, else the row's reader),
action (``insert``, ``update``, ``retract``, ``restore``, ``adjudicate``), the finding's key, the column, its old
and new value, and why. Only changed cells are recorded: a write that changes nothing records nothing, and the
``updated`` time stamp (:data:`UNAUDITED`) is not a change of its own. An inserted row records each non-empty cell
(its key alone, for a session read without findings, one entry with an empty column). Nothing is ever deleted:
a finding withdrawn by its reader is *retracted* (``finding_status`` retracted, with its reason) and stays, with
its history, in the table (:func:`netpet.schema.is_retracted`; every analysis leaves it out and counts it).

* CSV: ``<table>.audit.csv`` beside the resolved table file (``study.csv`` -> ``study.audit.csv``), only ever
  appended to, under the table's own lock, in one ``write`` flushed to disk (``fsync``) *before* the table is
  replaced; if replacing the table fails in the process the append is taken back (the file cut to its size
  before). Its cells follow the table's formula escaping, and a backslash, CR or LF inside a value is written
  as a backslash followed by itself, ``r`` or ``n``, so that every entry is exactly one line: a line cut short by a crash (a power loss in
  the middle of an append, which happens before the table is replaced) has no line end, is skipped by the reader
  and cut off by the next writer. What a crash can leave is therefore a trail that records a write the table did
  not receive (a power loss between the trail's flush and the table's rename), never a change without its entry.
* SQLite: the table ``audit`` of the same database, written in the write's own transaction.

A table written before NETPET kept a trail starts its trail at its next write: its older rows have no ``insert``
entries, and the first change of a cell records the value it had.

Cost: one more append and ``fsync`` per CSV write; measured against the version without a trail, alternating
the two on one machine (rows with every NETPET column, 15 single-row writes each, medians of processor time, which
the wait for ``fsync`` does not blur): CSV insert 25.7 -> 24.6 ms at 1,000 rows, 314 -> 329 ms at 10,000; SQLite
insert 2.6 -> 2.8 ms and 2.7 -> 2.9 ms; SQLite update 2.6 -> 2.2 ms (the differences are within the run-to-run
spread; an inserted row records one entry per non-empty cell, about 70 here). ``benchmarks/bench_table.py``.

Scale (issue 16; ``benchmarks/bench_table_stats_scale.py``, rows with every NETPET column and about 54 audit entries
each, processor time on 2 shared cores, three runs): a bulk upsert costs the same per row from 1,000 to 100,000
rows, 0.23-0.34 ms a row for CSV (most of it the audit trail) and 0.21-0.24 ms for SQLite; each write reads and
replaces a CSV table once and appends to its trail once, whatever its number of rows (a test counts them).
"""

from __future__ import annotations

import csv
import datetime as _dt
import gc
import io
import logging
import math
import numbers
import operator
import os
import re
import sqlite3
import stat
import tempfile
import time
import unicodedata
from contextlib import contextmanager
from typing import Any, Callable, Dict, Iterable, Iterator, List, Sequence, Tuple

from netpet.errors import NetpetError, printable

# the schema (key, columns) and the rules that fill the key live in the neutral netpet.schema, which the
# command line, Slicer and StudyStats share; re-exported here for the callers that import them from this module
from netpet.schema import ACTIVE, COLUMNS, KEY, REQUIRED, RETRACTED  # noqa: F401

SQLITE_SUFFIXES = (".sqlite", ".sqlite3", ".db")
LOCK_TIMEOUT_S = 60.0
#: DICOM PS3.5 6.2, VR LO (the SEG's SegmentLabel): at most 64 characters
LESION_ID_MAX = 64
#: OWASP "CSV Injection": cells starting with these run as formulas in spreadsheets
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")
#: the CSV reader's cell limit (csv's default, 131,072 characters, made long cells unreadable)
FIELD_SIZE_LIMIT = 2 ** 31 - 1
#: above this many rows a CSV table logs once that SQLite writes in constant time
LARGE_CSV_ROWS = 20_000

log = logging.getLogger(__name__)
_NUMBER = re.compile(r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?\Z")
_ESCAPED = re.compile(r"'+[=+\-@\t\r]")
_PREFIX_SET = frozenset(FORMULA_PREFIXES)
# a cell (in a row joined and led by NUL, which no value holds) that escape_cell would neutralise
_BARE_FORMULA = re.compile(r"\x00(?:[=@\t\r]|[+-](?!(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?(?:\x00|\Z)))")
# ... or that escape_cell would change at all (also a value of quotes before a formula prefix), and, for the audit
# trail, a cell holding a backslash, CR or LF (_audit_cell escapes them): a row (joined and led by NUL) that matches
# neither is written as it is, without a call per cell
_ESCAPED_CELL = re.compile(_BARE_FORMULA.pattern + r"|\x00'+[=+\-@\t\r]")
_AUDIT_ESCAPED_CELL = re.compile(_ESCAPED_CELL.pattern + r"|[\\\r\n]")
_warned_large: set = set()


class TableError(NetpetError):
    """The study table cannot be read or written as asked."""


def _text(value: Any) -> str:
    if type(value) is str:  # the common case first (the checks below cost more than the rest of a cell's write)
        return value
    if value is None:
        return ""
    if isinstance(value, numbers.Real) and not isinstance(value, numbers.Integral):  # also numpy's float32
        value = float(value)
    if isinstance(value, float):
        if math.isnan(value):
            return ""
        return repr(round(value, 6)) if abs(value) < 1e15 else repr(value)
    return str(value)


def _ident(name: str) -> str:
    """An SQL identifier, quoted (a double quote inside doubled)."""
    return '"' + str(name).replace('"', '""') + '"'


_ASCII_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")


def _ascii_fold(name: str) -> str:
    """A column name as SQLite compares it: ASCII letters without case, every other character as it is
    ("Region" is "region", but "\u00c9" is not "\u00e9": Python's ``lower`` would fold both)."""
    return name.translate(_ASCII_LOWER)


def _key(row: Dict[str, Any]) -> Tuple[str, ...]:
    return tuple(_text(row.get(k)) for k in KEY)


def escape_cell(text: str) -> str:
    """A CSV cell as written: a leading quote before a spreadsheet formula prefix (see module docstring)."""
    if text and ((text[0] in FORMULA_PREFIXES and not _NUMBER.match(text)) or (text[0] == "'" and _ESCAPED.match(text))):
        return "'" + text
    return text


def _escaped_row(cells: List[str], pattern: "re.Pattern" = _ESCAPED_CELL,
                 escape: Callable[[str], str] = escape_cell) -> List[str]:
    """``[escape(c) for c in cells]`` (cells: text), the cells themselves when ``pattern`` finds no cell ``escape``
    would change in the row joined by NUL (a NUL inside a cell would blur the joins: such a row takes the long way)."""
    joined = "\x00" + "\x00".join(cells)
    if joined.count("\x00") == len(cells) and not pattern.search(joined):
        return cells
    return [escape(c) for c in cells]


def unescape_cell(text: str) -> str:
    """The value of a CSV cell as read: the inverse of :func:`escape_cell`."""
    if text[:1] == "'" and _ESCAPED.match(text):
        return text[1:]
    return text


def lesion_id_problem(value: Any) -> str:
    """Why ``value`` cannot be a lesion id ("" when it can; an empty id is a session read without findings)."""
    text = _text(value)
    if len(text) > LESION_ID_MAX:
        return f"is {len(text)} characters long, over the {LESION_ID_MAX} of DICOM SEG's SegmentLabel (VR LO)"
    for character in text:
        if unicodedata.category(character) in ("Cc", "Zl", "Zp"):
            return f"holds the control character U+{ord(character):04X}"
        if character == "\\":
            return "holds a backslash, the value separator of DICOM"
    if text != text.strip():
        return "has leading or trailing spaces, which DICOM drops"
    return ""


def check_lesion_id(value: Any, where: str = "") -> str:
    """The lesion id as text, or :class:`TableError` naming the value (see :func:`lesion_id_problem`)."""
    problem = lesion_id_problem(value)
    if problem:
        text = _text(value)
        shown = repr(text if len(text) <= 80 else text[:77] + "...")
        raise TableError(f"{where}The lesion id {shown} {problem}; give ids of at most {LESION_ID_MAX} characters "
                         "without control characters, backslashes or surrounding spaces.")
    return _text(value)


def _check_rows(rows: Sequence[Dict[str, Any]]) -> None:
    for number, row in enumerate(rows):
        missing = [k for k in KEY if _text(row.get(k)) == "" and k != "lesion_id"]
        if missing:
            raise TableError(f"Row {number + 1} to write lacks the key column(s) {', '.join(missing)}; every row needs "
                             f"{', '.join(KEY)}.")
        check_lesion_id(row.get("lesion_id"), f"Row {number + 1} to write: ")
        # the whole row at once (no NUL, every character encodable); a row that fails is checked cell by cell below
        # for the sentence that names the column
        joined = "".join([_text(v) for v in row.values()] + [str(c) for c in row])
        if "\x00" not in joined:
            try:
                joined.encode("utf-8")
                continue
            except UnicodeEncodeError:
                pass
        for column, value in row.items():
            text = _text(value)
            if "\x00" in text or "\x00" in str(column):
                raise TableError(f"Row {number + 1} to write: column {column} holds a NUL character, which a CSV "
                                 "or SQLite table cannot keep; remove it.")
            try:
                text.encode("utf-8")
                str(column).encode("utf-8")
            except UnicodeEncodeError as exc:
                raise TableError(f"Row {number + 1} to write: column {column} holds text that is not valid Unicode "
                                 f"({exc.reason} at character {exc.start}); fix the value.") from exc


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
def locked(path: str, what: str = "study table", error: type = None) -> Iterator[None]:
    """An exclusive, cross-process lock on ``path + '.lock'`` (released on exit, and by the system if the
    process dies); give the resolved path (:func:`os.path.realpath`) so that every name of a file shares one lock.
    POSIX ``flock`` (Windows ``msvcrt.locking``); waits up to :data:`LOCK_TIMEOUT_S`."""
    error = error or TableError
    lock_path = path + ".lock"
    try:
        handle = open(lock_path, "a+")
    except OSError as exc:
        raise error(f"Cannot create the lock file {lock_path} beside the {what} ({exc.strerror or exc}); make its folder "
                    "writable or give another path.") from exc
    with handle:
        deadline = time.monotonic() + LOCK_TIMEOUT_S
        while not _try_lock(handle):
            if time.monotonic() > deadline:
                raise error(f"{path} is locked by another writer for over {LOCK_TIMEOUT_S:.0f} s (lock file "
                            f"{lock_path}); retry when it has finished.")
            time.sleep(0.02)
        try:
            yield
        finally:
            _unlock(handle)


_locked = locked  # the name used before


@contextmanager
def gc_paused() -> Iterator[None]:
    """The cyclic garbage collector paused (and switched on again after, if it was on) while a table becomes rows:
    lists and dicts of text, which hold no reference cycles and are freed by their reference counts all the same.
    Its full passes over every row made so far grow with the table: at 100,000 rows they cost 70 % on top of
    reading the CSV, against nothing at 10,000 (issue 16, ``benchmarks/bench_table_stats_scale.py``)."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def check_writable(path: str, shown: str, what: str = "study table", error: type = None,
                   replaced: bool = True) -> None:
    """Refuse, untouched, a file that exists and is read-only (no write bit, or not writable by this user: the
    bits are checked too because root may write anything) or, when it is ``replaced`` by a rename, that has
    several hard links (the rename would detach it from its other names). ``path`` is the resolved path."""
    error = error or TableError
    try:
        status = os.stat(path)
    except FileNotFoundError:
        return
    except OSError as exc:
        raise error(f"Cannot open the {what} {shown}: {exc.strerror or exc}.") from exc
    if not status.st_mode & (stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH) or not os.access(path, os.W_OK):
        raise error(f"The {what} {shown} is read-only; make it writable (chmod u+w) or give another path, it was left "
                    "untouched.")
    if replaced and stat.S_ISREG(status.st_mode) and status.st_nlink > 1:
        raise error(f"The {what} {shown} has {status.st_nlink} hard links, which a safe rewrite (a new file renamed over "
                    "it) would detach from each other; keep one name (a symbolic link is fine), it was left untouched.")


def _default_mode() -> int:
    try:
        with open("/proc/self/status") as handle:
            for line in handle:
                if line.startswith("Umask:"):
                    return 0o666 & ~int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)  # no /proc: read the umask by setting it (and putting it back at once)
    os.umask(mask)
    return 0o666 & ~mask


def _fsync_folder(folder: str) -> None:
    if os.name != "posix":  # pragma: no cover - Windows
        return
    try:
        descriptor = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(descriptor)
    except OSError:
        pass
    finally:
        os.close(descriptor)


def replace_atomically(path: str, write: Callable[[str], None], suffix: str = "", what: str = "study table",
                       error: type = None) -> None:
    """Write ``path`` through ``write(temporary_path)``: a temporary file in the same folder, flushed to disk, given
    the permission bits (and owner, where allowed) of the file it replaces, then renamed over it. A crash leaves
    the old file or the new one, never a part; the temporary file is removed on failure. Give the resolved path
    and hold :func:`locked` around the read-merge-write."""
    error = error or TableError
    folder = os.path.dirname(os.path.abspath(path))
    try:
        descriptor, temporary = tempfile.mkstemp(prefix=".netpet-" + os.path.basename(path)[:40] + "-", suffix=suffix,
                                                 dir=folder)
    except OSError as exc:
        raise error(f"Cannot write the {what} {path}: no temporary file in its folder ({exc.strerror or exc}); make "
                    "the folder writable or give another path.") from exc
    os.close(descriptor)
    try:
        write(temporary)
        with open(temporary, "rb+") as handle:
            os.fsync(handle.fileno())
        try:
            status = os.stat(path)
            os.chmod(temporary, stat.S_IMODE(status.st_mode))
            if hasattr(os, "chown") and (status.st_uid, status.st_gid) != (os.getuid(), os.getgid()):
                try:
                    os.chown(temporary, status.st_uid, status.st_gid)
                except OSError:
                    pass  # only root may give a file away; the mode is kept all the same
        except FileNotFoundError:
            os.chmod(temporary, _default_mode())
        os.replace(temporary, path)
    except BaseException:
        if os.path.exists(temporary):
            os.unlink(temporary)
        raise
    _fsync_folder(folder)


class StudyTable:
    """The study table file (CSV or SQLite by extension); see the module docstring."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.sqlite = path.lower().endswith(SQLITE_SUFFIXES)

    @property
    def target(self) -> str:
        """The file written: the table's path with every symbolic link resolved (a link stays a link)."""
        return os.path.realpath(self.path)

    def check(self) -> None:
        """Refuse, before any work, a file that is not a study table or that cannot be written (reads the
        header, or the SQLite schema, only: constant cost)."""
        check_writable(self.target, self.path, replaced=not self.sqlite)
        if not self.sqlite:
            check_writable(audit_path(self.target), audit_path(self.path), what="audit trail", replaced=False)
        if self.sqlite:
            self.columns()
        else:
            self._read_csv(header_only=True)

    # -- reading -----------------------------------------------------------------------------------
    def read(self) -> List[Dict[str, str]]:
        """All rows as dicts of text (an absent or empty file is an empty table)."""
        with gc_paused():
            if self.sqlite:
                return self._read_sqlite()
            header, rows = self._read_csv()
            return rows

    def read_with_columns(self) -> Tuple[List[str], List[Dict[str, str]]]:
        """(the columns in the table's order, all rows as dicts of text): :meth:`read` and :meth:`columns` with the
        CSV file read once."""
        if self.sqlite:
            rows = self.read()
            return self.columns(), rows
        with gc_paused():
            return self._read_csv()

    def columns(self) -> List[str]:
        if self.sqlite:
            if not os.path.exists(self.path):
                return []
            try:
                db = sqlite3.connect(self.target, timeout=LOCK_TIMEOUT_S)
                try:
                    return [r[1] for r in db.execute("PRAGMA table_info(lesions)")]
                finally:
                    db.close()
            except sqlite3.DatabaseError as exc:
                raise TableError(f"Cannot read the study table {self.path}: {exc}.") from exc
        return self._read_csv()[0]

    def _read_raw(self, header_only: bool = False) -> Tuple[List[str], List[List[str]]]:
        """The header and rows as written in the file (cells still escaped), checked for the key columns."""
        if not os.path.exists(self.path) or os.path.getsize(self.path) == 0:
            return [], []
        previous = csv.field_size_limit(FIELD_SIZE_LIMIT)
        try:
            with open(self.path, newline="", encoding="utf-8-sig") as handle:
                reader = csv.reader(handle)
                header = next(reader, [])
                rows = [] if header_only else list(reader)
        except (OSError, UnicodeDecodeError, csv.Error) as exc:
            raise TableError(f"Cannot read the study table {self.path}: {exc}; fix or move the file.") from exc
        finally:
            csv.field_size_limit(previous)
        names = [unescape_cell(h) for h in header]
        missing = [k for k in KEY if k not in names]
        if missing:
            shown = ", ".join(printable(n) for n in names[:8]) + ("..." if len(names) > 8 else "")
            raise TableError(f"{self.path} is not a NETPET study table: it lacks the column(s) {', '.join(missing)} "
                             f"(its columns: {shown}); give another table path, the file was left untouched.")
        width = len(header)
        for number, row in enumerate(rows):
            if len(row) > width:
                raise TableError(f"{self.path} row {number + 2} has more fields than the header; fix the file "
                                 "(it was left untouched).")
        return header, rows

    def _read_csv(self, header_only: bool = False) -> Tuple[List[str], List[Dict[str, str]]]:
        header, rows = self._read_raw(header_only)
        names = [unescape_cell(h) for h in header]
        width = len(names)
        out = []
        for row in rows:
            if not row:
                continue  # a blank line
            if len(row) < width:
                row = row + [""] * (width - len(row))
            if "'" in "\x00".join(row):  # (a join is C-fast: most rows hold no quote at all)
                row = [unescape_cell(v) if v[:1] == "'" else v for v in row]
            out.append(dict(zip(names, row)))
        return names, out

    def _read_sqlite(self) -> List[Dict[str, str]]:
        return self._select_sqlite("lesions", "SELECT * FROM lesions", "the study table", foreign_refused=True)

    def _select_sqlite(self, table: str, sql: str, what: str, foreign_refused: bool = False) -> List[Dict[str, str]]:
        """The rows of ``sql`` as text, [] when the file or its ``table`` does not exist yet.

        ``foreign_refused``: an SQLite file holding other tables but not ``table`` is refused (it is not a NETPET
        study table); ``what`` names the read in the error message.
        """
        if not os.path.exists(self.path):
            return []
        try:
            db = sqlite3.connect(self.target, timeout=LOCK_TIMEOUT_S)
            try:
                tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
                if table not in tables:
                    if tables and foreign_refused:
                        raise TableError(f"{self.path} is an SQLite file without a '{table}' table; give another path.")
                    return []
                cursor = db.execute(sql)
                names = [d[0] for d in cursor.description]
                return [dict(zip(names, [v if isinstance(v, str) else _text(v) for v in r])) for r in cursor]
            finally:
                db.close()
        except sqlite3.DatabaseError as exc:
            raise TableError(f"Cannot read {what} {self.path}: {exc}.") from exc

    # -- writing -----------------------------------------------------------------------------------
    def upsert(self, rows: Iterable[Dict[str, Any]], by: Any = None, why: Any = None) -> Tuple[int, int]:
        """Insert or update rows by key; returns (inserted, updated). Every changed cell is recorded in the
        audit trail (:meth:`audit`) as ``insert`` or ``update``, by ``by`` (default: each row's reader), with ``why``.

        Raises
        ------
        TableError
            A row without its key, an invalid lesion id or value (NUL, not Unicode), a file that is not a
            study table, is read-only or has several hard links, an audit trail that is not one or is read-only,
            or a lock held for over :data:`LOCK_TIMEOUT_S`; each names the row, value or path. The file is left
            untouched.
        """
        inserted, updated, _logged = self._write(rows, by, why)
        return inserted, updated

    def record(self, key: Dict[str, Any], values: Dict[str, Any], by: Any = None, why: Any = None) -> int:
        """Change cells of one existing finding (a reader's call, confidence...); returns the audit rows written
        (0: nothing changed). The values are written as given: check them first (:mod:`netpet.schema`).

        Raises
        ------
        TableError
            No finding with this key (one sentence naming it), or any refusal of :meth:`upsert`.
        """
        row = {**self._full_key(key), **{k: v for k, v in values.items() if k not in KEY}}
        return self._write([row], by, why, must_exist=True)[2]

    def retract(self, key: Dict[str, Any], reason: Any, by: Any = None) -> int:
        """Withdraw a finding: ``finding_status`` becomes ``retracted`` and ``retraction_reason`` the reason; the
        row stays in the table (every analysis leaves it out, saying so). Returns the audit rows written (0: it was
        retracted already for this reason).

        Raises
        ------
        TableError
            An empty reason, no finding with this key (one sentence naming it), or any refusal of :meth:`upsert`.
        """
        text = _text(reason).strip()
        if not text:
            raise TableError(f"Say why the finding {describe_key(key)} is retracted (a reason is required); it was "
                             "left as it was.")
        row = {**self._full_key(key), "finding_status": RETRACTED, "retraction_reason": text}
        return self._write([row], by, text, action="retract", must_exist=True)[2]

    def restore(self, key: Dict[str, Any], why: Any = None, by: Any = None) -> int:
        """Undo a retraction: ``finding_status`` becomes ``active``, ``retraction_reason`` empty (the audit trail
        keeps the old reason). A finding that is not retracted is left as it is (0 audit rows).

        Raises
        ------
        TableError
            No finding with this key (one sentence naming it), or any refusal of :meth:`upsert`.
        """
        row = {**self._full_key(key), "finding_status": ACTIVE, "retraction_reason": ""}
        return self._write([row], by, why, action="restore", must_exist=True)[2]

    def adjudicate(self, rows: Iterable[Dict[str, Any]], by: Any, whys: Sequence[Any] = ()) -> Tuple[int, int]:
        """Write consensus rows (inserted or updated by key) recorded as ``adjudicate`` by the adjudicator ``by``,
        each with its ``why`` (``whys[i]`` for ``rows[i]``: the readers' values and the adjudicator's note).

        Raises
        ------
        TableError
            No adjudicator, or any refusal of :meth:`upsert`.
        """
        if not _text(by).strip():
            raise TableError("Name the adjudicator (--by): the audit trail records who decided; nothing was written.")
        inserted, updated, _logged = self._write(rows, by, None, action="adjudicate", whys=list(whys))
        return inserted, updated

    def _full_key(self, key: Dict[str, Any]) -> Dict[str, str]:
        missing = [k for k in KEY if k not in key or (_text(key.get(k)) == "" and k != "lesion_id")]
        if missing:
            raise TableError(f"The finding to change lacks the key column(s) {', '.join(missing)}; give {', '.join(KEY)}.")
        return {k: _text(key[k]) for k in KEY}

    def _missing(self, key: Sequence[str]) -> TableError:
        return TableError(f"The study table {self.path} has no finding {describe_key(dict(zip(KEY, key)))}; check the ids "
                          "(netpet audit --table lists what was written), nothing was changed.")

    def _write(self, rows: Iterable[Dict[str, Any]], by: Any = None, why: Any = None, action: str = "",
               must_exist: bool = False, whys: Sequence[Any] = ()) -> Tuple[int, int, int]:
        """The one write path: (inserted, updated, audit rows written). ``action`` '' is insert/update by key;
        ``must_exist`` refuses a key the table lacks; a ``restore`` changes only retracted rows."""
        rows = [dict(r) for r in rows]
        _check_rows(rows)
        if not rows:
            return 0, 0, 0
        audit = _AuditBatch(by, why, action, whys)
        target = self.target
        try:
            os.makedirs(os.path.dirname(target), exist_ok=True)
        except OSError as exc:
            raise TableError(f"Cannot create the folder of the study table {self.path}: {exc.strerror or exc}.") from exc
        if self.sqlite:
            check_writable(target, self.path, replaced=False)
            return self._upsert_sqlite(rows, audit, must_exist)
        trail = audit_path(target)
        with locked(target), gc_paused():
            check_writable(target, self.path)
            check_writable(trail, audit_path(self.path), what="audit trail", replaced=False)
            header, existing = self._read_raw()
            present = [unescape_cell(h) for h in header]
            names = list(COLUMNS) + [n for n in present if n not in COLUMNS]
            names += sorted({k for r in rows for k in r} - set(names))
            width = len(names)
            if names[:len(present)] != present:  # NETPET's columns first, then the table's own, then new ones
                position = {n: i for i, n in enumerate(present)}
                existing = [[r[position[n]] if position.get(n, width) < len(r) else "" for n in names]
                            for r in existing if r]
            else:
                existing = [r + [""] * (width - len(r)) if len(r) < width else r for r in existing if r]
            for r in existing:  # a cell an older version or a hand wrote bare is neutralised now (same value read)
                if _BARE_FORMULA.search("\x00" + "\x00".join(r)):
                    for j, cell in enumerate(r):
                        if cell[:1] in _PREFIX_SET and not _NUMBER.match(cell):
                            r[j] = "'" + cell
            # every cell is now escape_cell(its value): keys compare as written
            column = {n: i for i, n in enumerate(names)}
            key_of = operator.itemgetter(*[column[k] for k in KEY])
            index = {key_of(r): i for i, r in enumerate(existing)}
            inserted = updated = 0
            status = column["finding_status"]
            for number, row in enumerate(rows):
                text = {k: _text(v) for k, v in row.items()}
                plain = tuple(text.get(k, "") for k in KEY)
                key = tuple(escape_cell(v) for v in plain)
                position = index.get(key)
                if position is None:
                    if must_exist:
                        raise self._missing(plain)
                    index[key] = len(existing)
                    existing.append(_escaped_row([text.get(n, "") for n in names]))
                    audit.inserted(number, plain, text)
                    inserted += 1
                else:
                    target_row = existing[position]
                    if audit.action == "restore" and unescape_cell(target_row[status]).strip().lower() != RETRACTED:
                        continue
                    audit.updated(number, plain, text, {k: unescape_cell(target_row[column[k]]) for k in text})
                    for k, v in text.items():
                        target_row[column[k]] = escape_cell(v)
                    updated += 1
            if must_exist and not audit.entries:
                return inserted, updated, 0  # nothing changed: the table is not rewritten
            appended = _append_audit(trail, audit.entries)
            try:
                self._replace(target, [escape_cell(n) for n in names], existing)
            except BaseException:
                appended.undo()  # the table was not written: neither is its trail
                raise
        if len(existing) > LARGE_CSV_ROWS and target not in _warned_large:
            _warned_large.add(target)
            log.warning("The CSV study table %s has %d rows: every write rewrites it; a .sqlite table writes in "
                        "constant time (netpet quantify --table study.sqlite).", self.path, len(existing))
        return inserted, updated, len(audit.entries)

    def _replace(self, target: str, header: List[str], rows: List[List[str]]) -> None:
        def write(temporary: str) -> None:
            with open(temporary, "w", newline="", encoding="utf-8") as handle:
                # CRLF (RFC 4180) also makes the csv module quote a lone CR inside a value, which it
                # leaves bare with a LF terminator (and a reader then splits the row there)
                writer = csv.writer(handle, lineterminator="\r\n")
                writer.writerow(header)
                writer.writerows(rows)

        replace_atomically(target, write, suffix=".csv")

    def _upsert_sqlite(self, rows: List[Dict[str, Any]], audit: "_AuditBatch" = None,
                       must_exist: bool = False) -> Tuple[int, int, int]:
        audit = audit if audit is not None else _AuditBatch(None, None, "", ())
        names = list(COLUMNS) + sorted({k for r in rows for k in r} - set(COLUMNS))
        try:
            db = sqlite3.connect(self.target, timeout=LOCK_TIMEOUT_S, isolation_level=None)
            try:
                try:
                    db.execute("PRAGMA journal_mode=WAL")  # readers do not block the writer; persistent in the file
                except sqlite3.OperationalError:  # pragma: no cover - e.g. a file system without shared memory
                    pass
                db.execute("BEGIN IMMEDIATE")
                tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
                if "lesions" not in tables:
                    if tables:
                        raise TableError(f"{self.path} is an SQLite file without a 'lesions' table; give another path.")
                    first: Dict[str, str] = {}
                    for name in names:  # SQLite column names ignore the case of ASCII letters
                        if _ascii_fold(name) in first:
                            raise TableError(f"{self.path}: columns '{printable(first[_ascii_fold(name)])}' and "
                                             f"'{printable(name)}' to write differ only in case, which SQLite cannot "
                                             "keep apart; use one spelling.")
                        first[_ascii_fold(name)] = name
                    columns = ", ".join(_ident(n) for n in names)
                    db.execute(f"CREATE TABLE lesions ({columns}, PRIMARY KEY ({', '.join(KEY)}))")
                if AUDIT_TABLE not in tables:
                    db.execute(f"CREATE TABLE {AUDIT_TABLE} ({', '.join(_ident(c) for c in AUDIT_COLUMNS)})")
                elif [r[1] for r in db.execute(f"PRAGMA table_info({AUDIT_TABLE})")] != list(AUDIT_COLUMNS):
                    raise TableError(f"{self.path} holds a table '{AUDIT_TABLE}' that is not NETPET's audit trail (its "
                                     f"columns are not {', '.join(AUDIT_COLUMNS)}); rename it, the table was left "
                                     "untouched.")
                present = [r[1] for r in db.execute("PRAGMA table_info(lesions)")]
                missing = [k for k in KEY if k not in present]
                if missing:
                    raise TableError(f"{self.path}: the lesions table lacks the key column(s) {', '.join(missing)}.")
                folded = {_ascii_fold(p): p for p in present}
                for name in names:
                    if name not in present:
                        if _ascii_fold(name) in folded:  # SQLite column names ignore the case of ASCII letters
                            raise TableError(f"{self.path}: column '{printable(name)}' to write differs from the "
                                             f"table's column '{printable(folded[_ascii_fold(name)])}' only in case, "
                                             "which SQLite cannot keep "
                                             "apart; use one spelling.")
                        db.execute(f"ALTER TABLE lesions ADD COLUMN {_ident(name)}")
                        folded[_ascii_fold(name)] = name
                where = " AND ".join(f"{k} = ?" for k in KEY)
                inserted = updated = 0
                statements: Dict[Tuple[str, ...], str] = {}
                for number, row in enumerate(rows):
                    text = {k: _text(v) for k, v in row.items()}
                    for k in KEY:  # a missing key column is empty text, never NULL (NULLs never conflict)
                        text.setdefault(k, "")
                    exists = db.execute(f"SELECT 1 FROM lesions WHERE {where}", _key(text)).fetchone()
                    cols = list(text)
                    if exists:
                        # the cells before (a column of the table spelt in another case is the same column)
                        stored = [folded.get(_ascii_fold(c), c) for c in cols]
                        old = db.execute(f"SELECT {', '.join(_ident(c) for c in stored)} FROM lesions WHERE {where}",
                                         _key(text)).fetchone()
                        before = {c: (v if isinstance(v, str) else _text(v)) for c, v in zip(cols, old)}
                        if audit.action == "restore" and before.get("finding_status", "").strip().lower() != RETRACTED:
                            continue
                        audit.updated(number, _key(text), text, before)
                    elif must_exist:
                        raise self._missing(_key(text))
                    else:
                        audit.inserted(number, _key(text), text)
                    statement = statements.get(tuple(cols))
                    if statement is None:  # one statement per set of columns (the rows of a write share one)
                        assignments = ", ".join(f"{_ident(c)} = excluded.{_ident(c)}" for c in cols if c not in KEY)
                        statement = statements[tuple(cols)] = (
                            f"INSERT INTO lesions ({', '.join(_ident(c) for c in cols)}) VALUES "
                            f"({', '.join('?' for _ in cols)}) ON CONFLICT ({', '.join(KEY)}) DO "
                            + (f"UPDATE SET {assignments}" if assignments else "NOTHING"))
                    db.execute(statement, [text[c] for c in cols])
                    if exists:
                        updated += 1
                    else:
                        inserted += 1
                if audit.entries:  # the trail in the same transaction: both land, or neither
                    db.executemany(f"INSERT INTO {AUDIT_TABLE} VALUES ({', '.join('?' for _ in AUDIT_COLUMNS)})",
                                   audit.entries)
                db.execute("COMMIT")
            except BaseException:
                if db.in_transaction:
                    db.execute("ROLLBACK")
                raise
            finally:
                db.close()
        except sqlite3.DatabaseError as exc:
            raise TableError(f"Cannot write the study table {self.path}: {printable(str(exc))}.") from exc
        return inserted, updated, len(audit.entries)

    # -- the audit trail ---------------------------------------------------------------------------
    @property
    def audit_file(self) -> str:
        """Where the trail of a CSV table is kept: ``<table>.audit.csv`` beside the (resolved) table file; an
        SQLite table keeps it in its own table ``audit``."""
        return self.target if self.sqlite else audit_path(self.target)

    def audit(self, **where: Any) -> List[Dict[str, str]]:
        """The audit trail, oldest first: one dict per changed cell with :data:`AUDIT_COLUMNS` (text). Keyword
        arguments keep the entries whose column equals the value (``audit(patient_id="P1", action="retract")``).
        A CSV trail whose last line was cut by a crash is read without it (logged).

        Raises
        ------
        TableError
            The trail cannot be read or is not a NETPET audit trail (its header differs), or ``where`` names a
            column the trail does not have.
        """
        unknown = [k for k in where if k not in AUDIT_COLUMNS]
        if unknown:
            raise TableError(f"The audit trail has no column {', '.join(unknown)}; its columns: "
                             f"{', '.join(AUDIT_COLUMNS)}.")
        entries = self._read_audit_sqlite() if self.sqlite else read_audit_csv(self.audit_file)
        wanted = {k: _text(v) for k, v in where.items()}
        return [e for e in entries if all(e[k] == v for k, v in wanted.items())]

    def _read_audit_sqlite(self) -> List[Dict[str, str]]:
        return self._select_sqlite(AUDIT_TABLE, f"SELECT {', '.join(_ident(c) for c in AUDIT_COLUMNS)} "
                                                f"FROM {AUDIT_TABLE} ORDER BY rowid", "the audit trail of")


# -- the audit trail ---------------------------------------------------------------------------------

#: the columns of the audit trail: when (UTC, ISO 8601), who, what (action), the finding's key, the column
#: changed, its old and new value, and why
AUDIT_COLUMNS: Tuple[str, ...] = ("when", "who", "action") + KEY + ("column", "old", "new", "why")
AUDIT_ACTIONS: Tuple[str, ...] = ("insert", "update", "retract", "restore", "adjudicate")
AUDIT_TABLE = "audit"
#: columns not audited: the time of the last write changes on every export and says nothing of the finding
UNAUDITED = frozenset({"updated"})
_NOT_AUDITED = UNAUDITED | frozenset(KEY)  # (the key is in every entry: no cell of its own)
_READER = KEY.index("reader")
_AUDIT_HEADER = ("\r\n".join([",".join(AUDIT_COLUMNS), ""])).encode("utf-8")
_LINE_ESCAPES = str.maketrans({"\\": "\\\\", "\r": "\\r", "\n": "\\n"})
_LINE_UNESCAPE = re.compile(r"\\(.)", re.S)


def audit_path(path: str) -> str:
    """The audit trail of a CSV table ``path``: ``study.csv`` -> ``study.audit.csv`` (any other name gets
    ``.audit.csv`` appended)."""
    return (path[:-4] if path.lower().endswith(".csv") else path) + ".audit.csv"


def describe_key(key: Dict[str, Any]) -> str:
    """A finding's key as the messages name it: ``patient P1, session S1, PET/CT, dotatate, reader R1, lesion L01``."""
    part = lambda k: printable(_text(key.get(k)))  # noqa: E731
    lesion = part("lesion_id") or "(none: the session's read)"
    return (f"patient {part('patient_id')}, session {part('session_id')}, {part('modality')}, {part('tracer')}, "
            f"reader {part('reader')}, lesion {lesion}")


def _utc_now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="microseconds").replace("+00:00", "Z")


class _AuditBatch:
    """The audit entries of one write (rows of :data:`AUDIT_COLUMNS`, as lists of text): one timestamp for the
    write, one entry per changed cell (the key and :data:`UNAUDITED` columns are not cells of their own)."""

    def __init__(self, by: Any, why: Any, action: str, whys: Sequence[Any]) -> None:
        if action and action not in AUDIT_ACTIONS:
            raise ValueError(f"unknown audit action {action!r}")
        self.by = _text(by).strip()
        self.why = _text(why).strip()
        self.action = action
        self.whys = [_text(w).strip() for w in whys]
        self.when = _utc_now()
        self.entries: List[List[str]] = []

    def _head(self, number: int, key: Sequence[str], action: str) -> Tuple[List[str], str]:
        """The cells of a row's entries before the column (when, who, action, key), and their why."""
        who = self.by or key[_READER]
        why = self.whys[number] if number < len(self.whys) and self.whys[number] else self.why
        return [self.when, who, action, *key], why

    def inserted(self, number: int, key: Sequence[str], text: Dict[str, str]) -> None:
        head, why = self._head(number, key, self.action or "insert")
        before = len(self.entries)
        self.entries.extend([*head, column, "", value, why] for column, value in text.items()
                            if value != "" and column not in _NOT_AUDITED)
        if len(self.entries) == before:  # a row of its key alone (a session read without findings)
            self.entries.append([*head, "", "", "", why])

    def updated(self, number: int, key: Sequence[str], text: Dict[str, str], before: Dict[str, str]) -> None:
        head, why = self._head(number, key, self.action or "update")
        for column, value in text.items():
            old = before.get(column) or ""
            if value != old and column not in _NOT_AUDITED:
                self.entries.append([*head, column, old, value, why])


def _audit_cell(text: str) -> str:
    r"""An audit cell as written: backslash, CR and LF as ``\\``, ``\r``, ``\n`` (so that every entry is one line
    and a line cut by a crash is recognised), then the table's formula escaping (:func:`escape_cell`)."""
    return escape_cell(text.translate(_LINE_ESCAPES))


def _audit_value(cell: str) -> str:
    """The inverse of :func:`_audit_cell`."""
    text = unescape_cell(cell)
    if "\\" not in text:
        return text
    return _LINE_UNESCAPE.sub(lambda m: {"r": "\r", "n": "\n"}.get(m.group(1), m.group(1)), text)


class _Appended:
    """An append to the audit trail that can be taken back while the table's lock is held (the table write
    that followed it failed)."""

    def __init__(self, path: str, size: int) -> None:
        self.path, self.size = path, size

    def undo(self) -> None:
        if self.size < 0:
            return
        try:
            os.truncate(self.path, self.size)
        except OSError:  # pragma: no cover - the entries stay, marked by no table change
            log.warning("The audit trail %s keeps entries of a write that failed.", self.path)


def _append_audit(path: str, entries: List[List[str]]) -> _Appended:
    """Append entries to the CSV audit trail ``path`` (the table's lock held): one ``write`` of whole lines,
    flushed to disk (``fsync``) before the table is replaced. A trail whose last line a crash cut short (no line
    end) is cut back to its last whole line first (that line belonged to a write that never reached the table,
    which is replaced only after its trail is on disk). A new trail starts with its header.

    Raises
    ------
    TableError
        The trail is not a NETPET audit trail (another header) or cannot be written.
    """
    if not entries:
        return _Appended(path, -1)
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerows([_escaped_row(entry, _AUDIT_ESCAPED_CELL, _audit_cell) for entry in entries])
    data = buffer.getvalue().encode("utf-8")
    try:
        descriptor = os.open(path, os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o666)
    except OSError as exc:
        raise TableError(f"Cannot write the audit trail {path}: {exc.strerror or exc}; make its folder writable.") from exc
    try:
        size = os.fstat(descriptor).st_size
        if size:
            head = os.pread(descriptor, len(_AUDIT_HEADER), 0)
            if head != _AUDIT_HEADER[:len(head)] or (size >= len(_AUDIT_HEADER) and head != _AUDIT_HEADER):
                raise TableError(f"{path} is not a NETPET audit trail (its first line is not "
                                 f"{','.join(AUDIT_COLUMNS)}); move it away, the table was left untouched.")
            if os.pread(descriptor, 1, size - 1) != b"\n":
                whole = _last_line_end(descriptor, size)
                log.warning("The audit trail %s ended in a line cut short by a crash (%d bytes); it was cut back to "
                            "its last whole line.", path, size - whole)
                os.ftruncate(descriptor, whole)
                size = whole
        if size == 0:
            data = _AUDIT_HEADER + data
        view = memoryview(data)
        try:
            while view:
                written = os.write(descriptor, view)
                view = view[written:]
            os.fsync(descriptor)
        except BaseException:  # an error or interrupt in this process: the append is taken back whole
            os.ftruncate(descriptor, size)
            raise
    except OSError as exc:
        raise TableError(f"Cannot write the audit trail {path}: {exc.strerror or exc}; the table was left "
                         "untouched.") from exc
    finally:
        os.close(descriptor)
    return _Appended(path, size)


def _last_line_end(descriptor: int, size: int) -> int:
    """The size of the file up to and with its last LF (0 when it has none)."""
    position = size
    while position > 0:
        start = max(0, position - 65536)
        chunk = os.pread(descriptor, position - start, start)
        found = chunk.rfind(b"\n")
        if found >= 0:
            return start + found + 1
        position = start
    return 0


def read_audit_csv(path: str) -> List[Dict[str, str]]:
    """The entries of a CSV audit trail (see :meth:`StudyTable.audit`); an absent file is an empty trail.

    Raises
    ------
    TableError
        The file cannot be read, or its header is not :data:`AUDIT_COLUMNS`.
    """
    try:
        with open(path, "rb") as handle:
            data = handle.read()
    except FileNotFoundError:
        return []
    except OSError as exc:
        raise TableError(f"Cannot read the audit trail {path}: {exc.strerror or exc}.") from exc
    if not data:
        return []
    if not data.endswith(b"\n"):
        cut = data.rfind(b"\n") + 1
        log.warning("The audit trail %s ends in a line cut short by a crash (%d bytes); it is read without it.",
                    path, len(data) - cut)
        data = data[:cut]
    previous = csv.field_size_limit(FIELD_SIZE_LIMIT)  # (cells of any length, as the table's)
    try:
        lines = list(csv.reader(io.StringIO(data.decode("utf-8-sig"), newline="")))
    except (UnicodeDecodeError, csv.Error) as exc:
        raise TableError(f"Cannot read the audit trail {path}: {exc}; it was left untouched.") from exc
    finally:
        csv.field_size_limit(previous)
    if not lines:
        return []
    if [unescape_cell(c) for c in lines[0]] != list(AUDIT_COLUMNS):
        raise TableError(f"{path} is not a NETPET audit trail (its first line is not {','.join(AUDIT_COLUMNS)}).")
    out = []
    for number, line in enumerate(lines[1:], start=2):
        if not line:
            continue
        if len(line) != len(AUDIT_COLUMNS):
            raise TableError(f"{path} line {number} has {len(line)} fields, not {len(AUDIT_COLUMNS)}; it was not written "
                             "by NETPET, fix or move the file.")
        out.append(dict(zip(AUDIT_COLUMNS, [_audit_value(c) for c in line])))
    return out
