"""Interop with baresip (Debian) as an agent's softphone: registers with digest, logs in to queues by
feature code, calls in and is called, audio both ways checked by level and tone frequency at each end
(baresip plays its ausine source; its sndfile module saves what it decoded from us)."""

from __future__ import annotations

import asyncio
import shutil
import socket
import wave
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
    pytest.mark.slow,  # about 20 s of wall time; SIPp covers the same paths in CI
    pytest.mark.skipif(shutil.which("baresip") is None, reason="baresip not installed"),
    pytest.mark.skipif(
        not Path("/usr/lib/baresip/modules/ausine.so").exists(), reason="baresip modules missing"
    ),
]


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def configure(tmp: Path, box_port: int, answer: bool) -> Path:
    conf = tmp / "conf"
    conf.mkdir(exist_ok=True)
    rtp = free_port() // 2 * 2
    (conf / "config").write_text(
        f"sip_listen 127.0.0.1:{free_port()}\n"
        "module_path /usr/lib/baresip/modules\n"
        "module g711.so\nmodule ausine.so\nmodule sndfile.so\n"
        "module_app account.so\nmodule_app menu.so\n"
        "audio_source ausine,400\naudio_player aubridge,none\n"
        "ausrc_srate 48000\nausrc_channels 2\n"
        f"snd_path {tmp}\nrtp_ports {rtp}-{rtp + 20}\n"
    )
    mode = ";answermode=auto" if answer else ""
    (conf / "accounts").write_text(
        f"<sip:1001@127.0.0.1:{box_port};transport=udp>;auth_pass=pw1001;regint=60;audio_codecs=PCMA{mode}\n"
    )
    return conf


async def baresip(conf: Path, seconds: int, *commands: str) -> str:
    args = ["baresip", "-4", "-n", "127.0.0.1", "-f", str(conf), "-t", str(seconds)]
    for c in commands:
        args += ["-e", c]
    proc = await asyncio.create_subprocess_exec(
        *args, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT
    )
    out, _ = await asyncio.wait_for(proc.communicate(), seconds + 15)
    return out.decode(errors="replace")


def decoded_by_baresip(tmp: Path) -> np.ndarray:
    files = sorted(tmp.glob("dump-*-dec.wav"))
    assert files, "baresip saved no decoded audio"
    with wave.open(str(files[-1])) as w:
        assert w.getframerate() == 8000
        return np.frombuffer(w.readframes(w.getnframes()), np.int16)[:: w.getnchannels()]


def service(double: AnsweringDouble) -> SipService:
    # baresip 1.0 (libre) refuses a 401 carrying any SHA-256 challenge: this phone gets MD5 only
    directory = Directory.with_passwords("callbox", {"1001": "pw1001"}, digest_algorithms=("MD5",))
    return SipService(
        directory, RealClock(), "127.0.0.1", 0, control=double, config=CoreConfig(qualify_interval=0)
    )


def test_baresip_feature_code_and_call_in_with_audio_both_ways(tmp_path):
    async def main():
        double = AnsweringDouble(tone_hz=1000.0)
        svc = service(double)
        features = []
        svc.line.on_feature = lambda ext, action, arg: features.append((ext, action, arg))
        await svc.start()
        svc.start_media_pump(double.media)
        conf = configure(tmp_path, svc.port, answer=False)
        out = await baresip(conf, 4, f"/dial sip:*415@127.0.0.1:{svc.port}")
        assert features == [("1001", "queue_login", "5")], out[-2000:]
        out = await baresip(conf, 6, f"/dial sip:5000@127.0.0.1:{svc.port}")
        await svc.stop()
        return double, out

    double, out = asyncio.run(main())
    assert ("incoming", "1001", "5000", None) in double.events, out[-2000:]
    [leg] = [leg for leg in double.heard if len(double.audio(leg)) > 8000]
    heard = double.audio(leg)[-8000:]
    assert abs(dominant_frequency(heard) - 400.0) < 10 and rms_dbfs(heard) > -30
    sent = decoded_by_baresip(tmp_path)[-8000:]
    assert abs(dominant_frequency(sent) - 1000.0) < 10 and rms_dbfs(sent) > -25


