"""A PRI span into call control: the box's Q.931 stack (user side) against a network-side stack, in
virtual time; B-channel audio through the media engine (in-band DTMF into the IVR)."""

from __future__ import annotations

from firmware.calls.loopback import PhoneBehaviour
from firmware.calls.pri import PriTrunk
from firmware.engine.tones import dtmf_buffer
from firmware.signalling import events as ev
from firmware.signalling.pri import PriSpan
from firmware.signalling.q931.state import Party


class Exchange:
    """The network side of the span plus the cable (frames moved every 5 ms of virtual time)."""

    def __init__(self, bed) -> None:
        self.bed = bed
        self.box = PriSpan(Party.USER)
        self.net = PriSpan(Party.NETWORK)
        self.trunk = PriTrunk(self.box, "span1", 0, bed.mgr, bed.clock, span_no=1)
        bed.mgr.trunks["span1"] = self.trunk
        self.events: list = []
        now = bed.clock.now()
        self.box.start(now)
        self.net.start(now)
        self._tick()

    def shuttle(self) -> None:
        now = self.bed.clock.now()
        for _ in range(100):
            a, b = self.box.frames_to_send(), self.net.frames_to_send()
            for f in a:
                self.net.receive_frame(f, now)
            for f in b:
                self.box.receive_frame(f, now)
            for span in (self.box, self.net):
                d = span.next_deadline()
                if d is not None and d <= now:
                    span.handle_timers(now)
            self.trunk.pump(now)
            self.events += self.net.events()
            if not a and not b:
                break

    def _tick(self) -> None:
        self.shuttle()
        self.bed.clock.call_later(0.005, self._tick)

    def of(self, kind: type, call_id: int | None = None) -> list:
        return [e for e in self.events if isinstance(e, kind) and (call_id is None or e.call_id == call_id)]


def test_pri_call_in_through_ivr_to_agent_and_out(make_bed) -> None:
    bed = make_bed()
    x = Exchange(bed)
    bed.run(0.5)
    assert x.trunk.link_up
    bed.phones.add_phone("1001", PhoneBehaviour(answer_after=2.0))
    call_id = x.net.place_call("95588", bed.clock.now(), calling="13812345678")
    bed.run(0.5)
    assert x.of(ev.Connected, call_id)  # the box answered into the IVR
    ts = x.net.by_id[call_id].channel if hasattr(x.net.by_id[call_id], "channel") else None
    leg = next(iter(x.trunk.legs.values()))
    assert ts in (None, leg.ts)
    call = bed.mgr.call_of(leg)
    assert call.state == "ivr" and call.cdr.channel == f"DAHDI/1-{leg.ts}"
    bed.run(10.0)
    bed.port.send(leg.channel, dtmf_buffer("1"))  # the caller presses 1 on the B-channel
    bed.run(4.0)
    assert call.queue == "service" and call.b is not None and call.b.number == "1001"
    x.net.hangup(call_id, bed.clock.now())  # the caller hangs up: DISCONNECT from the network
    bed.run(0.5)
    assert x.of(ev.Released, call_id) and not bed.mgr.calls
    cdr = bed.mgr.store.cdrs()[0]
    assert cdr.disposition == "ANSWERED" and cdr.src == "13812345678" and cdr.dcontext == "from-span1"
    assert all(v is None for v in x.box.owner.values())

    # outbound: extension 1001 dials a local number through the span
    ext = bed.phones.call_in(bed.mgr, "1001", "62345678")
    bed.run(0.2)
    incoming = x.of(ev.IncomingCall)
    assert incoming and incoming[-1].called.digits == "62345678"
    assert incoming[-1].calling.digits == "95588"  # presented number for span1
    out_id = incoming[-1].call_id
    x.net.proceeding(out_id, bed.clock.now())
    x.net.alert(out_id, bed.clock.now())
    bed.run(0.5)
    x.net.answer(out_id, bed.clock.now())
    bed.run(0.5)
    out_call = bed.mgr.call_of(ext)
    assert out_call.state == "up" and out_call.b.name.startswith("DAHDI/1-")
    ext.far_hangup()
    bed.run(0.5)
    assert x.of(ev.Released, out_id)
    cdrs = bed.mgr.store.cdrs()
    assert cdrs[-1].dst == "62345678" and cdrs[-1].disposition == "ANSWERED"
    assert all(v is None for v in x.box.owner.values())
