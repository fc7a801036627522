"""The consultation network of tests/consultation/conftest.py, with one consultation in
progress, for tests against a live server.

Run as ``python -m tests.web.realtime.seed OUT.json`` in the server's environment after
``xietong migrate``; writes the consultation id, the other consultation ids and every
user's bearer header to OUT.json.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from tests.consultation.conftest import build_net, reach
from xietong.config import load_settings
from xietong.core.db import make_engine, make_session_factory, session_scope
from xietong.directory.regions import load_regions


def main(out: Path) -> None:
    settings = load_settings()
    engine = make_engine(settings.database_url)
    with session_scope(make_session_factory(engine)) as db:
        load_regions(db)
        net = build_net(db)
        open_one = reach(db, net, "in_progress")
        second = reach(db, net, "in_progress")
        db.flush()
        data = {
            "consultation": open_one.id,
            "second": second.id,
            "tokens": net.tokens,
            "user_ids": {name: p.user_id for name, p in net.p.items()},
        }
    engine.dispose()
    out.write_text(json.dumps(data))


if __name__ == "__main__":
    main(Path(sys.argv[1]))
