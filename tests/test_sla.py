"""SLA policy (§4) and clock (§4.1): the handbook's worked examples plus clock properties."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from escalation.sla import (
    BusinessHours,
    SlaDuration,
    SlaPolicy,
    add_business_time,
    business_hours_between,
    end_of_business_day,
    parse_duration,
    sla_clock,
)

SLA_YAML = Path(__file__).resolve().parents[1] / "examples" / "lumen" / "sla.yaml"
BH = BusinessHours(start="09:00", end="18:00", weekdays=("mon", "tue", "wed", "thu", "fri"))
NY, CHI, TOKYO = ZoneInfo("America/New_York"), ZoneInfo("America/Chicago"), ZoneInfo("Asia/Tokyo")


def z(s: str) -> datetime:
    return datetime.fromisoformat(s.replace("Z", "+00:00"))


@pytest.fixture(scope="module")
def policy() -> SlaPolicy:
    return SlaPolicy.model_validate(yaml.safe_load(SLA_YAML.read_text(encoding="utf-8")))


def clock(policy: SlaPolicy, tier: str, severity: str, tz: str | None, *, as_of: str,
          reply: str | None = None, created: str = "2026-01-01T00:00Z"):
    return sla_clock(policy, tier=tier, severity=severity, created_at=z(created),
                     last_public_agent_reply=z(reply) if reply else None, as_of=z(as_of), timezone=tz)


# ---------------------------------------------------------------- durations and the pack file

@pytest.mark.parametrize(("text", "amount", "unit"), [
    ("15 min", 15, "minutes"), ("30 min", 30, "minutes"), ("1 h", 1, "hours"), ("4 h", 4, "hours"),
    ("24 h", 24, "hours"), ("8 business h", 8, "business_hours"), ("1 business day", 1, "business_days"),
    ("2 business days", 2, "business_days"), ("5 business days", 5, "business_days"),
])
def test_parse_duration_accepts_handbook_forms(text: str, amount: float, unit: str) -> None:
    assert parse_duration(text) == SlaDuration(amount=amount, unit=unit)


def test_parse_duration_none() -> None:
    assert parse_duration("none") is None


@pytest.mark.parametrize("text", ["", "15", "15 minutes", "1 hour", "0 h", "-1 h", "1 bh", "2 days",
                                  "business day", "1 week", "None", "1h"])
def test_parse_duration_rejects_other_forms(text: str) -> None:
    with pytest.raises(ValueError, match="'N min', 'N h', 'N business h', 'N business day"):
        parse_duration(text)


def test_example_pack_loads_all_rows(policy: SlaPolicy) -> None:
    assert len(policy.targets) == 12
    assert policy.section == "§4" and policy.risk_section == "§4.1"
    assert {(t.tier, t.severity) for t in policy.targets} == {
        (tier, f"Sev{n}") for tier in ("strategic", "enterprise", "standard") for n in range(1, 5)}
    assert policy.target("strategic", "Sev3").first_response == "4 business h"
    assert policy.target("standard", "Sev4").update == "none"
    assert policy.target("standard", "Sev4").update_duration is None
    assert policy.target("premium", "Sev1") is None


def test_example_pack_matches_handbook_table(policy: SlaPolicy) -> None:
    handbook = Path("/work/shared/eval/lumen/handbook.md")
    if not handbook.exists():
        pytest.skip("eval corpus not present")
    rows = re.findall(r"^\| (\w+) \| (Sev\d) \| ([^|]+?) \| ([^|]+?) \|$", handbook.read_text(), re.M)
    assert len(rows) == 12
    for tier, sev, first, update in rows:
        t = policy.target(tier, sev)
        assert t is not None and (t.first_response, t.update) == (first, update)


def test_bad_duration_fails_validation_naming_accepted_forms() -> None:
    data = yaml.safe_load(SLA_YAML.read_text(encoding="utf-8"))
    data["targets"][0]["update"] = "1 hour"
    with pytest.raises(ValidationError) as e:
        SlaPolicy.model_validate(data)
    msg = str(e.value)
    assert "targets.0.update" in msg and "'1 hour'" in msg and "'N business day(s)'" in msg


def test_duplicate_row_and_unquoted_time_and_bad_zone_rejected() -> None:
    data = yaml.safe_load(SLA_YAML.read_text(encoding="utf-8"))
    dup = {**data, "targets": data["targets"] + [data["targets"][0]]}
    with pytest.raises(ValidationError, match="more than one row"):
        SlaPolicy.model_validate(dup)
    unquoted = yaml.safe_load(SLA_YAML.read_text(encoding="utf-8").replace('"18:00"', "18:00"))
    with pytest.raises(ValidationError, match="quoted"):
        SlaPolicy.model_validate(unquoted)
    with pytest.raises(ValidationError, match="unknown time zone"):
        BusinessHours(start="09:00", end="18:00", weekdays=("mon",), default_timezone="Mars/Olympus")
    with pytest.raises(ValidationError, match="before end"):
        BusinessHours(start="18:00", end="09:00", weekdays=("mon",))


def test_severity_decides_the_clock(policy: SlaPolicy) -> None:
    assert not policy.is_business("Sev1") and not policy.is_business("Sev2")
    assert policy.is_business("Sev3") and policy.is_business("Sev4")
    assert policy.window_hours(parse_duration("2 business days")) == 18
    assert policy.window_hours(parse_duration("15 min")) == 0.25


def test_plain_hours_in_business_severity_row_are_business_hours(policy: SlaPolicy) -> None:
    data = policy.model_dump()
    data["targets"] = [
        {"tier": "t", "severity": "Sev3", "first_response": "1 h", "update": "none"},
        {"tier": "t", "severity": "Sev1", "first_response": "1 business day", "update": "none"},
    ]
    p = SlaPolicy.model_validate(data)
    fri_1730 = "2026-11-13T17:30Z"  # Fri 17:30 UTC
    c3 = clock(p, "t", "Sev3", None, created=fri_1730, as_of=fri_1730)
    assert c3.business_hours and c3.due_at == z("2026-11-16T09:30Z")
    c1 = clock(p, "t", "Sev1", None, created=fri_1730, as_of=fri_1730)
    assert not c1.business_hours and c1.window_hours == 9 and c1.due_at == z("2026-11-14T02:30Z")


# ---------------------------------------------------------------- the handbook's worked examples

def test_enterprise_sev3_update_new_york_breached(policy: SlaPolicy) -> None:
    c = clock(policy, "enterprise", "Sev3", "America/New_York",
              reply="2026-11-03T15:00Z", as_of="2026-11-06T19:00Z")
    assert c.kind == "update" and c.business_hours and c.window_hours == 18
    assert c.target_text == "2 business days"
    assert c.due_at == z("2026-11-05T15:00Z") == datetime(2026, 11, 5, 10, tzinfo=NY)
    assert c.breached and c.at_risk and c.remaining_fraction == 0


def test_standard_sev4_first_response_chicago_breached(policy: SlaPolicy) -> None:
    c = clock(policy, "standard", "Sev4", "America/Chicago",
              created="2026-02-19T16:00Z", as_of="2026-02-25T21:00Z")
    assert c.kind == "first_response" and c.window_hours == 27 and c.started_at == z("2026-02-19T16:00Z")
    assert c.due_at == datetime(2026, 2, 24, 10, tzinfo=CHI) == z("2026-02-24T16:00Z")
    assert c.breached and c.at_risk


def test_enterprise_sev3_tokyo_over_weekend_not_at_risk(policy: SlaPolicy) -> None:
    c = clock(policy, "enterprise", "Sev3", "Asia/Tokyo",
              reply="2026-11-13T08:30Z", as_of="2026-11-16T01:30Z")
    assert c.elapsed_hours == pytest.approx(2) and c.window_hours == 18
    assert c.remaining_fraction == pytest.approx(16 / 18)
    assert not c.breached and not c.at_risk and c.timezone == "Asia/Tokyo"


def test_strategic_sev4_across_dst_change(policy: SlaPolicy) -> None:
    c = clock(policy, "strategic", "Sev4", "America/New_York",
              reply="2026-03-06T20:05Z", as_of="2026-03-09T19:00Z")
    # Fri 15:05-18:00 EST (2 h 55) + Mon 09:00-15:00 EDT (6 h); a UTC-fixed clock would say 7 h 55.
    assert c.elapsed_hours == pytest.approx(2 + 55 / 60 + 6) and c.window_hours == 45
    assert c.due_at == datetime(2026, 3, 13, 15, 5, tzinfo=NY) == z("2026-03-13T19:05Z")
    assert not c.breached and not c.at_risk


def test_enterprise_sev2_calendar_breached(policy: SlaPolicy) -> None:
    c = clock(policy, "enterprise", "Sev2", "Europe/Berlin",
              reply="2026-09-14T08:35Z", as_of="2026-09-15T08:30Z")
    assert not c.business_hours and c.window_hours == 8 and c.due_at == z("2026-09-14T16:35Z")
    assert c.breached and c.at_risk and c.elapsed_hours == pytest.approx(23 + 55 / 60)


def test_standard_sev4_update_none_has_no_clock(policy: SlaPolicy) -> None:
    c = clock(policy, "standard", "Sev4", None, reply="2026-02-20T16:00Z", as_of="2026-03-20T16:00Z")
    assert c is None


def test_missing_row_has_no_clock(policy: SlaPolicy) -> None:
    assert clock(policy, "standard", "Sev5", None, as_of="2026-01-02T00:00Z") is None


def test_strategic_sev2_risk_boundary(policy: SlaPolicy) -> None:
    c = clock(policy, "strategic", "Sev2", None, reply="2026-07-08T12:40Z", as_of="2026-07-08T13:40Z")
    assert c.remaining_fraction == 0.75 and not c.at_risk and not c.breached
    edge = clock(policy, "strategic", "Sev2", None, reply="2026-07-08T12:40Z", as_of="2026-07-08T15:40Z")
    assert edge.remaining_fraction == 0.25 and not edge.at_risk  # 25% left is not "less than 25%"
    past = clock(policy, "strategic", "Sev2", None, reply="2026-07-08T12:40Z", as_of="2026-07-08T15:41Z")
    assert past.at_risk and not past.breached
    due = clock(policy, "strategic", "Sev2", None, reply="2026-07-08T12:40Z", as_of="2026-07-08T16:40Z")
    assert due.at_risk and not due.breached and due.remaining_fraction == 0


def test_default_timezone_and_unknown_timezone(policy: SlaPolicy) -> None:
    c = clock(policy, "strategic", "Sev3", None, created="2026-11-13T17:00Z", as_of="2026-11-13T17:00Z")
    assert c.timezone == "UTC" and c.due_at == z("2026-11-16T12:00Z")
    with pytest.raises(ValueError, match="unknown time zone 'Mars/Olympus'"):
        clock(policy, "strategic", "Sev3", "Mars/Olympus", as_of="2026-11-13T17:00Z")


def test_naive_datetime_rejected(policy: SlaPolicy) -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        sla_clock(policy, tier="strategic", severity="Sev3", created_at=datetime(2026, 1, 1),
                  last_public_agent_reply=None, as_of=z("2026-01-02T00:00Z"), timezone=None)


# ---------------------------------------------------------------- business-hours clock

def test_add_business_time_starts_at_next_opening() -> None:
    sat = datetime(2026, 11, 14, 12, tzinfo=NY)
    assert add_business_time(sat, 0, NY, BH) == datetime(2026, 11, 16, 9, tzinfo=NY)
    assert add_business_time(sat, 1, NY, BH) == datetime(2026, 11, 16, 10, tzinfo=NY)
    early = datetime(2026, 11, 16, 7, tzinfo=NY)
    assert add_business_time(early, 9, NY, BH) == datetime(2026, 11, 16, 18, tzinfo=NY)
    assert add_business_time(early, 9.5, NY, BH) == datetime(2026, 11, 17, 9, 30, tzinfo=NY)
    assert add_business_time(early, 0, NY, BH).tzinfo == UTC
    with pytest.raises(ValueError):
        add_business_time(early, -1, NY, BH)


def test_business_hours_between_basics() -> None:
    fri = datetime(2026, 11, 13, 17, tzinfo=TOKYO)
    assert business_hours_between(fri, fri - timedelta(hours=1), TOKYO, BH) == 0
    assert business_hours_between(fri, datetime(2026, 11, 16, 10, tzinfo=TOKYO), TOKYO, BH) == 2
    sat, sun = datetime(2026, 11, 14, 10, tzinfo=TOKYO), datetime(2026, 11, 15, 23, tzinfo=TOKYO)
    assert business_hours_between(sat, sun, TOKYO, BH) == 0


def test_end_of_business_day() -> None:
    mon_0700 = datetime(2026, 3, 9, 7, tzinfo=NY)
    assert end_of_business_day(mon_0700, NY, BH) == datetime(2026, 3, 9, 18, tzinfo=NY)
    mon_1759, mon_1800 = datetime(2026, 3, 9, 17, 59, tzinfo=NY), datetime(2026, 3, 9, 18, tzinfo=NY)
    assert end_of_business_day(mon_1759, NY, BH) == mon_1800
    assert end_of_business_day(mon_1800, NY, BH) == datetime(2026, 3, 10, 18, tzinfo=NY)
    fri_late = datetime(2026, 3, 6, 19, tzinfo=NY)  # next business day is Monday, after the DST change
    eod = end_of_business_day(fri_late, NY, BH)
    assert eod == datetime(2026, 3, 9, 18, tzinfo=NY) == z("2026-03-09T22:00Z") and eod.tzinfo == UTC


ZONES = st.sampled_from(["UTC", "America/New_York", "Asia/Tokyo", "Europe/London", "Australia/Lord_Howe",
                         "America/Santiago", "Asia/Kolkata"]).map(ZoneInfo)
MOMENTS = st.datetimes(min_value=datetime(2025, 1, 1), max_value=datetime(2028, 12, 31),
                       timezones=st.just(UTC))
HOURS = st.floats(min_value=0, max_value=200, allow_nan=False)


@settings(deadline=None, max_examples=200)
@given(a=MOMENTS, h=HOURS, tz=ZONES)
def test_between_inverts_add(a: datetime, h: float, tz: ZoneInfo) -> None:
    assert business_hours_between(a, add_business_time(a, h, tz, BH), tz, BH) == pytest.approx(h, abs=1e-6)


@settings(deadline=None, max_examples=200)
@given(a=MOMENTS, h1=HOURS, h2=HOURS, tz=ZONES)
def test_add_is_monotonic_and_in_business_hours(a: datetime, h1: float, h2: float, tz: ZoneInfo) -> None:
    lo, hi = sorted((h1, h2))
    t_lo, t_hi = add_business_time(a, lo, tz, BH), add_business_time(a, hi, tz, BH)
    assert a <= t_lo <= t_hi
    local = t_hi.astimezone(tz)
    assert local.weekday() < 5 and BH.start <= local.time().replace(tzinfo=None) <= BH.end


@settings(deadline=None, max_examples=200)
@given(ts=st.lists(MOMENTS, min_size=3, max_size=3), tz=ZONES)
def test_between_is_additive_and_bounded(ts: list[datetime], tz: ZoneInfo) -> None:
    a, b, c = sorted(ts)
    ab, bc, ac = (business_hours_between(x, y, tz, BH) for x, y in ((a, b), (b, c), (a, c)))
    assert ac == pytest.approx(ab + bc, abs=1e-6)
    assert 0 <= ab <= (b - a) / timedelta(hours=1) + 1e-9


@settings(deadline=None, max_examples=100)
@given(a=MOMENTS, tz=ZONES)
def test_end_of_business_day_is_a_closing_time_after_at(a: datetime, tz: ZoneInfo) -> None:
    eod = end_of_business_day(a, tz, BH)
    local = eod.astimezone(tz)
    assert eod > a and local.weekday() < 5 and local.time().replace(tzinfo=None) == BH.end
    assert business_hours_between(a, eod, tz, BH) <= 9 + 1e-9
