"""SIP messages (RFC 3261 section 7, 20, 25): parse bytes into Request/Response and serialize them back.

Pure functions over bytes, no I/O. What we accept and reject:

- start line `METHOD uri SIP/2.0` or `SIP/2.0 code reason`; any other version is a RemoteProtocolError
  carrying status 505, a malformed start line 400;
- header lines `Name: value` (any amount of whitespace around the colon), folded continuation lines
  (leading SP/HT, RFC 3261 7.3.1) joined with one space, compact names (`v`, `f`, `t`, `i`, `m`, `l`, ...)
  expanded to their full names, list headers (Via, Contact, Route, ...) split on top-level commas into one
  entry per value (commas inside quotes or <...> are kept);
- Content-Length is checked against the body: on a datagram a body longer than Content-Length is cut to it
  (18.3), a shorter one is an error (400); on a stream the framer (`StreamFramer`) uses it to find where
  the next message starts, so it is mandatory there;
- size limits: a message over `MAX_MESSAGE_SIZE` (413/513), more than `MAX_HEADERS` header lines, a header
  line over `MAX_HEADER_LINE`.

Errors say whose fault they are, as in h11: `RemoteProtocolError` (the peer sent something illegal; it
carries the status code a server should answer with, when answering is possible) and `LocalProtocolError`
(we were asked to build something illegal).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

MAX_MESSAGE_SIZE = 65535  # largest UDP datagram; TCP messages are held to the same bound
MAX_HEADERS = 128
MAX_HEADER_LINE = 8192
MAX_BODY = 32768
SIP_VERSION = "SIP/2.0"


class SipError(Exception):
    """Base of the SIP protocol errors."""


class RemoteProtocolError(SipError):
    """The peer sent something illegal. `status` is the response a server should send (400 by default)."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


class LocalProtocolError(SipError):
    """We were asked to build or send something illegal."""


# RFC 3261 7.3.3 and the registry of compact forms.
COMPACT: dict[str, str] = {
    "a": "Accept-Contact",
    "b": "Referred-By",
    "c": "Content-Type",
    "d": "Request-Disposition",
    "e": "Content-Encoding",
    "f": "From",
    "i": "Call-ID",
    "j": "Reject-Contact",
    "k": "Supported",
    "l": "Content-Length",
    "m": "Contact",
    "o": "Event",
    "r": "Refer-To",
    "s": "Subject",
    "t": "To",
    "u": "Allow-Events",
    "v": "Via",
    "x": "Session-Expires",
    "y": "Identity",
}

_CANONICAL: dict[str, str] = {
    name.lower(): name
    for name in (
        "Accept",
        "Accept-Encoding",
        "Accept-Language",
        "Alert-Info",
        "Allow",
        "Allow-Events",
        "Authentication-Info",
        "Authorization",
        "Call-ID",
        "Call-Info",
        "Contact",
        "Content-Disposition",
        "Content-Encoding",
        "Content-Language",
        "Content-Length",
        "Content-Type",
        "CSeq",
        "Date",
        "Error-Info",
        "Event",
        "Expires",
        "From",
        "In-Reply-To",
        "Max-Forwards",
        "Min-Expires",
        "Min-SE",
        "MIME-Version",
        "Organization",
        "P-Asserted-Identity",
        "Priority",
        "Proxy-Authenticate",
        "Proxy-Authorization",
        "Proxy-Require",
        "Reason",
        "Record-Route",
        "Refer-To",
        "Referred-By",
        "Replaces",
        "Reply-To",
        "Require",
        "Retry-After",
        "Route",
        "Server",
        "Session-Expires",
        "Subject",
        "Subscription-State",
        "Supported",
        "Timestamp",
        "To",
        "Unsupported",
        "User-Agent",
        "Via",
        "Warning",
        "WWW-Authenticate",
    )
}

# Headers whose value is a comma-separated list (RFC 3261 7.3.1): split into one entry per element.
LIST_HEADERS = frozenset(
    {
        "Via",
        "Contact",
        "Route",
        "Record-Route",
        "Allow",
        "Supported",
        "Require",
        "Proxy-Require",
        "Unsupported",
        "Accept",
        "Accept-Encoding",
        "Accept-Language",
        "Allow-Events",
        "Content-Encoding",
        "Content-Language",
        "In-Reply-To",
    }
)

