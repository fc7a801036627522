"""Every user-facing string in the code and templates has a zh-CN translation."""

from pathlib import Path

from babel.messages.extract import extract_from_dir

from xietong.core.i18n import translations

SRC = Path(__file__).resolve().parents[2] / "src"
METHOD_MAP = [("**.py", "python"), ("**/templates/**.html", "jinja2")]
OPTIONS = {"**/templates/**.html": {"extensions": "jinja2.ext.i18n"}}


def _msgids() -> set[str]:
    found: set[str] = set()
    for _file, _line, message, _comments, _context in extract_from_dir(
        str(SRC), METHOD_MAP, OPTIONS, keywords={"_": None, "N_": None}
    ):
        if isinstance(message, str) and message:
            found.add(message)
    return found


def test_every_message_is_translated_to_chinese() -> None:
    zh = translations("zh_CN")
    missing = sorted(m for m in _msgids() if zh.gettext(m) == m)
    assert missing == [], f"run `make messages` and translate: {missing}"
