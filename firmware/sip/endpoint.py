"""SIP legs as call-control endpoints (firmware.calls.endpoint), and SIP media as an engine MediaPort.

    line = SipLine(core, control, clock, channel_base=120)   # SIP leg k is engine row 120 + k
    server.on_event = line.handle                             # core events -> CallControl calls
    ep = line.originate("1002", "02155551234", "Caller", control)   # ring an extension (Originator)

`SipEndpoint` maps the Endpoint methods onto SipCore commands: progress -> 183 with SDP (early media),
ring -> 180, answer -> 200, hangup(cause) -> BYE / CANCEL / the RFC 3398 response, send_dtmf -> RFC 4733.
`SipLine` turns SipCore events into CallControl calls: IncomingCall -> incoming(ep, caller=extension,
called=dialled number, caller_name), CallProgress -> ringing, CallAnswered -> answered, CallEnded from the
far side -> hangup(ep, cause), DtmfReceived -> dtmf. REFER, feature codes, registrations and hold changes
go to the optional hooks (`on_transfer`, `on_feature`, `on_registration`, `on_hold`).

`SipMediaPort` is the MediaPort of the SIP rows: `read(n)` gives the jitter buffers' tick as A-law, `write`
packetises the engine's output for every leg at once and sends it. A box with trunks and SIP joins it with
the board's port in one engine (rows side by side).
"""

from __future__ import annotations

import functools
import logging
import threading
from collections.abc import Callable

import numpy as np

from board.clock import Clock
from dsp import g711
from firmware.calls.endpoint import CallControl, Cause, Endpoint

from .core import (
    CallAnswered,
    CallEnded,
    CallProgress,
    DtmfReceived,
    Event,
    FeatureCode,
    HoldChanged,
    IncomingCall,
    RegistrationChanged,
    SipCore,
    TransferRequested,
)
from .message import LocalProtocolError
from .rtp import TICK, MediaHub

log = logging.getLogger(__name__)


class SipEndpoint(Endpoint):
    kind = "sip"

    def __init__(self, line: SipLine, ref: str, leg: int, extension: str, incoming: bool) -> None:
        super().__init__(f"SIP/{extension}-{ref}", line.channel_base + leg)
        self.line = line
        self.ref = ref
        self.leg = leg
        self.number = extension
        self.incoming = incoming
        self.state = "ringing" if incoming else "dialing"
        self.stats = None  # LegStats once the leg ended (RTP figures for the CDR)

    @property
    def out_of_band_dtmf(self) -> bool:
        """True when the phone negotiated RFC 4733 telephone-event; otherwise its digits come in-band and
        call control should run the engine's DTMF detector on this leg's channel."""
        call = self.line.core.calls.get(self.ref)
        return bool(call and call.negotiated and call.negotiated.dtmf_pt is not None)

    def _do(self, fn: Callable[[str, float], None]) -> None:
        try:
            fn(self.ref, self.line.clock.now())
        except LocalProtocolError as exc:
            log.info("%s: %s", self.name, exc)
        self.line.soon_flush()

    def progress(self) -> None:
        self._do(self.line.core.progress)

    def ring(self) -> None:
        self._do(self.line.core.ringing)

    def answer(self) -> None:
        self._do(self.line.core.answer)
        self.up = True
        self.state = "up"

    def hangup(self, cause: int = Cause.NORMAL) -> None:
        if self.state == "down":
            return
        self.state = "down"
        self.up = False
        self.line.core.hangup(self.ref, self.line.clock.now(), cause)
        self.line.soon_flush()

    def send_dtmf(self, digits: str) -> None:
        for d in digits:
            try:
                if not self.line.core.send_dtmf(self.ref, d):
                    log.info("%s: no telephone-event negotiated; digit %s must go in-band", self.name, d)
            except LocalProtocolError:
                return


