"""Monitoring signals: how the skill behaves, computed from stored data.

The skill contract names the signals its owner watches (packets per trigger, checklist
failures, leaks blocked, severity overrides, edit distance of customer updates, missing
information, SLA breaches, time to an approved update). They are computed from the
database, not counted in memory, so every replica and every restart reports the same
figures; `/signals` returns them as JSON and `/metrics` exposes them to Prometheus.
"""

from __future__ import annotations

import statistics
from collections import Counter
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, Any

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy.orm import Session

from . import store
from .pack import Pack
from .review import edit_distance

if TYPE_CHECKING:
    from .service import Runtime


def _summary(values: list[float]) -> dict[str, float | int | None]:
    if not values:
        return {"count": 0, "median": None, "p90": None}
    ordered = sorted(values)
    p90 = ordered[min(len(ordered) - 1, int(round(0.9 * (len(ordered) - 1))))]
    return {"count": len(values), "median": round(statistics.median(ordered), 3), "p90": round(p90, 3)}


def compute(s: Session, pack: Pack) -> dict[str, Any]:
    """Every signal of the skill contract, from the stored packets, escalations and reviews."""
    per_trigger: Counter[str] = Counter()
    check_failures: Counter[str] = Counter()
    missing: Counter[str] = Counter()
    leaks_in_drafts = packets = 0
    breaches = 0
    hours_to_breach: list[float] = []
    for body in store.current_packet_bodies(s):
        packets += 1
        per_trigger.update(t["key"] for t in body.get("triggers", []))
        for c in body.get("checks", []):
            if not c.get("passed", True):
                check_failures[c["key"]] += 1
                if c["key"] == "update_customer_safe":
                    leaks_in_drafts += 1
        missing.update({m["key"] for m in body.get("missing_info", [])})
        sla = body.get("sla")
        if sla:
            if sla.get("breached"):
                breaches += 1
            else:
                hours_to_breach.append(_hours(body.get("as_of"), sla.get("due_at")))
    escalations = store.list_escalations(s)
    overrides: Counter[str] = Counter()
    leaks_in_edits = 0
    for r in store.all_reviews(s, actions=("override", "edit")):
        detail = r.detail or {}
        if r.action == "override":
            overrides[str(detail.get("direction", "unknown"))] += 1
        elif detail.get("findings"):
            leaks_in_edits += 1
    distances = [float(edit_distance(e.draft_update or "", e.final_update or ""))
                 for e in escalations if e.state == "sent" and e.final_update is not None]
    to_approved = [(e.approved_at - e.triggered_at).total_seconds() / 3600
                   for e in escalations if e.approved_at is not None and e.triggered_at is not None]
    n_esc = len(escalations)
    return {
        "pack": {"name": pack.name, "version": pack.version},
        "packets": packets,
        "escalations": n_esc,
        "packets_per_trigger": dict(sorted(per_trigger.items())),
        "checklist_failures": dict(sorted(check_failures.items())),
        "leaks_blocked": {"in_drafts": leaks_in_drafts, "in_reviewer_edits": leaks_in_edits,
                          "total": leaks_in_drafts + leaks_in_edits},
        "severity_overrides": {"count": sum(overrides.values()),
                               "rate": round(sum(overrides.values()) / n_esc, 4) if n_esc else 0.0,
                               "direction": dict(sorted(overrides.items()))},
        "update_edit_distance": _summary(distances),
        "missing_info_rate": {k: round(v / packets, 4) for k, v in sorted(missing.items())} if packets else {},
        "sla_breaches": {"breached": breaches, "hours_to_breach_at_trigger": _summary(hours_to_breach)},
        "time_to_approved_update_hours": _summary(to_approved),
    }


def _hours(start: str | None, end: str | None) -> float:
    from datetime import datetime

    if not start or not end:
        return 0.0
    a = datetime.fromisoformat(start.replace("Z", "+00:00"))
    b = datetime.fromisoformat(end.replace("Z", "+00:00"))
    return round((b - a).total_seconds() / 3600, 3)


class _SignalCollector(Collector):
    """Reads the signals from the database at scrape time."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime

    def collect(self) -> Iterator[Metric]:
        with self.runtime.session(read=True) as s:
            sig = compute(s, self.runtime.pack)
        yield from _families(sig)


def _families(sig: dict[str, Any]) -> Iterable[Metric]:
    g = GaugeMetricFamily("escalation_packets", "Current packets stored")
    g.add_metric([], sig["packets"])
    yield g
    g = GaugeMetricFamily("escalation_packets_per_trigger", "Current packets by trigger", labels=["trigger"])
    for k, v in sig["packets_per_trigger"].items():
        g.add_metric([k], v)
    yield g
    g = GaugeMetricFamily("escalation_checklist_failures", "Current packets failing a check", labels=["check"])
    for k, v in sig["checklist_failures"].items():
        g.add_metric([k], v)
    yield g
    g = GaugeMetricFamily("escalation_leaks_blocked", "Customer-update findings blocked", labels=["where"])
    g.add_metric(["draft"], sig["leaks_blocked"]["in_drafts"])
    g.add_metric(["reviewer_edit"], sig["leaks_blocked"]["in_reviewer_edits"])
    yield g
    g = GaugeMetricFamily("escalation_severity_overrides", "Reviewer severity overrides", labels=["direction"])
    for k, v in sig["severity_overrides"]["direction"].items():
        g.add_metric([k], v)
    yield g
    g = GaugeMetricFamily("escalation_severity_override_rate", "Overrides per escalation")
    g.add_metric([], sig["severity_overrides"]["rate"])
    yield g
    g = GaugeMetricFamily("escalation_missing_info_rate", "Share of packets missing a key", labels=["key"])
    for k, v in sig["missing_info_rate"].items():
        g.add_metric([k], v)
    yield g
    g = GaugeMetricFamily("escalation_sla_breached", "Current packets whose SLA target is breached")
    g.add_metric([], sig["sla_breaches"]["breached"])
    yield g
    for name, key in (("escalation_update_edit_distance_median", "update_edit_distance"),
                      ("escalation_time_to_approved_update_hours_median", "time_to_approved_update_hours")):
        g = GaugeMetricFamily(name, f"Median of {key.replace('_', ' ')}")
        median = sig[key]["median"]
        g.add_metric([], float(median) if median is not None else float("nan"))
        yield g


class Metrics:
    """The `/metrics` registry: stored signals plus this process's request latency."""

    def __init__(self, runtime: Runtime) -> None:
        self.registry = CollectorRegistry()
        self.registry.register(_SignalCollector(runtime))
        self.requests = Histogram("escalation_http_request_seconds", "HTTP request latency",
                                  ["method", "route", "status"], registry=self.registry)

    def observe_request(self, method: str, route: str, status: int, seconds: float) -> None:
        self.requests.labels(method, route, str(status)).observe(seconds)

    def render(self) -> tuple[bytes, str]:
        return generate_latest(self.registry), CONTENT_TYPE_LATEST
