"""Fill empty msgstr entries of a catalog from a JSON mapping {msgid: translation}.

    python tools/po_fill.py src/xietong/locale/zh_CN/LC_MESSAGES/messages.po mapping.json

Reports the msgids that are still untranslated, so a release can be checked for gaps.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from babel.messages.pofile import read_po, write_po


def main() -> None:
    po_path, mapping_path = Path(sys.argv[1]), Path(sys.argv[2])
    mapping: dict[str, str] = json.loads(mapping_path.read_text(encoding="utf-8"))
    with po_path.open("rb") as handle:
        catalog = read_po(handle)
    missing = []
    for message in catalog:
        if not message.id or message.string:
            continue
        if isinstance(message.id, str) and message.id in mapping:
            message.string = mapping[message.id]
        else:
            missing.append(message.id)
    with po_path.open("wb") as handle:
        write_po(handle, catalog, width=100, omit_header=False, sort_output=True)
    for msgid in missing:
        print(f"untranslated: {msgid!r}")


if __name__ == "__main__":
    main()
