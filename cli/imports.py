"""`minqing import FILE --mapping MAPPING [--dry-run]`: a hotline platform's export, every row
registered as a case (docs/imports.md). Progress on stderr; the report on stdout."""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path
from typing import Any

import orjson

from config.settings import Settings


class ProgressLine:
    """Rows done of all, and the rate, on stderr: rewritten in place on a terminal, else one
    line a second (a log file or a CI job reads every line)."""

    def __init__(self, stream: Any = None, every: float = 1.0) -> None:
        self.stream = stream or sys.stderr
        self.started = time.perf_counter()
        self.last = 0.0
        self.every = every
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())

    def __call__(self, done: int, total: int) -> None:
        now = time.perf_counter()
        final = done >= total
        if not final and done and now - self.last < self.every:
            return
        self.last = now
        elapsed = now - self.started
        rate = done / elapsed if elapsed > 0 else 0.0
        share = 100 * done // total if total else 100
        text = f"导入进度 {done}/{total} 行（{share}%），{rate:.0f} 行/秒"
        if self.tty:
            self.stream.write("\r" + text + ("\n" if final else ""))
        else:
            self.stream.write(text + "\n")
        self.stream.flush()


def _import(args: argparse.Namespace) -> int:
    from cases.actor import Actor
    from cases.vocabulary import Role
    from commands.imports import ImportFileError, Mapping, import_file, mapping_named
    from service import build_cases

    settings = Settings.from_environ()
    path = Path(args.file)
    try:
        data = path.read_bytes()
    except OSError as e:
        print(f"minqing import: 无法读取 {path}：{e.strerror}", file=sys.stderr)
        return 2
    try:
        given = Path(args.mapping)
        mapping = (
            Mapping.load(given)
            if given.suffix in (".json", ".toml")
            else mapping_named(settings.import_mappings, args.mapping)
        )
    except ImportFileError as e:
        print(f"minqing import: {e.field}: {e.reason}", file=sys.stderr)
        return 2
    if args.clerk:
        actor = Actor(args.clerk, Role.INTAKE_CLERK)
    else:
        actor = Actor(os.environ.get("USER", "cli"), Role.ADMIN, "cli")
    cases = build_cases(settings)
    try:
        report = import_file(
            cases,
            actor,
            data,
            mapping,
            source=path.name,
            dry_run=args.dry_run,
            charset=args.encoding,
            progress=None if args.quiet else ProgressLine(),
        )
    except ImportFileError as e:
        print(f"minqing import: {e.field}: {e.reason}", file=sys.stderr)
        return 2
    finally:
        cases.close()
    if args.json:
        sys.stdout.write(orjson.dumps(report.as_dict(), option=orjson.OPT_INDENT_2).decode() + "\n")
    else:
        print(report.summary())
        for r in report.refused:
            column = f"（{r.column}）" if r.column else ""
            print(f"第 {r.row} 行  工单号 {r.external_id or '—'}  {r.field}{column}：{r.reason}")
    if args.report:
        # With a BOM, so that Excel opens the Chinese report as UTF-8.
        Path(args.report).write_text(report.refusals_csv(), encoding="utf-8-sig")
        print(f"拒绝明细已写入 {args.report}", file=sys.stderr)
    return 1 if report.refused else 0


def add_commands(sub: Any) -> None:
    command = sub.add_parser(
        "import",
        help="import a 12345 / 110 platform's export (xlsx or CSV): each row a case, with the platform's order number",
    )
    command.add_argument("file", help="the platform's export: .xlsx, or CSV in UTF-8 or GBK/GB18030")
    command.add_argument(
        "--mapping",
        required=True,
        help="a mapping file (.json / .toml), or the name of one in MINQING_IMPORT_MAPPINGS (12345, 110)",
    )
    command.add_argument("--dry-run", action="store_true", help="check every row and report; write nothing")
    command.add_argument("--report", help="also write the refused rows to this CSV file (行号, 工单号, 字段, 原因)")
    command.add_argument("--json", action="store_true", help="print the whole report as JSON")
    command.add_argument("--encoding", help="the CSV's encoding (default: UTF-8, else GB18030)")
    command.add_argument("--clerk", help="register as this intake clerk (民情信息员) id; default: the operator (admin)")
    command.add_argument("--quiet", action="store_true", help="no progress on stderr")
    command.set_defaults(run=_import)