# Headers that appear at most once; a second copy is malformed.
SINGLE_HEADERS = frozenset({"Call-ID", "CSeq", "From", "To", "Content-Length", "Max-Forwards"})

_TOKEN = re.compile(r"^[A-Za-z0-9.!%*_+`'~-]+$")
_CTL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")  # control characters other than HT (line breaks removed)


_NAME_MEMO: dict[str, str] = {}


def canonical_name(name: str) -> str:
    """The full, conventionally cased header name for `name` (compact or any case)."""
    canon = _NAME_MEMO.get(name)
    if canon is None:
        canon = _canonical_name(name)
        if len(_NAME_MEMO) < 4096:  # names from the network are bounded in what we keep
            _NAME_MEMO[name] = canon
    return canon


def _canonical_name(name: str) -> str:
    if len(name) == 1:
        full = COMPACT.get(name.lower())
        if full is not None:
            return full
    canon = _CANONICAL.get(name.lower())
    if canon is not None:
        return canon
    return "-".join(part[:1].upper() + part[1:].lower() for part in name.split("-"))


def split_list(value: str) -> list[str]:
    """Split a header value on commas that are not inside quotes or <...>."""
    if '"' not in value and "<" not in value:
        return [p for p in (x.strip() for x in value.split(",")) if p]
    out: list[str] = []
    depth = 0
    quoted = False
    start = 0
    i = 0
    n = len(value)
    while i < n:
        ch = value[i]
        if quoted:
            if ch == "\\":
                i += 1
            elif ch == '"':
                quoted = False
        elif ch == '"':
            quoted = True
        elif ch == "<":
            depth += 1
        elif ch == ">":
            depth = max(0, depth - 1)
        elif ch == "," and depth == 0:
            part = value[start:i].strip()
            if part:
                out.append(part)
            start = i + 1
        i += 1
    part = value[start:].strip()
    if part:
        out.append(part)
    return out


class Headers:
    """Ordered multi-map of headers, names held in canonical form, lookups case-insensitive."""

    __slots__ = ("_items",)

    def __init__(self, items: Iterable[tuple[str, str]] = ()) -> None:
        self._items: list[tuple[str, str]] = [(canonical_name(k), v) for k, v in items]

    def get(self, name: str, default: str | None = None) -> str | None:
        name = canonical_name(name)
        for k, v in self._items:
            if k == name:
                return v
        return default

    def get_all(self, name: str) -> list[str]:
        name = canonical_name(name)
        return [v for k, v in self._items if k == name]

    def __getitem__(self, name: str) -> str:
        value = self.get(name)
        if value is None:
            raise KeyError(name)
        return value

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and self.get(name) is not None

    def add(self, name: str, value: str) -> None:
        self._items.append((canonical_name(name), value))

    def prepend(self, name: str, value: str) -> None:
        self._items.insert(0, (canonical_name(name), value))

    def set(self, name: str, value: str) -> None:
        """Replace every copy of `name` by one value, kept where the first copy was."""
        name = canonical_name(name)
        for i, (k, _) in enumerate(self._items):
            if k == name:
                self._items[i] = (k, value)
                self._items = [kv for j, kv in enumerate(self._items) if j <= i or kv[0] != name]
                return
        self._items.append((name, value))

    def replace_first(self, name: str, value: str) -> None:
        name = canonical_name(name)
        for i, (k, _) in enumerate(self._items):
            if k == name:
                self._items[i] = (k, value)
                return
        raise KeyError(name)

    def remove(self, name: str) -> None:
        name = canonical_name(name)
        self._items = [kv for kv in self._items if kv[0] != name]

    def items(self) -> list[tuple[str, str]]:
        return list(self._items)

    def copy(self) -> Headers:
        h = Headers()
        h._items = list(self._items)
        return h

    def __iter__(self) -> Iterator[tuple[str, str]]:
        return iter(self._items)

    def __len__(self) -> int:
        return len(self._items)

    def __repr__(self) -> str:
        return f"Headers({self._items!r})"


