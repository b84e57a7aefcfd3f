"""The media engine: one tick over every voice channel of the box, vectorised (DESIGN.md "One media tick").

Each tick (5, 10 or 20 ms; 8 samples per ms):

    port.read()            uint8 A-law (channels, n)
    decode                 256-entry table (dsp.g711) -> int16 rows
    echo canceller         dsp.echo on the trunk rows, enabled per channel while the channel is in a call
    detectors              dsp.dtmf / dsp.cpt / dsp.callerid on pools of detector slots (index arrays)
    switch                 out[dst] = rx[src0[dst]] + rx[src1[dst]]       (bridges, listen, whisper, barge)
                           + conference sum over the group minus own row
                           + players (prompts, music on hold, tones) gathered from one sample bank
    recorders              taps of both directions of the recorded rows, handed to a writer thread
    encode                 65,536-entry table -> uint8, port.write()

Nothing on this path loops over channels in Python: every step is a gather/scatter with index arrays. The
only Python loops run over *events* (a digit detected, a prompt finished), never over all channels.

The control plane never touches the arrays directly: it calls the command methods below (`bridge`, `play`,
`enable_dtmf`, ...), which queue a closure applied at the start of the next tick, and it receives
`MediaEvent`s. The engine runs stepped by a `VirtualClock` (tests, simulation: `attach(clock)`) or on its
own real-time thread (`start_thread()`); the work time of every tick is measured and kept.
"""

from __future__ import annotations

import heapq
import importlib
import queue
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from board.clock import Clock, RealClock
from dsp.g711 import ALAW_DECODE_TABLE, ALAW_ENCODE_TABLE
from firmware.engine.realtime import SWITCH_INTERVAL, IdleGc, SwitchInterval, thread_setup

SILENCE_ALAW = int(ALAW_ENCODE_TABLE[0])
TICK_MS_ALLOWED = (5, 10, 20)
SAMPLE_RATE = 8000


class MediaPort(Protocol):
    """Where the engine's channels meet the lines: the board tick, SIP media, or a test/bench source."""

    channels: int

    def read(self, n: int) -> np.ndarray:  # (channels, n) uint8 A-law received from the lines
        ...

    def write(self, codes: np.ndarray) -> None:  # (channels, n) uint8 A-law to send to the lines
        ...  # `codes` is the engine's buffer, reused next tick: copy what must outlive the call


@dataclass(frozen=True)
class MediaEvent:
    channel: int
    kind: str  # "dtmf" | "tone" | "callerid" | "play_done" | "record_done" | "record_failed"
    value: Any
    time: float  # clock time of the tick that reported it
    sample: int = 0  # engine sample count on that channel's detector timeline (detections)


@dataclass(frozen=True)
class Buffer:
    """A span of the engine's sample bank (prompt, music, tone cadence)."""

    start: int
    length: int
    name: str = ""

    @property
    def seconds(self) -> float:
        return self.length / SAMPLE_RATE


