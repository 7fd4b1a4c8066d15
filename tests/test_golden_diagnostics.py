"""Each bad file in tests/golden/diagnostics prints exactly its golden diagnostic.

Set KONVERGE_REGEN=1 to rewrite the .expected files after a deliberate change
(and read the diff before committing it).
"""

import contextlib
import io
import os
from pathlib import Path

import pytest

from engine.cli import main

ROOT = Path(__file__).resolve().parent.parent
CASES = sorted(p for p in (ROOT / "tests/golden/diagnostics").glob("*.konv"))


def run_cli(args: list[str]) -> str:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(args)
    return f"exit: {code}\n--- stdout\n{out.getvalue()}--- stderr\n{err.getvalue()}"


def test_there_are_at_least_25_distinct_golden_diagnostics():
    codes = {p.name.split("_")[0] for p in CASES if p.name[0] in "ew" and p.name[1:4].isdigit()}
    assert len(codes) >= 25


@pytest.mark.parametrize("case", CASES, ids=[p.stem for p in CASES])
def test_bad_file_prints_its_golden_diagnostic(case: Path, monkeypatch):
    monkeypatch.chdir(ROOT)
    rel = case.relative_to(ROOT).as_posix()
    got = run_cli(["check", "--no-std", rel])
    expected_path = case.with_suffix(".expected")
    if os.environ.get("KONVERGE_REGEN"):
        expected_path.write_text(got, encoding="utf-8")
    assert got == expected_path.read_text(encoding="utf-8")
