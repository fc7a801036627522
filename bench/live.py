"""Live fan-out over /ws: 1,000 WebSocket clients in rooms of 10, against a bare broadcast.

The issue's figure (issue 7): fan-out latency p50 and p99 and messages per second with
1,000 concurrent WebSocket clients in rooms of 10, in-process and through Redis.

Seeds a fresh data folder (100 consultations in progress through the services, bearer
tokens for the applicant, the village coordinator, two county coordinators and two experts;
bench/live_seed.py), serves it with ``xietong serve`` and opens 1,000 sockets from a client
process (bench/live_client.py), ten per consultation, each subscribed to its conversation.
Two sockets per room post at a fixed rate, the send time in the text; every socket (the
sender's too) records receive − send for every message of its room and must get each one
exactly once, in order. Then the rate doubles until the server no longer keeps up
(sustainable: nothing missing or doubled, every post acknowledged, p99 ≤ 500 ms, and the
client posting on schedule: p99 of its lateness ≤ 50 ms), with one step between the last
good and the first bad rate.

Modes: one app process with the in-process broadcaster; two app processes with
XIETONG_REDIS_URL, the sockets of each room split between them and the two posters on
different processes, so every message crosses Redis. The reference, driven the same way in
the same run, is bench/live_reference.py: Starlette on the same uvicorn, in-memory rooms, no
database (and, for the Redis mode, two processes relaying through Redis pub/sub).

    make bench-live                           # about 6 minutes
    .venv/bin/python bench/live.py --quick    # 10 rooms, short phases (smoke)
    .venv/bin/python bench/live.py --pg --json live.json
"""

from __future__ import annotations

import argparse
import json
import math
import multiprocessing
import os
import resource
import shutil
import signal
import sys
import tempfile
import time
from contextlib import suppress
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from live_client import SLOTS, Slot, worker_main
from live_report import (
    POSTERS,
    SLO_MS,
    Result,
    Scenario,
    machine,
    percentile,
    plain,
    print_report,
)
from live_servers import (
    REDIS_URL,
    cpu_seconds,
    http_status,
    postgres,
    redis_pid,
    redis_up,
    seed,
    servers,
    xietong_env,
)

# Clients ----------------------------------------------------------------------------------


@dataclass
class Clients:
    """The client processes and their pipes."""

    procs: list[Any] = field(default_factory=list)
    pipes: list[Any] = field(default_factory=list)

    def start(self, groups: list[list[Slot]], deflate: bool) -> list[dict[str, Any]]:
        context = multiprocessing.get_context("spawn")
        for slots in groups:
            parent, child = context.Pipe()
            proc = context.Process(target=worker_main, args=(child, slots, deflate))
            proc.start()
            self.procs.append(proc)
            self.pipes.append(parent)
        return [pipe.recv() for pipe in self.pipes]

    def phase(self, spec: dict[str, Any]) -> list[dict[str, Any]]:
        for pipe in self.pipes:
            pipe.send(("phase", spec))
        return [pipe.recv() for pipe in self.pipes]

    def stop(self) -> None:
        for pipe in self.pipes:
            with suppress(OSError):
                pipe.send(("close", None))
        for pipe in self.pipes:
            with suppress(OSError, EOFError):
                pipe.recv()
        for proc in self.procs:
            proc.join(timeout=20)
            if proc.is_alive():
                proc.kill()


def slots_for(
    rooms: list[str], headers: dict[str, dict[str, str]], urls: list[str], per_room: int
) -> list[Slot]:
    """Ten sockets per room; socket j of a room on server j mod the number of servers, so
    the two posters of a room are on different processes when there are two."""
    return [
        Slot(urls[j % len(urls)], headers[SLOTS[j % len(SLOTS)]], room, j < POSTERS)
        for room in rooms
        for j in range(per_room)
    ]


# Measuring ----------------------------------------------------------------------------------


