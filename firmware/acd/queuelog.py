"""Asterisk-compatible queue log: `epoch|callid|queue|agent|EVENT|data1|data2|...`.

Lines go to a text file (read by existing queue-reporting tools exactly as Asterisk's
/var/log/asterisk/queue_log) and to the `queue_log` table of the box's SQLite store, which the reports
read. The data fields of each event follow Asterisk's documentation (doc/queuelog.txt):

    ABANDON(position|origposition|waittime)       AGENTLOGIN(channel)      AGENTLOGOFF(channel|logintime)
    COMPLETEAGENT(holdtime|calltime|origposition) COMPLETECALLER(holdtime|calltime|origposition)
    CONNECT(holdtime|bridgedchanneluniqueid|ringtime)                      ENTERQUEUE(url|callerid)
    EXITEMPTY(position|origposition|waittime)     EXITWITHKEY(key|position|origposition|waittime)
    EXITWITHTIMEOUT(position|origposition|waittime)                         RINGNOANSWER(ringtime ms)
    RINGCANCELED(ringtime ms)  PAUSE(reason)  UNPAUSE(reason)  ADDMEMBER  REMOVEMEMBER  JOINEMPTY  FULL
    TRANSFER(extension|context|holdtime|calltime|origposition)
    BLINDTRANSFER(extension|context|holdtime|calltime|origposition)
    ATTENDEDTRANSFER(method|data|holdtime|calltime|origposition)   method BRIDGE / APP / LINK (Asterisk 12+)

Ours, in the same shape (readers skip events they do not know, as they skip Asterisk's newer ones):

    HOLD                        the agent put the caller on hold (music) during the call
    UNHOLD(duration)            ... and took them back after `duration` seconds (AHT counts it as hold)
    CALLBACKFAILED(number|attempt|reason)   a callback's call to the customer failed (no answer, busy ...)

A completed call's last lines can be collected instead of committed (`collect()`) and committed by the
store in the same SQLite transaction as the call's CDR (`LogWrites.statements`, then `committed()`); the
text file gets every line only after the transaction that stored it has committed.
"""

from __future__ import annotations

import itertools
import os
import sqlite3
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

# Event name -> names of its data fields, in order (Asterisk's documentation).
EVENT_FIELDS: dict[str, tuple[str, ...]] = {
    "ABANDON": ("position", "origposition", "waittime"),
    "ADDMEMBER": (),
    "AGENTDUMP": (),
    "AGENTLOGIN": ("channel",),
    "AGENTLOGOFF": ("channel", "logintime"),
    "ATTENDEDTRANSFER": ("method", "data", "holdtime", "calltime", "origposition"),
    "BLINDTRANSFER": ("extension", "context", "holdtime", "calltime", "origposition"),
    "CALLBACKFAILED": ("number", "attempt", "reason"),
    "COMPLETEAGENT": ("holdtime", "calltime", "origposition"),
    "COMPLETECALLER": ("holdtime", "calltime", "origposition"),
    "CONFIGRELOAD": (),
    "CONNECT": ("holdtime", "bridgedchanneluniqueid", "ringtime"),
    "ENTERQUEUE": ("url", "callerid"),
    "EXITEMPTY": ("position", "origposition", "waittime"),
    "EXITWITHKEY": ("key", "position", "origposition", "waittime"),
    "EXITWITHTIMEOUT": ("position", "origposition", "waittime"),
    "FULL": (),
    "HOLD": (),
    "JOINEMPTY": (),
    "PAUSE": ("reason",),
    "PAUSEALL": ("reason",),
    "QUEUESTART": (),
    "REMOVEMEMBER": (),
    "RINGCANCELED": ("ringtime",),
    "RINGNOANSWER": ("ringtime",),
    "TRANSFER": ("extension", "context", "holdtime", "calltime", "origposition"),
    "UNHOLD": ("duration",),
    "UNPAUSE": ("reason",),
    "UNPAUSEALL": ("reason",),
}

SCHEMA = """
CREATE TABLE IF NOT EXISTS queue_log (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    time REAL NOT NULL,
    callid TEXT NOT NULL,
    queuename TEXT NOT NULL,
    agent TEXT NOT NULL,
    event TEXT NOT NULL,
    data1 TEXT NOT NULL DEFAULT '', data2 TEXT NOT NULL DEFAULT '', data3 TEXT NOT NULL DEFAULT '',
    data4 TEXT NOT NULL DEFAULT '', data5 TEXT NOT NULL DEFAULT ''
);
CREATE INDEX IF NOT EXISTS queue_log_time ON queue_log(time);
CREATE INDEX IF NOT EXISTS queue_log_callid ON queue_log(callid);
"""


