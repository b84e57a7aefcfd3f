"""Property tests: random and mutated Q.921/Q.931 input never raises, never corrupts state.

Invariants (PriSpan.check_invariants): every owned B-channel points at a live call that points back at it,
no call is kept in Null, no channel is both in a call and in maintenance, V(S)/V(A)/V(R) are in 0..127 and
at most k = 7 I frames are outstanding.
"""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from firmware.signalling import events as ev
from firmware.signalling.q921 import DataLink, LinkState, Role, encode_frame
from firmware.signalling.q931.codec import (
    MT,
    BearerCapability,
    CalledNumber,
    CallingNumber,
    CallState,
    CauseIE,
    ChannelId,
    Message,
    ProgressIndicator,
    RestartIndicator,
    SendingComplete,
    decode_message,
    encode_message,
)
from firmware.signalling.q931.state import LocalProtocolError, Party

from .harness import Pair
from .test_pri import RawEnd

FUZZ = settings(
    max_examples=int(__import__("os").environ.get("FUZZ_EXAMPLES", "150")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)

# ---- Q.921 -----------------------------------------------------------------------------------------------

frames = st.one_of(
    st.binary(max_size=300),
    st.builds(
        lambda kind, cmd, pf, ns, nr, info: encode_frame(Role.NETWORK, cmd, kind, pf, ns, nr, info),
        st.sampled_from(["I", "RR", "RNR", "REJ", "SABME", "DM", "UI", "DISC", "UA", "FRMR", "XID"]),
        st.booleans(),
        st.booleans(),
        st.integers(0, 127),
        st.integers(0, 127),
        st.binary(max_size=20),
    ),
)


@FUZZ
@given(st.lists(st.tuples(frames, st.floats(0, 3), st.integers(0, 3)), max_size=40))
def test_q921_random_frames(script) -> None:
    link = DataLink(Role.USER)
    link.start(0.0)
    link.receive_frame(encode_frame(Role.NETWORK, False, "UA", True), 0.0)
    now = 0.0
    for frame, dt, sends in script:
        now += dt
        link.receive_frame(frame, now)
        for i in range(sends):
            link.send(bytes([i]), now)
        d = link.next_deadline()
        if d is not None and d <= now:
            link.handle_timers(now)
        link.frames_to_send()
        link.events()
        assert 0 <= link.vs < 128 and 0 <= link.va < 128 and 0 <= link.vr < 128
        assert (link.vs - link.va) % 128 <= link.k
        assert link.state in LinkState
        if link.state is LinkState.MULTIFRAME_ESTABLISHED:
            assert link.t200_at is not None or link.t203_at is not None


# ---- Q.931 -----------------------------------------------------------------------------------------------

VALID_IES = [
    [SendingComplete(), BearerCapability(), ChannelId(1), CallingNumber("1", 0, 1, 0, 0), CalledNumber("2")],
    [ChannelId(3)],
    [CauseIE(16)],
    [CauseIE(30), CallState(10)],
    [ChannelId(2), RestartIndicator(0)],
    [ProgressIndicator(8)],
    [CalledNumber("55"), SendingComplete()],
    [],
]


@st.composite
def q931_messages(draw) -> bytes:
    mt = draw(st.sampled_from(list(MT) + [0x7F, 0x00]))
    cr = draw(st.sampled_from([0, 1, 2, 3, 0x7FFF]))
    raw = encode_message(Message(mt, cr, draw(st.booleans()), list(draw(st.sampled_from(VALID_IES)))))
    data = bytearray(raw)
    for _ in range(draw(st.integers(0, 4))):
        op = draw(st.sampled_from(["flip", "cut", "insert", "none"]))
        if op == "flip" and data:
            i = draw(st.integers(0, len(data) - 1))
            data[i] ^= 1 << draw(st.integers(0, 7))
        elif op == "cut" and data:
            del data[draw(st.integers(0, len(data) - 1)) :]
        elif op == "insert":
            i = draw(st.integers(0, len(data)))
            data[i:i] = draw(st.binary(min_size=1, max_size=8))
    return bytes(data)


@FUZZ
@given(st.sampled_from([Party.NETWORK, Party.USER]), st.lists(q931_messages(), max_size=25))
def test_q931_mutated_messages(raw_party: Party, msgs: list[bytes]) -> None:
    raw = RawEnd(raw_party)
    raw.setup(1, channel=1)  # a call in progress for the mutations to hit
    alive: set[int] = set()

    def account() -> None:
        for e in raw.span.events():
            if isinstance(e, ev.IncomingCall):
                assert e.call_id not in alive
                alive.add(e.call_id)
            elif isinstance(e, ev.Released):
                alive.remove(e.call_id)  # each announced call is released exactly once

    for m in msgs:
        raw.send(m[:260])
        raw.span.check_invariants()
        account()
        assert alive == set(raw.span.by_id)
    for cid in list(raw.span.by_id):
        raw.span.hangup(cid, raw.now)
    for _ in range(4):
        raw.now += 100.0
        raw.span.handle_timers(raw.now)
        raw.pump()
    account()
    raw.span.check_invariants()
    assert not alive and not raw.span.by_id  # nothing leaks, even towards a peer that stopped answering


@FUZZ
@given(st.binary(max_size=300))
def test_q931_decoder_never_raises_unexpectedly(data: bytes) -> None:
    try:
        decode_message(data)
    except ValueError:
        pass  # MessageError: the message is ignored as §5.8 says


# ---- random call control against a peer ------------------------------------------------------------------

ops = st.lists(
    st.tuples(
        st.sampled_from(
            [
                "place_u",
                "place_n",
                "proceed",
                "alert",
                "answer",
                "setup_ack",
                "digits",
                "hangup",
                "restart",
                "advance",
                "cut",
                "heal",
                "alarm",
            ]
        ),
        st.integers(0, 40),
    ),
    max_size=60,
)


@FUZZ
@given(ops)
def test_random_call_control_keeps_tables_consistent(script) -> None:
    p = Pair()
    p.up()
    for op, n in script:
        spans = (p.user, p.net)
        span = spans[n % 2]
        ids = sorted(span.by_id)
        cid = ids[n % len(ids)] if ids else None
        try:
            if op == "place_u":
                p.user.place_call(str(n), p.now, sending_complete=n % 3 != 0, channel=(n % 32) or None)
            elif op == "place_n":
                p.net.place_call(str(n), p.now, exclusive=n % 2 == 0)
            elif cid is not None and op == "proceed":
                span.proceeding(cid, p.now)
            elif cid is not None and op == "alert":
                span.alert(cid, p.now, inband=n % 2 == 0)
            elif cid is not None and op == "answer":
                span.answer(cid, p.now)
            elif cid is not None and op == "progress":
                span.progress(cid, p.now)
            elif cid is not None and op == "setup_ack":
                span.setup_ack(cid, p.now)
            elif cid is not None and op == "digits":
                span.send_digits(cid, str(n), p.now, complete=n % 2 == 0)
            elif cid is not None and op == "hangup":
                span.hangup(cid, p.now, [16, 17, 19, 21, 34][n % 5])
            elif op == "restart":
                span.restart(p.now, None if n % 4 == 0 else [1, 2, 15, 17, 31][n % 5])
            elif op == "advance":
                p.advance(n / 2)
            elif op == "cut":
                p.drop_to = {p.user, p.net}
            elif op == "heal":
                p.drop_to = set()
            elif op == "alarm":
                span.alarm(p.now)
                span.start(p.now)
        except LocalProtocolError:
            pass  # illegal in this state: refused, nothing changed
        p.pump()
        p.check()
    # Whatever happened, the span recovers: link back, everything can be cleared, all channels free.
    p.drop_to = set()
    p.advance(20.0)
    for span in (p.user, p.net):
        for cid in list(span.by_id):
            span.hangup(cid, p.now)
    p.advance(300.0)
    p.check()
    assert p.user.link_up and p.net.link_up
    assert not p.user.by_id and not p.net.by_id
    assert all(c is None for c in p.user.owner.values()) and not p.user.maintenance