def run_phase(
    clients: Clients, name: str, rate: float, seconds: float, posters: int, pids: list[int]
) -> Result:
    rpid = redis_pid()
    before = [cpu_seconds(pid) for pid in pids], cpu_seconds(rpid) if rpid else 0.0
    wall = time.monotonic()
    spec = {
        "name": name,
        "start_at": time.monotonic() + 0.5,
        "seconds": seconds,
        "rate_per_poster": rate / posters,
        "drain_seconds": max(15.0, seconds * 2),
    }
    parts = clients.phase(spec)
    wall = time.monotonic() - wall
    server_cpu = sum(cpu_seconds(p) - b for p, b in zip(pids, before[0], strict=True)) / wall
    redis_cpu = ((cpu_seconds(rpid) if rpid else 0.0) - before[1]) / wall
    latencies = [x for part in parts for x in part["latencies"]]
    start = spec["start_at"]
    last_ack = max(p["last_ack"] for p in parts) or start + seconds
    last_receive = max(p["last_receive"] for p in parts) or start + seconds

    def total(key: str) -> int:
        return int(sum(p[key] for p in parts))

    return Result(
        rate=rate,
        posted_per_s=total("acked") / max(seconds, last_ack - start),
        delivered_per_s=total("delivered") / max(seconds, last_receive - start),
        p50_ms=percentile(latencies, 0.50) * 1000,
        p99_ms=percentile(latencies, 0.99) * 1000,
        max_ms=max(latencies, default=math.nan) * 1000,
        posted=total("posted"),
        acked=total("acked"),
        delivered=total("delivered"),
        expected=total("expected"),
        missing=total("missing"),
        doubled=total("doubled"),
        out_of_order=total("out_of_order"),
        errors=total("error_count"),
        closed_sockets=total("closed_sockets"),
        send_lag_p99_ms=percentile([x for p in parts for x in p["send_lags"]], 0.99) * 1000,
        client_cpu=sum(p["client_cpu_seconds"] for p in parts) / wall,
        server_cpu=server_cpu,
        redis_cpu=redis_cpu,
        load=os.getloadavg()[0],
        samples=[e for p in parts for e in p["errors"]][:3],
    )


def drive(name: str, urls: list[str], pids: list[int], slots: list[Slot], args: Any) -> Scenario:
    """Open every socket, warm up, measure the fixed rate, then look for the maximum."""
    rooms = len({s.room for s in slots})
    posters = rooms * POSTERS
    # Keep each room within one client process (slots are listed room by room).
    per_room = args.per_room
    by_room = [slots[i : i + per_room] for i in range(0, len(slots), per_room)]
    groups = [[s for room in by_room[i :: args.clients] for s in room] for i in range(args.clients)]
    clients = Clients()
    try:
        opened = clients.start(groups, args.deflate)
        summary = {
            "sockets": sum(o["subscribed"] for o in opened),
            "open_seconds": max(o["open_seconds"] for o in opened),
            "subscribe_seconds": max(o["subscribe_seconds"] for o in opened),
            "open_failures": sum(o["open_failure_count"] for o in opened),
            "samples": [f for o in opened for f in o["open_failures"] + o["subscribe_failures"]],
        }
        print(
            f"  {name}: {summary['sockets']}/{len(slots)} sockets subscribed in "
            f"{summary['open_seconds'] + summary['subscribe_seconds']:.1f} s"
            + (f"; failures: {summary['samples'][:2]}" if summary["samples"] else ""),
            flush=True,
        )
        # Does the process still answer plain HTTP with every socket open?
        summary["http_while_open"] = [http_status(url) for url in urls]
        print(f"  {name}: GET /healthz with the sockets open: {summary['http_while_open']}")
        scenario = Scenario(name, summary)
        run_phase(clients, "warm", args.rate, args.warmup, posters, pids)
        scenario.fixed = run_phase(clients, "fixed", args.rate, args.seconds, posters, pids)
        _show(name, scenario.fixed)
        if args.max:
            _ladder(clients, scenario, posters, pids, args)
        return scenario
    finally:
        clients.stop()


