"""The ``xietong`` command: serve, migrate, demo-data, create-user, audit verify, jobs."""

from __future__ import annotations

import contextlib
import getpass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from alembic import command
from alembic.config import Config
from rich.console import Console

from xietong.access import audit
from xietong.access.principal import system_principal
from xietong.config import Settings, load_settings
from xietong.core.db import make_engine, make_session_factory, session_scope
from xietong.identity import service as identity
from xietong.identity.roles import Role

if TYPE_CHECKING:
    from xietong.interop.dimse.scp import StoreScp

app = typer.Typer(help="Xietong regional collaborative care platform.", no_args_is_help=True)
audit_app = typer.Typer(help="The audit log.", no_args_is_help=True)
app.add_typer(audit_app, name="audit")
jobs_app = typer.Typer(help="Scheduled jobs, run once (cron or a systemd timer repeats them).")
app.add_typer(jobs_app, name="jobs")
console = Console()

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"


def alembic_config(url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    # ConfigParser interpolates "%": escape it (URL-encoded passwords and options have it).
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


def run_migrations(settings: Settings) -> None:
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    command.upgrade(alembic_config(settings.database_url), "head")


@app.command()
def migrate() -> None:
    """Bring the database schema up to date."""
    settings = load_settings()
    run_migrations(settings)
    console.print(f"[green]database at head[/green]: {_safe_url(settings.database_url)}")


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Address to bind.")] = None,
    port: Annotated[int | None, typer.Option(help="Port to bind.")] = None,
    workers: Annotated[int, typer.Option(min=1, max=64)] = 1,
    reload: Annotated[bool, typer.Option(help="Reload on code changes (development).")] = False,
    dicom: Annotated[
        bool | None,
        typer.Option(help="Also run the DICOM SCP (default: XIETONG_DIMSE_ENABLED)."),
    ] = None,
) -> None:
    """Serve the web application and API, and the DICOM SCP alongside (one process)."""
    import uvicorn

    settings = load_settings()
    _raise_file_limit(settings.http.max_connections + 1000)
    scp = _start_scp(settings) if (settings.dimse.enabled if dicom is None else dicom) else None
    try:
        uvicorn.run(
            "xietong.main:create_app",
            factory=True,
            host=host or settings.http.host,
            port=port or settings.http.port,
            workers=workers,
            reload=reload,
            proxy_headers=False,
            # uvicorn counts open WebSockets here too: a fixed 1,000 refused every page and
            # API call (503) of a process holding 1,000 live sockets.
            limit_concurrency=settings.http.max_connections,
        )
    finally:
        # uvicorn returns on Ctrl-C / SIGTERM: the SCP's thread stops with it.
        if scp is not None:
            scp.stop()


def _raise_file_limit(wanted: int) -> None:
    """Every socket is a file descriptor: raise the soft limit (often 1,024) towards
    ``wanted``, as far as the hard limit allows."""
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
    if soft != resource.RLIM_INFINITY and soft < target:
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))


def _make_scp(settings: Settings) -> StoreScp:
    from xietong.core.pii import PiiProtector
    from xietong.core.storage import LocalBlobStore
    from xietong.interop.dimse.scp import StoreScp

    engine = make_engine(settings.database_url)
    return StoreScp(
        settings,
        make_session_factory(engine),
        LocalBlobStore(settings.blob_root),
        PiiProtector(settings.security.pii_key, settings.security.pii_cipher),
    )


def _announce_scp(settings: Settings, scp: StoreScp, host: str, port: int) -> None:
    peers = ", ".join(f"{p.ae_title}@{p.host}" for p in scp.peers.peers().values()) or "none"
    console.print(
        f"[green]DICOM SCP[/green] {settings.dimse.ae_title} on {host}:{port}; peers: {peers}"
    )


def _start_scp(settings: Settings) -> StoreScp | None:
    """The SCP in a thread of this process; a port already taken is reported, not fatal
    (the web application still serves; `xietong dicom-scp` may be running already)."""
    scp = _make_scp(settings)
    try:
        scp.start(settings.dimse.host, settings.dimse.port, block=False)
    except OSError as exc:
        console.print(f"[red]DICOM SCP not started[/red] on port {settings.dimse.port}: {exc}")
        return None
    _announce_scp(settings, scp, settings.dimse.host, settings.dimse.port)
    return scp


@app.command("dicom-scp")
def dicom_scp(
    host: Annotated[str | None, typer.Option(help="Address to bind.")] = None,
    port: Annotated[int | None, typer.Option(help="Port to bind (default 11112).")] = None,
    ae_title: Annotated[str | None, typer.Option(help="Our AE title (default XIETONG).")] = None,
) -> None:
    """Run the DICOM SCP (C-ECHO, C-STORE, C-FIND, C-MOVE, C-GET) in the foreground."""
    settings = load_settings()
    if ae_title:
        settings.dimse.ae_title = ae_title
    scp = _make_scp(settings)
    bind_host = host or settings.dimse.host
    bind_port = port or settings.dimse.port
    _announce_scp(settings, scp, bind_host, bind_port)
    scp.start(bind_host, bind_port, block=True)


