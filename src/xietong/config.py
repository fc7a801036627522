"""Typed settings, one section per area, read once from XIETONG_* variables.

Every section has an embedded default (SQLite file, local data folder, in-process fan-out)
so that ``make run`` works with nothing configured. Production (XIETONG_ENV=production)
refuses secrets that still hold a placeholder value.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

PLACEHOLDER_SECRETS = frozenset({"", "change-me", "changeme", "secret", "dev-insecure-change-me"})
DEFAULT_DATA_DIR = Path("var")


def _section(prefix: str) -> SettingsConfigDict:
    return SettingsConfigDict(env_prefix=prefix, extra="ignore", env_file=None)


class DatabaseSettings(BaseSettings):
    """XIETONG_DATABASE_*: where the relational data lives."""

    model_config = _section("XIETONG_DATABASE_")
    url: str = Field(
        default="",
        description="SQLAlchemy URL; empty: a SQLite file in the data folder. PostgreSQL: postgresql+psycopg://user@host:5432/db",
    )
    echo: bool = Field(default=False, description="Log every SQL statement (debugging only).")
    pool_size: int = Field(
        default=10, ge=1, le=200, description="Connections kept per process (PostgreSQL)."
    )


class StorageSettings(BaseSettings):
    """XIETONG_STORAGE_*: where blobs (documents, images) live."""

    model_config = _section("XIETONG_STORAGE_")
    backend: Literal["local"] = Field(
        default="local", description="Blob store adapter: local folder."
    )
    root: Path | None = Field(default=None, description="Blob folder; empty: <data dir>/blobs.")


class SecuritySettings(BaseSettings):
    """XIETONG_SECURITY_*: secrets, sessions, passwords, second factor."""

    model_config = _section("XIETONG_SECURITY_")
    secret_key: str = Field(
        default="dev-insecure-change-me",  # refused in production
        description="Signs CSRF tokens; at least 32 random characters in production.",
    )
    pii_key: str = Field(
        default="dev-insecure-change-me",  # refused in production
        description=(
            "Secret from which the keys that encrypt and blind-index resident ID, passport "
            "and phone numbers are derived; at least 32 random characters in production. "
            "Changing it makes stored identifiers unreadable."
        ),
    )
    pii_cipher: Literal["aes-256-gcm", "sm4-gcm"] = Field(
        default="aes-256-gcm",
        description="Cipher for new identifier values; both are always readable.",
    )
    session_idle_minutes: int = Field(
        default=30,
        ge=1,
        le=24 * 60,
        description="Idle logout of page sessions (background polls do not count as activity).",
    )
    session_absolute_hours: int = Field(
        default=12, ge=1, le=24 * 30, description="Longest life of a page session."
    )
    token_hours: int = Field(default=8, ge=1, le=24 * 30, description="Life of an API token.")
    cookie_secure: bool = Field(
        default=False, description="Cookies only over HTTPS (forced on in production)."
    )
    max_failed_logins: int = Field(
        default=5, ge=1, le=100, description="Failures before an account is locked."
    )
    lockout_minutes: int = Field(
        default=15, ge=1, le=24 * 60, description="How long a lock (and the address window) lasts."
    )
    max_failed_logins_per_address: int = Field(
        default=30, ge=1, le=10_000, description="Failures from one address before it is throttled."
    )
    password_min_length: int = Field(
        default=10, ge=8, le=128, description="Shortest password accepted."
    )
    password_max_age_days: int = Field(
        default=180, ge=0, le=3650, description="Days before a password must be changed; 0: never."
    )
    require_totp_for_admins: bool = Field(
        default=False, description="Admins must use TOTP (forced on in production)."
    )


class HttpSettings(BaseSettings):
    """XIETONG_HTTP_*: the web server and its input limits."""

    model_config = _section("XIETONG_HTTP_")
    host: str = Field(default="127.0.0.1", description="Address `xietong serve` binds.")
    port: int = Field(default=8000, ge=1, le=65535, description="Port `xietong serve` binds.")
    max_body_bytes: int = Field(
        default=1_048_576, ge=1024, description="Largest JSON or form body; larger: 413."
    )
    max_upload_bytes: int = Field(
        default=64 * 1_048_576, ge=1024, description="Largest body on upload routes."
    )
    trusted_proxies: list[str] = Field(
        default_factory=list, description="Proxy addresses whose X-Forwarded-For is believed."
    )
    max_connections: int = Field(
        default=10_000,
        ge=100,
        le=1_000_000,
        description="Open connections per `xietong serve` process, WebSockets included, before "
        "plain HTTP requests get 503; each live page or app holds one WebSocket.",
    )


class UploadSettings(BaseSettings):
    """XIETONG_UPLOAD_*: limits on uploaded documents (photos, scans, PDFs)."""

    model_config = _section("XIETONG_UPLOAD_")
    max_document_bytes: int = Field(
        default=32 * 1_048_576,
        ge=1024,
        description="Largest uploaded document (one photo, scan or PDF); larger: 413.",
    )
    max_image_pixels: int = Field(
        default=50_000_000,
        ge=1_000_000,
        le=150_000_000,
        description="Most pixels (width × height) in an uploaded image; more: 422 image_too_large.",
    )
    max_pdf_pages: int = Field(
        default=200, ge=1, le=10_000, description="Most pages in an uploaded PDF; more: 422."
    )
    thumbnail_size: int = Field(
        default=320, ge=64, le=2048, description="Longest side in pixels of a document thumbnail."
    )


class I18nSettings(BaseSettings):
    """XIETONG_I18N_*: languages."""

    model_config = _section("XIETONG_I18N_")
    default_locale: Literal["zh_CN", "en"] = Field(
        default="zh_CN", description="Language when neither user nor browser chooses."
    )


class ConsultationSettings(BaseSettings):
    """XIETONG_CONSULTATION_*: deadlines of remote consultations, per urgency, in minutes
    from submission (docs/consultation.md), how long shared material stays open, and the
    notice the proposed live-session times leave."""

    model_config = _section("XIETONG_CONSULTATION_")
    emergency_accept_minutes: int = Field(
        default=30, ge=1, le=100_000, description="An emergency request is accepted within this."
    )
    emergency_report_minutes: int = Field(
        default=120, ge=1, le=100_000, description="An emergency request is reported within this."
    )
    urgent_accept_minutes: int = Field(
        default=6 * 60, ge=1, le=100_000, description="An urgent request is accepted within this."
    )
    urgent_report_minutes: int = Field(
        default=24 * 60, ge=1, le=100_000, description="An urgent request is reported within this."
    )
    routine_accept_minutes: int = Field(
        default=24 * 60, ge=1, le=100_000, description="A routine request is accepted within this."
    )
    routine_report_minutes: int = Field(
        default=48 * 60, ge=1, le=100_000, description="A routine request is reported within this."
    )
    grant_margin_hours: int = Field(
        default=72,
        ge=0,
        le=24 * 90,
        description="Shared material stays open this long after the report deadline.",
    )
    session_lead_minutes: int = Field(
        default=30,
        ge=0,
        le=7 * 24 * 60,
        description="Proposed live-session times start at least this long from now.",
    )

    def deadlines(self, urgency: str) -> tuple[int, int]:
        """(accept, report) minutes for an urgency."""
        accept: int = getattr(self, f"{urgency}_accept_minutes")
        report: int = getattr(self, f"{urgency}_report_minutes")
        return accept, max(accept, report)


class ReferralSettings(BaseSettings):
    """XIETONG_REFERRAL_*: how long a receiving institution has to answer a referral, when a
    missed appointment becomes a no-show, how long shared records stay open, and how far
    ahead slots are generated from the weekly templates (docs/referral.md)."""

    model_config = _section("XIETONG_REFERRAL_")
    accept_minutes: int = Field(
        default=48 * 60,
        ge=1,
        le=100_000,
        description="An up or exam referral is answered within this.",
    )
    green_accept_minutes: int = Field(
        default=30,
        ge=1,
        le=100_000,
        description="A green-channel referral is answered within this.",
    )
    down_accept_minutes: int = Field(
        default=72 * 60, ge=1, le=100_000, description="A down-referral is accepted within this."
    )
    no_show_grace_minutes: int = Field(
        default=120,
        ge=0,
        le=7 * 24 * 60,
        description="A booked patient not checked in this long after the slot ends is a no-show.",
    )
    grant_days: int = Field(
        default=30,
        ge=1,
        le=365,
        description="Records shared with a referral stay open this many days after it is sent.",
    )
    slot_horizon_days: int = Field(
        default=28,
        ge=1,
        le=180,
        description="Slots are generated from the weekly templates this many days ahead.",
    )

    def accept_minutes_for(self, kind: str, priority: str) -> int:
        if kind == "down":
            return self.down_accept_minutes
        return self.green_accept_minutes if priority == "green" else self.accept_minutes


class ImagingSettings(BaseSettings):
    """XIETONG_IMAGING_*: the DICOM archive (docs/imaging.md)."""

    model_config = _section("XIETONG_IMAGING_")
    duplicate: Literal["accept_identical", "refuse"] = Field(
        default="accept_identical",
        description="A known SOP instance sent again: accept_identical (same bytes: accepted "
        "once; other bytes: 409) or refuse (always 409).",
    )
    max_instance_bytes: int = Field(
        default=512 * 1_048_576,
        ge=1024,
        description="Largest DICOM file accepted; larger: 413.",
    )
    upload_max_bytes: int = Field(
        default=2 * 1024 * 1_048_576,
        ge=1024,
        description="Largest web upload (one DICOM file or one zip) at /imaging/upload; "
        "larger: 413.",
    )
    upload_chunk_max_bytes: int = Field(
        default=8 * 1_048_576,
        ge=65_536,
        le=64 * 1_048_576,
        description="Largest chunk (one PATCH) of a resumable upload; larger: 413. Keep it "
        "at most XIETONG_HTTP_MAX_UPLOAD_BYTES.",
    )
    upload_expiry_hours: int = Field(
        default=24,
        ge=1,
        le=24 * 30,
        description="Hours without a chunk after which an unfinished upload expires and "
        "`xietong jobs uploads` deletes its partial data.",
    )
    upload_max_open_per_user: int = Field(
        default=20,
        ge=1,
        le=1000,
        description="Unfinished uploads one user may have at a time; more: 429.",
    )
    upload_zip_max_entries: int = Field(
        default=20_000, ge=1, le=1_000_000, description="Most entries in an uploaded zip."
    )
    upload_zip_max_uncompressed_bytes: int = Field(
        default=8 * 1024 * 1_048_576,
        ge=1024,
        description="Most bytes all entries of an uploaded zip may inflate to.",
    )
    upload_zip_max_ratio: int = Field(
        default=200,
        ge=2,
        le=100_000,
        description="Highest inflated/compressed size ratio of one zip entry (zip bombs).",
    )


class DimseSettings(BaseSettings):
    """XIETONG_DIMSE_*: the DICOM network service (C-ECHO, C-STORE, C-FIND, C-MOVE, C-GET),
    run by `xietong serve` or `xietong dicom-scp`. Its peers are the directory's DICOM nodes."""

    model_config = _section("XIETONG_DIMSE_")
    host: str = Field(default="127.0.0.1", description="Address `xietong dicom-scp` binds.")
    port: int = Field(default=11112, ge=1, le=65535, description="Port `xietong dicom-scp` binds.")
    ae_title: str = Field(
        default="XIETONG", min_length=1, max_length=16, description="Our AE title (called AE)."
    )
    enabled: bool = Field(
        default=True,
        description="`xietong serve` also runs the DICOM SCP in the same process (tests and "
        "a separate `xietong dicom-scp` turn it off).",
    )
    allow_unknown: bool = Field(
        default=False,
        description="Associate with unknown calling AEs (C-ECHO only; their C-STORE, C-FIND, "
        "C-MOVE and C-GET are refused). Off: they get A-ASSOCIATE-RJ, calling AE title not "
        "recognised.",
    )
    max_find_results: int = Field(
        default=1000,
        ge=1,
        le=100_000,
        description="Most C-FIND matches answered; beyond them the query ends with 0xA700.",
    )
    max_pdu_bytes: int = Field(
        # 1 MiB: a CT slice arrives in one PDU instead of eight, and pynetdicom's reactor
        # turns (each may sleep 1 ms) go with the PDUs; ten associations hold 10 MiB at most.
        default=1_048_576,
        ge=16_384,
        le=1_048_576,
        description="Largest PDU we receive (announced to peers, and enforced: larger ones "
        "close the connection).",
    )
    max_associations: int = Field(
        default=10, ge=1, le=1000, description="Concurrent associations; more are rejected."
    )
    network_timeout: float = Field(
        default=60, gt=0, le=3600, description="Seconds of network silence before closing."
    )
    acse_timeout: float = Field(
        default=30, gt=0, le=3600, description="Seconds to wait for association messages."
    )
    dimse_timeout: float = Field(
        default=60, gt=0, le=3600, description="Seconds to wait for DIMSE messages."
    )


