"""A readable terminal rendering of a packet, for people (rich)."""

from __future__ import annotations

from rich.console import Console, Group
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from .packet import Packet


def render_packet(packet: Packet, console: Console) -> None:
    sev = packet.severity
    head = Text.assemble((f"{sev.level}", "bold red" if sev.level in ("Sev1", "Sev2") else "bold yellow"),
                         f"  {packet.product_area} → {packet.owner.team}",
                         ("  NEEDS REVIEW" if packet.needs_review else "  checks passed",
                          "bold red" if packet.needs_review else "green"))
    meta = Table.grid(padding=(0, 2))
    meta.add_row("case", f"{packet.case_id} (ticket {packet.ticket_id}) as of {packet.as_of}")
    meta.add_row("policy", f"{packet.pack.name} {packet.pack.version} {packet.pack.content_hash[:19]}…")
    meta.add_row("severity", f"{sev.rationale}" + (f" (recorded: {sev.recorded})" if sev.recorded else ""))
    if sev.would_change:
        meta.add_row("would change", "; ".join(sev.would_change))
    meta.add_row("triggers", ", ".join(t.key for t in packet.triggers) or "none")
    if packet.sla is not None:
        s = packet.sla
        state = "BREACHED" if s.breached else ("at risk" if s.at_risk else "on track")
        meta.add_row("SLA", f"{s.target.replace('_', ' ')} ({s.target_text}) due {s.due_at} — {state}")
    meta.add_row("workaround", "yes" if packet.workaround.exists else "no")
    console.print(Panel(Group(head, meta), title="escalation packet", expand=True))
    console.print(Panel(packet.summary, title="internal summary", expand=True))

    actions = Table(title="next actions", expand=True)
    for col in ("who", "what", "by when", "§"):
        actions.add_column(col)
    for a in packet.next_actions:
        actions.add_row(a.actor, a.action, a.due, a.section)
    console.print(actions)
    if packet.missing_info:
        missing = Table(title="missing information (ask the customer)", expand=True)
        missing.add_column("key")
        missing.add_column("question")
        for m in packet.missing_info:
            missing.add_row(m.key, m.question)
        console.print(missing)
    console.print(Panel(packet.customer_update, title="customer update (draft — needs human approval)",
                        border_style="cyan", expand=True))
    checks = Table(title="review checklist", expand=True)
    checks.add_column("check")
    checks.add_column("result")
    for c in packet.checks:
        checks.add_row(c.key, "pass" if c.passed else "FAIL: " + "; ".join(c.details[:3]))
    console.print(checks)
    console.print(f"[dim]{len(packet.claims)} claims, each with sources; see --format json[/dim]")
