"""Where the events live, chosen by environment: SQLite by default, PostgreSQL
when MINQING_DATABASE_URL names it."""

from __future__ import annotations

import base64
import hashlib
import os
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit

from reference.model import DEFAULT_POLICY, DEMO_REFERENCE, HERE

IMPORT_MAPPINGS = HERE / "mappings"  # the shipped examples: 12345.json, 110.toml (docs/imports.md)

TRANSCODER = "commands.transcoder:OrjsonTranscoder"
# Known to everyone who has the source: used only in development, refused in production.
DEV_JWT_SECRET = "minqing-development-secret-not-for-production-use"
DEV_MASTER_KEY = base64.b64encode(hashlib.sha256(b"minqing-development-master-key").digest()).decode()
# MINQING_ENV: anything else is refused rather than guessed (a misspelt "prd" once ran as development).
ENVIRONMENTS = {"production": True, "prod": True, "development": False, "dev": False}
# A public key verifies only asymmetric signatures; HS* with a public key would verify nothing.
PUBLIC_KEY_ALGORITHMS = frozenset(
    {"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"}
)
DEMO_OPEN311_KEY = "demo-open311-key"


class InsecureConfigurationError(RuntimeError):
    pass


# MINQING_OPEN311_KEYS: `key=channel` may submit; `key=channel:read` may also read
# every field of a request (anonymous readers get the public notice's fields).
READ_MARKER = "read"


@dataclass(frozen=True)
class Open311Key:
    channel: str  # submissions with this key are registered under this channel
    read: bool  # may read a request's description, address and grid

    @classmethod
    def parse(cls, value: str) -> Open311Key:
        channel, colon, marker = value.partition(":")
        if not channel.strip() or (colon and marker.strip() != READ_MARKER):
            raise ValueError(f"MINQING_OPEN311_KEYS: a key's value is channel or channel:{READ_MARKER}, got {value!r}")
        return cls(channel.strip(), bool(colon))


def _pem(value: str | None) -> str | None:
    """A PEM given inline or as a path to a file."""
    if not value:
        return None
    return value if value.lstrip().startswith("-----") else Path(value).read_text()


