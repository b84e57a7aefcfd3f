"""Which calls are recorded, where the files are, how to find them, and when they go.

The media engine writes the audio (`firmware.engine.record`: stereo WAV, caller left, agent right, off
the tick thread, stopped with an alarm on a full disk). This module decides *whether* a call is recorded
(per queue, per extension, per trunk, on or off), keeps the searchable index of finished recordings in
SQLite, and purges recordings older than the retention period, file and index row together.
"""

from __future__ import annotations

import sqlite3
import time
from dataclasses import dataclass, field
from pathlib import Path

from firmware.storage import ensure_schema


@dataclass(frozen=True)
class RecordingPolicy:
    """Recording on or off by queue, extension and trunk; any 'on' records the call, an explicit 'off'
    on the most specific level (extension, then queue, then trunk) wins over a default."""

    queues: dict[str, bool] = field(default_factory=dict)
    extensions: dict[str, bool] = field(default_factory=dict)
    trunks: dict[str, bool] = field(default_factory=dict)
    default: bool = False

    def should_record(
        self, queue: str | None = None, extension: str | None = None, trunk: str | None = None
    ) -> bool:
        for table, key in ((self.extensions, extension), (self.queues, queue), (self.trunks, trunk)):
            if key is not None and key in table:
                return table[key]
        return self.default


@dataclass(frozen=True)
class RecordingInfo:
    id: int
    callid: str
    path: str
    start: float
    end: float
    number: str
    agent: str
    queue: str
    trunk: str
    extension: str
    complete: bool
    error: str

    @property
    def seconds(self) -> float:
        return self.end - self.start


class RecordingIndex:
    """Search and retention over the box's recordings table (firmware.storage: one table, written by call
    control as each recording starts and ends)."""

    COLUMNS = (
        "id, uniqueid, path, started, started + seconds, number, agent, queue, trunk, extension,"
        " complete, error"
    )

    def __init__(self, conn: sqlite3.Connection, directory: Path) -> None:
        self.conn = conn
        self.directory = directory
        ensure_schema(conn)

    def path_for(self, callid: str, start: float) -> Path:
        """Where a new recording goes: one folder per day keeps directories small and purges cheap."""
        day = time.strftime("%Y%m%d", time.gmtime(start))
        safe = "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in callid)
        return self.directory / day / f"{safe}.wav"

    def add(
        self,
        callid: str,
        path: Path,
        start: float,
        end: float,
        *,
        number: str = "",
        agent: str = "",
        queue: str = "",
        trunk: str = "",
        extension: str = "",
        error: str | None = None,
    ) -> int:
        """Index a finished recording (error: why it stopped early, e.g. "disk full")."""
        cursor = self.conn.execute(
            "INSERT INTO recordings(uniqueid, path, kind, started, seconds, complete, number, agent, queue,"
            " trunk, extension, error) VALUES (?,?,'call',?,?,?,?,?,?,?,?,?)",
            (
                callid,
                str(path),
                start,
                end - start,
                int(error is None),
                number,
                agent,
                queue,
                trunk,
                extension,
                error or "",
            ),
        )
        self.conn.commit()
        return int(cursor.lastrowid or 0)

    def search(
        self,
        start: float | None = None,
        end: float | None = None,
        *,
        number: str | None = None,
        agent: str | None = None,
        queue: str | None = None,
        callid: str | None = None,
        extension: str | None = None,
        kind: str | None = None,
    ) -> list[RecordingInfo]:
        """Recordings that began in [start, end) and match every given field (number matches a substring,
        so a search for the last digits finds the caller)."""
        clauses: list[str] = []
        params: list[object] = []
        if start is not None:
            clauses.append("started >= ?")
            params.append(start)
        if end is not None:
            clauses.append("started < ?")
            params.append(end)
        if number:
            clauses.append("number LIKE ? ESCAPE '\\'")
            params.append("%" + number.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%")
        for column, value in (
            ("agent", agent),
            ("queue", queue),
            ("uniqueid", callid),
            ("extension", extension),  # a voicemail box for messages
            ("kind", kind),  # "call" or "message"
        ):
            if value:
                clauses.append(f"{column} = ?")
                params.append(value)
        where = " WHERE " + " AND ".join(clauses) if clauses else ""
        rows = self.conn.execute(f"SELECT {self.COLUMNS} FROM recordings{where} ORDER BY started", params)
        return [RecordingInfo(*row[:10], bool(row[10]), row[11]) for row in rows]

    def purge(self, now: float, retention_days: float) -> int:
        """Delete recordings that ended more than `retention_days` ago, file and row; returns how many."""
        cutoff = now - retention_days * 86400
        old = self.conn.execute(
            "SELECT id, path FROM recordings WHERE started + seconds < ?", (cutoff,)
        ).fetchall()
        purged = 0
        for row_id, path in old:
            try:
                Path(path).unlink(missing_ok=True)
            except OSError:
                continue  # keep the row: the file is still there and the next purge tries again
            self.conn.execute("DELETE FROM recordings WHERE id = ?", (row_id,))
            purged += 1
        self.conn.commit()
        for day_dir in sorted(self.directory.glob("*/")) if self.directory.exists() else []:
            try:
                day_dir.rmdir()  # only succeeds once a day's folder is empty
            except OSError:
                pass
        return purged
