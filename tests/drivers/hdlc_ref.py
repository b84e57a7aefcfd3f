"""A reference HDLC receiver written from ISO/IEC 13239 alone, to check the bits the framers put on TS16."""

from __future__ import annotations

import numpy as np


def hdlc_decode(ts16: np.ndarray) -> list[bytes]:
    """Reference HDLC receiver (ISO/IEC 13239) over TS16 octets in line order, written from the standard:
    bits MSB first per octet, flags 0x7E, zero deletion after five ones, octets LSB first, FCS-16 check."""
    bits = np.unpackbits(ts16.astype(np.uint8)).tolist()
    frames, cur, ones, in_frame = [], [], 0, False
    for b in bits:
        if b:
            ones += 1
            cur.append(1)
            continue
        if ones == 5:  # stuffed zero
            ones = 0
            continue
        if ones == 6:  # flag: the 0111111 before this 0 ends the previous frame
            body = cur[:-7]  # drop the flag's 0111111
            # ISO/IEC 13239: at least 32 bits between flags, whole octets
            if in_frame and len(body) % 8 == 0 and len(body) >= 32:
                octets = np.packbits(np.array(body, np.uint8), bitorder="little").tobytes()
                if _fcs16(octets) == 0xF0B8:
                    frames.append(octets[:-2])
            cur, ones, in_frame = [], 0, True
            continue
        if ones >= 7:  # abort
            in_frame = False
        ones = 0
        cur.append(0)
    return frames


def _fcs16(data: bytes) -> int:
    fcs = 0xFFFF
    for byte in data:
        fcs ^= byte
        for _ in range(8):
            fcs = (fcs >> 1) ^ 0x8408 if fcs & 1 else fcs >> 1
    return fcs
