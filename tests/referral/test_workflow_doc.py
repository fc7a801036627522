"""docs/workflows/referral-{up,exam,down}.md are the transition tables, generated."""

from pathlib import Path

import pytest

from xietong.referral.workflow import WORKFLOWS, markdown

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("kind", sorted(WORKFLOWS))
def test_committed_workflow_doc_is_the_generated_one(kind: str) -> None:
    text = (ROOT / "docs" / "workflows" / f"referral-{kind}.md").read_text(encoding="utf-8")
    assert text == markdown(kind), f"regenerate: python -m xietong.referral.workflow {kind}"
