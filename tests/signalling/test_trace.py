"""Readable decodes of D-channel frames (logs, console, `callbox q931`)."""

from __future__ import annotations

import argparse

from firmware.signalling import cli
from firmware.signalling.q921 import Role
from firmware.signalling.trace import describe_frame, describe_message


def test_describe_frames_and_messages() -> None:
    assert describe_frame(bytes.fromhex("00017f"), Role.USER) == "USR>NET SABME cmd P"
    assert describe_frame(bytes.fromhex("000173"), Role.NETWORK) == "NET>USR UA resp F"
    assert describe_frame(bytes.fromhex("02010103"), Role.USER) == "USR>NET RR resp N(R)=1 F"
    setup = "000100000802000105a104038090a31803a983816c0521803838387003813132"
    assert describe_frame(bytes.fromhex(setup), Role.USER) == (
        "USR>NET I cmd N(S)=0 N(R)=0 | SETUP cr=1 (orig) SendingComplete BC(speech A-law) ChanId(ts1 excl) "
        "CallingNumber('888' ton=2 npi=1 pres=0 scr=0) CalledNumber('12' ton=0 npi=1)"
    )
    assert describe_message(bytes.fromhex("0802800145080282a2")) == "DISCONNECT cr=1 (dest) Cause(34 loc=2)"
    assert describe_message(b"\x09\x00").startswith("not Q.931")
    assert describe_frame(b"\x00", Role.NETWORK).startswith("NET>USR bad frame")
    assert "!unrecognized IE 0x7b" in describe_message(bytes.fromhex("08020001057b0100"))


def test_cli(capsys) -> None:
    parser = argparse.ArgumentParser()
    cli.add_arguments(parser)
    assert cli.run(parser.parse_args(["--from", "user", "00017f", "zz"])) == 2
    out = capsys.readouterr()
    assert out.out == "USR>NET SABME cmd P\n" and "not hex" in out.err
    assert cli.run(parser.parse_args(["--q931", "0802800145080282a2"])) == 0
    assert capsys.readouterr().out == "DISCONNECT cr=1 (dest) Cause(34 loc=2)\n"
