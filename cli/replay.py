"""`minqing replay`, `minqing rebuild`, `minqing verify`, `minqing seal`: the
supervision office's tools, on whichever store the environment names."""

from __future__ import annotations

import argparse
import re
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

import orjson

from cases.clock import CHINA
from config.settings import Settings


class ProgressBar:
    """A bar on a terminal; a line every tenth of the way elsewhere (logs, CI)."""

    def __init__(self, label: str, total: int, out: TextIO = sys.stderr) -> None:
        self.label, self.total, self.out = label, max(total, 1), out
        self.started = time.perf_counter()
        self.tty = out.isatty()
        self.last_tenth = -1

    def __call__(self, done: int) -> None:
        share = min(done / self.total, 1.0)
        elapsed = time.perf_counter() - self.started
        rate = done / elapsed if elapsed else 0.0
        eta = (self.total - done) / rate if rate else 0.0
        bar = "#" * int(share * 30)
        text = f"{self.label} [{bar:<30}] {share:6.1%} {done:,}/{self.total:,} {rate:,.0f}/s ETA {eta:.0f}s"
        if self.tty:
            print("\r" + text, end="", file=self.out, flush=True)
        elif int(share * 10) > self.last_tenth:
            self.last_tenth = int(share * 10)
            print(text, file=self.out, flush=True)

    def close(self) -> None:
        if self.tty:
            print(file=self.out)


def _hours(seconds: float) -> str:
    if seconds < 3600:
        return f"{seconds / 60:.0f} 分钟"
    if seconds < 86400 * 2:
        return f"{seconds / 3600:.1f} 小时"
    return f"{seconds / 86400:.1f} 天"


def _summary(payload: dict[str, Any]) -> str:
    text = " ".join(f"{k}={v}" for k, v in payload.items() if v not in (None, "", [], {}))
    return text if len(text) <= 90 else text[:89] + "…"


def print_timeline(body: dict[str, Any], out: Any = sys.stdout) -> None:
    print(f"案件 {body['number']}  ({body['case_id']})  第 {body['version']} 版  状态 {body['status']}", file=out)
    for e in body["events"]:
        local = datetime.fromisoformat(e["at"]).astimezone(CHINA).strftime("%Y-%m-%d %H:%M")
        actor = e["actor"] or {}
        print(
            f"{e['position']:>8}  v{e['version']:<3} {local}  {e['label']}({e['type']})  "
            f"{actor.get('role', '')}:{actor.get('id', '')}  → {e['status_label']}  {_summary(e['payload'])}",
            file=out,
        )
    print("各状态停留:", file=out)
    for d in body["dwell"]["by_status"]:
        print(f"  {d['label']:<6} {_hours(d['seconds'])}", file=out)
    print("各承办方停留:", file=out)
    for d in body["dwell"]["by_holder"]:
        print(f"  {d['holder']:<24} {_hours(d['seconds'])}", file=out)


def _replay(args: argparse.Namespace) -> int:
    from commands.errors import CaseNotFoundError
    from replay.history import history
    from replay.records import resolve_case
    from service import build_cases

    cases = build_cases(Settings.from_environ())
    try:
        try:
            body = history(cases, resolve_case(cases, args.case))
        except CaseNotFoundError as e:
            print(e.message, file=sys.stderr)
            return 2
        if args.json:
            sys.stdout.write(orjson.dumps(body, option=orjson.OPT_INDENT_2).decode() + "\n")
        else:
            print_timeline(body)
        return 0
    finally:
        cases.close()


def _open(settings: Settings) -> tuple[Any, Any]:
    from service import build_cases
    from storage.views import open_views

    return build_cases(settings), open_views(settings)


def _verify(args: argparse.Namespace) -> int:
    from projections.chain import AuditChain
    from projections.runner import Runner
    from replay.verify import record_full, verify

    cases, views = _open(Settings.from_environ())
    try:
        # Chain what is not chained yet, unless a running worker keeps the chain.
        keeper = Runner(cases, views, AuditChain())
        if keeper.lock.acquire():
            try:
                keeper.catch_up()
            finally:
                keeper.lock.release()
        root = None
        if args.root:
            position, _, digest = args.root.partition(":")
            root = (int(position), digest.lower())
        started = time.monotonic()

        def progress(done: int, total: int) -> None:
            rate = done / max(time.monotonic() - started, 1e-6)
            print(f"\rverify: {done:,} / {total:,} ({rate:,.0f} events/s)", end="", file=sys.stderr, flush=True)

        result = verify(cases, views, published_root=root, progress=progress)
        print(file=sys.stderr)
        record_full(views, result, datetime.now(UTC).isoformat())
    finally:
        views.close()
        cases.close()
    if args.json:
        sys.stdout.write(orjson.dumps(result, option=orjson.OPT_INDENT_2).decode() + "\n")
    else:
        state = "完好 intact" if result["ok"] else "发现问题 PROBLEMS FOUND"
        print(f"{state}: {result['checked']:,} events checked to position {result['chained_to']:,} "
              f"({result['events_per_second'] or 0:,}/s), {result['seals_checked']} seals, "
              f"{result['pending']} pending; root {result['root_hash']}")  # fmt: skip
        for p in result["problems"]:
            print(f"  {p['kind']} ({p['label']}) at position {p['position']}: case {p['originator_id']} "
                  f"v{p['version']} — {p['detail']}")  # fmt: skip
    return 0 if result["ok"] else 1


