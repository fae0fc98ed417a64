"""SLA policy (handbook §4) and the clock that says when the next reply is due (§4.1).

The pack's `sla.yaml` holds the target table (tier × severity → first response and
update cadence, as the handbook writes them, e.g. "4 business h") and the business hours.
Everything here is a pure function of its arguments: no "now", no I/O, so a packet built
for a given `as_of` is reproducible.

Calendar or business hours is decided by the SEVERITY, not by the unit string: the
handbook says Sev1/Sev2 clocks run in calendar hours and Sev3/Sev4 clocks in business
hours (`calendar_severities`). So a plain "1 h" in a Sev3 row means one business hour, and
a "business" unit in a Sev1 row (which the handbook never writes) is read as calendar time:
"N business h" as N hours, "N business days" as N × `business_day_hours` hours.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

Weekday = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
WEEKDAYS: tuple[Weekday, ...] = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
DurationUnit = Literal["minutes", "hours", "business_hours", "business_days"]

ACCEPTED_DURATIONS = ("'N min', 'N h', 'N business h', 'N business day(s)' "
                      "(N > 0, e.g. '15 min', '4 business h', '2 business days') or 'none'")

_DURATION_RE = re.compile(r"(\d+(?:\.\d+)?) (min|h|business h|business days?)")
_UNITS: dict[str, DurationUnit] = {
    "min": "minutes", "h": "hours", "business h": "business_hours",
    "business day": "business_days", "business days": "business_days",
}


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SlaDuration(_Model):
    """A parsed target length; `unit` keeps what the pack said, the severity decides the clock."""

    amount: float = Field(gt=0)
    unit: DurationUnit


def parse_duration(text: str) -> SlaDuration | None:
    """Parse a pack duration such as "4 business h"; None for "none" (no target).

    Only the forms the handbook uses are accepted, so a typo fails loudly at pack load
    instead of silently becoming a different deadline.
    """
    s = " ".join(str(text).split())
    if s == "none":
        return None
    m = _DURATION_RE.fullmatch(s)
    if not m or float(m.group(1)) <= 0:
        raise ValueError(f"unrecognised SLA duration {text!r}: use {ACCEPTED_DURATIONS}")
    return SlaDuration(amount=float(m.group(1)), unit=_UNITS[m.group(2)])


def _zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, TypeError):
        raise ValueError(
            f"unknown time zone {name!r}: use an IANA name such as 'America/New_York' or 'UTC'") from None


class BusinessHours(_Model):
    """Local wall-clock opening hours; `default_timezone` applies when an account has none (§4)."""

    start: time
    end: time
    weekdays: tuple[Weekday, ...] = Field(min_length=1)
    default_timezone: str = "UTC"

    @field_validator("start", "end", mode="before")
    @classmethod
    def _quoted_time(cls, v: Any) -> Any:
        # Unquoted 09:00 is a YAML 1.1 base-60 integer (540); refuse it rather than read 00:09.
        if isinstance(v, int | float):
            raise ValueError(f"times must be quoted strings like \"09:00\", got {v!r}")
        return v

    @field_validator("weekdays")
    @classmethod
    def _unique_days(cls, v: tuple[Weekday, ...]) -> tuple[Weekday, ...]:
        if len(set(v)) != len(v):
            raise ValueError(f"weekdays are repeated: {list(v)}")
        return v

    @field_validator("default_timezone")
    @classmethod
    def _known_zone(cls, v: str) -> str:
        _zone(v)
        return v

    @model_validator(mode="after")
    def _opens_before_close(self) -> BusinessHours:
        if self.start >= self.end:
            raise ValueError(f"business hours start {self.start} must be before end {self.end}")
        if self.start.tzinfo is not None or self.end.tzinfo is not None:
            raise ValueError("business hours are local wall-clock times; give them without a UTC offset")
        return self

    def is_business_day(self, day: date) -> bool:
        return WEEKDAYS[day.weekday()] in self.weekdays


class SlaTarget(_Model):
    """One row of the §4 table, durations kept as written so packets can quote them."""

    tier: str
    severity: str
    first_response: str
    update: str

    @field_validator("first_response", "update", mode="before")
    @classmethod
    def _duration_ok(cls, v: Any) -> Any:
        if v is None:  # YAML `null`/`~`: same as "none"
            return "none"
        if isinstance(v, str):
            parse_duration(v)
        return v

    @property
    def first_response_duration(self) -> SlaDuration | None:
        return parse_duration(self.first_response)

    @property
    def update_duration(self) -> SlaDuration | None:
        return parse_duration(self.update)


class SlaPolicy(_Model):
    """The pack's `sla.yaml`: targets by tier and severity, business hours, risk threshold."""

    section: str = "§4"
    business_hours: BusinessHours
    business_day_hours: float = Field(gt=0, description="a business day is this many business hours")
    calendar_severities: tuple[str, ...] = Field(description="severities whose clocks run in calendar hours")
    risk_remaining_fraction: float = Field(ge=0, le=1)
    risk_section: str = "§4.1"
    targets: tuple[SlaTarget, ...]

    @model_validator(mode="after")
    def _unique_rows(self) -> SlaPolicy:
        seen: set[tuple[str, str]] = set()
        for t in self.targets:
            key = (t.tier, t.severity)
            if key in seen:
                raise ValueError(f"targets: more than one row for tier {t.tier!r}, severity {t.severity!r}")
            seen.add(key)
        return self

    def target(self, tier: str, severity: str) -> SlaTarget | None:
        """The row for this tier and (currently assessed) severity, or None if the table has none."""
        return next((t for t in self.targets if t.tier == tier and t.severity == severity), None)

    def is_business(self, severity: str) -> bool:
        """True when this severity's clocks count business hours (§4: all but the calendar severities)."""
        return severity not in self.calendar_severities

    def window_hours(self, duration: SlaDuration) -> float:
        """The target's length in hours of whichever clock the severity picks (see the module docstring).

        The number is the same either way: "N business days" is N × business_day_hours.
        """
        if duration.unit == "minutes":
            return duration.amount / 60
        if duration.unit == "business_days":
            return duration.amount * self.business_day_hours
        return duration.amount


