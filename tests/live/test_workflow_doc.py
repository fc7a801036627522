"""docs/workflows/live.md is the transition table, generated."""

from pathlib import Path

from xietong.live.workflow import markdown

ROOT = Path(__file__).resolve().parents[2]


def test_committed_workflow_doc_is_the_generated_one() -> None:
    text = (ROOT / "docs" / "workflows" / "live.md").read_text(encoding="utf-8")
    assert text == markdown(), "regenerate: python -m xietong.live.workflow"
