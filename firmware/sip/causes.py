"""SIP status <-> Q.931 cause values (RFC 3398 sections 7.2.4.1 and 8.2.6.1), so a trunk caller hears the
right thing when an extension is busy, absent or refuses, and a phone sees the right status when a trunk
call fails."""

from __future__ import annotations

# RFC 3398 8.2.6.1: SIP response to an INVITE we sent -> cause to signal on the trunk
SIP_TO_Q931: dict[int, int] = {
    400: 41,  # Temporary failure
    401: 21,  # Call rejected
    402: 21,
    403: 21,
    404: 1,  # Unallocated number
    405: 63,  # Service or option unavailable
    406: 79,  # Service/option not implemented
    407: 21,
    408: 102,  # Recovery on timer expiry
    410: 22,  # Number changed
    413: 127,  # Interworking
    414: 127,
    415: 79,
    416: 127,
    420: 127,
    421: 127,
    423: 127,
    480: 18,  # No user responding
    481: 41,
    482: 25,  # Exchange routing error
    483: 25,
    484: 28,  # Invalid number format
    485: 1,
    486: 17,  # User busy
    487: 16,  # we cancelled it ourselves: normal clearing
    488: 65,  # Bearer capability not implemented
    500: 41,
    501: 79,
    502: 38,  # Network out of order
    503: 41,
    504: 102,
    505: 127,
    513: 127,
    600: 17,
    603: 21,
    604: 1,
    606: 58,  # Bearer capability not presently available
}

# RFC 3398 7.2.4.1: cause from the trunk (or call control) -> SIP response to an INVITE we received
Q931_TO_SIP: dict[int, int] = {
    1: 404,
    2: 404,
    3: 404,
    16: 480,  # cleared before answer: nobody took it
    17: 486,
    18: 408,
    19: 480,
    20: 480,
    21: 603,
    22: 410,
    23: 410,
    26: 404,
    27: 502,
    28: 484,
    29: 501,
    31: 480,
    34: 503,
    38: 503,
    41: 503,
    42: 503,
    47: 503,
    52: 403,  # outgoing calls barred (the extension's permission class); not in RFC 3398's table
    53: 403,
    54: 403,
    55: 403,
    57: 403,
    58: 503,
    65: 488,
    69: 501,
    70: 488,
    79: 501,
    87: 403,
    88: 503,
    102: 504,
    111: 500,
    127: 500,
}

NORMAL_CLEARING = 16


def sip_to_cause(status: int) -> int:
    if status in SIP_TO_Q931:
        return SIP_TO_Q931[status]
    # RFC 3398: unlisted codes map as their class's x00 does
    return SIP_TO_Q931.get(status // 100 * 100, 127)


def cause_to_sip(cause: int) -> int:
    return Q931_TO_SIP.get(cause, 500)
