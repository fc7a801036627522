"""The seed of ``bench/live.py``: the consultation network of tests/consultation/conftest.py
(fast accounts, no Argon2 per user) with ``ROOMS`` consultations in progress, each with the
applicant, the village coordinator, two county coordinators and two experts taking part.

Run as ``python bench/live_seed.py OUT.json ROOMS`` in the server's environment (repository
root on PYTHONPATH) after ``xietong migrate``; writes the consultation ids and every user's
bearer header to OUT.json.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

from live_client import SLOTS
from tests.consultation.conftest import build_net, reach

from xietong.config import load_settings
from xietong.core.db import make_engine, make_session_factory, session_scope
from xietong.directory.regions import load_regions


def main(out: Path, rooms: int) -> None:
    started = time.perf_counter()
    settings = load_settings()
    engine = make_engine(settings.database_url)
    with session_scope(make_session_factory(engine)) as db:
        load_regions(db)
        net = build_net(db)
        ids = [reach(db, net, "in_progress").id for _ in range(rooms)]
        db.flush()
        data = {
            "rooms": ids,
            "tokens": {name: net.tokens[name] for name in set(SLOTS)},
            "user_ids": {name: net.p[name].user_id for name in set(SLOTS)},
        }
    engine.dispose()
    data["seconds"] = time.perf_counter() - started
    out.write_text(json.dumps(data))


if __name__ == "__main__":
    main(Path(sys.argv[1]), int(sys.argv[2]))
