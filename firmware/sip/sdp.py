"""SDP (RFC 4566) and the offer/answer model (RFC 3264) for G.711 voice with RFC 4733 telephone-events.

We offer and accept PCMA (preferred: the trunks are A-law, so no transcoding) and PCMU, 8 kHz, ptime 20,
plus `telephone-event/8000` when the peer has it. Hold follows RFC 3264 8.4 (`a=sendonly`/`inactive`, or
the old `c=0.0.0.0` form). Only the first audio stream is used; other streams are answered with port 0.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .message import RemoteProtocolError

STATIC_PT = {0: "PCMU", 8: "PCMA"}
CODEC_PT = {"PCMA": 8, "PCMU": 0}
DIRECTIONS = ("sendrecv", "sendonly", "recvonly", "inactive")
REVERSE = {"sendrecv": "sendrecv", "sendonly": "recvonly", "recvonly": "sendonly", "inactive": "inactive"}


class SdpError(RemoteProtocolError):
    """Unusable SDP: answered 488 Not Acceptable Here (or 400 if it does not parse)."""


@dataclass
class Media:
    kind: str
    port: int
    proto: str
    formats: list[str]
    connection: str | None = None
    rtpmap: dict[int, str] = field(default_factory=dict)  # pt -> "name/rate"
    fmtp: dict[int, str] = field(default_factory=dict)
    attributes: list[str] = field(default_factory=list)  # other a= lines, verbatim
    direction: str | None = None
    ptime: int | None = None

    def codec_of(self, pt: int) -> str | None:
        if pt in self.rtpmap:
            name, _, rate = self.rtpmap[pt].partition("/")
            return f"{name.upper()}/{rate.split('/')[0] or '8000'}"
        if pt in STATIC_PT:
            return f"{STATIC_PT[pt]}/8000"
        return None


@dataclass
class SessionDescription:
    origin: str = "- 0 0 IN IP4 127.0.0.1"
    name: str = "-"
    connection: str | None = None
    direction: str | None = None
    media: list[Media] = field(default_factory=list)

    @classmethod
    def parse(cls, data: bytes) -> SessionDescription:
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            raise SdpError("SDP is not UTF-8", 400) from None
        sd = cls(origin="", name="")
        current: Media | None = None
        for raw in text.splitlines():
            line = raw.strip()
            if not line:
                continue
            if len(line) < 2 or line[1] != "=":
                raise SdpError(f"malformed SDP line {line[:40]!r}", 400)
            kind, value = line[0], line[2:]
            if kind == "o":
                sd.origin = value
            elif kind == "s":
                sd.name = value
            elif kind == "c":
                parts = value.split()
                if len(parts) != 3 or parts[0] != "IN" or parts[1] not in ("IP4", "IP6"):
                    raise SdpError(f"malformed c= line {value[:40]!r}", 400)
                addr = parts[2].split("/")[0]
                if current is None:
                    sd.connection = addr
                else:
                    current.connection = addr
            elif kind == "m":
                parts = value.split()
                if len(parts) < 4 or not parts[1].split("/")[0].isdigit():
                    raise SdpError(f"malformed m= line {value[:40]!r}", 400)
                port = int(parts[1].split("/")[0])
                if port > 65535:
                    raise SdpError(f"port out of range in m= line {value[:40]!r}", 400)
                current = Media(parts[0], port, parts[2], parts[3:])
                sd.media.append(current)
            elif kind == "a":
                name, _, rest = value.partition(":")
                if name in DIRECTIONS:
                    if current is None:
                        sd.direction = name
                    else:
                        current.direction = name
                elif current is None:
                    continue
                elif name in ("rtpmap", "fmtp"):
                    pt_text, _, spec = rest.partition(" ")
                    if not pt_text.isdigit() or int(pt_text) > 127:
                        raise SdpError(f"malformed a={name} {rest[:40]!r}", 400)
                    (current.rtpmap if name == "rtpmap" else current.fmtp)[int(pt_text)] = spec.strip()
                elif name == "ptime":
                    if rest.strip().isdigit():
                        current.ptime = int(rest.strip())
                else:
                    current.attributes.append(value)
        if not sd.origin and not sd.media:
            raise SdpError("empty SDP", 400)
        return sd

    def encode(self) -> bytes:
        lines = ["v=0", f"o={self.origin}", f"s={self.name}"]
        if self.connection:
            lines.append(f"c=IN {_ipver(self.connection)} {self.connection}")
        lines.append("t=0 0")
        if self.direction:
            lines.append(f"a={self.direction}")
        for m in self.media:
            lines.append(f"m={m.kind} {m.port} {m.proto} {' '.join(m.formats)}")
            if m.connection:
                lines.append(f"c=IN {_ipver(m.connection)} {m.connection}")
            for pt_text in m.formats:
                pt = int(pt_text) if pt_text.isdigit() else -1
                if pt in m.rtpmap:
                    lines.append(f"a=rtpmap:{pt} {m.rtpmap[pt]}")
                if pt in m.fmtp:
                    lines.append(f"a=fmtp:{pt} {m.fmtp[pt]}")
            if m.ptime:
                lines.append(f"a=ptime:{m.ptime}")
            for attr in m.attributes:
                lines.append(f"a={attr}")
            if m.direction:
                lines.append(f"a={m.direction}")
        return ("\r\n".join(lines) + "\r\n").encode()


def _ipver(addr: str) -> str:
    return "IP6" if ":" in addr else "IP4"


@dataclass(frozen=True)
class Negotiated:
    """What a leg does after offer/answer: send `codec` (payload type `pt`) to remote_ip:remote_port."""

    remote_ip: str
    remote_port: int
    codec: str  # "PCMA" | "PCMU"
    pt: int
    dtmf_pt: int | None  # telephone-event payload type, None: in-band DTMF only
    ptime: int
    direction: str  # ours: sendrecv, sendonly (we hold them), recvonly (they hold us), inactive

    @property
    def on_hold(self) -> bool:
        return self.direction != "sendrecv"


def make_offer(
    local_ip: str,
    port: int,
    session_id: int,
    version: int,
    direction: str = "sendrecv",
    codecs: tuple[str, ...] = ("PCMA", "PCMU"),
    dtmf_pt: int = 101,
) -> SessionDescription:
    formats = [str(CODEC_PT[c]) for c in codecs] + [str(dtmf_pt)]
    m = Media("audio", port, "RTP/AVP", formats, ptime=20, direction=direction)
    for c in codecs:
        m.rtpmap[CODEC_PT[c]] = f"{c}/8000"
    m.rtpmap[dtmf_pt] = "telephone-event/8000"
    m.fmtp[dtmf_pt] = "0-16"
    m.attributes.append("maxptime:40")
    return SessionDescription(
        f"callbox {session_id} {version} IN {_ipver(local_ip)} {local_ip}", "CallBox", local_ip, None, [m]
    )


def _pick(offer_media: Media, prefs: tuple[str, ...]) -> tuple[str, int] | None:
    offered: dict[str, int] = {}
    for f in offer_media.formats:
        if not f.isdigit():
            continue
        codec = offer_media.codec_of(int(f))
        if codec is None:
            continue
        name, _, rate = codec.partition("/")
        if rate == "8000" and name not in offered:
            offered[name] = int(f)
    for name in prefs:
        if name in offered:
            return name, offered[name]
    return None


def _dtmf_pt(media: Media) -> int | None:
    for f in media.formats:
        if f.isdigit() and (media.codec_of(int(f)) or "").upper() == "TELEPHONE-EVENT/8000":
            return int(f)
    return None


def answer_offer(
    offer: SessionDescription,
    local_ip: str,
    port: int,
    session_id: int,
    version: int,
    prefs: tuple[str, ...] = ("PCMA", "PCMU"),
    hold: bool = False,
) -> tuple[SessionDescription, Negotiated]:
    """Our answer to `offer` (RFC 3264 6) and what the leg will do. SdpError(488) when nothing fits."""
    chosen: tuple[Media, str, int] | None = None
    answer_media: list[Media] = []
    for m in offer.media:
        pick = _pick(m, prefs) if m.kind == "audio" and m.proto.upper() == "RTP/AVP" and m.port else None
        if chosen is not None or pick is None:
            answer_media.append(Media(m.kind, 0, m.proto, m.formats[:1]))
            continue
        chosen = (m, pick[0], pick[1])
    if chosen is None:
        raise SdpError("no common audio codec (we take PCMA, PCMU on RTP/AVP)", 488)
    m, codec, pt = chosen
    remote_ip = m.connection or offer.connection
    if not remote_ip:
        raise SdpError("no connection address", 488)
    their = m.direction or offer.direction or "sendrecv"
    if remote_ip in ("0.0.0.0", "::"):
        their = "sendonly" if their == "sendrecv" else their
    ours = REVERSE[their]
    if hold:
        ours = {"sendrecv": "sendonly", "recvonly": "inactive"}.get(ours, ours)
    dtmf = _dtmf_pt(m)
    formats = [str(pt)] + ([str(dtmf)] if dtmf is not None else [])
    am = Media("audio", port, m.proto, formats, ptime=20, direction=ours)
    am.rtpmap[pt] = f"{codec}/8000"
    if dtmf is not None:
        am.rtpmap[dtmf] = "telephone-event/8000"
        am.fmtp[dtmf] = "0-16"
    index = offer.media.index(m)
    answer_media.insert(index, am)
    sd = SessionDescription(
        f"callbox {session_id} {version} IN {_ipver(local_ip)} {local_ip}",
        "CallBox",
        local_ip,
        None,
        answer_media,
    )
    neg = Negotiated(remote_ip, m.port, codec, pt, dtmf, m.ptime or 20, ours)
    return sd, neg


def accept_answer(offer: SessionDescription, answer: SessionDescription) -> Negotiated:
    """What the leg does once the peer answered our offer."""
    for m in answer.media:
        if m.kind != "audio" or not m.port:
            continue
        pick = _pick(m, ("PCMA", "PCMU"))
        if pick is None:
            raise SdpError("answer has no codec we offered", 488)
        remote_ip = m.connection or answer.connection
        if not remote_ip:
            raise SdpError("answer has no connection address", 488)
        ours_offered = offer.media[0].direction if offer.media else "sendrecv"
        their = m.direction or answer.direction or "sendrecv"
        ours = REVERSE[their] if ours_offered == "sendrecv" else ours_offered or "sendrecv"
        return Negotiated(remote_ip, m.port, pick[0], pick[1], _dtmf_pt(m), m.ptime or 20, ours)
    raise SdpError("answer rejected the audio stream", 488)