def _seal(args: argparse.Namespace) -> int:
    from projections.chain import seal

    cases, views = _open(Settings.from_environ())
    try:
        with views.transaction() as cur:
            made = seal(cur)
    finally:
        views.close()
        cases.close()
    if made is None:
        print("nothing chained since the last seal", file=sys.stderr)
        return 0
    print(f"seal {made['seal_no']}: position {made['position']} root {made['root_hash']} ({made['events']:,} events)")
    return 0


def _rebuild(args: argparse.Namespace) -> int:
    from reference.model import load_policy
    from replay.rebuild import REBUILDABLE, rebuild

    unknown = set(args.projections) - set(REBUILDABLE)
    if unknown:
        print(
            f"unknown projection(s) {', '.join(sorted(unknown))}; rebuildable: {', '.join(REBUILDABLE)}",
            file=sys.stderr,
        )
        return 2
    settings = Settings.from_environ()
    cases, views = _open(settings)
    outcomes = []
    try:
        for name in args.projections or list(REBUILDABLE):
            outcome, shadow = rebuild(
                cases,
                settings,
                views,
                name,
                swap=not args.side_by_side,
                keep_as=args.side_by_side,
                progress=lambda label, total: ProgressBar(f"rebuild {label}", total),
            )
            outcomes.append(outcome.as_dict())
            if shadow is not None:
                policy = load_policy(args.policy) if args.policy else cases.policy
                outcomes[-1]["side_by_side"] = _compare_scores(cases, views, shadow.views, policy)
                shadow.views.close()
    finally:
        views.close()
        cases.close()
    if args.json:
        sys.stdout.write(orjson.dumps(outcomes, option=orjson.OPT_INDENT_2).decode() + "\n")
        return 0 if all(o["equal"] is not False for o in outcomes) else 1
    for o in outcomes:
        verdict = {True: "equals the live view", False: "DIFFERS from the live view", None: "not compared"}[o["equal"]]
        print(f"{o['projection']}: {o['events']:,} events in {o['seconds']:.1f}s ({o['events_per_second'] or 0:,}/s), "
              f"at position {o['position']:,}; {'swapped in' if o['swapped'] else 'kept apart'}; {verdict}"
              + (f" ({o['note']})" if o["note"] else ""))  # fmt: skip
        for table, d in o["differences"].items():
            if d["only_live"] or d["only_rebuilt"]:
                print(f"  {table}: {d['only_live']} rows only live, {d['only_rebuilt']} only rebuilt")
        for row in o.get("side_by_side", []):
            print(f"  {row['name'] or row['unit']}: composite {row['live']} → {row['rebuilt']}")
    return 0 if all(o["equal"] is not False for o in outcomes) else 1


def _compare_scores(cases: Any, live: Any, rebuilt: Any, policy: Any) -> list[dict[str, Any]]:
    """Composite scores by street: the live view under today's policy beside
    the rebuilt one under the policy given."""
    from cases.clock import local_date
    from projections.area import Area
    from projections.scores import scores

    today = local_date(cases.clock())
    now = {g["unit"]: g for g in scores(live, cases.policy.in_force(today), Area.all())["groups"]}
    new = {g["unit"]: g for g in scores(rebuilt, policy.in_force(today), Area.all())["groups"]}
    return [
        {
            "unit": unit,
            "name": (now.get(unit) or new[unit])["name"],
            "live": (now.get(unit) or {}).get("composite_score"),
            "rebuilt": (new.get(unit) or {}).get("composite_score"),
        }
        for unit in sorted(now.keys() | new.keys(), key=str)
    ]


def _name(value: str) -> str:
    if not re.fullmatch(r"[a-z][a-z0-9_]{0,30}", value):
        raise argparse.ArgumentTypeError("a lower-case name: letters, digits, underscores")
    return value


def add_commands(sub: Any) -> None:
    replay = sub.add_parser("replay", help="print a case's full history and dwell times (by id or case number)")
    replay.add_argument("case", help="case id or case number, e.g. 350105001-20260302-7KQ2M")
    replay.add_argument("--json", action="store_true", help="the same as GET /cases/{id}/history")
    replay.set_defaults(run=_replay)

    rebuild = sub.add_parser(
        "rebuild", help="rebuild read models from the first event into fresh tables and swap them in"
    )
    rebuild.add_argument("projections", nargs="*", metavar="PROJECTION", help="ledger (default: every read model)")
    rebuild.add_argument(
        "--side-by-side", metavar="NAME", type=_name, help="keep the rebuild apart under NAME instead of swapping it in"
    )
    rebuild.add_argument("--policy", type=Path, help="with --side-by-side: read the rebuilt figures under this policy")
    rebuild.add_argument("--json", action="store_true")
    rebuild.set_defaults(run=_rebuild)

    verify = sub.add_parser("verify", help="recompute the hash chains; name the first altered/missing/moved event")
    verify.add_argument("--root", metavar="POSITION:HASH", help="also check a root hash published earlier")
    verify.add_argument("--json", action="store_true", help="the same as GET /audit/verify")
    verify.set_defaults(run=_verify)

    seal = sub.add_parser("seal", help="seal the chain now: print a root hash to publish")
    seal.set_defaults(run=_seal)
