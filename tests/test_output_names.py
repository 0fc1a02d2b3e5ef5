"""One output-name rule: genfx.request.output_name against the golden table the ES3 port is held to too
(ae_bridge/tests/output_names.test.js), and against what the server accepts."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from genfx.request import output_name
from inference_server.validation import valid_output_name as server_accepts

GOLDEN = Path(__file__).parent / "golden" / "output_names.json"
CASES: list[dict[str, Any]] = json.loads(GOLDEN.read_text(encoding="utf-8"))["cases"]


def test_the_table_has_the_tricky_cases() -> None:
    texts = [c["text"] for c in CASES]
    assert len(texts) == len(set(texts)) >= 40
    assert any("\n" in t for t in texts) and any(len(t) >= 70 for t in texts)
    assert any(t.startswith(".") for t in texts) and any(t.startswith("-") for t in texts)
    assert any(".." in t for t in texts) and any(t.endswith(".") for t in texts)
    assert any(not t.isascii() for t in texts) and any(ord(ch) > 0xFFFF for t in texts for ch in t)
    assert "" in texts


@pytest.mark.parametrize("case", CASES, ids=[c["why"] for c in CASES])
def test_golden_names(case: dict[str, Any]) -> None:
    name = output_name(case["text"])
    assert name == case["name"]
    # Empty means "the server's default name"; anything else the server takes as it is.
    assert name == "" or server_accepts(name)
    assert output_name(name) == name


@given(st.text(max_size=200))
def test_any_text_gives_a_name_the_server_accepts_or_empty(text: str) -> None:
    name = output_name(text)
    assert name == "" or server_accepts(name)
    assert output_name(name) == name


@given(st.from_regex(r"\A[A-Za-z0-9_][A-Za-z0-9_.-]{0,63}\Z").filter(server_accepts))
def test_a_name_the_server_accepts_is_left_alone(name: str) -> None:
    assert output_name(name) == name
