"""Fill empty msgstr entries of a catalog from a JSON mapping {msgid: translation}.

    python tools/po_fill.py src/xietong/locale/zh_CN/LC_MESSAGES/messages.po mapping.json

Plural entries are filled from their singular msgid. Reports the msgids still untranslated,
so a release can be checked for gaps.
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
    plural_forms = catalog.num_plurals
    for message in catalog:
        translated = (
            any(message.string) if isinstance(message.string, tuple) else bool(message.string)
        )
        if not message.id or translated:
            continue
        # A plural entry is looked up by its singular msgid; zh_CN has one plural form, so
        # the one translation fills every form.
        key = message.id[0] if isinstance(message.id, tuple) else message.id
        if key in mapping:
            value = mapping[key]
            plural = isinstance(message.id, tuple)
            message.string = tuple([value] * plural_forms) if plural else value
        else:
            missing.append(key)
    with po_path.open("wb") as handle:
        write_po(handle, catalog, width=100, omit_header=False, sort_output=True)
    for msgid in missing:
        print(f"untranslated: {msgid!r}")


if __name__ == "__main__":
    main()
