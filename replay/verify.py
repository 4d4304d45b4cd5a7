"""Recompute the hash chains from the stored log and compare them with what
the chain keeper wrote down: the first altered, missing, inserted or
reordered event is named, and every seal's root hash is checked.

The walk resynchronises on the recorded hashes after a problem, so one
altered row is reported once rather than breaking every link after it.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from typing import Any

from eventsourcing.application import Application

from projections.chain import GENESIS, NAME, hash_notification, log_link, stream_link
from projections.runner import tracked_position
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
) -> dict[str, Any]:
    started = time.perf_counter()
    chained_to = tracked_position(views, NAME)
    head = app.recorder.max_notification_id() or 0
    seals = {int(r["position"]): r for r in views.query("SELECT * FROM audit_seals ORDER BY seal_no")}
    problems: list[Problem] = []
    heads: dict[str, tuple[int, str]] = {}
    log_hash = GENESIS  # follows the recorded links, to tell which row of the chain is wrong
    pure = GENESIS  # follows only the stored log: what seals and published roots vouch for
    checked = 0
    seals_checked = 0
    after = 0

    def note(kind: str, position: int, stream: object = None, version: int | None = None, detail: str = "") -> None:
        problems.append(Problem(kind, position, str(stream) if stream else None, version, detail or DETAILS[kind]))

    while after < chained_to:
        notes = list(app.recorder.select_notifications(start=after + 1, limit=page, stop=chained_to))
        upto = notes[-1].id if len(notes) == page else chained_to
        recorded = views.query(
            "SELECT * FROM audit_chain WHERE position > ? AND position <= ? ORDER BY position", [after, upto]
        )
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
    if published_root and published_root[0] > chained_to:
        note("root_mismatch", published_root[0], detail="公布的位置尚未入链，无法核对")

    elapsed = time.perf_counter() - started
    return {
        "ok": not problems,
        "checked": checked,
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
