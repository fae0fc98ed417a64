"""Plain text from what help desks store: HTML bodies, and checks on attachment content.

Evidence quotes must be verbatim from the case, so the case keeps the text a person
reads, not markup: paragraphs and list items on their own lines, code blocks kept.
"""

from __future__ import annotations

import re
from typing import Any

from bs4 import BeautifulSoup

_BLOCK = ("p", "div", "br", "li", "tr", "pre", "blockquote", "h1", "h2", "h3", "h4", "h5", "h6", "table")
_TAG = re.compile(r"</?(?:p|div|br|span|a|b|i|u|strong|em|ul|ol|li|table|tr|td|th|pre|code|blockquote|h[1-6]|img)"
                  r"\b[^<>]*>", re.IGNORECASE)
"""Real HTML tags only: plain text such as `List<Record>` or `<none>` in a log line is not markup."""


def looks_like_html(text: str) -> bool:
    return bool(_TAG.search(text))


def html_to_text(html: str) -> str:
    """The readable text of an HTML fragment, one block element a line."""
    if not looks_like_html(html):
        return html.strip()
    soup = BeautifulSoup(html, "html.parser")
    for tag in soup(["script", "style"]):
        tag.decompose()
    for br in soup.find_all("br"):
        br.replace_with("\n")
    for tag in soup.find_all(_BLOCK):
        tag.insert_before("\n")
        tag.insert_after("\n")
    for li in soup.find_all("li"):
        li.insert(0, "- ")
    text = soup.get_text()
    lines = [re.sub(r"[ \t\u00a0]+", " ", line).strip() for line in text.splitlines()]
    out: list[str] = []
    for line in lines:
        if line or (out and out[-1]):
            out.append(line)
    return "\n".join(out).strip()


def is_binary(data: bytes | str) -> bool:
    """True for content that is not text (NUL bytes or mostly non-printable): never quoted as evidence."""
    sample = data[:8192]
    if isinstance(sample, str):
        if "\x00" in sample:
            return True
        bad = sum(1 for ch in sample if ord(ch) < 32 and ch not in "\n\r\t\f")
    else:
        if b"\x00" in sample:
            return True
        bad = sum(1 for b in sample if b < 32 and b not in (9, 10, 12, 13))
    return bool(sample) and bad / len(sample) > 0.1


def attachment_lines(attachments: Any) -> list[str]:
    """One metadata line an attachment: what was attached is evidence even though the content is not read."""
    lines = []
    for att in attachments if isinstance(attachments, list) else []:
        if not isinstance(att, dict):
            continue
        name = att.get("file_name") or att.get("name") or f"attachment {att.get('id', '?')}"
        ctype = att.get("content_type") or "unknown type"
        size = att.get("size")
        lines.append(f"[attachment: {name} ({ctype}, {size} bytes)]" if isinstance(size, int)
                     else f"[attachment: {name} ({ctype})]")
    return lines
