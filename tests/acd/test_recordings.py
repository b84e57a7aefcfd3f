"""Recording policy, index search and retention purge, with real WAV files from the engine's writer."""

from __future__ import annotations

import sqlite3
import wave

import numpy as np

from firmware.acd.recordings import RecordingIndex, RecordingPolicy
from firmware.engine.record import RecordingWriter


def test_policy_most_specific_level_wins():
    policy = RecordingPolicy(
        queues={"service": True, "sales": False}, extensions={"8001": False}, trunks={"span1": True}
    )
    assert policy.should_record(queue="service")
    assert not policy.should_record(queue="service", extension="8001")  # this agent opted out
    assert not policy.should_record(queue="sales", trunk="span1")
    assert policy.should_record(trunk="span1")
    assert not policy.should_record(queue="other")


def record_call(
    index: RecordingIndex, writer: RecordingWriter, callid: str, start: float, seconds: float, **fields: str
) -> None:
    path = index.path_for(callid, start)
    recording = writer.open(path)
    caller = (8000 * np.sin(2 * np.pi * 440 * np.arange(int(8000 * seconds)) / 8000)).astype(np.int16)
    for block in range(0, len(caller), 80):
        recording.feed(caller[block : block + 80], np.zeros(len(caller[block : block + 80]), np.int16))
    recording.close()
    index.add(callid, path, start, start + seconds, error=recording.error, **fields)


def test_search_by_time_number_agent_queue_and_purge(tmp_path):
    index = RecordingIndex(sqlite3.connect(tmp_path / "db"), tmp_path / "recordings")
    writer = RecordingWriter(threaded=False)
    day = 86400.0
    record_call(index, writer, "c1", 10 * day, 2.0, number="13800001111", agent="8001", queue="service")
    record_call(index, writer, "c2", 10 * day + 60, 1.0, number="13800002222", agent="8002", queue="sales")
    record_call(index, writer, "c3", 20 * day, 1.5, number="13800001111", agent="8002", queue="service")
    with wave.open(str(index.search(callid="c1")[0].path)) as wav:
        assert (wav.getnchannels(), wav.getframerate(), wav.getnframes()) == (2, 8000, 16000)
    assert [r.callid for r in index.search(number="1111")] == ["c1", "c3"]
    assert [r.callid for r in index.search(agent="8002")] == ["c2", "c3"]
    assert [r.callid for r in index.search(queue="service", agent="8002")] == ["c3"]
    assert [r.callid for r in index.search(10 * day, 11 * day)] == ["c1", "c2"]
    assert index.search(number="%") == []  # SQL wildcards in a search are literal characters
    assert index.purge(now=20 * day + 10, retention_days=7) == 2
    remaining = index.search()
    assert [r.callid for r in remaining] == ["c3"]
    assert sorted(p.name for p in (tmp_path / "recordings").rglob("*.wav")) == ["c3.wav"]


def test_disk_full_recording_is_indexed_as_incomplete(tmp_path):
    index = RecordingIndex(sqlite3.connect(tmp_path / "db"), tmp_path / "recordings")
    index.add("c9", tmp_path / "recordings" / "x.wav", 100, 160, number="1", error="disk full")
    [info] = index.search()
    assert not info.complete and info.error == "disk full" and info.seconds == 60