def test_baresip_answers_call_from_the_box(tmp_path):
    async def main():
        double = AnsweringDouble(tone_hz=1000.0)
        svc = service(double)
        await svc.start()
        svc.start_media_pump(double.media)
        conf = configure(tmp_path, svc.port, answer=True)
        phone = asyncio.ensure_future(baresip(conf, 8))
        for _ in range(50):
            if svc.core.registrar.contacts("1001", svc.clock.now()):
                break
            await asyncio.sleep(0.1)
        ep = svc.line.originate("1001", "02155550123", "Queue call", double)
        assert ep is not None
        for _ in range(50):
            if ep.up:
                break
            await asyncio.sleep(0.1)
        await asyncio.sleep(3.0)
        heard = double.audio(ep.leg)[-8000:]  # the last second before we hang up
        ep.hangup()
        out = await phone
        await svc.stop()
        return heard, ep, out

    heard, ep, out = asyncio.run(main())
    assert ep.stats is not None and ep.stats.packets_received > 100, out[-2000:]
    assert abs(dominant_frequency(heard) - 400.0) < 10 and rms_dbfs(heard) > -30
    sent = decoded_by_baresip(tmp_path)[-8000:]
    assert abs(dominant_frequency(sent) - 1000.0) < 10


def test_baresip_registers_on_an_extension_that_offers_sha256_first(tmp_path):
    """RFC 8760 2.4 order (SHA-256 then MD5) makes baresip 1.0 fail ("Register: Function not implemented",
    it gives up on the whole 401); the registrar therefore challenges User-Agents named in
    registrar.MD5_ONLY_AGENTS with MD5 alone, whatever the extension's digest_algorithms say."""

    async def main(agents):
        directory = Directory.with_passwords(
            "callbox", {"1001": "pw1001"}, digest_algorithms=("SHA-256", "MD5")
        )
        svc = SipService(directory, RealClock(), "127.0.0.1", 0, config=CoreConfig(qualify_interval=0))
        svc.core.registrar.md5_only_agents = agents
        seen = []
        svc.line.on_registration = lambda ext, contact, registered: seen.append((ext, registered))
        await svc.start()
        out = await baresip(configure(tmp_path, svc.port, answer=False), 3)
        await svc.stop()
        return seen, out

    seen, out = asyncio.run(main(()))  # RFC 8760 order offered to baresip as is
    assert ("1001", True) not in seen and "Function not implemented" in out, out[-2000:]
    seen, out = asyncio.run(main(("baresip",)))  # the box's default policy
    assert ("1001", True) in seen and "200 OK" in out, out[-2000:]


def agent_conf(tmp: Path, box_port: int, ext: str, password: str, tone_hz: int, ctrl_port: int) -> Path:
    """baresip as extension `ext`, auto-answering, playing a `tone_hz` sine, its decoded audio saved,
    commands taken on ctrl_tcp (netstring JSON) so the test can drive it mid-call."""
    conf = tmp / "conf"
    conf.mkdir(parents=True, exist_ok=True)
    rtp = free_port() // 2 * 2
    (conf / "config").write_text(
        f"sip_listen 127.0.0.1:{free_port()}\n"
        "module_path /usr/lib/baresip/modules\n"
        "module g711.so\nmodule ausine.so\nmodule sndfile.so\n"
        "module_app account.so\nmodule_app menu.so\nmodule_app ctrl_tcp.so\n"
        f"ctrl_tcp_listen 127.0.0.1:{ctrl_port}\n"
        f"audio_source ausine,{tone_hz}\naudio_player aubridge,none\n"
        "ausrc_srate 48000\nausrc_channels 2\n"
        f"snd_path {tmp}\nrtp_ports {rtp}-{rtp + 20}\n"
    )
    (conf / "accounts").write_text(
        f"<sip:{ext}@127.0.0.1:{box_port};transport=udp>;auth_pass={password};regint=60;"
        "audio_codecs=PCMA;answermode=auto\n"
    )
    return conf