class SipLine:
    """Joins a SipCore to call control; see the module docstring."""

    def __init__(
        self,
        core: SipCore,
        control: CallControl | None,
        clock: Clock,
        channel_base: int = 0,
        flush: Callable[[], None] | None = None,
        defer: Callable[[Callable[[], None]], object] | None = None,
    ) -> None:
        """`flush` sends what the core produced and hands its events back to `handle`; `defer(fn)` runs fn
        soon but not now (loop.call_soon, or clock.call_later(0, fn) in virtual time)."""
        self.core = core
        self.control = control
        self.clock = clock
        self.channel_base = channel_base
        self.endpoints: dict[str, SipEndpoint] = {}
        self._flush = flush
        self._defer = defer or (lambda fn: clock.call_later(0.0, fn))
        self._flush_pending = False
        self.on_transfer: Callable[[SipEndpoint, str, SipEndpoint | None], bool] | None = None
        # feature codes go to call control when it takes them (CallManager.feature: the ACD's log-in/pause)
        self.on_feature: Callable[[str, str, str], object] | None = getattr(control, "feature", None)
        self.on_registration: Callable[[str, str, bool], None] | None = None
        self.on_hold: Callable[[SipEndpoint, bool], None] | None = None

    def flush(self) -> None:
        if self._flush is not None:
            self._flush()

    def soon_flush(self) -> None:
        """Send what a command produced once the caller's handler has returned (no re-entry into it)."""
        if not self._flush_pending:
            self._flush_pending = True
            self._defer(self._deferred_flush)

    def _deferred_flush(self) -> None:
        self._flush_pending = False
        self.flush()

    def originate(
        self, number: str, caller_id: str, caller_name: str | None, control: CallControl
    ) -> Endpoint | None:
        """Originator: ring extension `number` on all its registered phones. None when there is no phone
        to carry the call (unknown extension, nothing registered) or no free media leg: call control then
        hunts on or retries, as for a line with no free channel."""
        self.control = control
        if self.core.directory.get(number) is None or not self.core.registrar.contacts(
            number, self.clock.now()
        ):
            log.info("extension %s has no registered phone", number)
            return None
        try:
            ref = self.core.place_call(number, caller_id, caller_name or "", self.clock.now())
        except RuntimeError as exc:
            log.warning("cannot call %s: %s", number, exc)
            return None
        ep = SipEndpoint(self, ref, self.core.leg_of(ref), number, incoming=False)
        self.endpoints[ref] = ep
        self.soon_flush()  # events about this leg reach call control only after it has the leg
        return ep

    def handle(self, ev: Event) -> None:
        control = self.control
        if isinstance(ev, IncomingCall):
            ep = SipEndpoint(self, ev.call, ev.leg, ev.extension, incoming=True)
            self.endpoints[ev.call] = ep
            if control is None:
                self.core.hangup(ev.call, self.clock.now(), Cause.TEMPORARY_FAILURE)
                return
            control.incoming(ep, ev.extension, ev.number, ev.display or None)
            return
        if isinstance(ev, FeatureCode):
            if self.on_feature is not None:
                self.on_feature(ev.extension, ev.action, ev.argument)
            return
        if isinstance(ev, RegistrationChanged):
            if self.on_registration is not None:
                self.on_registration(ev.extension, ev.contact, ev.registered)
            return
        ep = self.endpoints.get(getattr(ev, "call", ""))
        if ep is None:
            return
        if isinstance(ev, CallProgress):
            ep.state = "ringing"
            if control is not None:
                control.ringing(ep)
        elif isinstance(ev, CallAnswered):
            ep.up = True
            ep.state = "up"
            if not ep.incoming and control is not None:
                control.answered(ep)
        elif isinstance(ev, CallEnded):
            self.endpoints.pop(ev.call, None)
            ep.stats = ev.stats
            was_down = ep.state == "down"
            ep.state = "down"
            ep.up = False
            if ev.by_remote and not was_down and control is not None:
                control.hangup(ep, ev.cause)
        elif isinstance(ev, DtmfReceived):
            if ev.duration_ms is None and control is not None:
                control.dtmf(ep, ev.digit)
        elif isinstance(ev, HoldChanged):
            if self.on_hold is not None:
                self.on_hold(ep, ev.held)
        elif isinstance(ev, TransferRequested):
            replaces = self.endpoints.get(ev.replaces) if ev.replaces else None
            ok = False
            if self.on_transfer is not None:
                try:
                    ok = bool(self.on_transfer(ep, ev.target, replaces))
                except Exception:  # noqa: BLE001 - a failed transfer is reported to the phone
                    log.exception("transfer of %s to %s failed", ep.name, ev.target)
            self.core.transfer_result(ev.call, ok, self.clock.now())


class SipMediaPort:
    """The SIP legs' rows as an engine MediaPort (A-law in and out, one tick of 80 samples).

    With `ahead` (a function that runs a callable soon on the SIP loop's thread, e.g. the loop's
    `call_soon_threadsafe`), the jitter buffers work one tick ahead there, double-buffered: after the tick
    takes frame N, the SIP thread pulls frame N+1 (and A-law encodes it) while the tick does the rest of
    its work, so the tick thread only takes a ready (legs, 80) array; `write` hands the tick's audio to the
    SIP thread the same way, which packetises and sends it. When the SIP loop has not prepared the frame
    in time, `read` pulls it inline, so the audio never stalls. Packets that arrive after the early pull
    count against the next tick: the buffers see up to one tick less headroom and settle that much deeper
    (at most 10 ms more delay)."""

    def __init__(
        self,
        hub: MediaHub,
        clock: Clock,
        send: Callable[[list[tuple[int, bytes]]], None],
        ahead: Callable[[Callable[[], None]], bool] | None = None,
    ) -> None:
        self.hub = hub
        self.clock = clock
        self.channels = hub.max_legs
        self._send = send
        self.ahead = ahead  # returns False when it cannot schedule (no loop): then all work is inline
        self._next: np.ndarray | None = None  # the next tick, pulled and encoded ahead
        self._next_lock = threading.Lock()  # held while a frame is being pulled: frames stay in order
        self.ahead_hits = 0  # ticks served from the frame pulled ahead
        self.inline_pulls = 0  # ticks the tick thread pulled itself

    def prepare(self) -> None:
        """Pull the next tick now (the SIP thread), unless it is ready already."""
        with self._next_lock:
            if self._next is None:
                self._next = g711.alaw_encode(self.hub.pull(self.clock.now()))

    def read(self, n: int) -> np.ndarray:
        if n != TICK:
            raise ValueError(f"SIP media runs on {TICK}-sample (10 ms) ticks, not {n}")
        with self._next_lock:
            frame, self._next = self._next, None
            if frame is None:
                frame = g711.alaw_encode(self.hub.pull(self.clock.now()))
                self.inline_pulls += 1
            else:
                self.ahead_hits += 1
        if self.ahead is not None:
            self.ahead(self.prepare)
        return frame

    def write(self, codes: np.ndarray) -> None:
        if self.ahead is not None and self.ahead(functools.partial(self._transmit, codes.copy())):
            return
        self._transmit(codes)

    def _transmit(self, codes: np.ndarray) -> None:
        self._send(self.hub.push_tx(g711.alaw_decode(codes), self.clock.now()))
