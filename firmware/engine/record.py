"""Call recording: the engine taps both directions of a channel; a writer thread puts them in WAV files.

Stereo WAV, 8 kHz 16-bit: left = what the channel sent into the box, right = what the box sent to it.
The tick only appends arrays to a queue (`feed`); file I/O happens on the writer thread (or inline when
`threaded=False`, as in virtual-time tests). A write error (disk full, I/O error) stops that recording,
raises an alarm and is reported to the engine at the next `feed` so the call carries on unrecorded.
"""

from __future__ import annotations

import errno
import queue
import threading
import wave
from collections.abc import Callable
from pathlib import Path

import numpy as np


class RecordingWriter:
    def __init__(self, threaded: bool = True, on_alarm: Callable[[str, str], None] | None = None) -> None:
        self.threaded = threaded
        self.on_alarm = on_alarm
        self._q: queue.SimpleQueue = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        if threaded:
            self._thread = threading.Thread(target=self._run, name="recorder", daemon=True)
            self._thread.start()

    def _run(self) -> None:
        while True:
            item = self._q.get()
            if item is None:
                return
            item()

    def do(self, job: Callable[[], None]) -> None:
        if self.threaded:
            self._q.put(job)
        else:
            job()

    def open(self, path: str | Path, on_done: Callable[[Recording], None] | None = None) -> Recording:
        return Recording(self, Path(path), on_done)

    def flush(self) -> None:
        if self.threaded:
            done = threading.Event()
            self._q.put(done.set)
            done.wait(10)

    def stop(self) -> None:
        if self._thread is not None:
            self._q.put(None)
            self._thread.join(timeout=10)
            self._thread = None


class Recording:
    """A sink for MediaEngine.record(): feed(rx, tx) from the tick, close() when done."""

    CHUNK = 8000  # samples per file write (1 s)

    def __init__(
        self, writer: RecordingWriter, path: Path, on_done: Callable[[Recording], None] | None
    ) -> None:
        self.writer = writer
        self.path = path
        self.on_done = on_done
        self.error: str | None = None
        self.samples = 0
        self.closed = False
        self._rx: list[np.ndarray] = []
        self._tx: list[np.ndarray] = []
        self._buffered = 0
        self._wav: wave.Wave_write | None = None
        writer.do(self._open)

    def _fail(self, exc: OSError) -> None:
        full = exc.errno in (errno.ENOSPC, errno.EDQUOT)
        self.error = "disk full" if full else f"I/O error: {exc.strerror or exc}"
        try:
            if self._wav is not None:
                self._wav.close()
        except OSError:
            pass
        self._wav = None
        if self.writer.on_alarm is not None:
            self.writer.on_alarm("recording", f"{self.path}: {self.error}; recording stopped")

    def _open(self) -> None:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            w = wave.open(str(self.path), "wb")
            w.setnchannels(2)
            w.setsampwidth(2)
            w.setframerate(8000)
            self._wav = w
        except OSError as exc:
            self._fail(exc)

    def _write(self, frames: bytes) -> None:
        if self._wav is None or self.error:
            return
        try:
            self._wav.writeframesraw(frames)
            self._wav._file.flush()  # surface ENOSPC now, not at close
        except OSError as exc:
            self._fail(exc)

    def _take(self) -> tuple[list[np.ndarray], list[np.ndarray]]:
        """Hand the buffered blocks over (cheap: list swap); packing happens on the writer thread."""
        taken = (self._rx, self._tx)
        self._rx, self._tx, self._buffered = [], [], 0
        return taken

    @staticmethod
    def _pack(taken: tuple[list[np.ndarray], list[np.ndarray]]) -> bytes:
        rx, tx = np.concatenate(taken[0]), np.concatenate(taken[1])
        return np.stack([rx, tx], axis=1).astype("<i2").tobytes()

    def feed(self, rx: np.ndarray, tx: np.ndarray) -> bool:
        """Called by the tick; False once the recording has failed (the engine then stops the tap)."""
        if self.error or self.closed:
            return False
        self._rx.append(rx.copy())
        self._tx.append(tx.copy())
        self._buffered += len(rx)
        self.samples += len(rx)
        if self._buffered >= self.CHUNK:
            taken = self._take()
            self.writer.do(lambda: self._write(self._pack(taken)))
        return True

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        taken = self._take() if self._buffered else None

        def finish() -> None:
            if taken is not None:
                self._write(self._pack(taken))
            if self._wav is not None:
                try:
                    self._wav.close()
                except OSError as exc:
                    self._fail(exc)
                self._wav = None
            if self.on_done is not None:
                self.on_done(self)

        self.writer.do(finish)

    @property
    def seconds(self) -> float:
        return self.samples / 8000
