"""`minqing token …`, `minqing erase …`, `minqing keys …`: the operator's side of security."""

from __future__ import annotations

import argparse
import base64
import os
import sys
from typing import Any

from cases.vocabulary import Role
from config.settings import Settings
from security.tokens import DEV_ACTORS


def _keys(settings: Settings) -> Any:
    from security.tokens import TokenKeys

    return TokenKeys.from_settings(settings)


def _grids_of(settings: Settings, leader: str) -> list[str]:
    from reference.model import ReferenceData

    known = ReferenceData.load(settings.reference_path).grid_leaders.get(leader)
    if known is None:
        raise SystemExit(f"{leader} is not a grid leader in the reference data: give --grids")
    return list(known.grids)


def _issue(args: argparse.Namespace) -> int:
    settings = Settings.from_environ()
    role = Role(args.role)
    if role == Role.RESIDENT and not args.case:
        raise SystemExit("a resident token needs --case CASE_ID")
    if role in (Role.TOWNSHIP, Role.DEPARTMENT) and not args.unit:
        raise SystemExit(f"a {role} token needs --unit (street or department code)")
    sub = args.sub or (f"R-{args.case[:8]}" if role == Role.RESIDENT else f"{role}-{args.unit or 'op'}")
    grids = args.grids.split(",") if args.grids else (_grids_of(settings, sub) if role == Role.GRID_LEADER else None)
    keys = _keys(settings)
    if keys.dev:
        print("warning: development secret (set MINQING_JWT_SECRET in production)", file=sys.stderr)
    token = keys.issue(role, sub, unit=args.unit, grids=grids, case=args.case, grants=args.grant or None, ttl=args.ttl)
    print(token)
    return 0


def _dev(args: argparse.Namespace) -> int:
    settings = Settings.from_environ()
    keys = _keys(settings)
    if not keys.dev:
        raise SystemExit("`minqing token dev` is for the embedded demo only (no MINQING_JWT_SECRET set)")
    for actor in DEV_ACTORS:
        grids = _grids_of(settings, actor["sub"]) if actor["role"] == Role.GRID_LEADER else None
        token = keys.issue(actor["role"], actor["sub"], unit=actor.get("unit"), grids=grids, ttl=args.ttl)
        print(f"{actor['role']:<13} {actor['sub']:<12} {token}")
    return 0


def _erase(args: argparse.Namespace) -> int:
    from cases.actor import Actor
    from commands.evidence import Evidence
    from security.erasure import PersonNotFoundError, erase_attachments, erase_person
    from service import build_cases
    from storage.blobs import open_blobs
    from storage.views import open_views

    settings = Settings.from_environ()
    cases = build_cases(settings)
    views = open_views(settings)
    try:
        operator = Actor(os.environ.get("USER", "cli"), Role.ADMIN, "cli")
        erased = erase_person(cases, views, args.person, by=operator)
        blobs = open_blobs(settings)
        try:
            evidence = Evidence(cases, blobs, max_bytes=settings.attachment_max_bytes)
            print(erased | {"attachments_erased": erase_attachments(evidence, views, args.person)})
        finally:
            blobs.close()
    except PersonNotFoundError as e:
        print(e.message, file=sys.stderr)
        return 1
    finally:
        views.close()
        cases.close()
    return 0


def _rotate(args: argparse.Namespace) -> int:
    from security.vault import Vault

    vault = Vault.open(Settings.from_environ())
    try:
        print(f"re-wrapped {vault.rotate()} keys under master key {vault.master.key_id}")
    finally:
        vault.close()
    return 0


def _new_key(args: argparse.Namespace) -> int:
    print(base64.b64encode(os.urandom(32)).decode())
    return 0


def add_commands(sub: Any) -> None:
    token = sub.add_parser("token", help="issue bearer tokens (JWT) for operators and residents")
    token_sub = token.add_subparsers(dest="token_command", required=True)
    issue = token_sub.add_parser("issue", help="print a signed token")
    issue.add_argument("--role", required=True, choices=[str(r) for r in Role])
    issue.add_argument("--unit", help="street code (township) or department code (department)")
    issue.add_argument("--sub", help="the person's id (工号); default derived from role and unit")
    issue.add_argument("--grids", help="grid leader: comma-separated grids (default: from the reference data)")
    issue.add_argument("--case", help="resident: the one case the token is for")
    issue.add_argument("--grant", action="append", choices=["pii"], help="auditor/integrator: may read personal data")
    issue.add_argument("--ttl", type=int, help="seconds (default 8 h; residents 180 days)")
    issue.set_defaults(run=_issue)
    dev = token_sub.add_parser("dev", help="print a development token for each role of the demo district")
    dev.add_argument("--ttl", type=int, default=30 * 86400)
    dev.set_defaults(run=_dev)

    erase = sub.add_parser("erase", help="erase a petitioner's personal data (destroys their key)")
    erase.add_argument("person", help="the person id (P…), the `person` field of a case's petitioner")
    erase.set_defaults(run=_erase)

    keys = sub.add_parser("keys", help="master key: generate one, or re-wrap every data key under the current one")
    keys_sub = keys.add_subparsers(dest="keys_command", required=True)
    keys_sub.add_parser("new", help="print a fresh random master key (base64)").set_defaults(run=_new_key)
    keys_sub.add_parser(
        "rotate", help="re-wrap under MINQING_MASTER_KEY what MINQING_MASTER_KEY_PREVIOUS wrapped"
    ).set_defaults(run=_rotate)
