"""In-band feature codes from trunk parties: an external number reached by follow-me presses `#1`, an
extension and `#` on its telephone (DTMF through the trunk's B-channel), and the caller is handed over."""

from __future__ import annotations

import pytest

from firmware.calls.loopback import PhoneBehaviour


def _external_party_on_the_line(make_bed):  # noqa: ANN202
    bed = make_bed()
    bed.phones.add_phone("1010", PhoneBehaviour(answer_after=None))  # no answer: follow-me after 20 s
    bed.phones.add_phone("1002", PhoneBehaviour(answer_after=1.0))
    bed.pstn.add_phone("13812345678", PhoneBehaviour(answer_after=2.0))
    ext_call = bed.phones.call_in(bed.mgr, "1001", "1010")
    bed.run(24.0)
    call = bed.call_of(ext_call)
    assert call.state == "up" and call.b is not None and call.b.kind == "trunk"
    return bed, call, call.b


def test_trunk_party_blind_transfers_with_hash_1(make_bed) -> None:
    bed, call, external = _external_party_on_the_line(make_bed)
    external.press("#11002#")  # in-band DTMF on the trunk leg, as the phone at the far end sends it
    bed.run(2.0)  # digits detected in-band, the transfer rings 1002
    assert external.state == "down"  # the external party left
    bed.run(2.0)
    assert call.b is not None and call.b.number == "1002" and call.state == "up"
    assert call.cdr.lastapp == "Transfer" and call.cdr.lastdata == "1002"
    assert any(
        "pressed a blind transfer to 1002" in what for _t, uid, what in bed.mgr.log if uid == call.uniqueid
    )


@pytest.mark.slow
def test_trunk_party_transfer_by_timeout_and_stray_keys_do_nothing(make_bed) -> None:
    bed, call, external = _external_party_on_the_line(make_bed)
    external.press("5*9")  # keys that are no feature code: the call goes on
    bed.run(2.0)
    assert call.b is external and external.state == "up"
    external.press("#11002")  # no `#` at the end: 3 s without a key completes the number
    bed.run(2.0)
    assert call.b is external
    bed.run(4.0)
    assert external.state == "down" and call.b is not None and call.b.number == "1002"


def test_trunk_party_transfer_to_a_forbidden_number_is_refused(make_bed) -> None:
    bed, call, external = _external_party_on_the_line(make_bed)
    external.press("#100441234567#")  # international: not within the external party's permission
    bed.run(3.0)
    assert call.b is external and external.state == "up" and call.state == "up"
    assert any("refused" in what for _t, uid, what in bed.mgr.log if uid == call.uniqueid)
