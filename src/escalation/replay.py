"""Replay: what a policy change would change, case by case, before it is released.

Every case is assessed under the old and the new pack; the report lists severity moves with the
deciding rules, owner and trigger changes, SLA targets that tighten and (with `checks=True`)
checks that newly fail. When the two packs share everything extraction reads (vocabulary,
routing, required information, trigger parameters, documents), facts are extracted once and
assessed twice — the common case of a rule, SLA or action change.
"""

from __future__ import annotations

import hashlib
import html
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict

from .assessment import Assessment, assess
from .case import Case, load_case
from .documents import index_for
from .engine import run
from .evidence import collect
from .facts import extract
from .pack import Pack, load_pack


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class PackRef(_Model):
    name: str
    version: str
    content_hash: str


class Side(_Model):
    severity: str
    rule: str
    section: str
    owner: str
    triggers: list[str]
    sla_target: str | None
    sla_due: str | None
    failing_checks: list[str] = []


class CaseChange(_Model):
    case_id: str
    severity: Literal["up", "down", "same"]
    old: Side
    new: Side
    owner_changed: bool
    triggers_added: list[str]
    triggers_removed: list[str]
    sla_tightened: bool
    checks_newly_failing: list[str]


class ReplayReport(_Model):
    old_pack: PackRef
    new_pack: PackRef
    cases: int
    changed: list[CaseChange]
    severity_up: int
    severity_down: int
    owner_changed: int
    triggers_changed: int
    sla_tightened: int
    checks_newly_failing: int
    facts_shared: bool
    seconds: float


def extraction_key(pack: Pack) -> str:
    """What fact extraction reads from a pack; equal keys mean equal facts for any case."""
    h = hashlib.sha256()
    for part in (pack.vocabulary, pack.routing, pack.required_info, pack.triggers):
        h.update(part.model_dump_json().encode())
    for name, text in sorted(pack.docs.items()):
        h.update(name.encode() + b"\0" + text.encode())
    h.update(pack.handbook.encode())
    return h.hexdigest()


def _side_from_assessment(a: Assessment) -> Side:
    sla = a.sla
    return Side(severity=a.severity.level, rule=a.severity.rule.id, section=a.severity.rule.section,
                owner=a.owner.team, triggers=[t.key for t in a.triggers],
                sla_target=f"{sla.kind} {sla.target_text}" if sla else None,
                sla_due=sla.due_at.strftime("%Y-%m-%dT%H:%M:%SZ") if sla else None)


def _sides(case: Case, old: Pack, new: Pack, share: bool, checks: bool) -> tuple[Side, Side]:
    if checks:
        out = []
        for pack in (old, new):
            p = run(case, pack)
            sla = p.sla
            out.append(Side(severity=p.severity.level, rule=p.severity.rule, section=p.severity.section,
                            owner=p.owner.team, triggers=[t.key for t in p.triggers],
                            sla_target=f"{sla.target} {sla.target_text}" if sla else None,
                            sla_due=sla.due_at if sla else None,
                            failing_checks=[c.key for c in p.checks if not c.passed]))
        return out[0], out[1]
    ev_old = collect(case, old)
    facts_old = extract(ev_old, old, index_for(old), lean=True)
    a_old = assess(ev_old, facts_old, old, explain=False)
    if share:  # same documents and vocabulary: the same evidence and facts serve both packs
        a_new = assess(ev_old, facts_old, new, explain=False)
    else:
        ev_new = collect(case, new)
        a_new = assess(ev_new, extract(ev_new, new, index_for(new), lean=True), new, explain=False)
    return _side_from_assessment(a_old), _side_from_assessment(a_new)


def compare(case: Case, old: Pack, new: Pack, *, share: bool, checks: bool = False) -> CaseChange:
    """One case under both packs."""
    a, b = _sides(case, old, new, share, checks)
    levels = new.severity.levels
    ra = levels.index(a.severity) if a.severity in levels else len(levels)
    rb = levels.index(b.severity) if b.severity in levels else len(levels)
    tightened = bool(a.sla_due and b.sla_due and b.sla_due < a.sla_due)
    return CaseChange(
        case_id=case.id, severity="up" if rb < ra else "down" if rb > ra else "same", old=a, new=b,
        owner_changed=a.owner != b.owner,
        triggers_added=sorted(set(b.triggers) - set(a.triggers)),
        triggers_removed=sorted(set(a.triggers) - set(b.triggers)),
        sla_tightened=tightened,
        checks_newly_failing=sorted(set(b.failing_checks) - set(a.failing_checks)),
    )


def _is_change(c: CaseChange) -> bool:
    return (c.severity != "same" or c.owner_changed or bool(c.triggers_added or c.triggers_removed)
            or c.sla_tightened or bool(c.checks_newly_failing) or c.old.rule != c.new.rule)