class QueueLogFormatError(ValueError):
    """A queue_log line that does not have Asterisk's shape."""


@dataclass(frozen=True)
class QueueLogEntry:
    time: float
    callid: str
    queue: str
    agent: str
    event: str
    data: tuple[str, ...] = ()

    def field(self, name: str) -> str:
        """A data field by its Asterisk name, e.g. entry.field("holdtime")."""
        names = EVENT_FIELDS.get(self.event, ())
        if name not in names:
            raise KeyError(f"{self.event} has no field {name!r} (fields: {', '.join(names) or 'none'})")
        index = names.index(name)
        return self.data[index] if index < len(self.data) else ""

    def number(self, name: str) -> float:
        value = self.field(name)
        return float(value) if value else 0.0

    def to_line(self) -> str:
        parts = [str(int(self.time)), self.callid, self.queue, self.agent, self.event, *self.data]
        for part in parts:
            if "|" in part or "\n" in part:
                raise QueueLogFormatError(f"queue_log field {part!r} holds a separator")
        return "|".join(parts)


def parse_line(line: str) -> QueueLogEntry:
    """Parse one queue_log line as Asterisk writes it."""
    parts = line.rstrip("\r\n").split("|")
    if len(parts) < 5:
        raise QueueLogFormatError(f"queue_log line has {len(parts)} fields, needs at least 5: {line!r}")
    try:
        when = float(parts[0])
    except ValueError:
        raise QueueLogFormatError(f"queue_log time {parts[0]!r} is not a UNIX timestamp") from None
    return QueueLogEntry(when, parts[1], parts[2], parts[3], parts[4], tuple(parts[5:]))


def _clean(value: object) -> str:
    text = "" if value is None else str(value)
    # A separator inside a field would shift every field after it for every reader of the log.
    return text.replace("|", "/").replace("\n", " ").replace("\r", " ")


Statement = tuple[str, tuple[object, ...]]


class LogWrites:
    """Queue-log writes collected for another transaction (a completed call's lines, with its CDR).

    Whoever commits `statements` (in the same transaction as the CDR) then calls `committed()`, which
    writes the lines to the text file. Until then nothing of them is in the database or the file."""

    def __init__(self, log: QueueLog, statements: list[Statement], lines: list[str]) -> None:
        self.log = log
        self.statements = statements
        self.lines = lines

    def __bool__(self) -> bool:
        return bool(self.statements)

    def merge(self, other: LogWrites | None) -> LogWrites:
        if other is not None:
            self.statements += other.statements
            self.lines += other.lines
            other.statements, other.lines = [], []
        return self

    def committed(self) -> None:
        lines, self.lines, self.statements = self.lines, [], []
        self.log._write_file(lines)


