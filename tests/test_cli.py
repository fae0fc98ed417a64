"""The `escalate` command line on good input: run, demo, policy check, check-update, --strict."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

import escalation.engine
from escalation.cli import BUNDLED_PACK, DEMO_CASES, app
from escalation.packet import Check, Packet

ESCALATE = Path(sys.executable).with_name("escalate")
DEMO = sorted(DEMO_CASES.glob("*.case.json"))
DEMO_IDS = [json.loads(p.read_text(encoding="utf-8"))["id"] for p in DEMO]


def escalate(*args: str | Path, env: dict[str, str] | None = None) -> Result:
    return CliRunner(env=env).invoke(app, [str(a) for a in args])


def test_demo_cases_are_bundled() -> None:
    assert len(DEMO) >= 5
    for path, case_id in zip(DEMO, DEMO_IDS, strict=True):
        assert path.name == f"{case_id}.case.json"


@pytest.mark.parametrize("path", DEMO, ids=DEMO_IDS)
def test_run_prints_a_valid_packet(path: Path) -> None:
    result = escalate("run", path, "--format", "json")
    assert result.exit_code == 0, result.stderr
    packet = Packet.model_validate_json(result.stdout)
    case = json.loads(path.read_text(encoding="utf-8"))
    assert packet.case_id == case["id"]
    assert packet.ticket_id == case["ticket"]["id"]
    assert packet.pack.name == "lumen-support-escalation"
    assert json.loads(result.stdout)["schema"] == "escalation-packet/1"


def test_run_text_format() -> None:
    result = escalate("run", DEMO[0])
    assert result.exit_code == 0, result.stderr
    assert DEMO_IDS[0] in result.stdout


def test_run_twice_is_byte_identical_across_processes() -> None:
    """Two separate processes with different hash seeds: no set order or clock leaks into a packet."""
    outs = []
    for seed in ("1", "2"):
        env = {**os.environ, "PYTHONHASHSEED": seed}
        proc = subprocess.run([str(ESCALATE), "run", str(DEMO_CASES), "--format", "jsonl"],
                              capture_output=True, env=env, timeout=300)
        assert proc.returncode == 0, proc.stderr.decode()
        outs.append(proc.stdout)
    assert outs[0] == outs[1]
    single = [escalate("run", DEMO[1], "--format", "json").stdout for _ in range(2)]
    assert single[0] == single[1]


def test_jsonl_over_the_demo_folder_is_one_packet_per_line() -> None:
    result = escalate("run", DEMO_CASES, "--format", "jsonl")
    assert result.exit_code == 0, result.stderr
    lines = result.stdout.splitlines()
    assert len(lines) == len(DEMO)
    assert [Packet.model_validate_json(ln).case_id for ln in lines] == DEMO_IDS
    assert result.stderr.strip().splitlines()[-1].startswith(f"{len(DEMO)} packets, ")


def test_json_of_one_case_equals_its_jsonl_line() -> None:
    one = escalate("run", DEMO[0], "--format", "json").stdout
    line = escalate("run", DEMO_CASES, "--format", "jsonl").stdout.splitlines()[0]
    assert json.loads(one) == json.loads(line)


def test_output_file(tmp_path: Path) -> None:
    out = tmp_path / "p.json"
    result = escalate("run", DEMO[0], "--format", "json", "--output", out)
    assert result.exit_code == 0, result.stderr
    assert result.stdout == ""
    Packet.model_validate_json(out.read_text(encoding="utf-8"))


def test_demo_mentions_every_case() -> None:
    result = escalate("demo", env={"COLUMNS": "220"})
    assert result.exit_code == 0, result.stderr
    assert f"{len(DEMO)} demo cases" in result.stdout
    for case_id in DEMO_IDS:
        assert case_id in result.stdout


def test_demo_full_prints_every_packet() -> None:
    result = escalate("demo", "--full")
    assert result.exit_code == 0, result.stderr
    assert result.stdout.count("escalation packet") == len(DEMO)
    for case_id in DEMO_IDS:  # the packet panels wrap, but never cut, the case id
        assert case_id in result.stdout


def test_policy_check_bundled_pack() -> None:
    for pack in ("examples/lumen", BUNDLED_PACK):
        result = escalate("policy", "check", Path(__file__).parents[1] / pack)
        assert result.exit_code == 0, result.stderr
        assert result.stdout.startswith("ok lumen-support-escalation")


def test_policy_schema(tmp_path: Path) -> None:
    result = escalate("policy", "schema", tmp_path)
    assert result.exit_code == 0, result.stderr
    schema = json.loads((tmp_path / "severity.schema.json").read_text())
    assert "rules" in schema["properties"]


# ------------------------------------------------------------------ check-update


def test_check_update_clean_reply(tmp_path: Path) -> None:
    draft = tmp_path / "reply.txt"
    draft.write_text("Hi Teodor,\n\nWe are investigating and will share what we learn.\n\n"
                     "Thank you for your patience while we work on this.\n", encoding="utf-8")
    result = escalate("check-update", draft)
    assert result.exit_code == 0, result.stdout + result.stderr
    assert "clean" in result.stdout


def test_check_update_internal_hostname(tmp_path: Path) -> None:
    draft = tmp_path / "reply.txt"
    draft.write_text("Hi Teodor,\n\nWe checked the logs on sso-edge-2.int.lumen.example and are investigating.\n",
                     encoding="utf-8")
    result = escalate("check-update", draft)
    assert result.exit_code == 1
    assert "sso-edge-2.int.lumen.example" in result.stdout
    assert "hostname" in result.stdout
    assert f"{draft}:3:" in result.stdout

    as_json = escalate("check-update", draft, "--json")
    assert as_json.exit_code == 1
    findings = json.loads(as_json.stdout)
    assert {"rule": "hostname", "words": "sso-edge-2.int.lumen.example"}.items() <= findings[0].items()


def test_check_update_with_case_catches_internal_names(tmp_path: Path) -> None:
    draft = tmp_path / "reply.txt"
    draft.write_text("Hi Benedikt,\n\nCaspian Wrenfield has reproduced the issue.\n", encoding="utf-8")
    result = escalate("check-update", draft, "--case", DEMO_CASES / "04-wayne-pivot-drilldown-no-owner.case.json")
    assert result.exit_code == 1
    assert "Caspian Wrenfield" in result.stdout


def test_check_update_stdin() -> None:
    result = CliRunner().invoke(app, ["check-update", "-"], input="Our engineering team is working on a fix.\n")
    assert result.exit_code == 0, result.stdout + result.stderr


def test_check_update_empty_draft(tmp_path: Path) -> None:
    draft = tmp_path / "reply.txt"
    draft.write_text("  \n\n", encoding="utf-8")
    result = escalate("check-update", draft)
    assert result.exit_code == 2
    assert result.stderr.strip() == f"error: {draft}: the draft is empty"


# ------------------------------------------------------------------ --strict


def test_strict_passes_when_every_check_passes() -> None:
    result = escalate("run", DEMO[0], "--format", "json", "--strict")
    assert Packet.model_validate_json(result.stdout).needs_review is False
    assert result.exit_code == 0, result.stderr


def test_strict_exits_1_when_a_packet_needs_review(monkeypatch: pytest.MonkeyPatch) -> None:
    real = escalation.engine.run_checks

    def failing(*args: object, **kwargs: object) -> list[Check]:
        return [*real(*args, **kwargs), Check(key="forced_failure", passed=False, details=["forced by the test"])]

    monkeypatch.setattr(escalation.engine, "run_checks", failing)
    lenient = escalate("run", DEMO[0], "--format", "json")
    assert lenient.exit_code == 0, lenient.stderr
    assert Packet.model_validate_json(lenient.stdout).needs_review is True

    strict = escalate("run", DEMO[0], "--format", "json", "--strict")
    assert strict.exit_code == 1
    Packet.model_validate_json(strict.stdout)  # the packet is still written

    folder = escalate("run", DEMO_CASES, "--format", "jsonl", "--strict")
    assert folder.exit_code == 1
    assert f"{len(DEMO)} packets, {len(DEMO)} need review, 0 bad inputs" in folder.stderr