@dataclass
class Message:
    headers: Headers
    body: bytes

    # Convenience readers used everywhere; they raise RemoteProtocolError on malformed values.
    @property
    def call_id(self) -> str:
        value = self.headers.get("Call-ID")
        if not value:
            raise RemoteProtocolError("missing Call-ID")
        return value

    @property
    def cseq(self) -> tuple[int, str]:
        value = self.headers.get("CSeq")
        if value is None:
            raise RemoteProtocolError("missing CSeq")
        parts = value.split()
        if len(parts) != 2 or not parts[0].isdigit() or len(parts[0]) > 10:
            raise RemoteProtocolError(f"malformed CSeq {value!r}")
        number = int(parts[0])
        if number >= 2**31:
            raise RemoteProtocolError(f"CSeq number out of range {value!r}")
        return number, parts[1].upper()

    @property
    def vias(self) -> list[Via]:
        return [Via.parse(v) for v in self.headers.get_all("Via")]

    @property
    def top_via(self) -> Via:
        value = self.headers.get("Via")
        if value is None:
            raise RemoteProtocolError("missing Via")
        return Via.parse(value)

    @property
    def from_(self) -> NameAddr:
        value = self.headers.get("From")
        if value is None:
            raise RemoteProtocolError("missing From")
        return NameAddr.parse(value)

    @property
    def to(self) -> NameAddr:
        value = self.headers.get("To")
        if value is None:
            raise RemoteProtocolError("missing To")
        return NameAddr.parse(value)

    @property
    def contacts(self) -> list[NameAddr]:
        out = []
        for value in self.headers.get_all("Contact"):
            if value.strip() == "*":
                continue
            out.append(NameAddr.parse(value))
        return out

    @property
    def content_type(self) -> str:
        return (self.headers.get("Content-Type") or "").split(";")[0].strip().lower()

    def _head_lines(self) -> list[str]:
        raise NotImplementedError

    def encode(self) -> bytes:
        lines = self._head_lines()
        for name, value in self.headers:
            if name == "Content-Length":
                continue
            if "\r" in value or "\n" in value:
                raise LocalProtocolError(f"header {name} contains a line break")
            lines.append(f"{name}: {value}")
        lines.append(f"Content-Length: {len(self.body)}")
        return ("\r\n".join(lines) + "\r\n\r\n").encode("utf-8") + self.body

    def __bytes__(self) -> bytes:
        return self.encode()


@dataclass
class Request(Message):
    method: str = "OPTIONS"
    uri: str = ""

    def __init__(
        self, method: str, uri: str, headers: Headers | Iterable[tuple[str, str]] = (), body: bytes = b""
    ) -> None:
        if not _TOKEN.match(method):
            raise LocalProtocolError(f"bad method {method!r}")
        self.method = method
        self.uri = uri
        self.headers = headers if isinstance(headers, Headers) else Headers(headers)
        self.body = body

    def _head_lines(self) -> list[str]:
        if not self.uri or any(c in self.uri for c in " \r\n"):
            raise LocalProtocolError(f"bad Request-URI {self.uri!r}")
        return [f"{self.method} {self.uri} {SIP_VERSION}"]

    def __repr__(self) -> str:
        return f"<Request {self.method} {self.uri}>"


@dataclass
class Response(Message):
    status: int = 200
    reason: str = "OK"

    def __init__(
        self,
        status: int,
        reason: str = "",
        headers: Headers | Iterable[tuple[str, str]] = (),
        body: bytes = b"",
    ) -> None:
        if not 100 <= status <= 699:
            raise LocalProtocolError(f"bad status code {status}")
        self.status = status
        self.reason = reason or REASONS.get(status, "Unknown")
        self.headers = headers if isinstance(headers, Headers) else Headers(headers)
        self.body = body

    def _head_lines(self) -> list[str]:
        return [f"{SIP_VERSION} {self.status} {self.reason}"]

    def __repr__(self) -> str:
        return f"<Response {self.status} {self.reason}>"


