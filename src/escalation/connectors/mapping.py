"""Field mapping: which vendor field holds the tier, severity, product area or owner.

Help desks keep these in custom fields, organization fields or tags, and every company
names them differently, so the mapping is pack configuration (`connectors.yaml`), not
code. A mapping names, per case field, sources tried in order; the first that yields a
value wins:

    zendesk:
      tier:
        - {path: "organization.organization_fields.support_tier"}
        - {tags: {tier_enterprise: enterprise, tier_business: business}}
        - {default: standard}
      product_area:
        - {path: "ticket.custom_fields[id=360001].value", values: {exports_api: exports}}

A `path` is read from the documents the importer names (for Zendesk: `ticket`,
`organization`, `requester`): dotted keys, `[3]` for a list index, `[id=360001]` for
the first list element whose `id` is that value, and `[*]` for every element (with
`values`, the first element that maps wins). `values` translates vendor values to the
pack's keys; with `values` given, an unlisted value does not match.
"""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

CaseField = Literal["tier", "account_id", "account_name", "account_owner", "account_owner_email", "timezone",
                    "product_area", "severity", "engineering_owner", "priority"]
"""The case fields a mapping may fill."""

_SEGMENT = re.compile(r"([^.\[\]]+)|\[(\*|\d+|[^=\]]+=[^\]]*)\]")


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class FieldSource(_Model):
    """One place a value may come from: exactly one of `path`, `tags` or `default`."""

    path: str | None = None
    tags: dict[str, str] | None = None
    default: str | None = None
    values: dict[str, str] | None = None

    @model_validator(mode="after")
    def _one_kind(self) -> FieldSource:
        kinds = [k for k in ("path", "tags", "default") if getattr(self, k) is not None]
        if len(kinds) != 1:
            raise ValueError("give exactly one of path, tags or default"
                             + (f" (got {', '.join(kinds)})" if kinds else ""))
        if self.path is not None:
            parse_path(self.path)
        return self


class VendorMapping(_Model):
    """How one vendor's payloads fill the case; fields not named keep the importer's defaults."""

    fields: dict[CaseField, list[FieldSource]] = Field(default_factory=dict)
    staff_email_domains: list[str] = Field(default_factory=list)
    """Senders at these domains are staff (agents), everyone else a customer (e-mail, Bugzilla)."""


class ConnectorConfig(_Model):
    """The pack's `connectors.yaml`: one mapping per vendor, all optional."""

    zendesk: VendorMapping = VendorMapping()
    jira: VendorMapping = VendorMapping()
    freshdesk: VendorMapping = VendorMapping()
    email: VendorMapping = VendorMapping()
    bugzilla: VendorMapping = VendorMapping()

    def for_vendor(self, vendor: str) -> VendorMapping:
        mapping: VendorMapping = getattr(self, vendor)
        return mapping


def parse_path(path: str) -> list[str | int | tuple[str, str] | None]:
    """Split a path into keys, list indexes, (key, value) selectors and None for `[*]`."""
    out: list[str | int | tuple[str, str] | None] = []
    pos = 0
    text = path.strip()
    while pos < len(text):
        if text[pos] == ".":
            pos += 1
            continue
        m = _SEGMENT.match(text, pos)
        if not m:
            raise ValueError(f"path {path!r}: cannot read it at character {pos + 1}; "
                             "write keys separated by dots, [N], [key=value] or [*]")
        key, sel = m.groups()
        if key is not None:
            out.append(key)
        elif sel == "*":
            out.append(None)
        elif sel.isdigit():
            out.append(int(sel))
        else:
            k, _, v = sel.partition("=")
            out.append((k.strip(), v.strip()))
        pos = m.end()
    if not out:
        raise ValueError(f"path {path!r} is empty")
    return out


def read_path(docs: dict[str, Any], path: str) -> list[Any]:
    """Every value the path reaches in `docs` (empty when it reaches nothing)."""
    current: list[Any] = [docs]
    for seg in parse_path(path):
        nxt: list[Any] = []
        for node in current:
            if isinstance(seg, str):
                if isinstance(node, dict) and seg in node:
                    nxt.append(node[seg])
            elif isinstance(seg, int):
                if isinstance(node, list) and -len(node) <= seg < len(node):
                    nxt.append(node[seg])
            elif seg is None:
                if isinstance(node, list):
                    nxt.extend(node)
            else:
                k, v = seg
                if isinstance(node, list):
                    hit = next((x for x in node if isinstance(x, dict) and str(x.get(k)) == v), None)
                    if hit is not None:
                        nxt.append(hit)
        current = nxt
    flat: list[Any] = []
    for v in current:
        flat.extend(v if isinstance(v, list) else [v])
    return [v for v in flat if v is not None and v != ""]


def _scalar(v: Any) -> str | None:
    if isinstance(v, dict):  # Jira option objects: {"value": "..."} or {"name": "..."}
        v = v.get("value", v.get("name"))
    if isinstance(v, bool) or v is None:
        return None
    return str(v).strip() or None


def resolve(sources: list[FieldSource], docs: dict[str, Any], tags: list[str]) -> str | None:
    """The first value the sources yield, translated through `values` when given."""
    for src in sources:
        if src.default is not None:
            return src.default
        if src.tags is not None:
            for tag in tags:
                if tag in src.tags:
                    return src.tags[tag]
            continue
        assert src.path is not None
        for raw in read_path(docs, src.path):
            value = _scalar(raw)
            if value is None:
                continue
            if src.values is None:
                return value
            if value in src.values:
                return src.values[value]
    return None


def apply(mapping: VendorMapping, docs: dict[str, Any], tags: list[str]) -> dict[str, str]:
    """Every mapped case field that resolves to a value."""
    out: dict[str, str] = {}
    for name, sources in mapping.fields.items():
        value = resolve(sources, docs, tags)
        if value is not None:
            out[name] = value
    return out
