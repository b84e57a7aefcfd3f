"""The box's data at rest: SQLite in WAL mode (CDR, customers, recordings index, alarms).

Durability contract (DESIGN.md, issue 5): `write_cdr` returns only after the record is committed with
`synchronous=FULL`, so a call's resources are released after its CDR is on disk, and a `kill -9` at any
moment loses no completed call's record. One `Store` is used from the control plane; a lock makes it safe
to share with a helper thread (the recorder writer files its index rows here).
"""

from __future__ import annotations

import csv
import io
import json
import sqlite3
import threading
import time
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, TextIO

DISPOSITIONS = ("ANSWERED", "NO ANSWER", "BUSY", "FAILED", "CONGESTION")


@dataclass
class Cdr:
    """One call's record, with Asterisk's CDR fields (times are Unix epoch seconds, `answer` 0 if never)."""

    uniqueid: str
    linkedid: str
    clid: str = ""
    src: str = ""
    dst: str = ""
    dcontext: str = ""
    channel: str = ""
    dstchannel: str = ""
    lastapp: str = ""
    lastdata: str = ""
    start: float = 0.0
    answer: float = 0.0
    end: float = 0.0
    duration: int = 0
    billsec: int = 0
    disposition: str = "NO ANSWER"
    amaflags: str = "DOCUMENTATION"
    accountcode: str = ""
    userfield: str = ""
    peeraccount: str = ""
    sequence: int = 0
    # Ours, beyond Asterisk's: post-call survey score (1-10) and the hangup cause (Q.850).
    survey: int | None = None
    cause: int = 16
    extra: dict[str, Any] = field(default_factory=dict)

    def close(self, end: float) -> None:
        """Fill end/duration/billsec the way Asterisk does (whole seconds, billsec from answer)."""
        self.end = end
        self.duration = max(0, int(end - self.start))
        self.billsec = max(0, int(end - self.answer)) if self.answer else 0
        if self.disposition not in DISPOSITIONS:
            raise ValueError(f"disposition {self.disposition!r} is not one of {DISPOSITIONS}")


# Asterisk cdr_csv Master.csv column order (loguniqueid=yes, loguserfield=yes, newcdrcolumns=yes).
MASTER_CSV_COLUMNS = (
    "accountcode",
    "src",
    "dst",
    "dcontext",
    "clid",
    "channel",
    "dstchannel",
    "lastapp",
    "lastdata",
    "start",
    "answer",
    "end",
    "duration",
    "billsec",
    "disposition",
    "amaflags",
    "uniqueid",
    "userfield",
    "peeraccount",
    "linkedid",
    "sequence",
)
_UNQUOTED = {"duration", "billsec", "sequence"}  # cdr_csv writes these with append_int (no quotes)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS cdr (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    uniqueid TEXT NOT NULL UNIQUE, linkedid TEXT NOT NULL,
    clid TEXT, src TEXT, dst TEXT, dcontext TEXT, channel TEXT, dstchannel TEXT,
    lastapp TEXT, lastdata TEXT, start REAL, answer REAL, "end" REAL, duration INTEGER, billsec INTEGER,
    disposition TEXT, amaflags TEXT, accountcode TEXT, userfield TEXT, peeraccount TEXT, sequence INTEGER,
    survey INTEGER, cause INTEGER, extra TEXT
);
CREATE INDEX IF NOT EXISTS cdr_start ON cdr(start);
CREATE TABLE IF NOT EXISTS customers (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    number TEXT, account TEXT, name TEXT, fields TEXT NOT NULL DEFAULT '{}'
);
CREATE INDEX IF NOT EXISTS customers_number ON customers(number);
CREATE INDEX IF NOT EXISTS customers_account ON customers(account);
CREATE TABLE IF NOT EXISTS recordings (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    uniqueid TEXT, path TEXT NOT NULL, kind TEXT, started REAL, seconds REAL, complete INTEGER,
    number TEXT NOT NULL DEFAULT '', agent TEXT NOT NULL DEFAULT '', queue TEXT NOT NULL DEFAULT '',
    trunk TEXT NOT NULL DEFAULT '', extension TEXT NOT NULL DEFAULT '', error TEXT NOT NULL DEFAULT ''
);
CREATE TABLE IF NOT EXISTS alarms (
    id INTEGER PRIMARY KEY AUTOINCREMENT, at REAL, source TEXT, kind TEXT, text TEXT
);
"""


# Columns added since a data directory was first made: added in place by ensure_schema, nothing lost.
ADDED_COLUMNS = {"recordings": ("number", "agent", "queue", "trunk", "extension", "error")}


def ensure_schema(db: sqlite3.Connection) -> None:
    """The box's tables on any connection to its database (the store's own, the ACD's), old ones upgraded."""
    db.executescript(_SCHEMA)
    for table, columns in ADDED_COLUMNS.items():
        have = {row[1] for row in db.execute(f"PRAGMA table_info({table})")}
        for column in columns:
            if column not in have:
                db.execute(f"ALTER TABLE {table} ADD COLUMN {column} TEXT NOT NULL DEFAULT ''")
    db.execute("CREATE INDEX IF NOT EXISTS recordings_started ON recordings(started)")
    if db.in_transaction:
        db.commit()