REASONS: dict[int, str] = {
    100: "Trying",
    180: "Ringing",
    181: "Call Is Being Forwarded",
    182: "Queued",
    183: "Session Progress",
    200: "OK",
    202: "Accepted",
    301: "Moved Permanently",
    302: "Moved Temporarily",
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    406: "Not Acceptable",
    407: "Proxy Authentication Required",
    408: "Request Timeout",
    410: "Gone",
    413: "Request Entity Too Large",
    414: "Request-URI Too Long",
    415: "Unsupported Media Type",
    416: "Unsupported URI Scheme",
    420: "Bad Extension",
    421: "Extension Required",
    422: "Session Interval Too Small",
    423: "Interval Too Brief",
    480: "Temporarily Unavailable",
    481: "Call/Transaction Does Not Exist",
    482: "Loop Detected",
    483: "Too Many Hops",
    484: "Address Incomplete",
    485: "Ambiguous",
    486: "Busy Here",
    487: "Request Terminated",
    488: "Not Acceptable Here",
    491: "Request Pending",
    500: "Server Internal Error",
    501: "Not Implemented",
    502: "Bad Gateway",
    503: "Service Unavailable",
    504: "Server Time-out",
    505: "Version Not Supported",
    513: "Message Too Large",
    600: "Busy Everywhere",
    603: "Decline",
    604: "Does Not Exist Anywhere",
    606: "Not Acceptable",
}


# ---------------------------------------------------------------------------------------------------------
# parsing


def _decode(raw: bytes) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise RemoteProtocolError(f"header section is not UTF-8 ({exc.reason})") from None


def parse_head(head: bytes) -> tuple[Request | Response, int | None]:
    """Parse a start line and headers (no blank line, no body). Returns the message (empty body) and the
    declared Content-Length (None when absent)."""
    if len(head) > MAX_MESSAGE_SIZE:
        raise RemoteProtocolError("message too large", 513)
    text = _decode(head)
    raw_lines = re.split(r"\r\n|\n", text)
    if _CTL.search(text.replace("\r\n", "").replace("\n", "")):
        raise RemoteProtocolError("control character in header section")
    if not raw_lines or not raw_lines[0]:
        raise RemoteProtocolError("empty start line")
    start = raw_lines[0]
    # Unfold: a line starting with SP/HT continues the previous header.
    header_lines: list[str] = []
    for line in raw_lines[1:]:
        if len(line) > MAX_HEADER_LINE:
            raise RemoteProtocolError("header line too long", 513)
        if line[:1] in (" ", "\t"):
            if not header_lines:
                raise RemoteProtocolError("continuation line before any header")
            header_lines[-1] = header_lines[-1].rstrip() + " " + line.strip()
        elif line:
            header_lines.append(line)
    if len(header_lines) > MAX_HEADERS:
        raise RemoteProtocolError(f"more than {MAX_HEADERS} header lines", 513)

    headers = Headers()
    seen_single: set[str] = set()
    for line in header_lines:
        name, sep, value = line.partition(":")
        name = name.strip()
        if not sep or not name or not _TOKEN.match(name):
            raise RemoteProtocolError(f"malformed header line {line[:60]!r}")
        canon = canonical_name(name)
        value = value.strip()
        if canon in SINGLE_HEADERS:
            if canon in seen_single:
                raise RemoteProtocolError(f"duplicate {canon} header")
            seen_single.add(canon)
        if canon in LIST_HEADERS:
            parts = split_list(value)
            if not parts and canon in ("Via", "Contact"):
                raise RemoteProtocolError(f"empty {canon} header")
            for part in parts:
                headers._items.append((canon, part))
        else:
            headers._items.append((canon, value))

    content_length: int | None = None
    cl = headers.get("Content-Length")
    if cl is not None:
        if not cl.isdigit() or len(cl) > 9:
            raise RemoteProtocolError(f"malformed Content-Length {cl!r}")
        content_length = int(cl)
        if content_length > MAX_BODY:
            raise RemoteProtocolError("body too large", 513)

    msg: Request | Response
    if start.startswith("SIP/"):
        parts = start.split(" ", 2)
        if parts[0] != SIP_VERSION:
            raise RemoteProtocolError(f"unsupported version {parts[0]!r}", 505)
        if len(parts) < 2 or not parts[1].isdigit() or len(parts[1]) != 3:
            raise RemoteProtocolError(f"malformed status line {start[:60]!r}")
        status = int(parts[1])
        if not 100 <= status <= 699:
            raise RemoteProtocolError(f"status code out of range {status}")
        msg = Response.__new__(Response)
        msg.status = status
        msg.reason = parts[2] if len(parts) > 2 else ""
        msg.headers = headers
        msg.body = b""
    else:
        parts = start.split(" ")
        if len(parts) != 3 or not parts[0] or not parts[1]:
            raise RemoteProtocolError(f"malformed request line {start[:60]!r}")
        method, uri, version = parts
        if not _TOKEN.match(method):
            raise RemoteProtocolError(f"malformed method {method[:30]!r}")
        if version != SIP_VERSION:
            if version.upper().startswith("SIP/"):
                raise RemoteProtocolError(f"unsupported version {version!r}", 505)
            raise RemoteProtocolError(f"malformed request line {start[:60]!r}")
        if len(uri) > 2048:
            raise RemoteProtocolError("Request-URI too long", 414)
        if ":" not in uri:
            raise RemoteProtocolError(f"malformed Request-URI {uri[:60]!r}", 416)
        msg = Request.__new__(Request)
        msg.method = method
        msg.uri = uri
        msg.headers = headers
        msg.body = b""
    return msg, content_length


