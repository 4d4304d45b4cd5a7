"""`minqing replay`, `minqing rebuild`, `minqing verify`, `minqing seal`: the
supervision office's tools, on whichever store the environment names."""

from __future__ import annotations

import argparse
import sys
from datetime import datetime
from typing import Any

import orjson

from cases.clock import CHINA
from commands.settings import Settings


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


def add_commands(sub: Any) -> None:
    replay = sub.add_parser("replay", help="print a case's full history and dwell times (by id or case number)")
    replay.add_argument("case", help="case id or case number, e.g. 350105001-20260302-7KQ2M")
    replay.add_argument("--json", action="store_true", help="the same as GET /cases/{id}/history")
    replay.set_defaults(run=_replay)