class Store:
    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.RLock()
        self._db = sqlite3.connect(str(self.path), check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        # FULL: each commit is fsynced, so a completed call survives a power cut as well as kill -9.
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.execute("PRAGMA busy_timeout=5000")
        ensure_schema(self._db)

    _ADDED_COLUMNS = ADDED_COLUMNS

    def close(self) -> None:
        with self._lock:
            self._db.close()

    @property
    def journal_mode(self) -> str:
        return str(self._db.execute("PRAGMA journal_mode").fetchone()[0])

    # --- CDR ---------------------------------------------------------------------------------------
    def write_cdr(self, cdr: Cdr, with_writes: Iterable[tuple[str, tuple[Any, ...]]] = ()) -> None:
        """Insert and commit one CDR; returns once it is durable. `with_writes` (SQL, params) run in the same
        transaction: the ACD's last queue-log lines of the call commit with its CDR, or neither does."""
        row = asdict(cdr)
        row["extra"] = json.dumps(row["extra"], ensure_ascii=False)
        cols = list(row)
        sql = "INSERT INTO cdr ({}) VALUES ({})".format(
            ",".join(f'"{c}"' for c in cols), ",".join("?" for _ in cols)
        )
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                self._db.execute(sql, [row[c] for c in cols])
                for statement, params in with_writes:
                    self._db.execute(statement, params)
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    def cdrs(self, where: str = "", params: Iterable[Any] = ()) -> list[Cdr]:
        names = [f.name for f in fields(Cdr)]
        sql = "SELECT {} FROM cdr {} ORDER BY id".format(",".join(f'"{n}"' for n in names), where)
        with self._lock:
            rows = self._db.execute(sql, tuple(params)).fetchall()
        out = []
        for r in rows:
            d = dict(zip(names, r, strict=True))
            d["extra"] = json.loads(d["extra"] or "{}")
            out.append(Cdr(**d))
        return out

    def cdr(self, uniqueid: str) -> Cdr | None:
        found = self.cdrs("WHERE uniqueid = ?", (uniqueid,))
        return found[0] if found else None

    def cdr_count(self) -> int:
        with self._lock:
            return int(self._db.execute("SELECT COUNT(*) FROM cdr").fetchone()[0])

    def export_csv(self, out: TextIO, gmt: bool = False) -> int:
        """Write every CDR as Asterisk's Master.csv (no header, same column order and quoting)."""
        n = 0
        for cdr in self.cdrs():
            out.write(cdr_csv_line(cdr, gmt) + "\n")
            n += 1
        return n

    # --- customers (IVR lookups) -------------------------------------------------------------------
    def add_customer(
        self, number: str | None, account: str | None, name: str, extra: dict[str, Any] | None = None
    ) -> int:
        with self._lock:
            cur = self._db.execute(
                "INSERT INTO customers(number, account, name, fields) VALUES (?,?,?,?)",
                (number, account, name, json.dumps(extra or {}, ensure_ascii=False)),
            )
            return int(cur.lastrowid or 0)

    def lookup_customer(self, by: str, value: str) -> dict[str, Any] | None:
        if by not in ("number", "account"):
            raise ValueError(f"customer lookup by {by!r}: use 'number' or 'account'")
        with self._lock:
            row = self._db.execute(
                f"SELECT id, number, account, name, fields FROM customers WHERE {by} = ? LIMIT 1", (value,)
            ).fetchone()
        if row is None:
            return None
        rec: dict[str, Any] = {"id": row[0], "number": row[1], "account": row[2], "name": row[3]}
        rec.update(json.loads(row[4] or "{}"))
        return rec

    # --- recordings and alarms ---------------------------------------------------------------------
    def add_recording(self, uniqueid: str, path: str, kind: str, started: float, **fields: str) -> int:
        """Index a recording as it starts; fields: number, agent, queue, trunk, extension (for search)."""
        extra = {k: str(v) for k, v in fields.items() if k in self._ADDED_COLUMNS["recordings"]}
        columns = ", ".join(["uniqueid", "path", "kind", "started", "seconds", "complete", *extra])
        marks = ", ".join(["?"] * (6 + len(extra)))
        with self._lock:
            cur = self._db.execute(
                f"INSERT INTO recordings({columns}) VALUES ({marks})",
                (uniqueid, path, kind, started, 0, 0, *extra.values()),
            )
            return int(cur.lastrowid or 0)

    def finish_recording(self, rec_id: int, seconds: float, complete: bool, error: str = "") -> None:
        with self._lock:
            self._db.execute(
                "UPDATE recordings SET seconds = ?, complete = ?, error = ? WHERE id = ?",
                (seconds, int(complete), error, rec_id),
            )

    def recordings(self) -> list[dict[str, Any]]:
        with self._lock:
            cur = self._db.execute(
                "SELECT id, uniqueid, path, kind, started, seconds, complete FROM recordings"
            )
            names = [d[0] for d in cur.description]
            return [dict(zip(names, r, strict=True)) for r in cur.fetchall()]

    def alarm(self, source: str, kind: str, text: str, at: float | None = None) -> None:
        with self._lock:
            self._db.execute(
                "INSERT INTO alarms(at, source, kind, text) VALUES (?,?,?,?)",
                (time.time() if at is None else at, source, kind, text),
            )

    def alarms(self) -> list[tuple[float, str, str, str]]:
        with self._lock:
            return [
                tuple(r) for r in self._db.execute("SELECT at, source, kind, text FROM alarms ORDER BY id")
            ]


def _fmt_time(t: float, gmt: bool) -> str:
    if not t:
        return ""
    return time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(t) if gmt else time.localtime(t))


def cdr_csv_line(cdr: Cdr, gmt: bool = False) -> str:
    """One Master.csv line: strings double-quoted (inner quotes doubled), integers bare, as cdr_csv does."""
    vals = asdict(cdr)
    parts = []
    for col in MASTER_CSV_COLUMNS:
        v = vals[col]
        if col in ("start", "answer", "end"):
            v = _fmt_time(float(v or 0), gmt)
        if col in _UNQUOTED:
            parts.append(str(int(v or 0)))
        else:
            parts.append('"' + str(v if v is not None else "").replace('"', '""') + '"')
    return ",".join(parts)


def read_master_csv(text: str) -> Iterator[dict[str, str]]:
    """Parse Master.csv text back into column dicts (what a reporting tool reading our export sees)."""
    for row in csv.reader(io.StringIO(text)):
        if row:
            yield dict(zip(MASTER_CSV_COLUMNS, row, strict=True))
