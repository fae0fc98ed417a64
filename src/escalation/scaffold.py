"""`escalate init`: a new company's policy pack, scaffolded from a commented starter.

The starter is the PagerDuty-based pack (its YAML explains every section for a support ops
lead); the Lumen pack is used when it is absent. The copy gets the company's skill name, owner
and a draft version, keeps the starter's golden cases as worked examples, and is validated
before the command returns.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

from .errors import InputError
from .pack import RELEASES_FILE, Pack, load_pack

PACKS = Path(__file__).resolve().parent / "packs"
STARTERS = ("pagerduty", "lumen")


def starter_dir() -> Path:
    for name in STARTERS:
        if (PACKS / name / "skill.yaml").exists():
            return PACKS / name
    raise InputError("no starter pack is installed with escalate")


def scaffold(dest: Path, *, name: str, owner: str) -> Pack:
    """Copy the starter to `dest`, make it the company's, and load it (validating every file)."""
    if not re.fullmatch(r"[a-z0-9]+(?:-[a-z0-9]+)*", name) or len(name) > 64:
        raise InputError(f"skill name {name!r}: use lowercase letters, digits and hyphens (at most 64)")
    if not owner.strip():
        raise InputError("--owner: name the person or role who owns and releases the pack")
    if dest.exists() and any(dest.iterdir()):
        raise InputError(f"{dest}: exists and is not empty; choose a new folder")
    src = starter_dir()
    shutil.copytree(src, dest, dirs_exist_ok=True, ignore=shutil.ignore_patterns(RELEASES_FILE, "__pycache__"))
    skill = dest / "skill.yaml"
    text = skill.read_text(encoding="utf-8")
    text = re.sub(r"(?m)^name:.*$", f"name: {name}", text, count=1)
    text = re.sub(r"(?m)^version:.*$", 'version: "0.1.0-draft"   # bump on every change; release with '
                  "escalate policy release", text, count=1)
    text = re.sub(r"(?m)^owner:.*$", f"owner: {owner}", text, count=1)
    skill.write_text(text, encoding="utf-8")
    return load_pack(dest)
