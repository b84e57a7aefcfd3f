"""Interop with SIPp (Debian sip-tester): scenarios in tests/sip/scenarios/ against the box's SIP service
on 127.0.0.1 and ephemeral ports, with a test-double call control answering."""

from __future__ import annotations

import asyncio
import shutil
import socket
from pathlib import Path

import numpy as np
import pytest

from board.clock import RealClock
from firmware.sip.core import CoreConfig
from firmware.sip.extensions import Directory
from firmware.sip.service import SipService

from .doubles import AnsweringDouble, dominant_frequency, rms_dbfs

pytestmark = [
    pytest.mark.interop,
    pytest.mark.skipif(shutil.which("sipp") is None, reason="SIPp (sip-tester) not installed"),
]
SCENARIOS = Path(__file__).parent / "scenarios"
PASSWORDS = {"1001": "pw1001", "1002": "pw1002"}


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def sipp(
    svc: SipService, scenario: str, *args: str, port: int | None = None, timeout: float = 30.0, calls: int = 1
) -> tuple[int, str]:
    cmd = [
        "sipp",
        f"127.0.0.1:{svc.port}",
        "-sf",
        str(SCENARIOS / scenario),
        "-i",
        "127.0.0.1",
        "-p",
        str(port or free_port()),
        "-m",
        str(calls),
        "-nostdin",
        "-timeout",
        f"{int(timeout)}s",
        "-timeout_error",
        *args,
    ]
    if "-mp" not in args:
        cmd += ["-mp", str(free_port())]
    proc = await asyncio.create_subprocess_exec(
        *cmd, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE
    )
    _, err = await asyncio.wait_for(proc.communicate(), timeout + 10)
    return proc.returncode, err.decode(errors="replace")


def make_service(double: AnsweringDouble | None = None, **core) -> SipService:
    directory = Directory.with_passwords("callbox", PASSWORDS, digest_algorithms=("MD5", "SHA-256"))
    svc = SipService(
        directory, RealClock(), "127.0.0.1", 0, control=double, config=CoreConfig(qualify_interval=0, **core)
    )
    return svc


def run(coro):
    return asyncio.run(asyncio.wait_for(coro, 120))


def test_register_with_digest():
    async def main():
        svc = make_service()
        await svc.start()
        rc, err = await sipp(svc, "register.xml", "-s", "1001", "-au", "1001", "-ap", "pw1001")
        await svc.stop()
        assert rc == 0, err
        assert [b.extension for b in svc.core.registrar.contacts("1001", svc.clock.now())] == ["1001"]

    run(main())


def test_wrong_password_rejected_and_locked_out(caplog):
    async def main():
        svc = make_service(lockout_failures=3)
        await svc.start()
        rc, err = await sipp(svc, "register_wrong.xml", "-s", "1001", "-au", "1001", "-ap", "nope")
        await svc.stop()
        assert rc == 0, err
        assert svc.core.registrar.contacts("1001", svc.clock.now()) == []

    caplog.set_level("INFO")
    run(main())
    assert "auth lockout: 127.0.0.1 locked" in caplog.text


def test_call_audio_dtmf_hold_resume_bye():
    async def main():
        double = AnsweringDouble()
        svc = make_service(double)
        await svc.start()
        svc.start_media_pump(double.media)
        rc, err = await sipp(
            svc, "uac_call.xml", "-s", "5000", "-set", "ext", "1001", "-au", "1001", "-ap", "pw1001"
        )
        await asyncio.sleep(0.2)
        await svc.stop()
        assert rc == 0, err
        return double

    double = run(main())
    kinds = [e[0] for e in double.events]
    assert kinds[0] == "incoming" and double.events[0][1:3] == ("1001", "5000")
    assert double.digits == ["1", "#"]
    assert kinds[-1] == "hangup" and double.events[-1][2] == 16
    # what SIPp played (g711a.pcap, 7 s of speech) reached call control's side of the leg
    [leg] = double.heard
    audio = double.audio(leg)
    loud = np.abs(audio) > 1000
    assert loud.sum() > 8000 * 2, "less than 2 s of the pcap's audio arrived"
    assert rms_dbfs(audio) > -45


def test_cancel_while_ringing():
    async def main():
        double = AnsweringDouble()
        svc = make_service(double)
        await svc.start()
        rc, err = await sipp(
            svc, "uac_cancel.xml", "-s", "5001", "-set", "ext", "1001", "-au", "1001", "-ap", "pw1001"
        )
        await svc.stop()
        assert rc == 0, err
        return double

    double = run(main())
    assert double.events[-1][0] == "hangup" and double.events[-1][2] == 16


