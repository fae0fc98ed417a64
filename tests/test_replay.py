"""Replay: a pack change shows its effect case by case before release."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from conftest import PACK_DIR, all_case_paths
from escalation.pack import Pack, load_pack
from escalation.replay import extraction_key, replay, to_html


def _copy(tmp_path: Path, name: str) -> Path:
    dst = tmp_path / name
    shutil.copytree(PACK_DIR.resolve(), dst)
    return dst


def _without_vip_uplift(tmp_path: Path) -> Pack:
    dst = _copy(tmp_path, "novip")
    sev = dst / "severity.yaml"
    text = sev.read_text()
    sev.write_text(text[:text.index("  - id: sev2-vip-uplift")] + text[text.index("  - id: sev3-core-workaround"):])
    return load_pack(dst)


def test_same_pack_changes_nothing(pack: Pack) -> None:
    report = replay(all_case_paths(), pack, pack)
    assert report.cases == len(all_case_paths()) and report.changed == []
    assert report.facts_shared


def test_removing_the_vip_uplift_moves_exactly_the_uplifted_cases_down(pack: Pack, tmp_path: Path) -> None:
    new = _without_vip_uplift(tmp_path)
    report = replay(all_case_paths(), pack, new)
    assert report.facts_shared, "a rules-only change must reuse the extracted facts"
    moved = {c.case_id for c in report.changed if c.severity == "down"}
    assert moved, "some case should have relied on the uplift"
    for c in report.changed:
        assert c.old.rule == "sev2-vip-uplift" and c.new.severity == "Sev3"
        assert c.severity == "down" and not c.owner_changed
    # every case that the old pack decided by the uplift rule appears in the report
    from escalation.case import load_case
    from escalation.engine import run
    uplifted = {load_case(p).id for p in all_case_paths() if run(load_case(p), pack).severity.rule == "sev2-vip-uplift"}
    assert moved == uplifted
    html = to_html(report)
    assert all(cid in html for cid in moved) and "Sev2 → Sev3" in html


def test_vocabulary_change_is_not_shared(pack: Pack, tmp_path: Path) -> None:
    dst = _copy(tmp_path, "vocab")
    voc = dst / "vocabulary.yaml"
    voc.write_text(voc.read_text().replace("'\\bbroken\\b'", "'\\bbroken\\b|\\bkaputt\\b'"))
    assert extraction_key(load_pack(dst)) != extraction_key(pack)


@pytest.mark.skipif(len(all_case_paths()) < 2, reason="needs cases")
def test_sla_tightening_is_reported(pack: Pack, tmp_path: Path) -> None:
    dst = _copy(tmp_path, "sla")
    sla = dst / "sla.yaml"
    text = sla.read_text()
    # halve every update cadence of the enterprise tier
    for old, new in (('"2 h"', '"1 h"'), ('"8 h"', '"4 h"')):
        text = text.replace(old, new)
    sla.write_text(text)
    report = replay(all_case_paths(), pack, load_pack(dst))
    assert report.sla_tightened > 0
    assert all(c.old.sla_due and c.new.sla_due and c.new.sla_due < c.old.sla_due
               for c in report.changed if c.sla_tightened)


def test_replay_command_writes_json_and_html(pack: Pack, tmp_path: Path) -> None:
    import json

    from typer.testing import CliRunner

    from escalation.cli import app

    new = _without_vip_uplift(tmp_path)
    out_json, out_html = tmp_path / "r.json", tmp_path / "r.html"
    result = CliRunner().invoke(app, ["replay", *map(str, all_case_paths()), "--from", str(PACK_DIR),
                                      "--to", str(new.root), "--json", str(out_json), "--html", str(out_html)])
    assert result.exit_code == 0, result.output
    data = json.loads(out_json.read_text())
    assert data["severity_down"] == len(data["changed"]) > 0
    assert "<table>" in out_html.read_text()
