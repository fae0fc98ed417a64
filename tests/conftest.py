"""Shared fixtures: the bundled pack, the bundled demo cases, and the eval corpus when present."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from escalation.case import Case, load_case
from escalation.cli import app
from escalation.pack import Pack, load_pack

ROOT = Path(__file__).resolve().parent.parent
PACK_DIR = ROOT / "examples" / "lumen"
DEMO_DIR = ROOT / "src" / "escalation" / "demo"
EVAL_DIR = ROOT.parent / "shared" / "eval" / "cases"


@pytest.fixture(scope="session")
def pack() -> Pack:
    return load_pack(PACK_DIR)


@pytest.fixture(scope="session")
def lumen(pack: Pack) -> Pack:
    """The bundled Lumen pack, by name, for tests that use several packs or read better naming it."""
    return pack


def demo_case_paths() -> list[Path]:
    return sorted(DEMO_DIR.glob("*.case.json"))


def eval_case_paths() -> list[Path]:
    """The shared eval cases (never their gold labels); empty when ../shared is absent."""
    return sorted(EVAL_DIR.glob("*.case.json")) if EVAL_DIR.is_dir() else []


def all_case_paths() -> list[Path]:
    return demo_case_paths() + eval_case_paths()


@pytest.fixture(scope="session")
def cases() -> list[Case]:
    paths = all_case_paths()
    if not paths:
        pytest.skip("no demo or eval cases found")
    return [load_case(p) for p in paths]


@pytest.fixture
def pack_dir(tmp_path: Path) -> Path:
    """A private copy of the bundled Lumen pack (the examples/lumen symlink resolved), to change freely."""
    dst = tmp_path / "lumen"
    shutil.copytree(PACK_DIR.resolve(), dst)
    return dst


def escalate(*args: str | Path) -> Result:
    """Run the CLI in-process, wide enough that tables do not fold."""
    return CliRunner(env={"COLUMNS": "200"}).invoke(app, [str(a) for a in args])
