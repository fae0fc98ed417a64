"""Error signatures from attached logs, mined with drain3 templates.

Variable parts of a log line (timestamps, ids, hosts, IPs, key=value pairs, numbers) are
masked before templating, so the same error on two accounts, hosts or days gets the same
signature. A fresh miner per case keeps the result a pure function of the case.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from drain3 import TemplateMiner
from drain3.masking import MaskingInstruction
from drain3.template_miner_config import TemplateMinerConfig

_TIMESTAMP = re.compile(
    r"^\s*(\[?\d{4}-\d{2}-\d{2}[T ][\d:.,]+(?:Z|[+-]\d{2}:?\d{2})?(?:\s+(?:UTC|GMT|[A-Z]{1,3}T))?\]?"
    r"|\d{2}-\d{2} [\d:.]+\s+\d+\s+\d+)\s*")
_ERROR_LINE = re.compile(r"\b(ERROR|FATAL|CRITICAL|E AndroidRuntime)\b|Exception\b|\bfailed\b|FAILED|"
                         r"status=5\d\d\b|->\s*5\d\d\b|\b5\d\d (?:Bad Gateway|internal_error)")
_MASKS = [
    MaskingInstruction(r"\b[\w-]+(?:\.[\w-]+)*\.(?:int|internal|local|example|corp)\b(?::\d+)?", "HOST"),
    MaskingInstruction(r"\b\d{1,3}(?:\.\d{1,3}){3}\b", "IP"),
    MaskingInstruction(r"\b[\w.-]+=\S+", "KV"),
    MaskingInstruction(r"\b[0-9a-f]{8,}(?:-[0-9a-f]{4,})*\b", "HEX"),
    MaskingInstruction(r"(?<![\w-])\d+(?:[.,:]\d+)*(?:ms|s|MB|KB)?(?![\w-])", "NUM"),
]


@dataclass(frozen=True)
class LogSignature:
    template: str        # the masked drain3 template
    count: int           # lines in the attachment with this signature
    line: str            # the first matching line, verbatim (for quoting)
    ref: str             # attachment ref


def _miner() -> TemplateMiner:
    cfg = TemplateMinerConfig()
    cfg.profiling_enabled = False
    cfg.masking_instructions = list(_MASKS)
    cfg.drain_sim_th = 0.5
    cfg.parametrize_numeric_tokens = False
    return TemplateMiner(config=cfg)


_ERROR_LINE_M = re.compile(_ERROR_LINE.pattern, re.MULTILINE)


def _error_lines(text: str) -> list[str]:
    """Lines holding an error, found in one scan of the whole text (not one search per line)."""
    out: list[str] = []
    last_end = -1
    for m in _ERROR_LINE_M.finditer(text):
        if m.start() < last_end:
            continue
        start = text.rfind("\n", 0, m.start()) + 1
        end = text.find("\n", m.end())
        end = len(text) if end < 0 else end
        out.append(text[start:end])
        last_end = end
    return out


def error_signatures(logs: list[tuple[str, str]], max_lines: int = 200_000) -> list[LogSignature]:
    """Signatures of error lines in (ref, text) log attachments, most frequent first."""
    miner = _miner()
    first: dict[int, tuple[str, str]] = {}
    counts: dict[int, int] = {}
    seen = 0
    for ref, text in logs:
        for raw in _error_lines(text):
            if seen >= max_lines:
                break
            seen += 1
            body = _TIMESTAMP.sub("", raw).strip()
            if not body:
                continue
            result = miner.add_log_message(body)
            cid = result["cluster_id"]
            counts[cid] = counts.get(cid, 0) + 1
            first.setdefault(cid, (ref, raw.strip()))
    out = []
    for cluster in miner.drain.clusters:
        cid = cluster.cluster_id
        if cid in first:
            ref, line = first[cid]
            out.append(LogSignature(template=cluster.get_template(), count=counts[cid], line=line, ref=ref))
    out.sort(key=lambda s: (-s.count, s.ref, s.line))
    return out


def signature_tokens(text: str) -> set[str]:
    """Distinctive tokens of a signature or error text, for matching across tickets."""
    return {t.lower() for t in re.findall(r"[A-Za-z][A-Za-z0-9_:-]{2,}|\b\d{3}\b", text)
            if t.lower() not in {"error", "the", "and", "for", "with", "from", "http"}}
