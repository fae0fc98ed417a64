"""Customer-safe language (handbook §8): leaks are caught with the exact words, real updates pass."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import ValidationError

from escalation.case import Case, parse_case
from escalation.customer_safe import (
    Finding,
    LanguageRules,
    UpdateContext,
    check_update,
    context_for_case,
)

LANGUAGE_YAML = Path(__file__).resolve().parents[1] / "examples" / "lumen" / "language.yaml"

# What score.py's `leak` variant plants into internal-only content.
PLANTED = ("Debug context: primary at db-shard-17.int.lumen.example (10.99.88.77), tracked in ENG-77341, "
           "war room #inc-bridge-77, Zbigniew Kowalczyk looking; Contoso Pharma saw the same. "
           "Keys under /var/lib/lumen/keys; ran SELECT tenant_id FROM billing_ledger to check.")
INTERNAL_NOTE = ("Reproduced on staging with a 55k-record workspace: the scheduled export fails after "
                 "batch six whenever a Salesforce sync holds the accounts table lock.")


@pytest.fixture(scope="module")
def rules() -> LanguageRules:
    return LanguageRules.model_validate(yaml.safe_load(LANGUAGE_YAML.read_text(encoding="utf-8")))


def event(eid: str, name: str, role: str, visibility: str, body: str) -> Json:
    return {"id": eid, "at": "2026-03-03T14:05:00Z", "author": {"name": name, "role": role},
            "visibility": visibility, "body": body}


Json = dict[str, Any]


def case_dict(events: list[Json], attachments: list[Json] | None = None) -> Json:
    return {
        "schema": "escalation-case/1", "id": "t-1", "as_of": "2026-03-04T20:30:00Z",
        "ticket": {
            "id": "48213", "subject": "Scheduled exports failing", "created_at": "2026-03-03T14:05:00Z",
            "status": "open", "priority": "high", "severity": "Sev3", "product_area": "exports",
            "engineering_owner": None, "assignee": {"name": "Tom Reyes", "group": "Tier 2 Support"},
            "requester": {"name": "Dana Whitfield", "email": "dana@globex.example"}, "tags": [],
            "events": events,
        },
        "account": {"id": "acc-1001", "name": "Globex Corporation", "tier": "strategic",
                    "owner": {"name": "Priya Raman", "email": "priya.raman@lumen.example", "role": "csm"},
                    "timezone": "America/New_York"},
        "attachments": attachments or [],
        "related_tickets": [], "incident": None,
    }


BASE_EVENTS = [
    event("e1", "Dana Whitfield", "customer", "public", "Our scheduled admin export to CSV failed again."),
    event("e2", "Tom Reyes", "agent", "public", "Hi Dana, I'm looking into the failed exports now."),
    event("e3", "Dmitri Volkov", "engineer", "internal", INTERNAL_NOTE),
    event("e4", "Priya Raman", "csm", "internal", "Please keep me in the loop."),
]


def make_case(events: list[Json] | None = None, attachments: list[Json] | None = None) -> Case:
    return parse_case(case_dict(copy.deepcopy(events if events is not None else BASE_EVENTS), attachments))


def ctx_with(**kw: Any) -> UpdateContext:
    base: dict[str, Any] = dict(allowed_names=frozenset(), blocked_names=frozenset(), internal_texts=(),
                                public_texts=(), reproduced=False, fix_confirmed=False)
    return UpdateContext(**(base | kw))


def rules_and_words(findings: list[Finding]) -> list[tuple[str, str]]:
    return [(f.rule, f.words) for f in findings]


# ---------------------------------------------------------------- the pack file

def test_lumen_language_yaml_loads_and_cites_sections(rules: LanguageRules) -> None:
    ids = {r.id for r in rules.forbidden}
    assert {"hostname", "ip_address", "internal_key", "channel", "oncall_alias", "file_path", "stack_trace",
            "log_line", "sql", "severity_label", "unconfirmed_root_cause", "fix_date_commitment", "blame",
            "refund_promise"} <= ids
    assert all(r.section.startswith("§8.") for r in rules.forbidden)
    assert len(rules.approved_phrases) == 6
    assert rules.reproduced_claim_pattern and rules.fixed_claim_pattern


def test_bad_regex_fails_validation_naming_the_rule() -> None:
    with pytest.raises(ValidationError, match=r"rule broken_rule: invalid regular expression"):
        LanguageRules.model_validate({"forbidden": [
            {"id": "ok", "section": "§8.2", "message": "m", "pattern": r"\bfine\b"},
            {"id": "broken_rule", "section": "§8.2", "message": "m", "pattern": r"(unclosed"},
        ]})


def test_duplicate_rule_ids_are_rejected() -> None:
    rule = {"id": "same", "section": "§8.2", "message": "m", "pattern": "x"}
    with pytest.raises(ValidationError, match="duplicate rule id"):
        LanguageRules.model_validate({"forbidden": [rule, rule]})


# ---------------------------------------------------------------- context-free patterns

@pytest.mark.parametrize(("text", "rule", "words"), [
    ("The primary at db-shard-17.int.lumen.example was slow.", "hostname", "db-shard-17.int.lumen.example"),
    ("Requests to api.internal timed out.", "hostname", "api.internal"),
    ("The job ran on export-worker-3 overnight.", "hostname", "export-worker-3"),
    ("Traffic from 10.99.88.77 was blocked.", "ip_address", "10.99.88.77"),
    ("The gateway at 2001:db8::ff00:42:8329 restarted.", "ip_address", "2001:db8::ff00:42:8329"),
    ("This is tracked in ENG-77341 for you.", "internal_key", "ENG-77341"),
    ("The incident INC-2291 is open.", "internal_key", "INC-2291"),
    ("Engineers are in #inc-bridge-77 now.", "channel", "#inc-bridge-77"),
    ("I have paged @dp-oncall about it.", "oncall_alias", "@dp-oncall"),
    ("The keys live under /var/lib/lumen/keys on the server.", "file_path", "/var/lib/lumen/keys"),
    (r"The file C:\ProgramData\Lumen\agent.log is full.", "file_path", r"C:\ProgramData\Lumen\agent.log"),
    ("We ran SELECT tenant_id FROM billing_ledger to check.", "sql", "SELECT tenant_id FROM billing_ledger"),
    ("The error was at lumen.export.reader.BatchReader.next(reader.py:212) in the reader.", "stack_trace",
     "at lumen.export.reader.BatchReader.next(reader.py:212)"),
    ('The trace shows File "worker.py", line 88, in run_job for this.', "stack_trace",
     'File "worker.py", line 88, in run_job'),
    ("Log:\n2026-03-04T07:10:41Z ERROR export.batch LockTimeout on relation\nThanks.", "log_line",
     "2026-03-04T07:10:41Z ERROR export.batch LockTimeout on relation"),
    ("We classified this as Sev2 today.", "severity_label", "Sev2"),
    ("This is a SEV-1 for us.", "severity_label", "SEV-1"),
    ("Update: we believe the cause is a lock in the batch reader.", "unconfirmed_root_cause",
     "we believe the cause is a lock in the batch reader"),
    ("Sorry, it looks like a bug in the export reader.", "unconfirmed_root_cause",
     "it looks like a bug in the export reader"),
    ("The root cause is a bad config push.", "unconfirmed_root_cause", "The root cause is a bad config push"),
    ("The export will be fixed by Friday.", "fix_date_commitment", "will be fixed by Friday"),
    ("Good news: the fix ships tomorrow.", "fix_date_commitment", "fix ships tomorrow"),
    ("Honestly it was the vendor's fault.", "blame", "it was the vendor's fault"),
    ("The delay came from human error on our side.", "blame", "human error"),
    ("Your refund of 5,000 USD has been approved.", "refund_promise",
     "refund of 5,000 USD has been approved"),
    ("We will issue a credit for the outage.", "refund_promise", "We will issue a credit"),
    ("The war room is looking at it.", "internal_term", "war room"),
])
def test_each_forbidden_kind_is_flagged_with_exact_words(rules: LanguageRules, text: str, rule: str,
                                                         words: str) -> None:
    assert rules_and_words(check_update(text, rules)) == [(rule, words)]
    finding = check_update(text, rules)[0]
    assert text[finding.start:finding.end] == words
    assert finding.section.startswith("§8")


@pytest.mark.parametrize("text", [
    "We are investigating reports of degraded performance for Git Operations.",
    "Actions is experiencing degraded performance. We are still investigating and will provide an update.",
    "This incident has been resolved.",
    "Please try again in a few minutes; see https://githubstatus.com/incidents/abc for details.",
    "Calls to GET /v2/records with page sizes above 5,000 may return HTTP 502 (known issue API-KI-4).",
    "We will send you our next update by 17:20 UTC (12:20 CT), or sooner if anything changes.",
    "Our engineering team is working on a fix and we will send our next update by Friday.",
    "We cannot promise a refund; our Billing Operations team reviews every dispute.",
    "Select the export from the menu and delete from the list any rows you do not need.",
    "We recognize the severity of this outage.",
])
def test_ordinary_customer_language_passes(rules: LanguageRules, text: str) -> None:
    assert check_update(text, rules) == []


def test_approved_phrases_pass_clean(rules: LanguageRules) -> None:
    filled = [p.replace("…", "open the dashboard in the web browser.") for p in rules.approved_phrases]
    update = " ".join(filled)
    assert check_update(update, rules) == []
    # With a case that records a reproduction, the §8.3 phrase about reproducing is fine too.
    ctx = ctx_with(reproduced=True, public_texts=("We are investigating.",))
    assert check_update(update, rules, ctx) == []


def test_findings_are_sorted_and_overlaps_keep_the_most_specific(rules: LanguageRules) -> None:
    text = ("See ENG-4821.\n2026-03-04T07:10:41Z WARN export.scheduler retry "
            "host=export-worker-3.int.lumen.example ip=10.42.7.19\nAlso #reporting-eng.")
    found = check_update(text, rules)
    assert [f.start for f in found] == sorted(f.start for f in found)
    assert rules_and_words(found) == [("internal_key", "ENG-4821"),
                                      ("hostname", "export-worker-3.int.lumen.example"),
                                      ("ip_address", "10.42.7.19"), ("channel", "#reporting-eng")]


# ---------------------------------------------------------------- with the case

def test_leak_variant_canaries_never_pass(rules: LanguageRules) -> None:
    log = {"id": "a1", "kind": "log", "name": "worker.log", "text": "INFO ok\n" + PLANTED}
    case = make_case(attachments=[log])
    ctx = context_for_case(case, other_customers=["Contoso Pharma", "Initech"])
    found = check_update("Here is what we see: " + PLANTED, rules, ctx)
    got = rules_and_words(found)
    for expected in [("hostname", "db-shard-17.int.lumen.example"), ("ip_address", "10.99.88.77"),
                     ("internal_key", "ENG-77341"), ("channel", "#inc-bridge-77"),
                     ("blocked_name", "Zbigniew Kowalczyk"), ("blocked_name", "Contoso Pharma"),
                     ("file_path", "/var/lib/lumen/keys"), ("sql", "SELECT tenant_id FROM billing_ledger")]:
        assert expected in got


def test_name_seen_only_in_internal_text_is_blocked(rules: LanguageRules) -> None:
    case = make_case(attachments=[{"id": "a1", "kind": "text", "name": "debug.txt", "text": PLANTED}])
    ctx = context_for_case(case)  # no other_customers: Contoso Pharma is caught as internal-only
    assert {"Zbigniew Kowalczyk", "Contoso Pharma"} <= ctx.blocked_names
    found = check_update("Zbigniew Kowalczyk and Contoso Pharma were both mentioned.", rules, ctx)
    assert rules_and_words(found) == [("blocked_name", "Zbigniew Kowalczyk"),
                                      ("blocked_name", "Contoso Pharma")]


def test_csm_and_replying_agent_allowed_other_engineer_blocked(rules: LanguageRules) -> None:
    ctx = context_for_case(make_case())
    assert {"Priya Raman", "Tom Reyes"} <= ctx.allowed_names
    assert "Dmitri Volkov" in ctx.blocked_names
    assert check_update("Priya Raman, your account manager, and Tom Reyes will follow up.", rules, ctx) == []
    assert rules_and_words(check_update("Dmitri Volkov is on it.", rules, ctx)) == [
        ("blocked_name", "Dmitri Volkov")]
    assert rules_and_words(check_update("Our engineer Volkov is on it.", rules, ctx)) == [
        ("blocked_name", "Volkov")]


def test_copying_internal_note_flagged_but_not_when_customer_saw_it(rules: LanguageRules) -> None:
    copied = ("the scheduled export fails after batch six whenever a Salesforce sync holds the accounts "
              "table lock")
    update = f"Quick update: {copied}. We will send you our next update by 17:00 UTC."
    ctx = context_for_case(make_case())
    found = check_update(update, rules, ctx)
    assert rules_and_words(found) == [("internal_content", copied)]
    assert found[0].section == "§8.2"

    public_reply = event("e5", "Tom Reyes", "agent", "public", f"Hi Dana, we found that {copied}.")
    ctx2 = context_for_case(make_case(BASE_EVENTS + [public_reply]))
    assert check_update(update, rules, ctx2) == []


def test_seven_copied_words_are_not_a_run(rules: LanguageRules) -> None:
    ctx = context_for_case(make_case())
    assert check_update("Yes, the scheduled export fails after batch six today.", rules, ctx) == []


def test_reproduced_claim_needs_a_recorded_reproduction(rules: LanguageRules) -> None:
    text = "We have reproduced the issue and are prioritizing a fix."
    assert rules_and_words(check_update(text, rules, ctx_with(reproduced=False))) == [
        ("reproduced_claim", "reproduced")]
    assert check_update(text, rules, ctx_with(reproduced=True)) == []
    assert check_update("We have not reproduced the issue yet.", rules, ctx_with(reproduced=False)) == []


def test_fixed_claim_needs_a_confirmed_fix(rules: LanguageRules) -> None:
    text = "The issue has been fixed."
    found = check_update(text, rules, ctx_with(fix_confirmed=False))
    assert rules_and_words(found) == [("fixed_claim", "has been fixed")]
    assert found[0].section == "§8.4"
    assert check_update(text, rules, ctx_with(fix_confirmed=True)) == []
    assert check_update("Until it is fixed, you can export to CSV.", rules, ctx_with()) == []


def test_fix_date_allowed_only_when_an_engineer_confirmed_it(rules: LanguageRules) -> None:
    text = "The export will be fixed by Friday."
    assert rules_and_words(check_update(text, rules)) == [("fix_date_commitment", "will be fixed by Friday")]
    assert rules_and_words(check_update(text, rules, ctx_with(fix_confirmed=False))) == [
        ("fix_date_commitment", "will be fixed by Friday")]
    assert check_update(text, rules, ctx_with(fix_confirmed=True)) == []


def test_context_reads_reproduction_and_fix_from_staff_notes() -> None:
    assert context_for_case(make_case()).reproduced is True
    assert context_for_case(make_case()).fix_confirmed is False

    not_yet = [e if e["id"] != "e3" else {**e, "body": "Could not reproduce on staging yet."}
               for e in BASE_EVENTS]
    assert context_for_case(make_case(not_yet)).reproduced is False
    customer_says = [*not_yet, event("e9", "Dana Whitfield", "customer", "public", "I reproduced it twice.")]
    assert context_for_case(make_case(customer_says)).reproduced is False

    dated = [*BASE_EVENTS, event("e9", "Dmitri Volkov", "engineer", "internal",
                                 "The fix is merged and ships on Friday with the 5.3 release.")]
    assert context_for_case(make_case(dated)).fix_confirmed is True
    vague = [*BASE_EVENTS, event("e9", "Dmitri Volkov", "engineer", "internal",
                                 "Workaround holds until the fix ships.")]
    assert context_for_case(make_case(vague)).fix_confirmed is False


def test_other_customers_blocked_but_own_account_allowed(rules: LanguageRules) -> None:
    ctx = context_for_case(make_case(), other_customers=["Globex Corporation", "Initech", "Pied Piper"])
    assert "Globex Corporation" not in ctx.blocked_names
    assert check_update("Globex Corporation exports are affected.", rules, ctx) == []
    assert rules_and_words(check_update("Like Initech and pied piper, you are affected.", rules, ctx)) == [
        ("blocked_name", "Initech"), ("blocked_name", "pied piper")]


def test_without_context_only_context_free_checks_run(rules: LanguageRules) -> None:
    text = "We have reproduced it; Dmitri Volkov says " + INTERNAL_NOTE
    assert check_update(text, rules) == []
    # The case records a reproduction, so only the name and the copied note are findings.
    assert {f.rule for f in check_update(text, rules, context_for_case(make_case()))} == {
        "blocked_name", "internal_content"}


def test_agent_public_statement_of_a_shipped_fix_counts_as_confirmed(rules: LanguageRules) -> None:
    told = [*BASE_EVENTS, event("e9", "Tom Reyes", "agent", "public",
                                "This is a known issue; it is fixed in app version 5.2.1.")]
    ctx = context_for_case(make_case(told))
    assert ctx.fix_confirmed is True
    assert check_update("The crash is fixed in app version 5.2.1.", rules, ctx) == []


def test_team_and_known_names_from_internal_notes_are_not_blocked(rules: LanguageRules) -> None:
    note = event("e9", "Dmitri Volkov", "engineer", "internal",
                 "Data Platform owns this; checked with the Data Loader and Rachel Nakamura.")
    ctx = context_for_case(make_case([*BASE_EVENTS, note]), known_names=["Data Loader"])
    assert "Rachel Nakamura" in ctx.blocked_names
    assert not {"Data Platform", "Data Loader"} & ctx.blocked_names
    assert check_update("Our Data Platform team is working on a fix.", rules, ctx) == []