# ---------------------------------------------------------------- business-hours clock

def _utc(dt: datetime, name: str = "datetime") -> datetime:
    if dt.tzinfo is None or dt.utcoffset() is None:
        raise ValueError(f"{name} must be timezone-aware, got naive {dt.isoformat()}")
    return dt.astimezone(UTC)


def _window(day: date, tz: ZoneInfo, bh: BusinessHours) -> tuple[datetime, datetime]:
    """Opening and closing of a local day, in UTC, so arithmetic is in real elapsed time."""
    return (datetime.combine(day, bh.start, tzinfo=tz).astimezone(UTC),
            datetime.combine(day, bh.end, tzinfo=tz).astimezone(UTC))


def add_business_time(start: datetime, hours: float, tz: ZoneInfo, bh: BusinessHours) -> datetime:
    """The moment `hours` business hours have elapsed after `start` (UTC).

    A start outside business hours begins counting at the next opening, so a zero-length
    add from Saturday lands on Monday's opening.
    """
    if not math.isfinite(hours) or hours < 0:
        raise ValueError(f"hours must be a finite number >= 0, got {hours}")
    at = _utc(start, "start")
    remaining = timedelta(hours=hours)
    day = at.astimezone(tz).date()
    while True:
        if bh.is_business_day(day):
            opening, closing = _window(day, tz, bh)
            seg_start = max(at, opening)
            if seg_start < closing:
                available = closing - seg_start
                if remaining <= available:
                    return seg_start + remaining
                remaining -= available
        day += timedelta(days=1)


def business_hours_between(a: datetime, b: datetime, tz: ZoneInfo, bh: BusinessHours) -> float:
    """Business hours elapsed from `a` to `b`; 0 when `b` is not after `a`."""
    a, b = _utc(a, "a"), _utc(b, "b")
    if b <= a:
        return 0.0
    total = timedelta()
    day, last = a.astimezone(tz).date(), b.astimezone(tz).date()
    while day <= last:
        if bh.is_business_day(day):
            opening, closing = _window(day, tz, bh)
            lo, hi = max(a, opening), min(b, closing)
            if hi > lo:
                total += hi - lo
        day += timedelta(days=1)
    return total / timedelta(hours=1)


def end_of_business_day(at: datetime, tz: ZoneInfo, bh: BusinessHours) -> datetime:
    """Closing time of `at`'s business day, or of the next business day once `at` is past closing."""
    at = _utc(at, "at")
    day = at.astimezone(tz).date()
    while True:
        if bh.is_business_day(day):
            closing = _window(day, tz, bh)[1]
            if at < closing:
                return closing
        day += timedelta(days=1)


# ---------------------------------------------------------------- SLA clock (§4.1)

@dataclass(frozen=True)
class SlaClock:
    """The next SLA target of a case at `as_of` and how much of its window is left."""

    kind: Literal["first_response", "update"]
    started_at: datetime        # ticket creation, or the last public agent reply
    due_at: datetime
    window_hours: float         # the target's length in the clock's own hours (business or calendar)
    elapsed_hours: float        # in the same kind of hours, at as_of
    remaining_fraction: float   # max(0, 1 - elapsed/window)
    breached: bool              # as_of is after due_at
    at_risk: bool               # breached or remaining_fraction < risk_remaining_fraction
    business_hours: bool        # True when the clock counts business hours
    timezone: str
    target_text: str            # e.g. "4 business h" as written in the pack


def sla_clock(
    policy: SlaPolicy, *, tier: str, severity: str, created_at: datetime,
    last_public_agent_reply: datetime | None, as_of: datetime, timezone: str | None,
) -> SlaClock | None:
    """The §4.1 clock: first response until an agent has replied publicly, then the update cadence.

    None when the table has no row for tier/severity or the chosen target is "none". The
    time zone is the account's, else the policy's default; an unknown name is a ValueError.
    """
    tz_name = timezone or policy.business_hours.default_timezone
    tz = _zone(tz_name)
    now = _utc(as_of, "as_of")
    row = policy.target(tier, severity)
    if row is None:
        return None
    kind: Literal["first_response", "update"]
    if last_public_agent_reply is None:
        kind, started, text = "first_response", _utc(created_at, "created_at"), row.first_response
    else:
        kind, started, text = "update", _utc(last_public_agent_reply, "last_public_agent_reply"), row.update
    duration = parse_duration(text)
    if duration is None:
        return None
    business = policy.is_business(severity)
    window = policy.window_hours(duration)
    if business:
        due = add_business_time(started, window, tz, policy.business_hours)
        elapsed = business_hours_between(started, now, tz, policy.business_hours)
    else:
        due = started + timedelta(hours=window)
        elapsed = max(0.0, (now - started) / timedelta(hours=1))
    remaining = max(0.0, 1 - elapsed / window)
    breached = now > due
    return SlaClock(
        kind=kind, started_at=started, due_at=due, window_hours=window, elapsed_hours=elapsed,
        remaining_fraction=remaining, breached=breached,
        at_risk=breached or remaining < policy.risk_remaining_fraction,
        business_hours=business, timezone=tz_name, target_text=text,
    )