@dataclass(frozen=True)
class Settings:
    database_url: str | None = None
    sqlite_path: Path = Path("var/minqing.sqlite3")
    reference_path: Path = DEMO_REFERENCE
    policy_path: Path = DEFAULT_POLICY
    projections: str = "in-process"  # or "external": run by `minqing project` workers
    # Security (docs/security.md). None of these has a production default on purpose.
    environment: str | None = None  # "production" | "development"; None: production iff PostgreSQL
    jwt_secret: str | None = None  # HS256 shared secret
    jwt_public_key: str | None = None  # PEM: verify RS256/ES256 tokens issued elsewhere
    jwt_algorithm: str = "HS256"
    master_key: str | None = None  # base64 of 32 bytes: wraps every person's data key
    previous_master_keys: tuple[str, ...] = ()  # still unwrap, until `minqing keys rotate`
    rate_limit_per_minute: int = 600  # per token, per process
    max_body_bytes: int = 64 * 1024
    webhook_backoff: tuple[float, ...] | None = None  # seconds before each retry; None: the standard schedule
    # Open311 api_key -> the channel its requests are registered under, with
    # ":read" if it may read every field (Open311Key). Unset on the embedded
    # store: the documented demo key, which may read; on PostgreSQL: none.
    open311_keys: dict[str, str] | None = None
    webhook_log_days: float = 30.0  # delivery-log entries are kept this long
    # Webhooks to loopback or link-local addresses (the host itself, cloud metadata):
    # refused in production unless allowed; None: allowed only in development.
    webhook_allow_local: bool | None = None
    webhook_lease: float = 30.0  # seconds a delivery worker holds a subscription without renewing it
    webhook_max_per_owner: int = 20  # live subscriptions one token `sub` may hold
    stream_max_per_token: int = 4  # open live event streams per token, per process
    stream_write_timeout: float = 10.0  # seconds a stream's write may wait on a reader before it is dropped
    # Importing hotline work orders (docs/imports.md): where the column mappings are, the upload cap.
    import_mappings: Path = IMPORT_MAPPINGS
    max_import_bytes: int = 20 * 1024 * 1024
    # Attachments (storage/blobs.py): a directory (None: `attachments/` beside the SQLite file), or an
    # S3-compatible bucket when s3_url is set. Files over attachment_max_bytes are refused (413).
    attachments_path: Path | None = None
    attachment_max_bytes: int = 10 * 1024 * 1024
    s3_url: str | None = None  # e.g. https://minio.internal:9000 (path-style requests)
    s3_bucket: str | None = None
    s3_access_key: str | None = None
    s3_secret_key: str | None = None
    s3_region: str = "us-east-1"
    # Open311 media_url is fetched into the attachment store only from these hosts (exact names);
    # empty: the URL is kept on the case but never fetched.
    media_fetch_hosts: tuple[str, ...] = ()
    media_fetch_timeout: float = 10.0
    # Notices to residents (docs/notices.md).
    notices: str = "external"  # "in-process": the HTTP process sends them too; else `minqing notify` does
    notice_sender: str = "log"  # "log": a log line with the number masked; "http": the SMS gateway below
    sms_url: str | None = None  # the HTTP SMS gateway's endpoint (notice_sender "http")
    sms_secret: str | None = None  # signs every request to the gateway (HMAC-SHA256)
    sms_timeout: float = 5.0  # seconds the gateway has to answer before the attempt counts as failed
    notice_backoff: tuple[float, ...] | None = None  # seconds before each retry; None: 30 s … 2 h
    notice_max_attempts: int = 6  # attempts before a notice is given up (NoticeFailed final)
    notice_lease: float = 60.0  # seconds a notice worker holds a notice it is sending
    notice_sign: str = "民情"  # the SMS signature (【民情】) registered with the gateway
    notice_hotline: str = "12345"  # the number a resident calls to follow a case
    notice_link: str = ""  # the office's page where a receipt number is looked up; may hold {number}
    # The NATS JetStream relay (`minqing relay-nats`, docs/integrators.md): where the event stream goes.
    nats_url: str = "nats://127.0.0.1:4222"
    nats_stream: str = "MINQING_EVENTS"  # created with subjects `<nats_subject>.>` if it does not exist
    nats_subject: str = "minqing.events"  # a message's subject: this + "." + the event's type name

    @classmethod
    def from_environ(cls) -> Settings:
        env = os.environ
        return cls(
            database_url=env.get("MINQING_DATABASE_URL") or None,
            sqlite_path=Path(env.get("MINQING_SQLITE_PATH", "var/minqing.sqlite3")),
            reference_path=Path(env.get("MINQING_REFERENCE", str(DEMO_REFERENCE))),
            policy_path=Path(env.get("MINQING_POLICY", str(DEFAULT_POLICY))),
            projections=env.get("MINQING_PROJECTIONS", "in-process"),
            environment=env.get("MINQING_ENV") or None,
            jwt_secret=env.get("MINQING_JWT_SECRET") or None,
            jwt_public_key=_pem(env.get("MINQING_JWT_PUBLIC_KEY")),
            jwt_algorithm=env.get("MINQING_JWT_ALGORITHM", "HS256"),
            master_key=env.get("MINQING_MASTER_KEY") or None,
            previous_master_keys=tuple(k for k in env.get("MINQING_MASTER_KEY_PREVIOUS", "").split(",") if k),
            rate_limit_per_minute=int(env.get("MINQING_RATE_LIMIT_PER_MINUTE", "600")),
            max_body_bytes=int(env.get("MINQING_MAX_BODY_BYTES", str(64 * 1024))),
            webhook_backoff=_seconds(env.get("MINQING_WEBHOOK_BACKOFF")),
            webhook_lease=float(env.get("MINQING_WEBHOOK_LEASE", "30")),
            webhook_log_days=float(env.get("MINQING_WEBHOOK_LOG_DAYS", "30")),
            webhook_allow_local=_flag(env.get("MINQING_WEBHOOK_ALLOW_LOCAL")),
            webhook_max_per_owner=int(env.get("MINQING_WEBHOOK_MAX_PER_OWNER", "20")),
            stream_max_per_token=int(env.get("MINQING_STREAM_MAX_PER_TOKEN", "4")),
            stream_write_timeout=float(env.get("MINQING_STREAM_WRITE_TIMEOUT", "10")),
            import_mappings=Path(env.get("MINQING_IMPORT_MAPPINGS", str(IMPORT_MAPPINGS))),
            max_import_bytes=int(env.get("MINQING_MAX_IMPORT_BYTES", str(20 * 1024 * 1024))),
            open311_keys=_pairs(env.get("MINQING_OPEN311_KEYS")),
            attachments_path=Path(env["MINQING_ATTACHMENTS_PATH"]) if env.get("MINQING_ATTACHMENTS_PATH") else None,
            attachment_max_bytes=int(env.get("MINQING_ATTACHMENT_MAX_BYTES", str(10 * 1024 * 1024))),
            s3_url=env.get("MINQING_S3_URL") or None,
            s3_bucket=env.get("MINQING_S3_BUCKET") or None,
            s3_access_key=env.get("MINQING_S3_ACCESS_KEY") or None,
            s3_secret_key=env.get("MINQING_S3_SECRET_KEY") or None,
            s3_region=env.get("MINQING_S3_REGION", "us-east-1"),
            media_fetch_hosts=tuple(
                h.strip().lower() for h in env.get("MINQING_MEDIA_FETCH_HOSTS", "").split(",") if h.strip()
            ),
            media_fetch_timeout=float(env.get("MINQING_MEDIA_FETCH_TIMEOUT", "10")),
            notices=env.get("MINQING_NOTICES", "external"),
            notice_sender=env.get("MINQING_NOTICE_SENDER", "log"),
            sms_url=env.get("MINQING_SMS_URL") or None,
            sms_secret=env.get("MINQING_SMS_SECRET") or None,
            sms_timeout=float(env.get("MINQING_SMS_TIMEOUT", "5")),
            notice_backoff=_seconds(env.get("MINQING_NOTICE_BACKOFF"), "MINQING_NOTICE_BACKOFF"),
            notice_max_attempts=int(env.get("MINQING_NOTICE_MAX_ATTEMPTS", "6")),
            notice_lease=float(env.get("MINQING_NOTICE_LEASE", "60")),
            notice_sign=env.get("MINQING_NOTICE_SIGN", "民情"),
            notice_hotline=env.get("MINQING_NOTICE_HOTLINE", "12345"),
            notice_link=env.get("MINQING_NOTICE_LINK", ""),
            nats_url=env.get("MINQING_NATS_URL") or "nats://127.0.0.1:4222",
            nats_stream=env.get("MINQING_NATS_STREAM") or "MINQING_EVENTS",
            nats_subject=env.get("MINQING_NATS_SUBJECT") or "minqing.events",
        )

    def check_notices(self) -> None:
        """The notice sender's configuration, refused before a worker starts rather than at the first SMS."""
        if self.notice_sender not in ("log", "http"):
            raise InsecureConfigurationError(f"MINQING_NOTICE_SENDER={self.notice_sender!r}: use log or http")
        if self.notice_sender != "http":
            return
        if not self.sms_url or urlsplit(self.sms_url).scheme not in ("http", "https"):
            raise InsecureConfigurationError("MINQING_NOTICE_SENDER=http needs MINQING_SMS_URL (http:// or https://)")
        if not self.sms_secret or len(self.sms_secret) < 16:
            raise InsecureConfigurationError(
                "MINQING_NOTICE_SENDER=http needs MINQING_SMS_SECRET of 16 characters or more"
            )
        url = urlsplit(self.sms_url)
        if self.production and url.scheme != "https" and url.hostname not in ("127.0.0.1", "::1", "localhost"):
            raise InsecureConfigurationError(
                "in production MINQING_SMS_URL must be https:// (phone numbers travel in it), "
                "or http:// to a relay on this host"
            )

    def api_keys(self) -> dict[str, Open311Key]:
        if self.open311_keys is not None:
            return {key: Open311Key.parse(value) for key, value in self.open311_keys.items()}
        return {DEMO_OPEN311_KEY: Open311Key("online", read=True)} if not self.database_url else {}

    @property
    def local_webhooks(self) -> bool:
        return self.webhook_allow_local if self.webhook_allow_local is not None else not self.production

    @property
    def production(self) -> bool:
        if self.environment:
            # Fail closed: only a known development name turns production off (check_secrets refuses the rest).
            return ENVIRONMENTS.get(self.environment.strip().lower(), True)
        return self.database_url is not None

    def check_secrets(self) -> None:
        """Refuses a configuration that would run insecurely or fail on the first request:
        an unknown MINQING_ENV, a token algorithm that cannot verify with the key given, and,
        in production, missing secrets or the development ones published in the source."""
        if self.environment and self.environment.strip().lower() not in ENVIRONMENTS:
            raise InsecureConfigurationError(
                f"MINQING_ENV={self.environment!r} is unknown: use production or development"
            )
        if self.jwt_public_key and self.jwt_algorithm not in PUBLIC_KEY_ALGORITHMS:
            raise InsecureConfigurationError(
                f"MINQING_JWT_ALGORITHM={self.jwt_algorithm} cannot verify with MINQING_JWT_PUBLIC_KEY: "
                "use one of " + ", ".join(sorted(PUBLIC_KEY_ALGORITHMS))
            )
        if not self.jwt_public_key and self.jwt_algorithm != "HS256":
            raise InsecureConfigurationError(
                f"MINQING_JWT_ALGORITHM={self.jwt_algorithm} needs MINQING_JWT_PUBLIC_KEY; a secret signs HS256"
            )
        if not self.production:
            return
        missing = []
        if not (self.jwt_secret or self.jwt_public_key):
            missing.append("MINQING_JWT_SECRET (or MINQING_JWT_PUBLIC_KEY)")
        if not self.master_key:
            missing.append("MINQING_MASTER_KEY")
        if self.jwt_secret is not None and len(self.jwt_secret) < 32:
            missing.append("MINQING_JWT_SECRET of at least 32 characters")
        if self.jwt_secret == DEV_JWT_SECRET:
            missing.append("a MINQING_JWT_SECRET of its own (not the development secret from the source)")
        if DEV_MASTER_KEY in (self.master_key, *self.previous_master_keys):
            missing.append("a MINQING_MASTER_KEY of its own (not the development key from the source)")
        if missing:
            raise InsecureConfigurationError(
                "production mode (MINQING_ENV=production or a PostgreSQL URL) needs " + ", ".join(missing)
            )

    @property
    def attachment_root(self) -> Path:
        return self.attachments_path or self.sqlite_path.parent / "attachments"

    @property
    def store(self) -> str:
        return "postgres" if self.database_url else "sqlite"

    def eventsourcing_env(self, *, create_table: bool = False) -> dict[str, str]:
        """Tables are created by `minqing migrate` alone (create_table=True); every other process only uses them."""
        env = {
            "TRANSCODER_TOPIC": TRANSCODER,
            "CREATE_TABLE": "y" if create_table else "n",
        }
        if not self.database_url:
            self.sqlite_path.parent.mkdir(parents=True, exist_ok=True)
            return {**env, "PERSISTENCE_MODULE": "eventsourcing.sqlite", "SQLITE_DBNAME": str(self.sqlite_path)}
        url = urlsplit(self.database_url)
        if url.scheme not in ("postgresql", "postgres"):
            raise ValueError(f"MINQING_DATABASE_URL must start with postgresql://, got {url.scheme}://")
        query = parse_qs(url.query)
        env.update(
            PERSISTENCE_MODULE="eventsourcing.postgres",
            POSTGRES_DBNAME=url.path.lstrip("/") or "postgres",
            POSTGRES_HOST=url.hostname or "127.0.0.1",
            POSTGRES_PORT=str(url.port or 5432),
            POSTGRES_USER=unquote(url.username or "postgres"),
            # The library insists on a password key even with trust auth.
            POSTGRES_PASSWORD=unquote(url.password or ""),
            POSTGRES_POOL_SIZE=query.get("pool_size", ["5"])[0],
            POSTGRES_MAX_OVERFLOW=query.get("max_overflow", ["10"])[0],
            POSTGRES_LOCK_TIMEOUT=query.get("lock_timeout", ["5"])[0],
            POSTGRES_CONNECT_TIMEOUT=query.get("connect_timeout", ["10"])[0],
        )
        if "schema" in query:
            env["POSTGRES_SCHEMA"] = query["schema"][0]
        return env


def _seconds(value: str | None, name: str = "MINQING_WEBHOOK_BACKOFF") -> tuple[float, ...] | None:
    if not value:
        return None
    try:
        return tuple(float(part) for part in value.split(","))
    except ValueError:
        raise ValueError(f"{name} must be seconds separated by commas, got {value!r}") from None


def _pairs(value: str | None) -> dict[str, str] | None:
    """`key=channel,key2=channel2:read` (MINQING_OPEN311_KEYS)."""
    if value is None:
        return None
    pairs = [item.split("=", 1) for item in value.split(",") if item.strip()]
    if any(len(p) != 2 or not p[0].strip() or not p[1].strip() for p in pairs):
        raise ValueError("MINQING_OPEN311_KEYS must be key=channel (or key=channel:read) pairs separated by commas")
    return {key.strip(): channel.strip() for key, channel in pairs}


def _flag(value: str | None) -> bool | None:
    if value is None or value == "":
        return None
    return value.lower() in ("y", "yes", "1", "true")