def test_box_hangs_up_with_bye():
    async def main():
        double = AnsweringDouble()
        svc = make_service(double)
        await svc.start()
        rc, err = await sipp(
            svc, "uac_box_hangs_up.xml", "-s", "5002", "-set", "ext", "1001", "-au", "1001", "-ap", "pw1001"
        )
        await svc.stop()
        assert rc == 0, err

    run(main())


def test_box_calls_extension_audio_both_ways():
    """SIPp registers as 1002, then answers the call the box places with -rtp_echo: the 1 kHz tone the box
    sends comes back, so audio went both ways; the level and frequency are checked at the box."""

    async def main():
        double = AnsweringDouble(tone_hz=1000.0)
        svc = make_service(double)
        await svc.start()
        svc.start_media_pump(double.media)
        port, media = free_port(), free_port()
        rc, err = await sipp(svc, "register.xml", "-s", "1002", "-au", "1002", "-ap", "pw1002", port=port)
        assert rc == 0, err
        uas = asyncio.ensure_future(sipp(svc, "uas_answer.xml", "-rtp_echo", "-mp", str(media), port=port))
        await asyncio.sleep(0.5)
        ep = svc.line.originate("1002", "02155550123", "Trunk caller", double)
        assert ep is not None
        for _ in range(50):
            if ep.up:
                break
            await asyncio.sleep(0.1)
        assert ep.up
        await asyncio.sleep(2.0)
        ep.hangup()
        rc, err = await uas
        await svc.stop()
        assert rc == 0, err
        return double, ep

    double, ep = run(main())
    audio = double.audio(ep.leg)[-8000:]
    assert abs(dominant_frequency(audio) - 1000.0) < 20
    assert rms_dbfs(audio) > -20  # 8000 peak tone is about -15 dBFS
    assert ep.stats is not None and ep.stats.packets_received > 50 and ep.stats.packets_sent > 50


def test_tcp_register_and_call_with_early_media():
    """Over TCP (RFC 3261 18.3 framing): REGISTER, then a call that gets 183 early media before 200."""

    async def main():
        double = AnsweringDouble()
        svc = make_service(double)
        await svc.start()
        auth = ["-au", "1001", "-ap", "pw1001", "-t", "t1"]
        rc, err = await sipp(svc, "register.xml", "-s", "1001", *auth)
        assert rc == 0, err
        rc, err = await sipp(svc, "bench_call.xml", "-s", "5003", "-set", "ext", "1001", *auth)
        await svc.stop()
        assert rc == 0, err
        return double

    double = run(main())
    assert double.events[0][:3] == ("incoming", "1001", "5003")


def test_blind_transfer_by_refer():
    async def main():
        double = AnsweringDouble()
        svc = make_service(double)
        transfers = []

        def on_transfer(ep, target, replaces):
            transfers.append((ep.number, target, replaces))
            return True

        svc.line.on_transfer = on_transfer
        await svc.start()
        rc, err = await sipp(
            svc,
            "uac_refer.xml",
            "-s",
            "5000",
            "-set",
            "ext",
            "1001",
            "-set",
            "target",
            "1002",
            "-au",
            "1001",
            "-ap",
            "pw1001",
        )
        await svc.stop()
        assert rc == 0, err
        return transfers

    assert run(main()) == [("1001", "1002", None)]


def test_sipp_36_cannot_answer_a_sha256_challenge_so_md5_goes_first():
    """SIPp 3.6 reads only the first WWW-Authenticate and knows MD5/AKAv1-MD5 alone: with RFC 8760's order
    (SHA-256 first) it gives up ("authentication must use MD5"); with MD5 first it registers. Extensions
    used with SIPp keep digest_algorithms [MD5, SHA-256] (or the default MD5)."""

    async def main(order):
        directory = Directory.with_passwords("callbox", PASSWORDS, digest_algorithms=order)
        svc = SipService(directory, RealClock(), "127.0.0.1", 0, config=CoreConfig(qualify_interval=0))
        seen = []
        svc.line.on_registration = lambda ext, contact, registered: seen.append((ext, registered))
        await svc.start()
        rc, err = await sipp(svc, "register.xml", "-s", "1001", "-au", "1001", "-ap", "pw1001")
        await svc.stop()
        return rc, err, seen

    rc, err, seen = run(main(("SHA-256", "MD5")))
    assert rc != 0 and "must use MD5" in err and ("1001", True) not in seen
    rc, err, seen = run(main(("MD5", "SHA-256")))
    assert rc == 0 and ("1001", True) in seen, err
