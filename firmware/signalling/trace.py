"""Readable one-line decodes of D-channel frames (Q.921 + Q.931), for logs, the console and `callbox q931`.

>>> describe_frame(bytes.fromhex("000100000802000105a104038090a3"), Role.NETWORK)
'NET>USR I cmd N(S)=0 N(R)=0 | SETUP cr=1 (orig) SendingComplete BC(speech A-law)'
"""

from __future__ import annotations

from firmware.signalling.q921 import FrameError, Role, decode_frame
from firmware.signalling.q931.codec import (
    MT,
    BearerCapability,
    CallState,
    CauseIE,
    ChannelId,
    Display,
    KeypadFacility,
    MessageError,
    PartyNumber,
    ProgressIndicator,
    RawIE,
    RestartIndicator,
    SendingComplete,
    decode_message,
)

_TRANSFER = {0x00: "speech", 0x10: "3.1kHz", 0x08: "digital"}
_LAYER1 = {0x02: "u-law", 0x03: "A-law"}


def describe_ie(ie: object) -> str:
    if isinstance(ie, SendingComplete):
        return "SendingComplete"
    if isinstance(ie, BearerCapability):
        l1 = _LAYER1.get(ie.layer1, "") if ie.layer1 is not None else ""
        return f"BC({_TRANSFER.get(ie.transfer, hex(ie.transfer))}{' ' + l1 if l1 else ''})"
    if isinstance(ie, ChannelId):
        if ie.none:
            return "ChanId(none)"
        ch = "any" if ie.channel is None else f"ts{ie.channel}"
        return f"ChanId({ch} {'excl' if ie.exclusive else 'pref'})"
    if isinstance(ie, PartyNumber):
        extra = "" if ie.presentation is None else f" pres={ie.presentation} scr={ie.screening}"
        return f"{type(ie).__name__}('{ie.digits}' ton={ie.ton} npi={ie.npi}{extra})"
    if isinstance(ie, CauseIE):
        return f"Cause({ie.value} loc={ie.location}{' diag=' + ie.diagnostic.hex() if ie.diagnostic else ''})"
    if isinstance(ie, ProgressIndicator):
        return f"Progress({ie.description} loc={ie.location})"
    if isinstance(ie, Display):
        return f"Display({ie.text!r})"
    if isinstance(ie, KeypadFacility):
        return f"Keypad({ie.digits!r})"
    if isinstance(ie, RestartIndicator):
        return f"RestartInd(class {ie.klass})"
    if isinstance(ie, CallState):
        return f"CallState({ie.state})"
    if isinstance(ie, RawIE):
        return f"IE(0x{ie.id:02x} cs{ie.codeset} {ie.contents.hex()})"
    return repr(ie)


def describe_message(data: bytes) -> str:
    try:
        msg = decode_message(data)
    except MessageError as exc:
        return f"not Q.931 ({exc}): {data.hex()}"
    name = MT(msg.type).name if msg.type in MT._value2member_map_ else f"type 0x{msg.type:02x}"
    parts = [f"{name} cr={msg.call_ref} ({'orig' if msg.from_originator else 'dest'})"]
    parts += [describe_ie(ie) for ie in msg.ies]
    parts += [f"!{p.kind} IE 0x{p.ie_id:02x}: {p.detail}" for p in msg.errors]
    return " ".join(parts)


def describe_frame(frame: bytes, sender: Role) -> str:
    """One frame as sent by `sender`."""
    arrow = "NET>USR" if sender is Role.NETWORK else "USR>NET"
    try:
        f = decode_frame(frame, sender)
    except FrameError as exc:
        return f"{arrow} bad frame ({exc}): {frame.hex()}"
    head = f"{arrow} {f.kind} {'cmd' if f.command else 'resp'}"
    if f.sapi or f.tei:
        head += f" SAPI={f.sapi} TEI={f.tei}"
    if f.kind == "I":
        head += f" N(S)={f.ns} N(R)={f.nr}{' P' if f.pf else ''}"
        return f"{head} | {describe_message(f.info)}"
    if f.kind in ("RR", "RNR", "REJ"):
        return f"{head} N(R)={f.nr}{(' P' if f.command else ' F') if f.pf else ''}"
    return f"{head}{(' P' if f.command else ' F') if f.pf else ''}"