# ---------------------------------------------------------------- workers

_WORKER: dict[str, object] = {}


def _init_worker(old_dir: str, new_dir: str, checks: bool) -> None:
    old, new = load_pack(Path(old_dir)), load_pack(Path(new_dir))
    _WORKER.update(old=old, new=new, share=extraction_key(old) == extraction_key(new), checks=checks)


def _work(paths: list[str]) -> list[CaseChange]:
    old, new = _WORKER["old"], _WORKER["new"]
    assert isinstance(old, Pack) and isinstance(new, Pack)
    return [compare(load_case(Path(p)), old, new, share=bool(_WORKER["share"]), checks=bool(_WORKER["checks"]))
            for p in paths]


def _chunks(items: list[str], size: int) -> Iterator[list[str]]:
    for i in range(0, len(items), size):
        yield items[i:i + size]


def replay(case_paths: Iterable[Path], old: Pack, new: Pack, *, checks: bool = False, workers: int = 1,
           progress: Callable[[int], None] | None = None) -> ReplayReport:
    """Replay case files under two packs; `workers` > 1 spreads them over processes."""
    t0 = time.perf_counter()
    paths = [str(p) for p in case_paths]
    share = extraction_key(old) == extraction_key(new)
    results: list[CaseChange] = []
    if workers <= 1 or len(paths) < 200:
        for p in paths:
            results.append(compare(load_case(Path(p)), old, new, share=share, checks=checks))
            if progress:
                progress(1)
    else:
        with ProcessPoolExecutor(max_workers=workers, initializer=_init_worker,
                                 initargs=(str(old.root), str(new.root), checks)) as pool:
            for batch in pool.map(_work, _chunks(paths, 100)):
                results.extend(batch)
                if progress:
                    progress(len(batch))
    changed = [c for c in results if _is_change(c)]
    return ReplayReport(
        old_pack=PackRef(name=old.name, version=old.version, content_hash=old.content_hash),
        new_pack=PackRef(name=new.name, version=new.version, content_hash=new.content_hash),
        cases=len(results), changed=changed,
        severity_up=sum(c.severity == "up" for c in changed),
        severity_down=sum(c.severity == "down" for c in changed),
        owner_changed=sum(c.owner_changed for c in changed),
        triggers_changed=sum(bool(c.triggers_added or c.triggers_removed) for c in changed),
        sla_tightened=sum(c.sla_tightened for c in changed),
        checks_newly_failing=sum(bool(c.checks_newly_failing) for c in changed),
        facts_shared=share, seconds=round(time.perf_counter() - t0, 3),
    )


def to_html(report: ReplayReport) -> str:
    """A self-contained HTML page of the report, for the review of a pack change."""
    e = html.escape
    rows = []
    for c in report.changed:
        sev = e(c.old.severity) + (" → " + e(c.new.severity) if c.severity != "same" else "")
        rule = e(f"{c.old.rule} ({c.old.section})") + (" → " + e(f"{c.new.rule} ({c.new.section})")
                                                      if c.old.rule != c.new.rule else "")
        owner = e(c.old.owner) + (" → " + e(c.new.owner) if c.owner_changed else "")
        trig = " ".join([f"+{e(t)}" for t in c.triggers_added] + [f"−{e(t)}" for t in c.triggers_removed])
        sla = (e(f"{c.old.sla_target} → {c.new.sla_target}") if c.sla_tightened else "")
        rows.append(f"<tr class='{c.severity}'><td>{e(c.case_id)}</td><td>{sev}</td><td>{rule}</td><td>{owner}</td>"
                    f"<td>{trig}</td><td>{sla}</td><td>{e(', '.join(c.checks_newly_failing))}</td></tr>")
    o, n = report.old_pack, report.new_pack
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Replay {e(o.version)} → {e(n.version)}</title>
<style>body{{font:14px system-ui,sans-serif;margin:2em}}table{{border-collapse:collapse}}
td,th{{border:1px solid #ccc;padding:4px 8px;text-align:left}}tr.up td:nth-child(2){{color:#b00}}
tr.down td:nth-child(2){{color:#070}}</style></head><body>
<h1>Policy replay: {e(o.name)} {e(o.version)} → {e(n.name)} {e(n.version)}</h1>
<p>{report.cases} cases; {len(report.changed)} change: severity up {report.severity_up}, down {report.severity_down};
owner {report.owner_changed}; triggers {report.triggers_changed}; SLA tightened {report.sla_tightened};
checks newly failing {report.checks_newly_failing}. Packs {e(o.content_hash[:19])}… → {e(n.content_hash[:19])}….</p>
<table><tr><th>case</th><th>severity</th><th>deciding rule</th><th>owner</th><th>triggers</th><th>SLA</th>
<th>checks newly failing</th></tr>
{''.join(rows)}
</table></body></html>
"""