@app.command("demo-data")
def demo_data(
    scale: Annotated[
        str, typer.Option(help="'demo' (first-phase network) or 'province' (all of Henan).")
    ] = "demo",
    if_empty: Annotated[bool, typer.Option(help="Only when no institution exists yet.")] = False,
) -> None:
    """Load the Henan demo network and one account per role."""
    from xietong.demo import load_demo

    settings = load_settings()
    run_migrations(settings)
    load_demo(settings, scale=scale, if_empty=if_empty, console=console)


@app.command("create-user")
def create_user(
    username: str,
    roles: Annotated[list[Role], typer.Option("--role", help="Repeat for several roles.")],
    display_name: Annotated[str, typer.Option()] = "",
    institution_id: Annotated[int | None, typer.Option()] = None,
    jurisdiction: Annotated[str | None, typer.Option(help="Region code (authorities).")] = None,
    password: Annotated[
        str | None, typer.Option(help="Prompted when not given; never echoed.")
    ] = None,
) -> None:
    """Create an account (for example the first platform admin)."""
    settings = load_settings()
    secret = password or getpass.getpass("Password: ")
    engine = make_engine(settings.database_url)
    with session_scope(make_session_factory(engine)) as session:
        user = identity.create_user(
            session,
            username=username,
            password=secret,
            display_name=display_name or username,
            roles=roles,
            policy=settings.security,
            institution_id=institution_id,
            jurisdiction_code=jurisdiction,
        )
        audit.record(
            session,
            system_principal("cli"),
            "user.create",
            object_kind="user",
            object_id=user.id,
            detail={"username": user.username, "roles": user.role_names},
        )
    console.print(f"[green]created[/green] {username}")


@audit_app.command("verify")
def audit_verify() -> None:
    """Recompute the audit hash chain; exit 1 if a row was edited, inserted or removed."""
    settings = load_settings()
    engine = make_engine(settings.database_url)
    with session_scope(make_session_factory(engine)) as session:
        result = audit.verify_chain(session)
    if result.ok:
        console.print(f"[green]audit chain intact[/green]: {result.checked} rows")
        return
    console.print(
        f"[red]audit chain broken[/red] at seq {result.first_bad_seq}: {result.problem} "
        f"({result.checked} rows verified before it)"
    )
    raise typer.Exit(code=1)


@jobs_app.command("deadlines")
def jobs_deadlines() -> None:
    """Expire consultations and referrals past their accept deadline, mark referral
    no-shows, flag overdue follow-ups; record every deadline breach (run it every few
    minutes: each step happens once)."""
    from xietong.consultation.service import expire_overdue
    from xietong.referral.service import run_deadlines

    settings = load_settings()
    engine = make_engine(settings.database_url)
    with session_scope(make_session_factory(engine)) as session:
        run = expire_overdue(session)
        referrals = run_deadlines(session, settings.referral)
    console.print(
        f"consultations expired {len(run.expired)}; breaches: accept "
        f"{len(run.accept_breaches)}, report {len(run.report_breaches)}"
    )
    console.print(
        f"referrals expired {len(referrals.expired)}; no-shows {len(referrals.no_shows)}; "
        f"overdue follow-ups {len(referrals.overdue_follow_ups)}"
    )


@jobs_app.command("uploads")
def jobs_uploads() -> None:
    """Expire imaging uploads left unfinished past XIETONG_IMAGING_UPLOAD_EXPIRY_HOURS and
    delete the partial data nobody needs any more (run it hourly)."""
    from xietong.imaging.upload_expiry import expire
    from xietong.imaging.uploads import part_store

    settings = load_settings()
    engine = make_engine(settings.database_url)
    with session_scope(make_session_factory(engine)) as session:
        run = expire(session, part_store(settings))
    console.print(f"uploads expired {run.expired}; partial files deleted {run.orphans}")


@jobs_app.command("slots")
def jobs_slots() -> None:
    """Generate every institution's slots from its weekly templates up to the horizon
    (XIETONG_REFERRAL_SLOT_HORIZON_DAYS); slots that exist are kept as they are."""
    from xietong.referral.slots import generate_all_slots

    settings = load_settings()
    engine = make_engine(settings.database_url)
    with session_scope(make_session_factory(engine)) as session:
        run = generate_all_slots(session, settings.referral)
    console.print(
        f"slots created {run.created} at {len(run.by_institution)} institutions; "
        f"generated through {run.through.isoformat()}"
    )


@jobs_app.command("live")
def jobs_live() -> None:
    """Close video-session attendance left open by a killed process, close open sessions
    empty for their planned duration, cancel scheduled ones never opened (every few
    minutes)."""
    from xietong.live.jobs import run_cleanup

    settings = load_settings()
    engine = make_engine(settings.database_url)
    with session_scope(make_session_factory(engine)) as session:
        run = run_cleanup(session)
    console.print(
        f"attendance rows closed {len(run.closed_rows)}; sessions closed "
        f"{len(run.closed_sessions)}; scheduled sessions expired {len(run.expired_sessions)}"
    )


def _safe_url(url: str) -> str:
    if "@" in url and "://" in url:
        scheme, rest = url.split("://", 1)
        return f"{scheme}://***@{rest.split('@', 1)[1]}"
    return url


if __name__ == "__main__":
    app()
