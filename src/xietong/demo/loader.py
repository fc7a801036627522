"""Load the demo network: ``xietong demo-data [--scale demo|province] [--if-empty]``.

One transaction: the network appears whole or not at all. A second run adds only what is
missing (institutions and accounts are recognised by their codes and usernames, patients by
their resident ID numbers, chart entries by their client request ids).
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass, field
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from xietong.access import audit
from xietong.access.principal import system_principal
from xietong.config import ReferralSettings, SecuritySettings, Settings
from xietong.core.db import make_engine, make_session_factory, session_scope
from xietong.core.errors import N_, Invalid
from xietong.core.pii import PiiProtector
from xietong.core.storage import BlobStore, LocalBlobStore
from xietong.demo.accounts import DEMO_PASSWORD, AccountRow, create_accounts
from xietong.demo.bulk import NoProgress, insert_departments, insert_institutions, insert_links
from xietong.demo.bulk import Progress as ProgressSink
from xietong.demo.charts import add_demo_charts
from xietong.demo.dicom_peers import add_demo_peers
from xietong.demo.imaging import add_demo_imaging
from xietong.demo.plan import RegionIndex, plan_network
from xietong.demo.reads import add_demo_reads
from xietong.demo.referrals import add_demo_referrals
from xietong.demo.slots import add_demo_slots
from xietong.demo.staff import insert_staff, staff_counts
from xietong.directory.models import Institution
from xietong.directory.regions import load_regions

SCALES = ("demo", "province")
SEED = 2026


@dataclass
class DemoReport:
    scale: str
    skipped: bool = False
    counts: dict[str, int] = field(default_factory=dict)
    accounts: list[AccountRow] = field(default_factory=list)
    seconds: float = 0.0


def build_demo(
    session: Session,
    *,
    scale: str = "demo",
    policy: SecuritySettings | None = None,
    progress: ProgressSink | None = None,
    seed: int = SEED,
    pii: PiiProtector | None = None,
    referral: ReferralSettings | None = None,
    blobs: BlobStore | None = None,
) -> DemoReport:
    """Add the demo network, its accounts and the demo patients' charts to the session's
    transaction (flushes, never commits), with the receiving hospitals' slots (``referral``
    sets their horizon) and, when ``blobs`` is given, a synthetic CT stored there. ``pii``
    encrypts the patients' identifiers: the app's, built from the same settings (by
    default from ``policy``)."""
    if scale not in SCALES:
        raise Invalid(N_("This value is not one of the allowed choices."), field="scale")
    started = time.perf_counter()
    sink = progress or NoProgress()
    rng = random.Random(seed)
    report = DemoReport(scale=scale)
    report.counts["regions"] = load_regions(session)
    specs = plan_network(RegionIndex.load(session), scale, rng)
    ids, new = insert_institutions(session, specs, sink)
    report.counts["institutions"] = len(new)
    report.counts["service_links"] = insert_links(session, specs, ids, sink)
    departments = insert_departments(session, new, ids, sink)
    report.counts["departments"] = sum(len(d) for d in departments.values())
    counts = staff_counts(session, new, scale, rng)
    staff = insert_staff(session, new, ids, departments, counts, rng, sink)
    report.counts.update(
        practitioners=staff.practitioners,
        practitioner_specialties=staff.specialties,
        expert_profiles=staff.experts,
        expert_windows=staff.windows,
    )
    report.counts.update(add_demo_peers(session))
    actor = system_principal("demo")
    security = policy or SecuritySettings()
    report.accounts = create_accounts(session, security, actor, rng)
    sink.start("patients", 1)
    protector = pii or PiiProtector(security.pii_key, security.pii_cipher)
    report.counts.update(add_demo_charts(session, protector))
    sink.advance(1)
    sink.start("slots", 1)
    report.counts.update(add_demo_slots(session, referral))
    sink.advance(1)
    sink.start("referrals", 1)
    report.counts.update(add_demo_referrals(session, protector, referral))
    sink.advance(1)
    # The CT first: the demo read is made for a county study when one exists.
    if blobs is not None:
        sink.start("imaging", 1)
        report.counts.update(add_demo_imaging(session, blobs, protector))
        sink.advance(1)
    sink.start("reads", 1)
    report.counts.update(add_demo_reads(session))
    sink.advance(1)
    audit.record(session, actor, "demo.load", detail={"scale": scale, **report.counts})
    session.flush()
    report.seconds = time.perf_counter() - started
    return report


class RichProgress:
    """A progress bar per step, for the command line."""

    def __init__(self, bar: Progress) -> None:
        self.bar = bar
        self.task: Any = None

    def start(self, label: str, total: int) -> None:
        if self.task is not None:
            self.bar.update(self.task, completed=self.bar.tasks[-1].total)
        self.task = self.bar.add_task(label, total=max(total, 1))
        if total == 0:
            self.bar.update(self.task, completed=1)

    def advance(self, amount: int) -> None:
        if self.task is not None:
            self.bar.advance(self.task, amount)


def load_demo(
    settings: Settings,
    scale: str = "demo",
    if_empty: bool = False,
    console: Console | None = None,
) -> DemoReport:
    """Open the configured database, add the demo network in one transaction, report."""
    console = console or Console()
    engine = make_engine(settings.database_url, pool_size=2)
    try:
        with session_scope(make_session_factory(engine)) as session:
            if if_empty and _has_institutions(session):
                console.print("[yellow]institutions exist already: demo data not loaded[/yellow]")
                return DemoReport(scale=scale, skipped=True)
            columns = (
                TextColumn("{task.description:<18}"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeElapsedColumn(),
            )
            with Progress(*columns, console=console, transient=scale == "demo") as bar:
                report = build_demo(
                    session,
                    scale=scale,
                    policy=settings.security,
                    progress=RichProgress(bar),
                    pii=PiiProtector(settings.security.pii_key, settings.security.pii_cipher),
                    referral=settings.referral,
                    blobs=LocalBlobStore(settings.blob_root),
                )
    finally:
        engine.dispose()
    print_report(console, report)
    return report


def _has_institutions(session: Session) -> bool:
    return bool(session.execute(select(func.count()).select_from(Institution)).scalar_one())


def print_report(console: Console, report: DemoReport) -> None:
    counts = ", ".join(f"{name} {value:,}" for name, value in report.counts.items())
    console.print(f"[green]demo network ({report.scale})[/green] added: {counts}")
    console.print(f"took {report.seconds:.1f} s")
    table = Table(title=f"Demo accounts (password: {DEMO_PASSWORD})")
    for column in ("username", "role", "name", "institution / jurisdiction", "new"):
        table.add_column(column)
    for row in report.accounts:
        table.add_row(
            row.username, row.role, row.display_name, row.where, "yes" if row.created else "no"
        )
    console.print(table)
