"""`make bench-instructions` reads the instruction count from callgrind's output file."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
sys.path.insert(0, str(ROOT / "bench"))

from instructions import instructions_in  # noqa: E402


def test_the_count_is_the_files_last_total(tmp_path: Path) -> None:
    dump = tmp_path / "callgrind.out.1"
    dump.write_text(
        "# callgrind format\nversion: 1\ncreator: callgrind-3.19.0\npid: 1\ncmd:  python -m server\n"
        "part: 1\nevents: Ir\nsummary: 2013140719\n\nfl=(1) loop.c\nfn=(1) run\n16 5\n"
        "totals: 2013140720\n"
    )
    assert instructions_in(dump) == 2_013_140_720


def test_a_file_without_totals_is_an_error(tmp_path: Path) -> None:
    dump = tmp_path / "callgrind.out.1"
    dump.write_text("# callgrind format\nevents: Ir\n")
    with pytest.raises(SystemExit, match="no totals"):
        instructions_in(dump)