class TickStats:
    """Tick work time (seconds, wall and CPU) and lateness of the last `keep` ticks; overruns and late ticks.

    `record` is called by the tick's driver only (one writer, no lock); `summary` may be called from any
    thread and reads a consistent-enough copy (a tick recorded meanwhile is in or out)."""

    def __init__(self, period: float, keep: int = 120_000) -> None:
        self.period = period
        self.work = np.zeros(keep, dtype=np.float64)
        self.cpu = np.zeros(keep, dtype=np.float64)  # thread CPU time of each tick (excludes preemption)
        self.lateness = np.zeros(keep, dtype=np.float64)
        self.keep = keep
        self.ticks = 0
        self.overruns = 0  # work took longer than one tick period
        self.late = 0  # a tick started more than half a period after its deadline
        self.max_lateness = 0.0

    def record(self, work: float, lateness: float, cpu: float | None = None) -> None:
        i = self.ticks % self.keep
        self.work[i] = work
        self.cpu[i] = work if cpu is None else cpu
        self.lateness[i] = lateness
        self.ticks += 1
        if work > self.period:
            self.overruns += 1
        if lateness > self.period / 2:
            self.late += 1
        if lateness > self.max_lateness:
            self.max_lateness = lateness

    def summary(self, since: int = 0) -> dict[str, float]:
        """Figures over the ticks recorded since tick number `since` (at most the last `keep`)."""
        ticks = self.ticks
        n = min(ticks - since, self.keep, ticks)
        if n <= 0:
            return {"ticks": 0, "overruns": 0, "late": 0, "median_ms": 0.0, "p99_ms": 0.0, "p999_ms": 0.0,
                    "max_ms": 0.0, "cpu_median_ms": 0.0, "cpu_p99_ms": 0.0, "cpu_p999_ms": 0.0,
                    "cpu_max_ms": 0.0, "max_late_ms": 0.0, "load": 0.0}  # fmt: skip
        idx = np.arange(ticks - n, ticks) % self.keep
        w = self.work[idx] * 1e3
        c = self.cpu[idx] * 1e3
        late = self.lateness[idx]
        median, p99, p999 = np.percentile(w, [50, 99, 99.9])
        cpu_median, cpu_p99, cpu_p999 = np.percentile(c, [50, 99, 99.9])
        return {
            "ticks": int(n),
            "overruns": int(np.count_nonzero(w > self.period * 1e3)),
            "late": int(np.count_nonzero(late > self.period / 2)),
            "median_ms": float(median),
            "p99_ms": float(p99),
            "p999_ms": float(p999),
            "max_ms": float(w.max()),
            "cpu_median_ms": float(cpu_median),
            "cpu_p99_ms": float(cpu_p99),
            "cpu_p999_ms": float(cpu_p999),
            "cpu_max_ms": float(c.max()),
            "max_late_ms": float(late.max() * 1e3),
            "load": float(np.mean(w) / (self.period * 1e3)),
        }


def _optional(module: str, name: str) -> Any:
    """A DSP class if that module exists yet (dsp lands in parallel); None otherwise."""
    try:
        return getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError):
        return None