class LiveSettings(BaseSettings):
    """XIETONG_LIVE_*: the WebSocket at /ws and video sessions (docs/live.md; running coturn
    and Janus: docs/operations.md)."""

    model_config = _section("XIETONG_LIVE_")
    max_frame_bytes: int = Field(
        default=65_536,
        ge=1024,
        le=1_048_576,
        description="Largest WebSocket frame a client may send; larger: the socket closes "
        "with 1009.",
    )
    max_subscriptions: int = Field(
        default=50, ge=1, le=10_000, description="Conversations one WebSocket may follow."
    )
    max_frames_per_second: int = Field(
        default=50,
        ge=1,
        le=100_000,
        description="Frames a client may send per second, averaged over 10 s; more: 1008.",
    )
    stun_urls: list[str] = Field(
        default_factory=list,
        description="STUN servers given to browsers (e.g. stun:turn.example.org:3478); "
        "empty: none (peers on one network still connect).",
    )
    turn_urls: list[str] = Field(
        default_factory=list,
        description="TURN servers (turn:host:3478?transport=udp, turns:host:5349); each "
        "browser gets time-limited credentials for them.",
    )
    turn_secret: str = Field(
        default="",
        description="coturn's static-auth-secret (use-auth-secret): TURN credentials are "
        "derived from it in coturn's REST format.",
    )
    turn_ttl_seconds: int = Field(
        default=6 * 3600,
        ge=60,
        le=7 * 24 * 3600,
        description="How long TURN credentials handed to a browser stay valid.",
    )
    sfu: Literal["mesh", "janus"] = Field(
        default="mesh",
        description="Media routing for rooms larger than mesh_max_participants: mesh (every "
        "browser sends to every other; no media server) or janus (the VideoRoom plugin).",
    )
    janus_url: str = Field(
        default="http://127.0.0.1:8088/janus",
        description="Janus's HTTP API, used when sfu is janus.",
    )
    mesh_max_participants: int = Field(
        default=6,
        ge=2,
        le=16,
        description="Most participants of a mesh session; larger sessions need the SFU.",
    )
    upload_kbps: int = Field(
        default=1500,
        ge=300,
        le=20_000,
        description="Video one participant sends in all, in kbit/s: in a mesh it is split "
        "across the other participants (at most 1,000 each, at least 150), so that a "
        "six-person call fits a home broadband uplink.",
    )
    join_link_hours: int = Field(
        default=24,
        ge=1,
        le=24 * 30,
        description="Hours a guest join link stays valid.",
    )