def _split_head(data: bytes) -> tuple[bytes, bytes] | None:
    """Find the blank line ending the header section (CRLFCRLF, or bare LFLF from lax peers)."""
    i = data.find(b"\r\n\r\n")
    j = data.find(b"\n\n")
    if i < 0 and j < 0:
        return None
    if i >= 0 and (j < 0 or i <= j):
        return data[:i], data[i + 4 :]
    return data[:j], data[j + 2 :]


def check_mandatory(msg: Request | Response) -> None:
    """RFC 3261 8.1.1: To, From, CSeq, Call-ID, Via (and Max-Forwards, tolerated when absent) must be there
    and well formed; CSeq's method must match the request's."""
    msg.call_id  # noqa: B018 - the property validates
    number, method = msg.cseq
    _ = number
    msg.from_  # noqa: B018
    msg.to  # noqa: B018
    msg.top_via  # noqa: B018
    if isinstance(msg, Request) and method != msg.method.upper():
        raise RemoteProtocolError(f"CSeq method {method} does not match {msg.method}")


def parse_datagram(data: bytes) -> Request | Response:
    """Parse one SIP message carried in one datagram (RFC 3261 18.3)."""
    if len(data) > MAX_MESSAGE_SIZE:
        raise RemoteProtocolError("message too large", 513)
    split = _split_head(data.lstrip(b"\r\n"))
    if split is None:
        raise RemoteProtocolError("no end of header section")
    head, body = split
    msg, length = parse_head(head)
    if length is not None:
        if len(body) < length:
            raise RemoteProtocolError(f"Content-Length {length} but only {len(body)} body bytes")
        body = body[:length]
    msg.body = body
    check_mandatory(msg)
    return msg


def parse_message(data: bytes) -> Request | Response:
    """Alias of parse_datagram, for tests and tools holding one complete message."""
    return parse_datagram(data)


