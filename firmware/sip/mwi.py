"""Message-waiting indication to the extensions' SIP phones (RFC 3842 `message-summary`).

    mwi = MwiNotifier(core, now=clock.now, flush=server.flush)
    mwi.update("1001", new=2, old=5)     # NOTIFY every registered phone of 1001 (lamp on)
    line.on_registration = mwi.on_registration(line.on_registration)   # a phone registering hears it too

The NOTIFY is sent unsolicited (out of any dialog, `Event: message-summary`, `Subscription-State:
terminated`), as most PBXs do for phones configured with a mailbox; phones that SUBSCRIBE are not needed.
The body (RFC 3842 section 5.2):

    Messages-Waiting: yes
    Message-Account: sip:1001@box
    Voice-Message: 2/5

The notifier is sans-I/O like the core: it puts requests into the core's output (`core.out`, sent by the
server's flush) through the core's transaction layer, so retransmission and timeouts are the core's. It
remembers the last count per mailbox so a phone registering later gets it.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable

from .message import Headers, Request
from .transaction import BRANCH_MAGIC, LocalProtocolError


def message_summary(new: int, old: int, account: str = "") -> bytes:
    """The `application/simple-message-summary` body (RFC 3842 5.2)."""
    if new < 0 or old < 0:
        raise ValueError(f"message counts cannot be negative ({new}/{old})")
    lines = [f"Messages-Waiting: {'yes' if new else 'no'}"]
    if account:
        lines.append(f"Message-Account: {account}")
    lines.append(f"Voice-Message: {new}/{old}")
    return ("\r\n".join(lines) + "\r\n").encode("ascii")


def parse_message_summary(body: bytes) -> dict[str, str]:
    """Header-like lines of a message-summary body, by lower-case name (for tests and phones)."""
    out: dict[str, str] = {}
    for line in body.decode("ascii", "replace").splitlines():
        name, sep, value = line.partition(":")
        if sep:
            out[name.strip().lower()] = value.strip()
    return out


class MwiNotifier:
    def __init__(
        self, core: object, now: Callable[[], float], flush: Callable[[], None] | None = None
    ) -> None:
        self.core = core  # firmware.sip.core.SipCore
        self.now = now
        self.flush = flush
        self.counts: dict[str, tuple[int, int]] = {}  # mailbox -> (new, old), last told
        self.sent = 0

    def update(self, mailbox: str, new: int, old: int) -> int:
        """A mailbox changed: NOTIFY each registered phone of that extension; returns how many."""
        self.counts[mailbox] = (new, old)
        core = self.core
        sent = 0
        for binding in core.registrar.contacts(mailbox, self.now()):  # type: ignore[attr-defined]
            sent += self._notify(mailbox, binding.contact, binding.peer, new, old)
        if sent and self.flush is not None:
            self.flush()
        return sent

    def on_registration(
        self, chained: Callable[[str, str, bool], None] | None = None
    ) -> Callable[[str, str, bool], None]:
        """A SipLine.on_registration hook: a phone that registers is told its mailbox's state; `chained`
        (the hook that was there) still runs."""

        def hook(extension: str, contact: str, registered: bool) -> None:
            if chained is not None:
                chained(extension, contact, registered)
            if registered and extension in self.counts:
                new, old = self.counts[extension]
                for binding in self.core.registrar.contacts(extension, self.now()):  # type: ignore[attr-defined]
                    if binding.contact == contact:
                        self._notify(extension, contact, binding.peer, new, old)
                if self.flush is not None:
                    self.flush()

        return hook

    def _notify(self, mailbox: str, contact: str, peer: object, new: int, old: int) -> int:
        core = self.core
        me = f"{core.config.host}:{core.config.port}"  # type: ignore[attr-defined]
        account = f"sip:{mailbox}@{me}"
        h = Headers()
        h.add("Via", f"SIP/2.0/{peer.transport} {me};branch={BRANCH_MAGIC}{secrets.token_hex(8)};rport")  # type: ignore[attr-defined]
        h.add("Max-Forwards", "70")
        h.add("From", f"<{account}>;tag={secrets.token_hex(6)}")
        h.add("To", f"<sip:{mailbox}@{me}>")
        h.add("Call-ID", f"mwi-{secrets.token_hex(8)}")
        h.add("CSeq", "1 NOTIFY")
        h.add("Contact", f"<sip:callbox@{me}>")
        h.add("Event", "message-summary")
        h.add("Subscription-State", "terminated;reason=noresource")
        h.add("Content-Type", "application/simple-message-summary")
        request = Request("NOTIFY", contact, h, message_summary(new, old, account))
        try:
            _key, events = core.transactions.send_request(request, peer, self.now())  # type: ignore[attr-defined]
        except LocalProtocolError:
            return 0
        core.out.extend(events)  # type: ignore[attr-defined]
        self.sent += 1
        return 1


__all__ = ["MwiNotifier", "message_summary", "parse_message_summary"]
