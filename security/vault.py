"""Per-person data keys (crypto-shredding).

Each petitioner gets a random AES-256-GCM data key, stored wrapped by the
master key in `person_keys`, in the same database as the events. Events hold
only ciphertext; destroying a person's key (erasure) leaves their events, the
hash chain and every figure intact while the personal fields become unreadable.

The same phone number finds the same person (a keyed HMAC, never the number
itself), so erasing a person covers all their petitions.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import sqlite3
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from uuid import uuid4

import orjson
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from config.settings import DEV_MASTER_KEY, InsecureConfigurationError, Settings
from storage.views import PostgresViews, SqliteViews, create_schema

ENVELOPE_VERSION = 1

TABLES = [
    "CREATE TABLE IF NOT EXISTS person_keys ("
    " person_id TEXT PRIMARY KEY, lookup TEXT UNIQUE, wrapped TEXT, key_id TEXT,"
    " created_at TEXT NOT NULL, erased_at TEXT)",
    "CREATE TABLE IF NOT EXISTS vault_meta (name TEXT PRIMARY KEY, wrapped TEXT NOT NULL, key_id TEXT NOT NULL)",
]


def open_store(settings: Settings) -> SqliteViews | PostgresViews:
    if settings.database_url:
        return PostgresViews(settings.database_url, max_size=2)
    settings.sqlite_path.parent.mkdir(parents=True, exist_ok=True)
    return _SqliteKeys(settings.sqlite_path)  # the events' own file


def create_tables(store: SqliteViews | PostgresViews) -> None:
    """Part of `minqing migrate`."""
    create_schema(store, TABLES)


class VaultError(Exception):
    pass


class _SqliteKeys(SqliteViews):
    """The events' own SQLite file, already in WAL mode (eventsourcing sets it):
    no journal-mode pragma here, which would need a lock a busy writer holds."""

    def _conn(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False, timeout=30)
            self._local.conn = conn
            with self._lock:
                self._all.append(conn)
        return conn


@dataclass(frozen=True)
class MasterKey:
    key_id: str
    aead: AESGCM

    @classmethod
    def of(cls, encoded: str) -> MasterKey:
        raw = base64.b64decode(encoded)
        if len(raw) != 32:
            raise VaultError("MINQING_MASTER_KEY must be the base64 of 32 random bytes")
        return cls(hashlib.sha256(raw).hexdigest()[:12], AESGCM(raw))

    def wrap(self, key: bytes, context: str) -> str:
        nonce = os.urandom(12)
        return base64.b64encode(nonce + self.aead.encrypt(nonce, key, context.encode())).decode()

    def unwrap(self, wrapped: str, context: str) -> bytes:
        blob = base64.b64decode(wrapped)
        return self.aead.decrypt(blob[:12], blob[12:], context.encode())


def _seal(key: bytes, person_id: str, data: dict[str, Any]) -> str:
    nonce = os.urandom(12)
    return base64.b64encode(nonce + AESGCM(key).encrypt(nonce, orjson.dumps(data), person_id.encode())).decode()


def _envelope(person_id: str, key: bytes, data: dict[str, Any]) -> dict[str, Any]:
    return {"v": ENVELOPE_VERSION, "person": person_id, "sealed": _seal(key, person_id, data)}


def _open(key: bytes, person_id: str, sealed: str) -> dict[str, Any]:
    blob = base64.b64decode(sealed)
    return orjson.loads(AESGCM(key).decrypt(blob[:12], blob[12:], person_id.encode()))


class Vault:
    def __init__(self, store: SqliteViews | PostgresViews, master: str, previous: tuple[str, ...] = ()) -> None:
        self.store = store
        self.master = MasterKey.of(master)
        self.masters = {m.key_id: m for m in (self.master, *(MasterKey.of(p) for p in previous))}
        self._index_key = self._meta_key("person_index")
        # lookup -> (person id, key) of the persons this process sealed for. Only used when the
        # caller's save re-checks the key in its own transaction (`cached=True`, commands/recorders.py).
        self._people: dict[str, tuple[str, bytes]] = {}

    @classmethod
    def open(cls, settings: Settings) -> Vault:
        if settings.production and not settings.master_key:
            # Every process that touches personal data (serve, project, deliver, erase) refuses alike.
            raise InsecureConfigurationError("production mode needs MINQING_MASTER_KEY (minqing keys new)")
        settings.check_secrets()
        return cls(open_store(settings), settings.master_key or DEV_MASTER_KEY, settings.previous_master_keys)

    def close(self) -> None:
        self.store.close()

    # --- sealing -------------------------------------------------------------

    def seal(self, data: dict[str, Any], *, phone: str, cached: bool = False) -> dict[str, Any]:
        """The envelope stored in the event instead of the clear fields. `cached`: the key may come
        from this process's memory, because the save will prove it still stands (it then fails
        with `PersonKeyGoneError` and the caller `forget`s the person and seals again)."""
        lookup = self._lookup(phone)
        known = self._people.get(lookup) if cached else None
        person_id, key = known if known is not None else self._persons_for([lookup])[lookup]
        if cached:
            if len(self._people) >= 100_000:
                self._people.clear()  # bounded
            self._people[lookup] = (person_id, key)
        return _envelope(person_id, key, data)

    def unseal(self, envelope: dict[str, Any]) -> dict[str, Any] | None:
        """The clear fields, or None once the person was erased (or is unknown here)."""
        key = self._key_of(envelope["person"])
        return None if key is None else _open(key, envelope["person"], envelope["sealed"])

    def unseal_many(self, envelopes: list[dict[str, Any]]) -> list[tuple[dict[str, Any] | None, bool]]:
        """(`unseal`, `erased`) for many envelopes, one key query per 500 persons (a projection's batch)."""
        ids = sorted({e["person"] for e in envelopes})
        keys: dict[str, bytes] = {}
        erased: set[str] = set()
        for i in range(0, len(ids), 500):
            part = ids[i : i + 500]
            rows = self.store.query(
                "SELECT person_id, wrapped, key_id, erased_at FROM person_keys "
                f"WHERE person_id IN ({','.join('?' * len(part))})",
                part,
            )
            for row in rows:
                if row["wrapped"] is not None:
                    keys[row["person_id"]] = self._unwrap(row["wrapped"], row["key_id"], row["person_id"])
                if row["erased_at"] is not None:
                    erased.add(row["person_id"])
        return [
            (_open(keys[e["person"]], e["person"], e["sealed"]) if e["person"] in keys else None, e["person"] in erased)
            for e in envelopes
        ]

    def knows(self, person_id: str) -> bool:
        return bool(self.store.query("SELECT 1 AS x FROM person_keys WHERE person_id = ?", (person_id,)))

    def forget(self, person_id: str) -> None:
        """Drops a person's key from this process's memory."""
        for lookup, (known, _) in list(self._people.items()):
            if known == person_id:
                self._people.pop(lookup, None)

    def erase(self, person_id: str) -> bool:
        """Destroys the person's key; True if there was one to destroy."""
        self.forget(person_id)
        now = datetime.now(UTC).isoformat()
        with self.store.transaction() as cur:
            rows = cur.execute(
                "SELECT person_id FROM person_keys WHERE person_id = ? AND wrapped IS NOT NULL", (person_id,)
            )
            cur.execute(
                "UPDATE person_keys SET wrapped = NULL, key_id = NULL, lookup = NULL, erased_at = ? "
                "WHERE person_id = ? AND wrapped IS NOT NULL",
                (now, person_id),
            )
        return bool(rows)

    def erased(self, person_id: str) -> bool:
        rows = self.store.query("SELECT erased_at FROM person_keys WHERE person_id = ?", (person_id,))
        return bool(rows) and rows[0]["erased_at"] is not None

    def rotate(self) -> int:
        """Re-wraps every live key under the current master key; returns how many moved."""
        moved = 0
        with self.store.transaction() as cur:
            rows = cur.execute("SELECT name AS id, wrapped, key_id FROM vault_meta")
            for row in rows:
                if row["key_id"] != self.master.key_id:
                    key = self._unwrap(row["wrapped"], row["key_id"], "meta:" + row["id"])
                    cur.execute(
                        "UPDATE vault_meta SET wrapped = ?, key_id = ? WHERE name = ?",
                        (self.master.wrap(key, "meta:" + row["id"]), self.master.key_id, row["id"]),
                    )
                    moved += 1
            rows = cur.execute("SELECT person_id AS id, wrapped, key_id FROM person_keys WHERE wrapped IS NOT NULL")
            for row in rows:
                if row["key_id"] != self.master.key_id:
                    key = self._unwrap(row["wrapped"], row["key_id"], row["id"])
                    cur.execute(
                        "UPDATE person_keys SET wrapped = ?, key_id = ? WHERE person_id = ?",
                        (self.master.wrap(key, row["id"]), self.master.key_id, row["id"]),
                    )
                    moved += 1
        return moved

    def fingerprint(self, payload: bytes) -> str:
        """A keyed hash for fingerprints kept in the log (idempotency): without the
        vault's secret nobody can test a guessed name or phone against it."""
        key = hmac.new(self._index_key, b"idempotency-fingerprint", hashlib.sha256).digest()
        return hmac.new(key, payload, hashlib.sha256).hexdigest()

    def seal_many(self, items: list[tuple[dict[str, Any], str]]) -> list[dict[str, Any]]:
        """`seal` for many (data, phone) pairs, their keys looked up and created together (an
        import of a platform's export, issue 17). Keys are the same as `seal` would make."""
        lookups = [self._lookup(phone) for _, phone in items]
        keys = self._persons_for(lookups)
        return [_envelope(*keys[lookup], data) for (data, _), lookup in zip(items, lookups, strict=True)]

    # --- keys ----------------------------------------------------------------

    def _lookup(self, phone: str) -> str:
        normal = "".join(ch for ch in phone if ch.isdigit())
        return hmac.new(self._index_key, normal.encode(), hashlib.sha256).hexdigest()

    def _persons_for(self, lookups: list[str]) -> dict[str, tuple[str, bytes]]:
        """Each lookup's person (id, key): the known ones read with one query per 500, the missing
        created in one transaction per 500; one that another process created meanwhile (the insert
        did nothing for it) is read in the next round."""
        wanted = sorted(set(lookups))
        keys: dict[str, tuple[str, bytes]] = {}
        for _ in range(3):
            keys |= self._stored_keys([lookup for lookup in wanted if lookup not in keys])
            missing = [lookup for lookup in wanted if lookup not in keys]
            if not missing:
                return keys
            keys |= self._new_keys(missing)
        if all(lookup in keys for lookup in wanted):
            return keys
        raise VaultError("could not create a person key")

    def _stored_keys(self, lookups: list[str]) -> dict[str, tuple[str, bytes]]:
        keys: dict[str, tuple[str, bytes]] = {}
        for i in range(0, len(lookups), 500):
            part = lookups[i : i + 500]
            rows = self.store.query(
                "SELECT person_id, lookup, wrapped, key_id FROM person_keys "
                f"WHERE lookup IN ({','.join('?' * len(part))}) AND wrapped IS NOT NULL",
                part,
            )
            for row in rows:
                keys[row["lookup"]] = (row["person_id"], self._unwrap(row["wrapped"], row["key_id"], row["person_id"]))
        return keys

    def _new_keys(self, lookups: list[str]) -> dict[str, tuple[str, bytes]]:
        """Keys for persons not seen before; a lookup another process took meanwhile is left out."""
        keys: dict[str, tuple[str, bytes]] = {}
        for i in range(0, len(lookups), 500):
            fresh = {
                lookup: (f"P{uuid4().hex}", AESGCM.generate_key(bit_length=256)) for lookup in lookups[i : i + 500]
            }
            now = datetime.now(UTC).isoformat()
            values = [
                (person_id, lookup, self.master.wrap(key, person_id), self.master.key_id, now)
                for lookup, (person_id, key) in fresh.items()
            ]
            with self.store.transaction() as cur:
                inserted = cur.execute(
                    "INSERT INTO person_keys (person_id, lookup, wrapped, key_id, created_at) VALUES "
                    + ", ".join(["(?, ?, ?, ?, ?)"] * len(values))
                    + " ON CONFLICT (lookup) DO NOTHING RETURNING person_id, lookup",
                    [v for row in values for v in row],
                )
            keys |= {row["lookup"]: fresh[row["lookup"]] for row in inserted}
        return keys

    def _key_of(self, person_id: str) -> bytes | None:
        rows = self.store.query("SELECT wrapped, key_id FROM person_keys WHERE person_id = ?", (person_id,))
        if not rows or rows[0]["wrapped"] is None:
            return None
        return self._unwrap(rows[0]["wrapped"], rows[0]["key_id"], person_id)

    def _unwrap(self, wrapped: str, key_id: str, context: str) -> bytes:
        master = self.masters.get(key_id)
        if master is None:
            raise VaultError(f"key wrapped by master key {key_id}, which is not configured")
        return master.unwrap(wrapped, context)

    def _meta_key(self, name: str) -> bytes:
        fresh = os.urandom(32)
        with self.store.transaction() as cur:
            cur.execute(
                "INSERT INTO vault_meta (name, wrapped, key_id) VALUES (?, ?, ?) ON CONFLICT (name) DO NOTHING",
                (name, self.master.wrap(fresh, "meta:" + name), self.master.key_id),
            )
        row = self.store.query("SELECT wrapped, key_id FROM vault_meta WHERE name = ?", (name,))[0]
        return self._unwrap(row["wrapped"], row["key_id"], "meta:" + name)
