"""Held-out cases written to the handbook by a reviewer, not used to tune the vocabulary.

Each `tests/holdout/NN.case.json` has `NN.expected.json` with labels derived from the handbook
alone (and a `why`). They measure whether the skill generalises beyond the eval corpus.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from escalation.case import load_case
from escalation.engine import run
from escalation.pack import Pack

HOLDOUT = Path(__file__).parent / "holdout"
CASES = sorted(HOLDOUT.glob("*.case.json"))
KNOWN_WEAK = {
    "07-monarch-ios-share-crash-misfiled":
        "a wrong product-area field and a triage note repeating it outweigh the customer's app evidence",
}


def _params() -> list[object]:
    out: list[object] = []
    for path in CASES:
        cid = path.name.removesuffix(".case.json")
        marks = [pytest.mark.xfail(reason=KNOWN_WEAK[cid], strict=True)] if cid in KNOWN_WEAK else []
        out.append(pytest.param(path, id=cid, marks=marks))
    return out


@pytest.mark.parametrize("path", _params())
def test_holdout_case_matches_the_handbook(path: Path, pack: Pack) -> None:
    expected = json.loads(path.with_name(path.name.replace(".case.json", ".expected.json")).read_text())
    packet = run(load_case(path), pack)
    got = {
        "severity": packet.severity.level,
        "product_area": packet.product_area,
        "owner_team": packet.owner.team,
        "triggers": sorted(t.key for t in packet.triggers),
    }
    want = {k: expected[k] if k != "triggers" else sorted(expected[k]) for k in got}
    assert got == want, expected["why"]
    listed = {m.key for m in packet.missing_info}
    assert set(expected["missing_info"]) <= listed
    assert listed <= set(expected["missing_info"]) | set(expected["missing_info_optional"])
    if expected["workaround_exists"] is not None:
        assert packet.workaround.exists is expected["workaround_exists"]
