"""Bad input, end to end through the `escalate` command line.

Every bad case, path or pack must give exit code 2 and one line on stderr that says what
is wrong and where (the file, and a JSON path or a line), with no traceback unless
`--debug`. Most tests run the Typer app in-process; a few run the installed `escalate`
script to prove the same holds for a real process.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner, Result

from escalation.case import MAX_ATTACHMENT_BYTES, MAX_CASE_BYTES
from escalation.cli import BUNDLED_PACK, DEMO_CASES, app
from escalation.packet import Packet

ESCALATE = Path(sys.executable).with_name("escalate")
BASE_CASE = DEMO_CASES / "02-massive-dynamic-saml-bookmarks-vip.case.json"
AREAS = ("sync", "exports", "dashboards", "api", "auth", "notifications", "mobile", "billing")


def escalate(*args: str | Path) -> Result:
    return CliRunner().invoke(app, [str(a) for a in args])


def one_error_line(result: Result) -> str:
    """Exit 2, nothing on stdout, exactly one non-blank line on stderr, and no traceback."""
    assert result.exit_code == 2, (result.exit_code, result.stdout, result.stderr)
    assert "Traceback" not in result.stderr
    lines = [ln for ln in result.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ")
    assert result.stdout == ""
    return lines[0]


def base_case() -> dict[str, Any]:
    return json.loads(BASE_CASE.read_text(encoding="utf-8"))


def write_case(tmp_path: Path, data: dict[str, Any], name: str = "bad.case.json") -> Path:
    path = tmp_path / name
    path.write_text(json.dumps(data, indent=1), encoding="utf-8")
    return path


def line_of(text: str, needle: str) -> int:
    return next(i for i, ln in enumerate(text.splitlines(), start=1) if needle in ln)


# ------------------------------------------------------------------ case files


def test_the_base_case_is_good() -> None:
    result = escalate("run", BASE_CASE, "--format", "json")
    assert result.exit_code == 0, result.stderr
    Packet.model_validate_json(result.stdout)


def test_truncated_json_names_file_line_and_column(tmp_path: Path) -> None:
    text = BASE_CASE.read_text(encoding="utf-8")
    path = tmp_path / "truncated.case.json"
    path.write_text(text[: len(text) // 2], encoding="utf-8")
    line = one_error_line(escalate("run", path))
    m = re.search(re.escape(str(path)) + r":(\d+):(\d+): invalid JSON", line)
    assert m, line
    assert int(m.group(1)) >= text[: len(text) // 2].count("\n")  # at (or just past) the cut


def test_invalid_json_names_the_line(tmp_path: Path) -> None:
    text = BASE_CASE.read_text(encoding="utf-8").replace('"status": "open",', '"status": "open",,', 1)
    path = tmp_path / "invalid.case.json"
    path.write_text(text, encoding="utf-8")
    line = one_error_line(escalate("run", path))
    assert f"{path}:{line_of(text, ',,')}:" in line
    assert "invalid JSON" in line


def test_not_a_json_object(tmp_path: Path) -> None:
    path = tmp_path / "list.case.json"
    path.write_text("[1, 2]", encoding="utf-8")
    line = one_error_line(escalate("run", path))
    assert str(path) in line and "expected a JSON object, got list" in line


def test_missing_required_field_names_the_json_path(tmp_path: Path) -> None:
    data = base_case()
    del data["ticket"]["events"][2]["at"]
    path = write_case(tmp_path, data)
    line = one_error_line(escalate("run", path))
    assert f"{path}: $.ticket.events[2].at: Field required" in line


def test_unknown_field_is_an_error_not_lost_data(tmp_path: Path) -> None:
    data = base_case()
    data["ticket"]["prority"] = "high"
    path = write_case(tmp_path, data)
    line = one_error_line(escalate("run", path))
    assert "$.ticket.prority" in line


def test_timestamp_without_time_zone(tmp_path: Path) -> None:
    data = base_case()
    data["ticket"]["events"][1]["at"] = "2026-11-03T14:40:00"
    path = write_case(tmp_path, data)
    line = one_error_line(escalate("run", path))
    assert f"{path}: $.ticket.events[1].at: timestamp has no time zone" in line


def test_non_utf8_byte_names_the_offset(tmp_path: Path) -> None:
    raw = BASE_CASE.read_bytes()
    at = raw.index(b"Hi support")
    path = tmp_path / "latin1.case.json"
    path.write_bytes(raw[:at] + b"\xe9" + raw[at:])
    line = one_error_line(escalate("run", path))
    assert f"{path}: not UTF-8 at byte {at}" in line


def test_empty_events_list(tmp_path: Path) -> None:
    data = base_case()
    data["ticket"]["events"] = []
    path = write_case(tmp_path, data)
    line = one_error_line(escalate("run", path))
    assert f"{path}: $.ticket.events: the ticket has no events" in line


def test_duplicate_event_id(tmp_path: Path) -> None:
    data = base_case()
    data["ticket"]["events"][3]["id"] = data["ticket"]["events"][0]["id"]
    path = write_case(tmp_path, data)
    line = one_error_line(escalate("run", path))
    assert "$.ticket.events[3].id: duplicate event id" in line


def test_unknown_product_area_lists_the_known_ones(tmp_path: Path) -> None:
    data = base_case()
    data["ticket"]["product_area"] = "sso"
    path = write_case(tmp_path, data)
    line = one_error_line(escalate("run", path))
    assert f"{path}: $.ticket.product_area: unknown product area 'sso'" in line
    for key in AREAS:
        assert key in line


def test_null_product_area_is_fine(tmp_path: Path) -> None:
    data = base_case()
    data["ticket"]["product_area"] = None
    result = escalate("run", write_case(tmp_path, data), "--format", "json")
    assert result.exit_code == 0, result.stderr


def test_huge_attachment_names_it_and_asks_for_an_excerpt(tmp_path: Path) -> None:
    data = base_case()
    data["attachments"].append({"id": "a2", "kind": "log", "name": "full-okta.log",
                                "text": ("x" * 99 + "\n") * 500_000})  # 50 MB
    path = write_case(tmp_path, data)
    assert MAX_ATTACHMENT_BYTES < path.stat().st_size < MAX_CASE_BYTES  # only the per-attachment limit applies
    line = one_error_line(escalate("run", path))
    assert f"{path}: $.attachments[1].text:" in line
    assert "'full-okta.log'" in line and "20 MiB" in line and "excerpt" in line


def test_multibyte_attachment_is_measured_in_bytes(tmp_path: Path) -> None:
    data = base_case()
    # 7.5 M characters (under the limit), 22.5 MB of UTF-8 (over it)
    data["attachments"].append({"id": "a2", "kind": "text", "name": "notes.txt", "text": "€" * 7_500_000})
    path = tmp_path / "bad.case.json"
    path.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
    line = one_error_line(escalate("run", path))
    assert "$.attachments[1].text:" in line


def test_whole_file_limit_is_kept(tmp_path: Path) -> None:
    path = tmp_path / "huge.case.json"
    with path.open("wb") as f:
        f.truncate(MAX_CASE_BYTES + 1)  # sparse: the size is checked before reading
    line = one_error_line(escalate("run", path))
    assert str(path) in line and f"{MAX_CASE_BYTES // 2**20} MiB limit" in line


def test_gold_label_path_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "001-x.gold.json"
    path.write_text("{}", encoding="utf-8")
    line = one_error_line(escalate("run", path))
    assert f"{path}: a gold label file, not a case" in line


def test_folder_without_cases(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("nothing here", encoding="utf-8")
    line = one_error_line(escalate("run", tmp_path))
    assert f"{tmp_path}: no *.case.json files" in line


def test_folder_never_reads_gold_files(tmp_path: Path) -> None:
    (tmp_path / "001-x.gold.json").write_text("{}", encoding="utf-8")
    line = one_error_line(escalate("run", tmp_path))
    assert "no *.case.json files" in line


def test_nonexistent_path(tmp_path: Path) -> None:
    path = tmp_path / "nope.case.json"
    line = one_error_line(escalate("run", path))
    assert f"{path}: no such file or folder" in line


def test_check_update_with_a_bad_case(tmp_path: Path) -> None:
    draft = tmp_path / "reply.txt"
    draft.write_text("Thank you for your patience while we work on this.\n", encoding="utf-8")
    line = one_error_line(escalate("check-update", draft, "--case", tmp_path / "missing.case.json"))
    assert "missing.case.json: cannot read" in line


def test_debug_shows_the_traceback(tmp_path: Path) -> None:
    data = base_case()
    data["ticket"]["events"] = []
    result = escalate("run", write_case(tmp_path, data), "--debug")
    assert result.exit_code == 2
    assert "Traceback" in result.stderr and "InputError" in result.stderr


def test_real_process_bad_case(tmp_path: Path) -> None:
    data = base_case()
    del data["ticket"]["events"][2]["at"]
    path = write_case(tmp_path, data)
    proc = subprocess.run([str(ESCALATE), "run", str(path)], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert proc.stdout == ""
    assert proc.stderr.strip().splitlines() == [f"error: {path}: $.ticket.events[2].at: Field required"]


def test_real_process_debug_traceback(tmp_path: Path) -> None:
    proc = subprocess.run([str(ESCALATE), "run", str(tmp_path / "nope.json"), "--debug"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert "Traceback (most recent call last)" in proc.stderr
    assert proc.stderr.strip().splitlines()[-1] == f"error: {tmp_path / 'nope.json'}: no such file or folder"


# ------------------------------------------------------------------ a folder with one bad case


def test_folder_with_one_bad_case_writes_the_others(tmp_path: Path) -> None:
    good = sorted(DEMO_CASES.glob("*.case.json"))[:2]
    for p in good:
        shutil.copy(p, tmp_path / p.name)
    data = base_case()
    data["ticket"]["events"][0]["at"] = "yesterday"
    bad = write_case(tmp_path, data, "03-broken.case.json")

    result = escalate("run", tmp_path, "--format", "jsonl")
    assert result.exit_code == 2
    assert "Traceback" not in result.stderr
    packets = [Packet.model_validate_json(ln) for ln in result.stdout.splitlines()]
    assert [p.case_id for p in packets] == [json.loads(p.read_text())["id"] for p in good]
    lines = [ln for ln in result.stderr.splitlines() if ln.strip()]
    assert lines[0].startswith(f"error: {bad}: $.ticket.events[0].at:")
    assert lines[-1] == "2 packets, 0 need review, 1 bad inputs"
    assert len(lines) == 2


def test_folder_with_one_bad_case_to_a_file(tmp_path: Path) -> None:
    cases = tmp_path / "cases"
    cases.mkdir()
    shutil.copy(BASE_CASE, cases / BASE_CASE.name)
    (cases / "00-empty.case.json").write_text("", encoding="utf-8")
    out = tmp_path / "packets.jsonl"
    result = escalate("run", cases, "--format", "jsonl", "--output", out)
    assert result.exit_code == 2
    assert [Packet.model_validate_json(ln).case_id for ln in out.read_text().splitlines()] == [
        "02-massive-dynamic-saml-bookmarks-vip"]
    assert "00-empty.case.json:1:1: invalid JSON" in result.stderr
    assert result.stderr.strip().splitlines()[-1] == "1 packets, 0 need review, 1 bad inputs"


# ------------------------------------------------------------------ policy packs


@pytest.fixture
def pack(tmp_path: Path) -> Path:
    """A private copy of the bundled Lumen pack (symlinks resolved) to break one thing in."""
    dst = tmp_path / "pack"
    shutil.copytree(BUNDLED_PACK, dst, symlinks=False)
    return dst


def edit(path: Path, old: str, new: str) -> str:
    text = path.read_text(encoding="utf-8")
    assert text.count(old) == 1, old
    text = text.replace(old, new)
    path.write_text(text, encoding="utf-8")
    return text


def pack_error(pack: Path) -> str:
    line = one_error_line(escalate("policy", "check", pack))
    # the same pack error stops `run` before any case is read
    assert one_error_line(escalate("run", BASE_CASE, "--policy", pack)) == line
    return line


def test_good_pack_copy_checks(pack: Path) -> None:
    result = escalate("policy", "check", pack)
    assert result.exit_code == 0, result.stderr


def test_cel_syntax_error_names_the_rule_line(pack: Path) -> None:
    text = edit(pack / "severity.yaml", 'when: "data_loss_confirmed"', 'when: "data_loss_confirmed &&"')
    line = pack_error(pack)
    assert f"{pack / 'severity.yaml'}:{line_of(text, 'id: sev1-data-loss')}:" in line
    assert "rule sev1-data-loss: CEL syntax error" in line


def test_rule_with_undeclared_fact_names_the_rule_line(pack: Path) -> None:
    text = edit(pack / "severity.yaml", 'when: "data_loss_confirmed"', 'when: "data_loss_confirmed || angry"')
    line = pack_error(pack)
    assert f"{pack / 'severity.yaml'}:{line_of(text, 'id: sev1-data-loss')}:" in line
    assert "unknown fact(s) ['angry']" in line


def test_missing_pack_file(pack: Path) -> None:
    (pack / "triggers.yaml").unlink()
    line = pack_error(pack)
    assert f"{pack / 'triggers.yaml'}: missing" in line


def test_missing_template(pack: Path) -> None:
    (pack / "templates" / "summary.j2").unlink()
    assert f"{pack / 'templates' / 'summary.j2'}: missing template" in pack_error(pack)


def test_not_a_pack_folder(tmp_path: Path) -> None:
    line = pack_error(tmp_path / "no-such-pack")
    assert "not a folder" in line


def test_yaml_syntax_error_names_the_line(pack: Path) -> None:
    text = edit(pack / "routing.yaml", "min_area_score: 3", "min_area_score: [3")
    line = pack_error(pack)
    m = re.search(re.escape(str(pack / "routing.yaml")) + r":(\d+): YAML syntax error", line)
    assert m, line
    # libyaml reports where it noticed the problem: the broken line or the next one
    assert int(m.group(1)) in (line_of(text, "min_area_score: [3"), line_of(text, "min_area_score: [3") + 1)


def test_bad_regex_in_vocabulary_names_file_line_and_pattern(pack: Path) -> None:
    text = edit(pack / "vocabulary.yaml", "      - '\\bbroken\\b'", "      - '\\bbroken([a-z]\\b'")
    line = pack_error(pack)
    m = re.search(re.escape(str(pack / "vocabulary.yaml")) + r":(\d+): concepts\.failure\.patterns: "
                  r"invalid regular expression", line)
    assert m, line
    # the pattern is quoted as written: brackets are not eaten as console markup
    assert "'\\\\bbroken([a-z]\\\\b'" in line
    # the line is the concept's `patterns:` key (the validator checks the list as a whole)
    concept = line_of(text, "  failure:")
    assert concept < int(m.group(1)) <= line_of(text, "bbroken([a-z]")


def test_bad_engineering_key_regex(pack: Path) -> None:
    edit(pack / "vocabulary.yaml", "engineering_key: '\\b(?:ENG)-\\d+\\b'", "engineering_key: '\\b(?:ENG-\\d+\\b'")
    line = pack_error(pack)
    assert re.search(re.escape(str(pack / "vocabulary.yaml")) + r":\d+: .*invalid regular expression", line), line


def test_template_syntax_error_names_the_line(pack: Path) -> None:
    (pack / "templates" / "summary.j2").write_text("{{ summary }}\n{% if x %}\nhello\n", encoding="utf-8")
    line = pack_error(pack)
    assert re.search(re.escape(str(pack / "templates" / "summary.j2")) + r":\d+: template syntax error", line)


def test_severity_level_without_actions(pack: Path) -> None:
    edit(pack / "severity.yaml", "levels: [Sev1, Sev2, Sev3, Sev4]", "levels: [Sev1, Sev2, Sev3, Sev4, Sev5]")
    line = pack_error(pack)
    assert f"{pack / 'actions.yaml'}: by_severity has no actions for Sev5" in line