def _bank_layout(size: int, bank: int) -> tuple[list[int], list[int]]:
    """Banks of `bank` rows and a last, shorter one for the remainder (no padding rows to compute)."""
    lengths = [bank] * (size // bank) + ([size % bank] if size % bank else [])
    starts = [i * bank for i in range(len(lengths))]
    return starts, lengths


class DetectorPool:
    """DSP detectors for `size` slots; channels borrow a slot while they need detection.

    The slots are split in banks of `bank` rows (default BANK), one detector object per bank, and only
    banks holding at least one slot are run: the cost follows the channels that need detection, not the
    box's size. Slots are handed out lowest first so the busy ones pack into few banks. A free slot in a
    running bank is fed the silence row. A slot's detector row is reset when it is handed to a new channel.
    """

    BANK = 128  # numpy's per-call overhead makes small banks dear: 4 x 32 rows cost ~3x one of 128

    def __init__(
        self, detector_cls: Any, size: int, silence_row: int, kind: str, bank: int | None = None
    ) -> None:
        self.bank_size = max(1, min(bank or self.BANK, size))
        self.starts, self.lengths = _bank_layout(size, self.bank_size)
        self.size = size
        self.kind = kind
        self.banks = [detector_cls(n) for n in self.lengths]
        self.bank_active = np.zeros(len(self.lengths), dtype=np.int64)
        self.slot_channel = np.full(self.size, silence_row, dtype=np.intp)
        self.silence_row = silence_row
        self.channel_slot: dict[int, int] = {}
        self.free = list(range(self.size))  # a heap: lowest slot first
        self.slot_base = np.zeros(self.size, dtype=np.int64)  # engine sample count when the slot was taken

    @property
    def active(self) -> int:
        return len(self.channel_slot)

    def take(self, channel: int, samples_now: int) -> bool:
        if channel in self.channel_slot:
            return True
        if not self.free:
            return False
        slot = heapq.heappop(self.free)
        bank, row = divmod(slot, self.bank_size)  # every bank but the last is bank_size long
        self.banks[bank].reset(row)
        self.bank_active[bank] += 1
        self.slot_channel[slot] = channel
        self.slot_base[slot] = samples_now
        self.channel_slot[channel] = slot
        return True

    def give_back(self, channel: int) -> None:
        slot = self.channel_slot.pop(channel, None)
        if slot is not None:
            self.slot_channel[slot] = self.silence_row
            self.bank_active[slot // self.bank_size] -= 1
            heapq.heappush(self.free, slot)

    def process(self, pcm_ext: np.ndarray, now: float) -> list[MediaEvent]:
        if not self.channel_slot:
            return []
        out = []
        for b in np.flatnonzero(self.bank_active).tolist():
            first = self.starts[b]
            rows = self.slot_channel[first : first + self.lengths[b]]
            for ev in self.banks[b].process(pcm_ext[rows]):
                slot = first + ev.channel
                ch = int(self.slot_channel[slot])
                if ch == self.silence_row:
                    continue
                out.append(MediaEvent(ch, ev.kind, ev.value, now, int(self.slot_base[slot]) + int(ev.sample)))
        return out


class EchoPool:
    """G.168 echo cancellers for the trunk rows: by default one dsp.echo object per tick of the canceller's
    block (two at a 10 ms tick and a 160-sample block), each holding an equal share of the trunk rows.

    The canceller skips internally the rows in `enable(row, False)` and the rows whose far end is silent,
    and its fixed cost is per `process` call, so few large objects cost less than many small banks. One
    object over every row has the lowest mean, but all its rows adapt on the same tick, every other tick;
    one object per phase spreads the adaptation evenly over the ticks of a block, which gave the fewest
    overruns and the lowest p99 (engine bench, docs/engine.md). `bank` sets the rows per object instead,
    for A/B runs and for cancellers without internal gating.

    Trunk row i (in sorted order) is row i mod `bank` of bank i // `bank`, for good: no slot hunting, and
    when a bank's trunk rows are one contiguous range of engine rows (the board's channels always are),
    near and far are handed to the canceller as views of the engine's arrays and its output is copied back
    with one slice assignment. A channel is enabled in its bank while it is in a call (`take`, which resets
    that row, and `give_back`); the other rows of the bank are bypassed (the canceller's `enable(row,
    False)`: output = input, skipped by the canceller). Only banks with at least one enabled row run.

    The canceller works in blocks of `block` samples (its adaptation runs at block boundaries). With
    several banks, bank k is kept at phase k mod (block / tick) within the block, so the boundaries of
    different banks fall on different ticks; a bank that went idle is brought back to its phase by
    feeding its (all bypassed) rows a few zeros before it runs again. With one bank this is phase 0.
    """

    BANK: int | None = None  # None: one canceller per phase of the block (see above)

    def __init__(
        self, cls: Any, rows: Sequence[int] | np.ndarray, silence_row: int, tick_samples: int,
        bank: int | None = None,
    ) -> None:  # fmt: skip
        self.cls = cls
        self.rows = np.asarray(sorted({int(r) for r in rows}), dtype=np.intp)
        self.slot_of = {int(r): i for i, r in enumerate(self.rows.tolist())}
        self.allowed = set(self.slot_of)
        size = max(1, len(self.rows))
        self.tick = tick_samples
        probe = cls(1)
        self.block = int(getattr(probe, "block", tick_samples))
        self.phases = max(1, self.block // tick_samples)
        self.bank_size = min(bank or self.BANK or -(-size // self.phases), size)
        self.starts, self.lengths = _bank_layout(size, self.bank_size)
        self.size = size
        self.silence_row = silence_row
        self.banks: list[Any] = [None] * len(self.lengths)
        self.bank_active = np.zeros(len(self.lengths), dtype=np.int64)
        self.fed = [0] * len(self.lengths)  # samples each bank's canceller has been given
        self.bank_rows: list[np.ndarray] = []
        self.bank_slices: list[slice | None] = []
        for first, length in zip(self.starts, self.lengths, strict=True):
            r = self.rows[first : first + length]
            self.bank_rows.append(r)
            contiguous = len(r) > 0 and int(r[-1]) - int(r[0]) == len(r) - 1
            self.bank_slices.append(slice(int(r[0]), int(r[-1]) + 1) if contiguous else None)
        self.channel_slot: dict[int, int] = {}

    @property
    def active(self) -> int:
        return len(self.channel_slot)

    def prepare(self) -> None:
        """Make every bank's canceller now (before real time starts) rather than at its first call."""
        for b in range(len(self.banks)):
            self._bank(b)

    def _bank(self, b: int) -> Any:
        if self.banks[b] is None:
            ec = self.cls(self.lengths[b])
            for row in range(self.lengths[b]):
                ec.enable(row, False)
            self.banks[b] = ec
        return self.banks[b]

    def _align(self, b: int, sample_count: int) -> None:
        """Bring an idle bank to its phase: its block boundaries on ticks where (tick + b) % phases == 0."""
        want = (sample_count + (b % self.phases) * self.tick) % self.block
        lead = (want - self.fed[b]) % self.block
        if lead:
            z = np.zeros((self.lengths[b], lead), dtype=np.int16)
            self.banks[b].process(z, z)
            self.fed[b] += lead

    def take(self, channel: int, sample_count: int) -> bool:
        if channel in self.channel_slot:
            return True
        slot = self.slot_of.get(channel)
        if slot is None:
            return False
        b, row = divmod(slot, self.bank_size)
        ec = self._bank(b)
        if self.bank_active[b] == 0:
            self._align(b, sample_count)
        ec.reset(row)
        ec.enable(row, True)
        self.bank_active[b] += 1
        self.channel_slot[channel] = slot
        return True

    def give_back(self, channel: int) -> None:
        slot = self.channel_slot.pop(channel, None)
        if slot is not None:
            b, row = divmod(slot, self.bank_size)
            self.banks[b].enable(row, False)
            self.bank_active[b] -= 1

    def process(self, pcm_ext: np.ndarray, far_ext: np.ndarray) -> None:
        """Cancel echo in place on the banks with a row in a call (near = pcm_ext, far = what we sent)."""
        n = pcm_ext.shape[1]
        for b in np.flatnonzero(self.bank_active).tolist():
            sl = self.bank_slices[b]
            if sl is not None:
                pcm_ext[sl] = self.banks[b].process(pcm_ext[sl], far_ext[sl])
            else:
                rows = self.bank_rows[b]
                pcm_ext[rows] = self.banks[b].process(pcm_ext[rows], far_ext[rows])
            self.fed[b] += n


@dataclass
class _PlayQueue:
    buffers: deque[Buffer] = field(default_factory=deque)
    loop: bool = False
    token: Any = None


class MediaEngine:
    """All voice channels of the box in one array; see the module docstring."""

    def __init__(
        self,
        port: MediaPort,
        tick_ms: int = 10,
        trunk_channels: Sequence[int] = (),
        echo: bool = True,
        detector_slots: int | None = None,
        bank_seconds: float = 600.0,
        detector_bank: int | None = None,
        echo_bank: int | None = None,
    ) -> None:
        if tick_ms not in TICK_MS_ALLOWED:
            raise ValueError(f"tick_ms must be one of {TICK_MS_ALLOWED}, not {tick_ms}")
        self.port = port
        self.channels = c = int(port.channels)
        self.tick_ms = tick_ms
        self.samples = n = tick_ms * SAMPLE_RATE // 1000
        self.period = tick_ms / 1000.0
        self.silence_row = c  # index of the all-zero row appended to the received block
        self.stats = TickStats(self.period)
        self.tick_count = 0
        self.sample_count = 0
        self.now = 0.0

        # switching state
        self.src = np.full((2, c), c, dtype=np.intp)  # two source slots per output row (c = silence)
        self.conf_group = np.full(c, -1, dtype=np.intp)
        self._conf_members = np.zeros(0, dtype=np.intp)
        self.mute_rx = np.zeros(c, dtype=bool)  # what this channel says is not sent anywhere (hold)

        # players: one per channel, reading the sample bank
        self.bank = np.zeros(int(bank_seconds * SAMPLE_RATE), dtype=np.int16)
        self._bank_used = 0
        self.buffers: dict[str, Buffer] = {}
        self.play_active = np.zeros(c, dtype=bool)
        self.play_start = np.zeros(c, dtype=np.int64)
        self.play_len = np.ones(c, dtype=np.int64)
        self.play_pos = np.zeros(c, dtype=np.int64)
        self.play_loop = np.zeros(c, dtype=bool)
        self.play_replace = np.zeros(c, dtype=bool)  # player replaces the switched audio (hold music)
        self._play_queues: dict[int, _PlayQueue] = {}
        self._ramp = np.arange(n, dtype=np.int64)

        # recorders: rows tapped this tick go to their sinks (writer thread)
        self.rec_active = np.zeros(c, dtype=bool)
        self._rec_sinks: dict[int, Any] = {}

        # echo cancellation on the trunk rows in a call
        self.trunk_rows = np.asarray(sorted(trunk_channels), dtype=np.intp)
        self.echo_enabled = np.zeros(c, dtype=bool)
        self.last_out_ext = np.zeros((c + 1, n), dtype=np.int16)  # what we sent last tick (+ silence row)
        self.echo: EchoPool | None = None
        ec_cls = _optional("dsp.echo", "EchoCanceller") if echo else None
        if ec_cls is not None and len(self.trunk_rows):
            self.echo = EchoPool(ec_cls, self.trunk_rows, c, n, echo_bank)

        # detector pools
        slots = c if detector_slots is None else detector_slots
        self.pools: dict[str, DetectorPool] = {}
        for kind, module, name in (
            ("dtmf", "dsp.dtmf", "DtmfDetector"),
            ("tone", "dsp.cpt", "CallProgressDetector"),
            ("callerid", "dsp.callerid", "CallerIdReceiver"),
        ):
            cls = _optional(module, name)
            if cls is not None and slots > 0:
                self.pools[kind] = DetectorPool(cls, slots, c, kind, detector_bank)

        # buffers for a tick (allocated once; the tick allocates only for conferences, players and taps)
        self.pcm_ext = np.zeros((c + 1, n), dtype=np.int16)  # decoded rx (+ the silence row)
        self._heard = np.zeros((c + 1, n), dtype=np.int16)  # rx with muted rows silenced
        self._gather = np.zeros((c, n), dtype=np.int16)  # one source slot gathered
        self._out32 = np.zeros((c, n), dtype=np.int32)  # sums before clipping
        self._pidx = np.zeros((c, n), dtype=np.intp)  # players' sample-bank indices
        self._paudio = np.zeros((c, n), dtype=np.int16)  # players' samples
        self._codes = np.zeros((c, n), dtype=np.uint8)  # encoded tx handed to the port
        self._src1_used = False  # any row with a second source (listen, whisper, barge)

        self._commands: queue.SimpleQueue[Callable[[], None]] = queue.SimpleQueue()
        self.events: queue.SimpleQueue[MediaEvent] = queue.SimpleQueue()
        self.listeners: list[Callable[[list[MediaEvent]], None]] = []
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self.rt_mode = "not running in real time"  # what the host granted the tick thread (start_thread)
        # set after every real-time tick: a control thread that waits on it runs in the tick's idle time
        # instead of holding the GIL when the next tick starts (firmware.calls.runtime.ControlLoop)
        self.ticked = threading.Event()
        self.gc: IdleGc | None = None
        self._switch = SwitchInterval(None)

    # ------------------------------------------------------------------ capabilities
    def has(self, kind: str) -> bool:
        """Whether a detector kind ("dtmf", "tone", "callerid") or "echo" is available."""
        return self.echo is not None if kind == "echo" else kind in self.pools

    # ------------------------------------------------------------------ sample bank
    def add_buffer(self, name: str, pcm: np.ndarray) -> Buffer:
        """Copy int16 8 kHz samples into the bank (control plane; safe while the tick runs)."""
        pcm = np.asarray(pcm, dtype=np.int16).ravel()
        if name in self.buffers and self.buffers[name].length == len(pcm):
            buf = self.buffers[name]
            if np.array_equal(self.bank[buf.start : buf.start + buf.length], pcm):
                return buf
        need = self._bank_used + len(pcm)
        if need > len(self.bank):
            # Grow into a new array; the tick keeps reading the old one until it picks up the new reference.
            bigger = np.zeros(max(need, 2 * len(self.bank)), dtype=np.int16)
            bigger[: self._bank_used] = self.bank[: self._bank_used]
            bigger[self._bank_used : need] = pcm
            self.bank = bigger
        else:
            self.bank[self._bank_used : need] = pcm
        buf = Buffer(self._bank_used, len(pcm), name)
        self._bank_used = need
        self.buffers[name] = buf
        return buf

    # ------------------------------------------------------------------ commands (applied next tick)
    def submit(self, command: Callable[[], None]) -> None:
        self._commands.put(command)

    def connect(self, dst: int, src: int | None, slot: int = 0) -> None:
        """dst hears src (src None = nothing) in source slot 0 or 1."""
        s = self.silence_row if src is None else src

        def cmd() -> None:
            self.src[slot, dst] = s
            self._src1_changed()

        self.submit(cmd)

    def _src1_changed(self) -> None:
        self._src1_used = bool((self.src[1] != self.silence_row).any())

    def bridge(self, a: int, b: int) -> None:
        def cmd() -> None:
            self.src[0, a] = b
            self.src[0, b] = a
            self.src[1, a] = self.src[1, b] = self.silence_row
            self._src1_changed()

        self.submit(cmd)

    def unbridge(self, *chans: int) -> None:
        rows = np.asarray(chans, dtype=np.intp)

        def cmd() -> None:
            self.src[:, rows] = self.silence_row
            # nobody keeps listening to a channel that left (supervisors, bridge peers)
            self.src[np.isin(self.src, rows)] = self.silence_row
            self._src1_changed()

        self.submit(cmd)

    def set_conference(self, group: int, members: Sequence[int]) -> None:
        """Members hear the sum of the others; an empty list dissolves the group."""
        rows = np.asarray(members, dtype=np.intp)

        def cmd() -> None:
            self.conf_group[self.conf_group == group] = -1
            self.conf_group[rows] = group
            self._conf_members = np.flatnonzero(self.conf_group >= 0)

        self.submit(cmd)

    def mute(self, channel: int, on: bool) -> None:
        def cmd() -> None:
            self.mute_rx[channel] = on

        self.submit(cmd)

    def play(
        self,
        channel: int,
        buffers: Sequence[Buffer],
        loop: bool = False,
        replace: bool = False,
        token: Any = None,
    ) -> None:
        """Play buffers in order on a channel (loop: forever); a 'play_done' event carries `token`."""
        bufs = [b for b in buffers if b.length > 0]

        def cmd() -> None:
            if not bufs:
                self._emit([MediaEvent(channel, "play_done", token, self.now)])
                return
            q = _PlayQueue(deque(bufs), loop, token)
            self._play_queues[channel] = q
            self._start_next(channel, q)
            self.play_replace[channel] = replace

        self.submit(cmd)

    def stop_play(self, channel: int) -> None:
        def cmd() -> None:
            self.play_active[channel] = False
            self._play_queues.pop(channel, None)

        self.submit(cmd)

    def enable_detector(self, kind: str, channel: int, on: bool) -> bool:
        """Start/stop DTMF ("dtmf"), call-progress ("tone") or caller-ID ("callerid") detection."""
        pool = self.pools.get(kind)
        if pool is None:
            return False

        def cmd() -> None:
            if on:
                pool.take(channel, self.sample_count)
            else:
                pool.give_back(channel)

        self.submit(cmd)
        return True

    def enable_echo(self, channel: int, on: bool) -> None:
        def cmd() -> None:
            if self.echo is None:
                return
            if on:
                self.echo_enabled[channel] = self.echo.take(channel, self.sample_count)
            else:
                self.echo.give_back(channel)
                self.echo_enabled[channel] = False

        self.submit(cmd)

    def record(self, channel: int, sink: Any) -> None:
        """Tap both directions of `channel` into `sink.feed(rx, tx)` (None stops); see engine.record."""

        def cmd() -> None:
            old = self._rec_sinks.pop(channel, None)
            if old is not None:
                old.close()
            if sink is not None:
                self._rec_sinks[channel] = sink
            self.rec_active[channel] = sink is not None

        self.submit(cmd)

    def release(self, channel: int) -> None:
        """Return a channel to idle: no switching, player, detectors, echo canceller or recorder."""
        self.unbridge(channel)
        self.stop_play(channel)
        self.mute(channel, False)
        for kind in self.pools:
            self.enable_detector(kind, channel, False)
        self.enable_echo(channel, False)

        def cmd() -> None:
            if self.conf_group[channel] >= 0:
                self.conf_group[channel] = -1
                self._conf_members = np.flatnonzero(self.conf_group >= 0)
            sink = self._rec_sinks.pop(channel, None)
            if sink is not None:
                sink.close()
            self.rec_active[channel] = False

        self.submit(cmd)

    # ------------------------------------------------------------------ the tick
    def _start_next(self, channel: int, q: _PlayQueue) -> bool:
        if not q.buffers:
            return False
        buf = q.buffers.popleft()
        if q.loop:
            q.buffers.append(buf)
        self.play_start[channel] = buf.start
        self.play_len[channel] = buf.length
        self.play_pos[channel] = 0
        self.play_loop[channel] = q.loop and len(q.buffers) == 1
        self.play_active[channel] = True
        return True

    def _emit(self, events: list[MediaEvent]) -> None:
        """Listeners (same thread as the tick: virtual time) get events directly; otherwise they are
        queued on `events` for the control plane's thread to drain (real time)."""
        if self.listeners:
            for listener in self.listeners:
                listener(events)
        else:
            for ev in events:
                self.events.put(ev)

    def tick(self, now: float | None = None) -> list[MediaEvent]:
        """Run one tick; returns (and publishes) the events it produced."""
        self.now = self.now + self.period if now is None else now
        commands = self._commands
        while not commands.empty():
            try:
                commands.get_nowait()()
            except queue.Empty:
                break
        n = self.samples
        events: list[MediaEvent] = []

        codes = self.port.read(n)
        pcm_ext = self.pcm_ext
        pcm = pcm_ext[:-1]
        np.take(ALAW_DECODE_TABLE, codes, out=pcm)

        if self.echo is not None and self.echo.channel_slot:
            self.echo.process(pcm_ext, self.last_out_ext)

        for pool in self.pools.values():
            if pool.channel_slot:
                events.extend(pool.process(pcm_ext, self.now))

        # switching: what each row hears, as int32 sums of gathered rows
        out = self._out32
        heard = pcm_ext
        if self.mute_rx.any():
            heard = self._heard
            np.copyto(heard, pcm_ext)
            heard[:-1][self.mute_rx] = 0
        g = self._gather
        np.take(heard, self.src[0], axis=0, out=g)
        np.copyto(out, g)
        if self._src1_used:
            np.take(heard, self.src[1], axis=0, out=g)
            out += g
        members = self._conf_members
        if len(members):
            uniq, groups = np.unique(self.conf_group[members], return_inverse=True)
            sums = np.zeros((len(uniq), n), dtype=np.int32)
            np.add.at(sums, groups, heard[members])
            out[members] += sums[groups] - heard[members]

        # players: gather from the bank for every active row at once
        active = np.flatnonzero(self.play_active)
        if len(active):
            events += self._players(active, out)

        np.clip(out, -32768, 32767, out=out)
        out16 = self.last_out_ext[:-1]  # what we send is next tick's far end for the echo canceller
        np.copyto(out16, out, casting="unsafe")

        if self._rec_sinks:
            rec_rows = np.flatnonzero(self.rec_active)
            rx = pcm[rec_rows]
            tx = out16[rec_rows]
            for i, ch in enumerate(rec_rows.tolist()):
                sink = self._rec_sinks.get(ch)
                if sink is not None and not sink.feed(rx[i], tx[i]):
                    self._rec_sinks.pop(ch, None)
                    self.rec_active[ch] = False
                    events.append(MediaEvent(ch, "record_failed", sink.error, self.now))

        np.take(ALAW_ENCODE_TABLE, out16.view(np.uint16), out=self._codes)
        self.port.write(self._codes)
        self.tick_count += 1
        self.sample_count += n
        if events:
            self._emit(events)
        return events

    def _players(self, active: np.ndarray, out: np.ndarray) -> list[MediaEvent]:
        """Add (or, for hold music, substitute) each playing row's next samples; events of ended buffers."""
        n = self.samples
        k = len(active)
        pos = self.play_pos[active]
        length = self.play_len[active]
        start = self.play_start[active]
        idx = self._pidx[:k]
        np.add((start + pos)[:, None], self._ramp, out=idx)
        ending = np.flatnonzero(pos + n > length)  # rows whose buffer ends or wraps within this tick
        if len(ending):
            p = pos[ending][:, None] + self._ramp
            ln = length[ending][:, None]
            looped = self.play_loop[active[ending]][:, None]
            idx[ending] = start[ending][:, None] + np.where(looped, p % ln, np.minimum(p, ln - 1))
        audio = self._paudio[:k]
        np.take(self.bank, idx, out=audio)
        if len(ending):
            audio[ending] = np.where(looped | (p < ln), audio[ending], 0)
        replace = self.play_replace[active]
        if replace.all():
            out[active] = audio
        else:
            rows = out[active]
            rows[replace] = 0
            rows += audio
            out[active] = rows
        self.play_pos[active] += n
        events = []
        if len(ending):
            rows_ending = active[ending]
            done = rows_ending[
                (~self.play_loop[rows_ending]) & (self.play_pos[rows_ending] >= self.play_len[rows_ending])
            ]
            wrapped = rows_ending[self.play_loop[rows_ending]]
            self.play_pos[wrapped] %= self.play_len[wrapped]
            for ch in done.tolist():  # only rows whose buffer ended this tick
                q = self._play_queues.get(ch)
                if q is None or not self._start_next(ch, q):
                    self.play_active[ch] = False
                    self._play_queues.pop(ch, None)
                    events.append(MediaEvent(ch, "play_done", q.token if q else None, self.now))
        return events

    # ------------------------------------------------------------------ drivers of the tick
    def attach(self, clock: Clock, start: float | None = None) -> None:
        """Step the engine from a clock's timers (VirtualClock in tests and simulation)."""
        first = clock.now() if start is None else start

        def fire(k: int) -> None:
            deadline = first + k * self.period
            t0 = time.perf_counter()
            self.tick(deadline)
            self.stats.record(time.perf_counter() - t0, clock.now() - deadline)
            if not self._stop.is_set():
                clock.call_at(first + (k + 1) * self.period, lambda: fire(k + 1))

        clock.call_at(first, lambda: fire(0))

    def start_thread(
        self,
        clock: RealClock | None = None,
        *,
        priority: int | None = 10,
        cpus: set[int] | None = None,
        idle_gc: bool = True,
        switch_interval: float | None = SWITCH_INTERVAL,
        after_tick: Callable[[], None] | None = None,
    ) -> None:
        """Run ticks in real time on a dedicated thread until `stop()`.

        priority: SCHED_FIFO priority asked for the tick thread (None: ordinary scheduling); cpus: pin the
        thread to these CPUs; idle_gc: the garbage collector runs between ticks only (`realtime.IdleGc`);
        switch_interval: the GIL hand-over interval while the engine runs (None: leave Python's).
        What the host granted is in `self.rt_mode` once the thread runs. after_tick: called on the tick
        thread after each tick, outside the measured work time (a simulation of the world beyond the lines).
        """
        clk = clock or RealClock()
        self._stop.clear()
        if self.echo is not None:
            self.echo.prepare()  # allocate the cancellers now, not inside the first call's tick
        self.gc = IdleGc() if idle_gc else None
        self._switch = SwitchInterval(switch_interval)
        if self.gc is not None:
            self.gc.start()
        started = threading.Event()

        def loop() -> None:
            self.rt_mode = thread_setup(priority, cpus)
            started.set()
            stats, period, gc_idle, ticked = self.stats, self.period, self.gc, self.ticked
            perf, cpu_time = time.perf_counter, time.thread_time
            deadline = clk.now()
            while not self._stop.is_set():
                clk.sleep_until(deadline)
                lateness = clk.now() - deadline
                t0, c0 = perf(), cpu_time()
                self.tick(deadline)
                t1 = perf()
                stats.record(t1 - t0, lateness, cpu_time() - c0)
                if after_tick is not None:
                    after_tick()
                ticked.set()  # the control plane may run now, in this tick's idle time
                deadline += period
                if gc_idle is not None:
                    gc_idle.collect(deadline - clk.now(), period)
                if clk.now() - deadline > 5 * period:
                    deadline = clk.now()  # fell far behind (host stalled): resynchronise, counted as late

        self._thread = threading.Thread(target=loop, name="media-tick", daemon=True)
        self._thread.start()
        started.wait(1.0)

    @property
    def running(self) -> bool:
        """Whether the real-time tick thread runs."""
        return self._thread is not None and self._thread.is_alive()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=2)
            self._thread = None
            if self.gc is not None:
                self.gc.stop()
            self._switch.restore()
        for sink in list(self._rec_sinks.values()):
            sink.close()
        self._rec_sinks.clear()