def _ladder(clients: Clients, scenario: Scenario, posters: int, pids: list[int], args: Any) -> None:
    """Double the rate from the fixed one until it is no longer sustainable (or halve it
    until it is), then try once between the last good and the first bad rate."""
    assert scenario.fixed is not None
    up = scenario.fixed.sustainable(SLO_MS)
    good, bad = (args.rate, None) if up else (None, args.rate)
    rate = args.rate * 2 if up else args.rate / 2
    for step in range(args.max_steps):
        result = run_phase(clients, f"max{step}", rate, args.seconds, posters, pids)
        scenario.ladder.append(result)
        _show(scenario.name, result)
        if result.sustainable(SLO_MS) != up:
            good, bad = (good, rate) if up else (rate, bad)
            break
        good, bad = (rate, bad) if up else (good, rate)
        rate = rate * 2 if up else rate / 2
    if good is not None and bad is not None:
        result = run_phase(clients, "maxmid", math.sqrt(good * bad), args.seconds, posters, pids)
        scenario.ladder.append(result)
        _show(scenario.name, result)
    scenario.ladder.append(scenario.fixed)


def _show(name: str, r: Result) -> None:
    mark = "ok " if r.sustainable(SLO_MS) else "NOT"
    print(
        f"  {name:28} {r.rate:7.0f} posts/s offered: {mark} posted {r.posted_per_s:7.1f}/s "
        f"delivered {r.delivered_per_s:8.1f}/s p50 {r.p50_ms:7.1f} p99 {r.p99_ms:7.1f} "
        f"max {r.max_ms:7.1f} ms; missing {r.missing} doubled {r.doubled} "
        f"order {r.out_of_order} err {r.errors}; send lag p99 {r.send_lag_p99_ms:.0f} ms; "
        f"cpu client {r.client_cpu:.0%} "
        f"server {r.server_cpu:.0%} redis {r.redis_cpu:.0%}; load {r.load:.1f}"
        + (f" {r.samples[:1]}" if r.samples else ""),
        flush=True,
    )


# Modes ------------------------------------------------------------------------------------


def run_xietong(
    label: str, database_url: str, data: Path, root: Path, args: Any
) -> dict[str, Scenario]:
    """Seed the database once, then serve it in-process and (Redis up) with two processes."""
    data.mkdir(parents=True, exist_ok=True)
    seeded = seed(xietong_env(data, database_url, False), data, args.rooms)
    print(f"seeded {len(seeded['rooms'])} consultations in {seeded['seconds']:.1f} s ({label})")
    rooms = [f"consultation:{i}" for i in seeded["rooms"]]
    found: dict[str, Scenario] = {}
    for mode, count in (("in-process", 1), ("Redis ×2", 2)):
        if count == 2 and not args.redis:
            continue
        env = xietong_env(data, database_url, count == 2)
        with servers("xietong", count, env, root) as started:
            urls = [s.ws for s in started]
            slots = slots_for(rooms, seeded["tokens"], urls, args.per_room)
            name = f"Xietong {mode} {label}"
            found[name] = drive(name, urls, [s.proc.pid for s in started], slots, args)
    return found


