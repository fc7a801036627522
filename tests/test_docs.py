"""Documentation that is generated from code stays in step with it."""

from pathlib import Path

from xietong.settings_doc import markdown

ROOT = Path(__file__).resolve().parents[1]


def test_operations_guide_has_the_current_settings_table() -> None:
    text = (ROOT / "docs" / "operations.md").read_text(encoding="utf-8")
    table = text.split("<!-- settings:begin -->\n", 1)[1].split("<!-- settings:end -->", 1)[0]
    assert table == markdown(), "regenerate with: python -m xietong.settings_doc"
