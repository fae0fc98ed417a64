"""`escalate init`: a new pack from the starter, valid and passing its tests from the start."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from escalation.cli import app
from escalation.errors import InputError
from escalation.policy_tests import run_pack_tests
from escalation.scaffold import scaffold, starter_dir


def test_scaffolded_pack_is_the_companys_and_passes_its_tests(tmp_path: Path) -> None:
    pack = scaffold(tmp_path / "acme", name="acme-support", owner="Head of Support, Acme")
    assert pack.name == "acme-support" and pack.skill.owner == "Head of Support, Acme"
    assert pack.version.endswith("-draft")
    assert run_pack_tests(pack).failed == 0
    assert not (tmp_path / "acme" / "releases.jsonl").exists()
    assert (starter_dir() / "skill.yaml").read_text() != (tmp_path / "acme" / "skill.yaml").read_text()


@pytest.mark.parametrize(("name", "owner"), [("Bad Name", "x"), ("ok-name", "  ")])
def test_bad_names_are_refused(tmp_path: Path, name: str, owner: str) -> None:
    with pytest.raises(InputError):
        scaffold(tmp_path / "p", name=name, owner=owner)


def test_init_refuses_a_non_empty_folder_and_reports_next_steps(tmp_path: Path) -> None:
    runner = CliRunner()
    ok = runner.invoke(app, ["init", str(tmp_path / "new"), "--name", "acme-support", "--owner", "Ops Lead"])
    assert ok.exit_code == 0, ok.output
    assert "escalate policy release" in ok.output
    again = runner.invoke(app, ["init", str(tmp_path / "new"), "--name", "acme-support", "--owner", "Ops Lead"])
    assert again.exit_code == 2