class Settings(BaseSettings):
    """All settings. ``XIETONG_ENV`` and ``XIETONG_DATA_DIR`` sit at the top level."""

    model_config = SettingsConfigDict(env_prefix="XIETONG_", extra="ignore")

    env: Literal["development", "test", "production"] = Field(
        default="development",
        description="production: refuses placeholder secrets, forces TOTP for admins.",
    )
    data_dir: Path = Field(
        default=DEFAULT_DATA_DIR, description="Folder of the embedded database and blobs."
    )
    database: DatabaseSettings = Field(default_factory=DatabaseSettings)
    storage: StorageSettings = Field(default_factory=StorageSettings)
    security: SecuritySettings = Field(default_factory=SecuritySettings)
    http: HttpSettings = Field(default_factory=HttpSettings)
    upload: UploadSettings = Field(default_factory=UploadSettings)
    i18n: I18nSettings = Field(default_factory=I18nSettings)
    consultation: ConsultationSettings = Field(default_factory=ConsultationSettings)
    referral: ReferralSettings = Field(default_factory=ReferralSettings)
    imaging: ImagingSettings = Field(default_factory=ImagingSettings)
    dimse: DimseSettings = Field(default_factory=DimseSettings)
    live: LiveSettings = Field(default_factory=LiveSettings)
    redis_url: str = Field(
        default="",
        description="Redis (redis://host:6379/0) for live fan-out across several app "
        "processes; empty: in-process fan-out (one process).",
    )

    @model_validator(mode="after")
    def _production_refuses_placeholders(self) -> Settings:
        if self.env != "production":
            return self
        if self.security.secret_key.strip().lower() in PLACEHOLDER_SECRETS:
            raise ValueError("XIETONG_SECURITY_SECRET_KEY holds a placeholder value in production")
        if len(self.security.secret_key) < 32:
            raise ValueError("XIETONG_SECURITY_SECRET_KEY must be at least 32 characters")
        pii_key = self.security.pii_key
        if pii_key.strip().lower() in PLACEHOLDER_SECRETS or len(pii_key) < 32:
            raise ValueError("XIETONG_SECURITY_PII_KEY must be 32+ random characters in production")
        if not self.database.url:
            raise ValueError("XIETONG_DATABASE_URL must be set in production")
        self.security.require_totp_for_admins = True
        self.security.cookie_secure = True
        return self

    @property
    def database_url(self) -> str:
        if self.database.url:
            return self.database.url
        return f"sqlite:///{(self.data_dir / 'xietong.sqlite3').as_posix()}"

    @property
    def blob_root(self) -> Path:
        return self.storage.root or (self.data_dir / "blobs")


def load_settings(**overrides: object) -> Settings:
    """Read settings from the environment; keyword overrides win (tests use them)."""
    return Settings(**overrides)  # type: ignore[arg-type]
