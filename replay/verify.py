"""Recompute the hash chains from the stored log and compare them with what
the chain keeper wrote down: the first altered, missing, inserted or
reordered event is named, and every seal's root hash is checked.

The walk resynchronises on the recorded hashes after a problem, so one
altered row is reported once rather than breaking every link after it.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any
from uuid import UUID

import orjson
from eventsourcing.application import Application

from projections.chain import GENESIS, NAME, event_hash, hash_notification, log_link, stream_link
from projections.runner import tracked_position
from replay.records import stream_records
from storage.views import PostgresViews, SqliteViews

PAGE = 5000
MAX_LISTED = 20

KIND_LABELS = {
    "altered": "事件内容被改动",
    "missing": "事件被删除",
    "inserted": "链外插入的事件",
    "reordered": "事件顺序被调换",
    "chain_altered": "哈希链记录被改动",
    "seal_mismatch": "封存根哈希不符",
    "root_mismatch": "与公布的根哈希不符",
}

DETAILS = {
    "altered": "存储内容的哈希与链中记录不符",
    "missing": "链中有记录，存储中已无此事件",
    "inserted": "位置在已链范围内，但链中无记录",
    "chain_altered": "链接哈希与重算结果不符",
    "root_mismatch": "重算的根哈希与公布值不同",
    "seal": "封存的根哈希与重算结果不符",
}


@dataclass(frozen=True)
class Problem:
    kind: str
    position: int
    originator_id: str | None
    version: int | None
    detail: str

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "label": KIND_LABELS[self.kind]}


def verify(
    app: Application,
    views: SqliteViews | PostgresViews,
    *,
    published_root: tuple[int, str] | None = None,
    page: int = PAGE,
    since_seal: bool = False,
    progress: Callable[[int, int], None] | None = None,
) -> dict[str, Any]:
    """Recompute the chains from the first event, or (`since_seal`) from the last
    seal: its root is checked against the chain's row there and trusted, so a
    request never walks more than the events since (SEAL_EVERY at most); a full
    walk (`minqing verify`) checks the seals themselves."""
    started = time.perf_counter()
    chained_to = tracked_position(views, NAME)
    head = app.recorder.max_notification_id() or 0
    # A published root is checked where the walk passes it: a walk from a seal starts before it.
    limit = min(chained_to, published_root[0] - 1 if published_root else chained_to)
    # A walk from the last seal needs that seal and those after it, not every seal ever made.
    from_seal = "WHERE position >= (SELECT COALESCE(MAX(position), 0) FROM audit_seals WHERE position <= ?) "
    sealed = views.query(
        f"SELECT * FROM audit_seals {from_seal if since_seal else ''}ORDER BY seal_no", [limit] if since_seal else []
    )
    seals = {int(r["position"]): r for r in sealed}
    problems: list[Problem] = []
    heads: dict[str, tuple[int, str]] = {}
    log_hash = GENESIS  # follows the recorded links, to tell which row of the chain is wrong
    pure = GENESIS  # follows only the stored log: what seals and published roots vouch for
    checked = 0
    seals_checked = 0
    after = 0

    def note(kind: str, position: int, stream: object = None, version: int | None = None, detail: str = "") -> None:
        problems.append(Problem(kind, position, str(stream) if stream else None, version, detail or DETAILS[kind]))

    if since_seal:
        anchors = [p for p in seals if p <= limit]
        if anchors:
            after = max(anchors)
            anchor = seals[after]
            pure = anchor["root_hash"]
            rows = views.query("SELECT log_hash FROM audit_chain WHERE position = ?", [after])
            log_hash = rows[0]["log_hash"] if rows else pure
            seals_checked += 1
            if log_hash != pure:
                note("seal_mismatch", after, detail=f"第 {anchor['seal_no']} 号封存：{DETAILS['seal']}")
    verified_from = after

    while after < chained_to:
        notes = list(app.recorder.select_notifications(start=after + 1, limit=page, stop=chained_to))
        upto = notes[-1].id if len(notes) == page else chained_to
        recorded = views.query(
            "SELECT * FROM audit_chain WHERE position > ? AND position <= ? ORDER BY position", [after, upto]
        )
        if verified_from:
            heads.update(_heads_before(views, verified_from, {r["originator_id"] for r in recorded} - heads.keys()))
        by_position = {int(r["position"]): r for r in recorded}
        position_of_hash = {r["event_hash"]: int(r["position"]) for r in recorded}
        stored = {n.id: n for n in notes}
        for position in sorted(by_position.keys() | stored.keys()):
            row = by_position.get(position)
            n = stored.get(position)
            if row is None:
                assert n is not None
                note("inserted", position, n.originator_id, n.originator_version)
                continue
            stream = row["originator_id"]
            if n is None:
                note("missing", position, stream, int(row["originator_version"]))
                heads[stream] = (int(row["originator_version"]), row["stream_hash"])
                log_hash = row["log_hash"]
                continue
            checked += 1
            digest = hash_notification(n)
            version = n.originator_version
            if digest != row["event_hash"]:
                moved_from = position_of_hash.get(digest)
                detail = f"此处的事件原在位置 {moved_from}" if moved_from is not None else ""
                note("reordered" if moved_from is not None else "altered", position, stream, version, detail)
            _, previous = heads.get(stream, (0, GENESIS))
            linked = log_link(log_hash, position, digest)
            pure = log_link(pure, position, digest)
            if digest == row["event_hash"] and (
                stream_link(previous, digest) != row["stream_hash"] or linked != row["log_hash"]
            ):
                note("chain_altered", position, stream, version)
            if position in seals:
                seals_checked += 1
                if seals[position]["root_hash"] != pure:
                    note("seal_mismatch", position, detail=f"第 {seals[position]['seal_no']} 号封存：{DETAILS['seal']}")
            if published_root and position == published_root[0] and published_root[1] != pure:
                note("root_mismatch", position)
            # Carry on from what was recorded, so one problem is reported once.
            heads[stream] = (int(row["originator_version"]), row["stream_hash"])
            log_hash = row["log_hash"]
        after = upto
        if progress is not None:
            progress(after, chained_to)
    if published_root and published_root[0] > chained_to:
        note("root_mismatch", published_root[0], detail="公布的位置尚未入链，无法核对")

    elapsed = time.perf_counter() - started
    return {
        "ok": not problems,
        "checked": checked,
        "verified_from": verified_from,
        "chained_to": chained_to,
        "head": head,
        "pending": max(0, head - chained_to),
        "root_hash": pure,
        "seals_checked": seals_checked,
        "first_problem": problems[0].as_dict() if problems else None,
        "problem_count": len(problems),
        "problems": [p.as_dict() for p in problems[:MAX_LISTED]],
        "elapsed_seconds": round(elapsed, 3),
        "events_per_second": round(checked / elapsed) if elapsed else None,
    }


def _heads_before(views: SqliteViews | PostgresViews, position: int, streams: set[str]) -> dict[str, tuple[int, str]]:
    """The recorded head of each stream at `position`: where its links continue from."""
    found: dict[str, tuple[int, str]] = {}
    ids = sorted(streams)
    for i in range(0, len(ids), 500):
        part = ids[i : i + 500]
        # Only each stream's head row comes back (a stream's versions rise with its positions), not
        # every earlier row of every stream the walk touches.
        rows = views.query(
            "SELECT c.originator_id, c.originator_version, c.stream_hash FROM audit_chain c JOIN ("
            "SELECT originator_id, MAX(originator_version) AS head FROM audit_chain "
            f"WHERE originator_id IN ({','.join('?' * len(part))}) AND position <= ? GROUP BY originator_id"
            ") h ON c.originator_id = h.originator_id AND c.originator_version = h.head",
            [*part, position],
        )
        for r in rows:
            found[r["originator_id"]] = (int(r["originator_version"]), r["stream_hash"])
    return found


def verify_case(app: Application, views: SqliteViews | PostgresViews, case_id: UUID) -> dict[str, Any]:
    """One stream's chain: every stored event's hash and stream link against the
    chain's rows for it, and the stream's recorded head."""
    started = time.perf_counter()
    chained_to = tracked_position(views, NAME)
    stored = {r.stored.originator_version: r for r in stream_records(app, case_id) if r.position <= chained_to}
    rows = views.query("SELECT * FROM audit_chain WHERE originator_id = ? ORDER BY originator_version", [str(case_id)])
    recorded = {int(r["originator_version"]): r for r in rows}
    problems: list[Problem] = []
    previous = GENESIS
    for version in sorted(recorded.keys() | stored.keys()):
        row, record = recorded.get(version), stored.get(version)
        if row is None:
            assert record is not None
            problems.append(Problem("inserted", record.position, str(case_id), version, DETAILS["inserted"]))
            continue
        position = int(row["position"])
        if record is None:
            problems.append(Problem("missing", position, str(case_id), version, DETAILS["missing"]))
        else:
            s = record.stored
            digest = event_hash(case_id, s.originator_version, s.topic, bytes(s.state))
            if record.position != position:
                detail = f"此事件现位于 {record.position}"
                problems.append(Problem("reordered", position, str(case_id), version, detail))
            elif digest != row["event_hash"]:
                problems.append(Problem("altered", position, str(case_id), version, DETAILS["altered"]))
            elif stream_link(previous, digest) != row["stream_hash"]:
                problems.append(Problem("chain_altered", position, str(case_id), version, DETAILS["chain_altered"]))
        previous = row["stream_hash"]
    head = views.query("SELECT * FROM audit_heads WHERE originator_id = ?", [str(case_id)])
    if recorded and (not head or head[0]["stream_hash"] != previous):
        last = max(recorded)
        problems.append(Problem("chain_altered", int(recorded[last]["position"]), str(case_id), last,
                                "案件链头与链中记录不符"))  # fmt: skip
    return {
        "case": str(case_id),
        "ok": not problems,
        "checked": len(stored),
        "chained_to": chained_to,
        "stream_hash": previous if recorded else None,
        "first_problem": problems[0].as_dict() if problems else None,
        "problem_count": len(problems),
        "problems": [p.as_dict() for p in problems[:MAX_LISTED]],
        "elapsed_seconds": round(time.perf_counter() - started, 4),
    }


def record_full(views: SqliteViews | PostgresViews, result: dict[str, Any], at: str) -> None:
    """Keep a full walk's outcome: the endpoint reports it beside its own check since the last seal."""
    with views.transaction() as cur:
        cur.execute(
            "INSERT INTO audit_verifications (verified_at, chained_to, root_hash, ok, checked, problem_count, "
            "first_problem) VALUES (?, ?, ?, ?, ?, ?, ?)",
            [at, result["chained_to"], result["root_hash"], "yes" if result["ok"] else "no", result["checked"],
             result["problem_count"], orjson.dumps(result["first_problem"]).decode()],
        )  # fmt: skip


def last_full(views: SqliteViews | PostgresViews) -> dict[str, Any] | None:
    rows = views.query("SELECT * FROM audit_verifications ORDER BY verified_at DESC LIMIT 1")
    if not rows:
        return None
    row = rows[0]
    return {**row, "ok": row["ok"] == "yes", "first_problem": orjson.loads(row["first_problem"])}
