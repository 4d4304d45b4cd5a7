"""Where the events live, chosen by environment: SQLite by default, PostgreSQL
when MINQING_DATABASE_URL names it."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit

from reference.model import DEFAULT_POLICY, DEMO_REFERENCE

TRANSCODER = "commands.transcoder:OrjsonTranscoder"
DEMO_OPEN311_KEY = "demo-open311-key"


class InsecureConfigurationError(RuntimeError):
    pass


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
    # Open311 api_key -> the channel its requests are registered under. Unset on
    # the embedded store: the documented demo key; on PostgreSQL: none.
    open311_keys: dict[str, str] | None = None
    webhook_log_days: float = 30.0  # delivery-log entries are kept this long
    # Webhooks to loopback or link-local addresses (the host itself, cloud metadata):
    # refused in production unless allowed; None: allowed only in development.
    webhook_allow_local: bool | None = None
    webhook_lease: float = 30.0  # seconds a delivery worker holds a subscription without renewing it

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
            open311_keys=_pairs(env.get("MINQING_OPEN311_KEYS")),
        )

    def api_keys(self) -> dict[str, str]:
        if self.open311_keys is not None:
            return self.open311_keys
        return {DEMO_OPEN311_KEY: "online"} if not self.database_url else {}

    @property
    def local_webhooks(self) -> bool:
        return self.webhook_allow_local if self.webhook_allow_local is not None else not self.production

    @property
    def production(self) -> bool:
        if self.environment:
            return self.environment.lower() in ("production", "prod")
        return self.database_url is not None

    def check_secrets(self) -> None:
        """Production refuses to start on the well-known development secrets."""
        if not self.production:
            return
        missing = []
        if not (self.jwt_secret or self.jwt_public_key):
            missing.append("MINQING_JWT_SECRET (or MINQING_JWT_PUBLIC_KEY)")
        if not self.master_key:
            missing.append("MINQING_MASTER_KEY")
        if self.jwt_secret is not None and len(self.jwt_secret) < 32:
            missing.append("MINQING_JWT_SECRET of at least 32 characters")
        if missing:
            raise InsecureConfigurationError(
                "production mode (MINQING_ENV=production or a PostgreSQL URL) needs " + ", ".join(missing)
            )

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


def _seconds(value: str | None) -> tuple[float, ...] | None:
    if not value:
        return None
    try:
        return tuple(float(part) for part in value.split(","))
    except ValueError:
        raise ValueError(f"MINQING_WEBHOOK_BACKOFF must be seconds separated by commas, got {value!r}") from None


def _pairs(value: str | None) -> dict[str, str] | None:
    """`key=channel,key2=channel2` (MINQING_OPEN311_KEYS)."""
    if value is None:
        return None
    pairs = [item.split("=", 1) for item in value.split(",") if item.strip()]
    if any(len(p) != 2 or not p[0].strip() or not p[1].strip() for p in pairs):
        raise ValueError("MINQING_OPEN311_KEYS must be key=channel pairs separated by commas")
    return {key.strip(): channel.strip() for key, channel in pairs}


def _flag(value: str | None) -> bool | None:
    if value is None or value == "":
        return None
    return value.lower() in ("y", "yes", "1", "true")
