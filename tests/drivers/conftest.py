"""Worlds for the driver tests: the simulated board (C model + C drivers through cffi) with far ends on its
real line sockets, stepped in virtual time."""

from __future__ import annotations

import shutil
import tempfile

import pytest

from board.description import simple_board


@pytest.fixture
def rundir():
    # Unix socket paths are limited to 108 octets: keep the run directory short.
    path = tempfile.mkdtemp(prefix="cbx")
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def make_world(rundir):
    from tools.linesim.world import World

    worlds = []

    def make(spans=1, ports=0, timing="line", framing="ccs", connect=True, tick_frames=80):
        desc = simple_board(spans, ports, timing=timing)
        if framing != "ccs":
            from dataclasses import replace

            cards = tuple(
                replace(c, spans=tuple(replace(s, framing=framing) for s in c.spans)) for c in desc.cards
            )
            desc = replace(desc, cards=cards)
        w = World(desc, rundir, connect=connect, tick_frames=tick_frames)
        worlds.append(w)
        return w

    yield make
    for w in worlds:
        w.close()