class StreamFramer:
    """Splits a byte stream (TCP) into messages: Content-Length is mandatory (RFC 3261 18.3). Keep-alive
    CRLFs between messages (RFC 5626 3.5.1) are skipped. After a RemoteProtocolError the stream cannot be
    resynchronised: the caller closes the connection."""

    def __init__(self) -> None:
        self._buf = bytearray()
        self.broken = False

    def feed(self, data: bytes) -> None:
        self._buf += data

    def next_message(self) -> Request | Response | None:
        if self.broken:
            raise RemoteProtocolError("stream already failed")
        while self._buf[:2] == b"\r\n":
            del self._buf[:2]
        window = bytes(self._buf[: MAX_MESSAGE_SIZE + 4])
        i = window.find(b"\r\n\r\n")
        j = window.find(b"\n\n")
        if i < 0 and j < 0:
            if len(self._buf) > MAX_MESSAGE_SIZE:
                self.broken = True
                raise RemoteProtocolError("header section too large", 513)
            return None
        if i >= 0 and (j < 0 or i <= j):
            head, head_len = window[:i], i + 4
        else:
            head, head_len = window[:j], j + 2
        try:
            msg, length = parse_head(head)
            if length is None:
                raise RemoteProtocolError("Content-Length is mandatory on a stream")
        except RemoteProtocolError:
            self.broken = True
            raise
        if len(self._buf) < head_len + length:
            return None
        msg.body = bytes(self._buf[head_len : head_len + length])
        del self._buf[: head_len + length]
        check_mandatory(msg)
        return msg


# ---------------------------------------------------------------------------------------------------------
# header value grammar: parameters, URIs, name-addr, Via


def parse_params(text: str) -> dict[str, str | None]:
    """`;a=1;b;c="x"` -> {'a': '1', 'b': None, 'c': 'x'} (names lowercased)."""
    params: dict[str, str | None] = {}
    for part in _split_unquoted(text, ";"):
        part = part.strip()
        if not part:
            continue
        name, sep, value = part.partition("=")
        name = name.strip().lower()
        if not name:
            raise RemoteProtocolError(f"empty parameter name in {text[:60]!r}")
        v = value.strip()
        if len(v) >= 2 and v[0] == '"' and v[-1] == '"':
            v = v[1:-1]
        params[name] = v if sep else None
    return params


def format_params(params: dict[str, str | None]) -> str:
    return "".join(f";{k}" if v is None else f";{k}={v}" for k, v in params.items())


def _split_unquoted(text: str, sep: str) -> list[str]:
    if '"' not in text:
        return text.split(sep)
    out: list[str] = []
    quoted = False
    start = 0
    for i, ch in enumerate(text):
        if ch == '"':
            quoted = not quoted
        elif ch == sep and not quoted:
            out.append(text[start:i])
            start = i + 1
    out.append(text[start:])
    return out


_HOSTPORT = re.compile(r"^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9._-]+)(?::(\d{1,5}))?$")


def parse_hostport(text: str) -> tuple[str, int | None]:
    m = _HOSTPORT.match(text.strip())
    if m is None:
        raise RemoteProtocolError(f"malformed host {text[:60]!r}")
    port = int(m.group(2)) if m.group(2) else None
    if port is not None and not 0 < port < 65536:
        raise RemoteProtocolError(f"port out of range in {text[:60]!r}")
    return m.group(1), port


@dataclass
class SipUri:
    scheme: str
    user: str | None
    host: str
    port: int | None = None
    params: dict[str, str | None] = field(default_factory=dict)
    headers: str = ""
    password: str | None = None

    @classmethod
    def parse(cls, text: str) -> SipUri:
        scheme, sep, rest = text.strip().partition(":")
        scheme = scheme.lower()
        if not sep or scheme not in ("sip", "sips", "tel"):
            raise RemoteProtocolError(f"unsupported URI {text[:60]!r}", 416)
        if scheme == "tel":
            number, _, params = rest.partition(";")
            return cls("tel", number, "", None, parse_params(params))
        rest, _, headers = rest.partition("?")
        userinfo, at, hostpart = rest.rpartition("@")
        if not at:
            userinfo, hostpart = "", rest
        hostport, _, params = hostpart.partition(";")
        host, port = parse_hostport(hostport)
        user: str | None = None
        password: str | None = None
        if at:
            user, _, pw = userinfo.partition(":")
            password = pw or None
            if not user:
                raise RemoteProtocolError(f"empty user in URI {text[:60]!r}")
        return cls(scheme, user, host, port, parse_params(params), headers, password)

    def __str__(self) -> str:
        if self.scheme == "tel":
            return f"tel:{self.user}{format_params(self.params)}"
        userinfo = ""
        if self.user is not None:
            userinfo = self.user + (f":{self.password}" if self.password else "") + "@"
        port = f":{self.port}" if self.port else ""
        headers = f"?{self.headers}" if self.headers else ""
        return f"{self.scheme}:{userinfo}{self.host}{port}{format_params(self.params)}{headers}"