class QueueLog:
    """Writes queue_log lines to a file and to SQLite, durably, in the order they happen."""

    def __init__(self, conn: sqlite3.Connection, path: Path | None = None, fsync: bool = True) -> None:
        self.conn = conn
        self.conn.executescript(SCHEMA)
        self.path = path
        self._file = open(path, "a", encoding="utf-8") if path is not None else None  # noqa: SIM115
        self._fsync = fsync
        self._batch_depth = 0
        self._batch: list[Statement] = []  # this transaction's writes, until committed
        self._lines: list[str] = []  # this transaction's file lines, written once it has committed
        self.pending: list[Statement] = []  # writes the database could not take yet
        self.pending_lines: list[str] = []  # their file lines
        self.on_alarm: Callable[[str, str], None] | None = None

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None

    @contextmanager
    def batch(self) -> Iterator[None]:
        """Group writes into one transaction (e.g. a call's last lines together with its CDR)."""
        self._batch_depth += 1
        try:
            yield
        finally:
            self._batch_depth -= 1
            if self._batch_depth == 0:
                self._commit()

    @contextmanager
    def collect(self) -> Iterator[LogWrites]:
        """Group writes like `batch`, but hand them over uncommitted: the caller commits them in its own
        transaction (the CDR's) and then calls `committed()`. Inside another batch, the outer one commits
        them and the LogWrites stays empty."""
        writes = LogWrites(self, [], [])
        outer = self._batch_depth > 0
        self._batch_depth += 1
        try:
            yield writes
        finally:
            self._batch_depth -= 1
            if not outer:
                writes.statements, writes.lines = self._batch, self._lines
                self._batch, self._lines = [], []

    def write(
        self, time: float, callid: str, queue: str, agent: str, event: str, *data: object
    ) -> QueueLogEntry:
        if event not in EVENT_FIELDS:
            raise QueueLogFormatError(f"unknown queue_log event {event!r}")
        entry = QueueLogEntry(
            time,
            _clean(callid) or "NONE",
            _clean(queue) or "NONE",
            _clean(agent) or "NONE",
            event,
            tuple(_clean(d) for d in data),
        )
        if len(entry.data) > 5:  # Asterisk's queue_log table has data1..data5 and no event uses more
            raise QueueLogFormatError(f"{event} with {len(entry.data)} data fields (at most 5)")
        padded = (list(entry.data) + [""] * 5)[:5]
        self.execute(
            "INSERT INTO queue_log(time, callid, queuename, agent, event, data1, data2, data3, data4, data5)"
            " VALUES (?,?,?,?,?,?,?,?,?,?)",
            (entry.time, entry.callid, entry.queue, entry.agent, entry.event, *padded),
        )
        if self._file is not None:
            self._lines.append(entry.to_line())
        if self._batch_depth == 0:
            self._commit()
        return entry

    def execute(self, sql: str, params: tuple[object, ...]) -> None:
        """A write that must reach the database. Writes are queued and run at the commit that ends the
        input (grouped: one executemany per run of the same statement), so an event's lines and rows land
        together. While the database cannot take them (disk or database full, I/O error) they stay in
        memory, in order, and are retried at every commit: the calls go on meanwhile."""
        self._batch.append((sql, params))

    def _failed(self, error: sqlite3.Error, statements: list[tuple[str, tuple[object, ...]]]) -> None:
        if self.conn.in_transaction:
            self.conn.rollback()
        self.pending = statements  # everything not committed, oldest first
        self._alarm(f"queue log not stored ({error}); {len(self.pending)} writes kept in memory for retry")

    def _commit(self) -> None:
        statements = self.pending + self._batch
        lines = self.pending_lines + self._lines
        self._batch, self._lines = [], []
        if statements:
            try:
                run_statements(self.conn, statements)
                self.conn.commit()
            except sqlite3.Error as error:
                self._failed(error, statements)
                self.pending_lines = lines
                return
            self.pending, self.pending_lines = [], []
        self._write_file(lines)

    def _write_file(self, lines: list[str]) -> None:
        """Lines whose database writes have committed go to the text file, flushed and synced."""
        if self._file is not None and lines:
            try:
                self._file.write("".join(line + "\n" for line in lines))
                self._file.flush()
                if self._fsync:
                    os.fsync(self._file.fileno())
            except OSError as error:
                self._alarm(f"queue_log file: {error.strerror or error}; the database keeps the log")

    def _alarm(self, text: str) -> None:
        if self.on_alarm is not None:
            self.on_alarm("queue_log", text)

    def entries(self, start: float | None = None, end: float | None = None) -> list[QueueLogEntry]:
        return list(read_entries(self.conn, start, end))


def run_statements(conn: sqlite3.Connection, statements: list[Statement]) -> None:
    """Run queued writes on `conn` in order, one executemany per run of the same statement."""
    for sql, group in itertools.groupby(statements, key=lambda statement: statement[0]):
        conn.executemany(sql, [params for _, params in group])


def read_entries(
    conn: sqlite3.Connection, start: float | None = None, end: float | None = None
) -> Iterable[QueueLogEntry]:
    """Entries from the SQLite queue_log in time order, optionally within [start, end)."""
    conn.executescript(SCHEMA)
    query = "SELECT time, callid, queuename, agent, event, data1, data2, data3, data4, data5 FROM queue_log"
    clauses, params = [], []
    if start is not None:
        clauses.append("time >= ?")
        params.append(start)
    if end is not None:
        clauses.append("time < ?")
        params.append(end)
    if clauses:
        query += " WHERE " + " AND ".join(clauses)
    query += " ORDER BY time, id"
    for row in conn.execute(query, params):
        data = list(row[5:])
        while data and data[-1] == "":
            data.pop()
        yield QueueLogEntry(row[0], row[1], row[2], row[3], row[4], tuple(data))