async def ctrl(port: int, command: str, params: str) -> str:
    """One command over baresip's ctrl_tcp (netstring-framed JSON); returns its response text."""
    import json

    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    body = json.dumps({"command": command, "params": params, "token": "t1"}).encode()
    writer.write(str(len(body)).encode() + b":" + body + b",")
    await writer.drain()
    try:
        data = await asyncio.wait_for(reader.read(4096), 3.0)
    except TimeoutError:
        data = b""
    writer.close()
    return data.decode(errors="replace")


def test_baresip_agent_transfers_a_call_blind_to_another_extension(tmp_path):
    """The box calls agent 1001 (baresip, 600 Hz); the agent's /transfer sends REFER to 1002 (a second
    baresip, 400 Hz); call control (a double here: the real CallManager.transfer is tested in test_core)
    rings 1002 and releases the agent; the caller then hears 1002's 400 Hz and 1002 decodes the caller's
    1000 Hz."""

    async def main():
        double = AnsweringDouble(tone_hz=1000.0)
        directory = Directory.with_passwords("callbox", {"1001": "pw1001", "1002": "pw1002"})
        svc = SipService(
            directory, RealClock(), "127.0.0.1", 0, control=double, config=CoreConfig(qualify_interval=0)
        )
        transfers = []

        def on_transfer(ep, target, replaces):
            transfers.append((ep.number, target, replaces))
            new = svc.line.originate(target, "02155550123", "Caller", double)
            ep.hangup()
            return new is not None

        svc.line.on_transfer = on_transfer
        await svc.start()
        svc.start_media_pump(double.media)
        c1, c2 = free_port(), free_port()
        agent = asyncio.ensure_future(
            baresip(agent_conf(tmp_path / "a", svc.port, "1001", "pw1001", 600, c1), 14)
        )
        target = asyncio.ensure_future(
            baresip(agent_conf(tmp_path / "b", svc.port, "1002", "pw1002", 400, c2), 14)
        )
        for _ in range(50):
            if all(svc.core.registrar.contacts(e, svc.clock.now()) for e in ("1001", "1002")):
                break
            await asyncio.sleep(0.1)
        ep = svc.line.originate("1001", "02155550123", "Queue call", double)
        assert ep is not None
        for _ in range(50):
            if ep.up:
                break
            await asyncio.sleep(0.1)
        await asyncio.sleep(2.0)
        before = double.audio(ep.leg)[-8000:].copy()
        reply = await ctrl(c1, "transfer", f"sip:1002@127.0.0.1:{svc.port}")
        await asyncio.sleep(4.0)
        legs = [leg for leg in double.answered_legs if leg != ep.leg]
        after = double.audio(legs[0])[-8000:].copy() if legs else np.zeros(0, np.int16)
        for e in list(svc.line.endpoints.values()):
            e.hangup()
        out = await agent
        await target
        await svc.stop()
        return transfers, before, after, reply, out, ep

    transfers, before, after, reply, out, ep = asyncio.run(main())
    assert abs(dominant_frequency(before) - 600.0) < 10 and rms_dbfs(before) > -30, out[-2000:]
    assert transfers == [("1001", "1002", None)], (reply, out[-3000:])
    assert ep.state == "down"  # the agent left
    assert len(after) == 8000 and abs(dominant_frequency(after) - 400.0) < 10 and rms_dbfs(after) > -30
    heard_by_target = decoded_by_baresip(tmp_path / "b")[-8000:]
    assert abs(dominant_frequency(heard_by_target) - 1000.0) < 10 and rms_dbfs(heard_by_target) > -25