@dataclass
class NameAddr:
    """`"Display" <sip:uri>;tag=x` or the bare addr-spec form `sip:uri;tag=x` (RFC 3261 20.10)."""

    uri: str
    display: str = ""
    params: dict[str, str | None] = field(default_factory=dict)

    @classmethod
    def parse(cls, text: str) -> NameAddr:
        text = text.strip()
        lt = text.find("<")
        if lt >= 0:
            gt = text.find(">", lt)
            if gt < 0:
                raise RemoteProtocolError(f"unclosed <...> in {text[:60]!r}")
            display = text[:lt].strip()
            if len(display) >= 2 and display[0] == '"' and display[-1] == '"':
                display = display[1:-1].replace('\\"', '"')
            uri = text[lt + 1 : gt].strip()
            params = parse_params(text[gt + 1 :])
        else:
            # addr-spec: the URI's own parameters cannot be told from the header's, so they are header's
            uri, _, rest = text.partition(";")
            display = ""
            params = parse_params(rest)
        if not uri or ":" not in uri or any(c in uri for c in ' \t<>"'):
            raise RemoteProtocolError(f"malformed address {text[:60]!r}")
        return cls(uri, display, params)

    @property
    def tag(self) -> str | None:
        return self.params.get("tag")

    @property
    def sip_uri(self) -> SipUri:
        return SipUri.parse(self.uri)

    def __str__(self) -> str:
        display = f'"{self.display}" ' if self.display else ""
        return f"{display}<{self.uri}>{format_params(self.params)}"


@dataclass
class Via:
    transport: str
    host: str
    port: int | None
    params: dict[str, str | None] = field(default_factory=dict)

    @classmethod
    def parse(cls, text: str) -> Via:
        proto, _, rest = text.strip().partition(" ")
        parts = [p.strip() for p in proto.split("/")]
        if len(parts) != 3 or parts[0].upper() != "SIP" or parts[1] != "2.0" or not parts[2]:
            raise RemoteProtocolError(f"malformed Via {text[:60]!r}")
        sent_by, _, params = rest.strip().partition(";")
        host, port = parse_hostport(sent_by)
        return cls(parts[2].upper(), host, port, parse_params(params))

    @property
    def branch(self) -> str | None:
        return self.params.get("branch")

    def __str__(self) -> str:
        port = f":{self.port}" if self.port else ""
        return f"SIP/2.0/{self.transport} {self.host}{port}{format_params(self.params)}"


def parse_auth(text: str) -> tuple[str, dict[str, str]]:
    """`Digest a="b", c=d` -> ('digest', {'a': 'b', 'c': 'd'})."""
    scheme, _, rest = text.strip().partition(" ")
    params: dict[str, str] = {}
    for part in split_list(rest):
        name, sep, value = part.partition("=")
        if not sep:
            raise RemoteProtocolError(f"malformed auth parameter {part[:60]!r}")
        v = value.strip()
        if len(v) >= 2 and v[0] == '"' and v[-1] == '"':
            v = v[1:-1]
        params[name.strip().lower()] = v
    return scheme.lower(), params


def make_response(request: Request, status: int, reason: str = "", to_tag: str | None = None) -> Response:
    """A response to `request` (RFC 3261 8.2.6.2): Via, From, Call-ID, CSeq copied; To copied, with
    `to_tag` added when it has none (not on 100 Trying)."""
    headers = Headers()
    for name in ("Via", "Record-Route", "From", "To", "Call-ID", "CSeq"):
        for value in request.headers.get_all(name):
            if name == "Record-Route" and (status < 101 or status >= 300):
                continue
            headers.add(name, value)
    if to_tag and status > 100:
        to = NameAddr.parse(request.headers["To"])
        if to.tag is None:
            to.params["tag"] = to_tag
            headers.replace_first("To", str(to))
    return Response(status, reason, headers)