def run_reference(root: Path, args: Any) -> dict[str, Scenario]:
    rooms = [f"consultation:{i}" for i in range(1, args.rooms + 1)]
    headers = {name: {"Authorization": f"Bearer ref-{name}"} for name in set(SLOTS)}
    found: dict[str, Scenario] = {}
    for mode, count in (("in-process", 1), ("Redis ×2", 2)):
        if count == 2 and not args.redis:
            continue
        env = {k: v for k, v in os.environ.items() if not k.startswith("REF_")}
        if count == 2:
            env.update(REF_REDIS_URL=REDIS_URL, REF_NAMESPACE=f"{os.getpid()}-{time.time_ns()}")
        with servers("reference", count, env, root) as started:
            urls = [s.ws for s in started]
            name = f"reference {mode}"
            found[name] = drive(
                name, urls, [s.proc.pid for s in started], slots_for(rooms, headers, urls, 10), args
            )
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="10 rooms, 2 s phases, few steps")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    parser.add_argument("--rooms", type=int, help="rooms of --per-room sockets (default 100)")
    parser.add_argument("--per-room", type=int, default=10)
    parser.add_argument("--rate", type=float, help="fixed total posts/s (default 30)")
    parser.add_argument("--seconds", type=float, help="length of a measured phase (default 10)")
    parser.add_argument("--clients", type=int, default=1, help="client processes")
    parser.add_argument("--max-steps", type=int, help="rate doublings when looking for the max")
    parser.add_argument("--no-max", dest="max", action="store_false", help="fixed rate only")
    parser.add_argument("--no-redis", dest="redis", action="store_false")
    parser.add_argument("--no-reference", dest="reference", action="store_false")
    parser.add_argument("--pg", action="store_true", help="also Xietong on PostgreSQL")
    parser.add_argument("--deflate", action="store_true", help="permessage-deflate on")
    parser.add_argument("--keep", action="store_true", help="keep the data folder and logs")
    args = parser.parse_args()
    # Stopped from outside (kill, a CI timeout): still stop the servers and drop the database.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    args.rooms = args.rooms or (10 if args.quick else 100)
    args.rate = args.rate or (20.0 if args.quick else 30.0)
    args.seconds = args.seconds or (2.0 if args.quick else 10.0)
    args.max_steps = args.max_steps or (1 if args.quick else 8)
    args.warmup = 1.0 if args.quick else 3.0
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))  # inherited by the servers
    if args.redis and not redis_up():
        print(f"Redis is not answering at {REDIS_URL}: the Redis modes are left out")
        args.redis = False
    root = Path(tempfile.mkdtemp(prefix="bench-live-"))
    started = time.monotonic()
    print(
        f"{args.rooms} rooms × {args.per_room} sockets, {POSTERS} posters per room; fixed "
        f"{args.rate:.0f} posts/s; phases of {args.seconds:.0f} s; sustainable: nothing lost, "
        f"p99 ≤ {SLO_MS:.0f} ms; folder {root}",
        flush=True,
    )
    scenarios: dict[str, Scenario] = {}
    try:
        if args.reference:
            scenarios.update(run_reference(root, args))
        sqlite = f"sqlite:///{root / 'sqlite' / 'xietong.sqlite3'}"
        scenarios.update(run_xietong("SQLite", sqlite, root / "sqlite", root, args))
        if args.pg:
            with postgres() as url:
                scenarios.update(run_xietong("PostgreSQL", url, root / "pg", root, args))
        rows = print_report(scenarios, args)
        load = os.getloadavg()
        print(
            f"\nload average at the end (1, 5, 15 min): {load[0]:.1f} {load[1]:.1f} {load[2]:.1f}"
            f" on {os.cpu_count()} cores; {time.monotonic() - started:.0f} s in all"
        )
        if args.json:
            report = {
                "machine": machine(),
                "command": " ".join(sys.argv),
                "settings": {k: v for k, v in vars(args).items() if k != "json"},
                "load_average_at_end": load,
                "scenarios": {
                    name: {
                        "opened": s.opened,
                        "fixed": plain(s.fixed),
                        "max_sustainable": plain(s.best),
                        "ladder": [plain(r) for r in s.ladder],
                    }
                    for name, s in scenarios.items()
                },
                "rows": [{**asdict(r), "ratio": r.ratio} for r in rows],
            }
            args.json.write_text(json.dumps(report, indent=1, ensure_ascii=False, default=str))
    finally:
        if args.keep:
            print(f"kept {root}")
        else:
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
