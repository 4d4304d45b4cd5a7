"""Reading the ledger: filters, sorting, cursor pagination, Chinese text
search, and the three lists (问题 / 责任 / 整改清单) as views of it."""

from __future__ import annotations

import base64
import math
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date
from typing import Any
from uuid import UUID

import orjson

from cases.places import Bounds
from commands.errors import InvalidInputError
from projections.area import Area
from projections.checkpoints import colour, evaluate
from projections.ledger import SEARCH_GRAMS, SEARCHED
from storage.views import PostgresViews, SqliteViews

EQUALITY_FILTERS = (
    "number", "status", "handling_type", "tier", "channel", "category", "district", "street", "community", "grid",
    "assignee", "responsible_unit", "lead_department", "feedback_method", "rating", "policy_version",
    "external_id", "external_platform",
    "main_number",
)  # fmt: skip
SORTS = {"registered_at", "number", "resolve_due", "closed_at", "status"}

LISTS = {
    # 问题清单: what the problem is and where.
    "problems": ("number", "registered_date", "channel", "category", "title", "description", "location",
                 "street_name", "community_name", "grid_name", "status", "latitude", "longitude"),
    # 责任清单: who answers for it.
    "responsibilities": ("number", "title", "grid_name", "assignee_name", "lead_department", "leader_name",
                         "responsible_unit", "responsible_person", "resolve_due", "status"),
    # 整改清单: what is being done, by when, and whether it held.
    "rectifications": ("number", "title", "measures", "responsible_unit", "responsible_person",
                       "rectification_deadline", "rectified_at", "failed_verifications", "verified_at",
                       "closed_date", "status"),
}  # fmt: skip


@dataclass
class LedgerQuery:
    filters: dict[str, str] = field(default_factory=dict)
    registered_from: date | None = None
    registered_to: date | None = None
    overdue: bool | None = None
    q: str | None = None
    sort: str = "registered_at"
    descending: bool = True
    limit: int = 50
    cursor: str | None = None
    bbox: Bounds | None = None  # only cases with a point inside it (issue 18)


def parse_bbox(text: str | None) -> Bounds | None:
    """`bbox=west,south,east,north` in WGS-84 degrees (GeoJSON's, OGC's and Leaflet's order)."""
    if text is None or not text.strip():
        return None
    parts = text.split(",")
    try:
        values = [float(p) for p in parts]
    except ValueError:
        values = []
    if len(values) != 4 or not all(math.isfinite(v) for v in values):
        raise InvalidInputError(
            "bbox", "须为四个数：最小经度,最小纬度,最大经度,最大纬度（WGS-84，如 119.40,25.98,119.50,26.05）"
        )
    west, south, east, north = values
    if not (-180 <= west <= east <= 180 and -90 <= south <= north <= 90):
        raise InvalidInputError("bbox", "须满足 最小经度 ≤ 最大经度、最小纬度 ≤ 最大纬度，经度在 ±180、纬度在 ±90 之内")
    return Bounds(west, south, east, north)


# Counting every matching row of a province's ledger costs more than the page itself (an index-only
# count of 100,000 rows took 33 ms): the count stops here, and `total_exact` says whether it did.
COUNT_CAP = 10_000


@dataclass(frozen=True)
class Cursor:
    value: str  # the sort column's value of the page's last row (every sort column is text)
    case_id: str
    total: int | None = None  # the count made for the first page, carried so later pages skip it
    total_exact: bool = True


def encode_cursor(value: Any, case_id: str, total: int | None = None, total_exact: bool = True) -> str:
    return base64.urlsafe_b64encode(orjson.dumps([value, case_id, total, total_exact])).decode()


def decode_cursor(cursor: str) -> Cursor:
    """Only what `encode_cursor` makes (or made before it carried the count: two strings)."""
    try:
        decoded = orjson.loads(base64.urlsafe_b64decode(cursor.encode()))
        value, case_id, *counted = decoded
        if not isinstance(value, str) or not isinstance(case_id, str) or "\x00" in value or len(value) > 200:
            raise ValueError("not a cursor")
        total, exact = counted if counted else (None, True)
        if (total is not None and (type(total) is not int or not 0 <= total <= COUNT_CAP)) or type(exact) is not bool:
            raise ValueError("not a cursor")
        return Cursor(value, str(UUID(case_id)), total, exact)
    except (ValueError, TypeError) as e:
        raise InvalidInputError("cursor", "无效的翻页游标，请从第一页重新查询") from e


# A term in any searched column; `!` escapes LIKE's wildcards.
_LIKE_ANY = "(" + " OR ".join(f"{c} LIKE ? ESCAPE '!'" for c in SEARCHED) + ")"
# A search matching more rows than this pages through the sort's index, checking each row with LIKE
# until the page is full (a common term fills it quickly); one matching fewer reads its rows from
# the gram index and sorts them, a cost bounded by its count. Measured on a 1M-case ledger
# (docs/performance.md, "Chinese search").
INDEX_PAGE_MATCHES = COUNT_CAP
# A term the planner expects in more than this share of the ledger is counted by LIKE, row by row
# until the count stops (10,001 of them lie within the first 1/share rows); a rarer one from the gram
# index, whose cost grows with the term's rows (decoding a million of them took 655 ms).
COUNT_BY_INDEX_SHARE = 0.15
# The count reads the gram index as one bitmap: room for a province's every page, so that no page
# turns lossy and is rechecked by recomputing the grams of each of its rows.
_COUNT_WORK_MEM = "32MB"


def term_grams(term: str) -> list[str]:
    """What `minqing_grams` must hold for `term` to occur: the term itself if it is one character,
    else its pairs of neighbouring characters (projections.ledger.GRAMS_FUNCTION)."""
    return [term] if len(term) == 1 else [term[i : i + 2] for i in range(len(term) - 1)]


def _where(query: LedgerQuery, area: Area, today: date) -> tuple[list[str], list[Any]]:
    """Every condition but the search terms'."""
    clause, area_params = area.cases()
    where: list[str] = [clause]
    params: list[Any] = list(area_params)
    for name, value in query.filters.items():
        if name not in EQUALITY_FILTERS:
            raise InvalidInputError(name, "不支持的筛选条件")
        where.append(f"{name} = ?")
        params.append(value)
    if query.registered_from:
        where.append("registered_date >= ?")
        params.append(query.registered_from.isoformat())
    if query.registered_to:
        where.append("registered_date <= ?")
        params.append(query.registered_to.isoformat())
    if query.bbox is not None:
        # A point on the box's edge is inside it; a case without a point is outside every box.
        where.append("longitude BETWEEN ? AND ? AND latitude BETWEEN ? AND ?")
        params += [query.bbox.min_lon, query.bbox.max_lon, query.bbox.min_lat, query.bbox.max_lat]
    if query.overdue is not None:
        overdue = "(status <> 'closed' AND resolve_due IS NOT NULL AND resolve_due < ?)"
        where.append(overdue if query.overdue else f"NOT {overdue}")
        params.append(today.isoformat())
    return where, params


def _matching(terms: list[str], *, grams: bool) -> tuple[list[str], list[Any]]:
    """Every term in title, description or location: by LIKE, or (PostgreSQL) by the gram index.

    For a term of one or two characters the grams are the answer itself (case-sensitive, as
    PostgreSQL's LIKE is), so only longer terms are rechecked by LIKE: a LIKE beside them would
    also make the planner count the same rows' rarity twice."""
    where: list[str] = []
    params: list[Any] = []
    if grams and terms:
        where.append(f"{SEARCH_GRAMS} @> CAST(? AS text[])")
        params.append(sorted({g for term in terms for g in term_grams(term)}))
        terms = [term for term in terms if len(term) > 2]
    for term in terms:
        # Substring match needs no word segmentation, so Chinese matches as typed.
        # Wildcards in the term are escaped, not dropped: "ledger_cases" and "50%" match as typed.
        where.append(_LIKE_ANY)
        like = "%" + term.replace("!", "!!").replace("%", "!%").replace("_", "!_") + "%"
        params += [like] * len(SEARCHED)
    return where, params


Run = Callable[[str, Sequence[Any]], list[dict[str, Any]]]


@contextmanager
def _reading(views: SqliteViews | PostgresViews, terms: list[str]) -> Iterator[Run]:
    """The queries of one read; a search on PostgreSQL runs them in one transaction, each planned
    for its own terms: psycopg prepares a statement run five times, and a plan cached for one
    term would read a common term as if it were rare (scanning the whole ledger), or the reverse.
    No parallel workers: at eight concurrent searches on two cores, starting them cost more
    (44 ms under load) than they saved; no JIT, whose compiling costs more than these reads."""
    if not terms or not isinstance(views, PostgresViews):
        yield views.query
        return
    with views.transaction() as cur:
        cur.execute(
            "SELECT set_config('plan_cache_mode', 'force_custom_plan', true), "
            "set_config('max_parallel_workers_per_gather', '0', true), set_config('jit', 'off', true)"
        )
        yield cur.execute


def _common(run: Run, terms: list[str]) -> bool:
    """Whether the planner expects the terms' grams in more than COUNT_BY_INDEX_SHARE of the ledger
    (from the statistics ANALYZE keeps on the gram index: its most common grams and their shares)."""
    grams, params = _matching(terms, grams=True)
    [plan] = run(f"EXPLAIN (FORMAT JSON) SELECT 1 FROM ledger_cases WHERE {grams[0]}", params[:1])
    expected = plan["QUERY PLAN"][0]["Plan"]["Plan Rows"]
    [table] = run("SELECT reltuples FROM pg_class WHERE oid = CAST('ledger_cases' AS regclass)", [])
    # A table never analysed (reltuples -1) is new, hence small: any term is rare enough.
    return table["reltuples"] > 0 and bool(expected > COUNT_BY_INDEX_SHARE * table["reltuples"])


@contextmanager
def _from_gram_bitmap(run: Run, forced: bool) -> Iterator[None]:
    """Reads the gram index as one bitmap, never the sort's index or the table: a scan along either
    would recompute each row's grams until it found enough (4.2 s for 停车, 6,400 of 1M rows, all
    of them old). The bitmap's cost is bounded by the term's rows, and only those are searched so."""
    if not forced:
        yield
        return
    settings = ("enable_seqscan", "off"), ("enable_indexscan", "off"), ("work_mem", _COUNT_WORK_MEM)
    run(f"SELECT {', '.join('set_config(?, ?, true)' for _ in settings)}", [v for pair in settings for v in pair])
    yield
    names = [name for name, _ in settings]
    run(f"SELECT set_config(name, reset_val, true) FROM pg_settings WHERE name IN ({', '.join('?' * 3)})", names)


def ledger_page(
    views: SqliteViews | PostgresViews, query: LedgerQuery, area: Area, *, today: date, yellow_within: int
) -> dict[str, Any]:
    if query.sort not in SORTS:
        raise InvalidInputError("sort", f"可排序字段：{', '.join(sorted(SORTS))}")
    where, params = _where(query, area, today)
    terms = (query.q or "").split()
    indexed = bool(terms) and views.dialect == "postgres"
    after = decode_cursor(query.cursor) if query.cursor else None
    with _reading(views, terms) as run:
        if after is not None and after.total is not None:
            total, exact = after.total, after.total_exact
        else:
            # A term is counted from the gram index's bitmap unless it is in most rows.
            by_index = indexed and not _common(run, terms)
            matching, matching_params = _matching(terms, grams=by_index)
            counting = where + matching
            if by_index and counting == ["1 = 1", matching[0]]:
                # Nothing but the grams to check: every row of the bitmap is counted without visiting
                # it where the visibility map allows, which a LIMIT (a column to return) would prevent.
                sql, count_params = f"SELECT COUNT(*) AS n FROM ledger_cases {_clause(counting)}", matching_params
            else:
                sql = f"SELECT COUNT(*) AS n FROM (SELECT 1 FROM ledger_cases {_clause(counting)} LIMIT ?) m"
                count_params = [*params, *matching_params, COUNT_CAP + 1]
            with _from_gram_bitmap(run, by_index):
                counted = run(sql, count_params)[0]["n"]
            total, exact = min(counted, COUNT_CAP), counted <= COUNT_CAP
        # A common term is found soonest by LIKE along the sort's index (see INDEX_PAGE_MATCHES).
        by_index = indexed and exact and total <= INDEX_PAGE_MATCHES
        matching, matching_params = _matching(terms, grams=by_index)
        where, params = where + matching, params + matching_params
        op = "<" if query.descending else ">"
        order = "DESC" if query.descending else "ASC"
        # NULL sort values sort as '' so keyset pagination stays total.
        sort_expr = f"COALESCE({query.sort}, '')"
        if after is not None:
            # A row comparison, so the (sort, case_id) index seeks to the cursor instead of filtering up to it;
            # not from the gram index's rows, which it would only intersect with most of the ledger's.
            seek = f"({sort_expr}, case_id)" if not by_index else f"({sort_expr} || '', case_id || '')"
            where.append(f"{seek} {op} (?, ?)")
            params += [after.value, after.case_id]
        with _from_gram_bitmap(run, by_index):
            rows = run(
                f"SELECT * FROM ledger_cases {_clause(where)} ORDER BY {sort_expr} {order}, case_id {order} LIMIT ?",
                [*params, query.limit + 1],
            )
    more = len(rows) > query.limit
    rows = rows[: query.limit]
    items = []
    for row in rows:
        checkpoints = evaluate(row, today)
        items.append({**row, "checkpoints": checkpoints, "colour": colour(checkpoints, today, yellow_within)})
    last = rows[-1] if more and rows else None
    next_cursor = encode_cursor(last[query.sort] or "", last["case_id"], total, exact) if last else None
    return {"total": total, "total_exact": exact, "items": items, "next_cursor": next_cursor}


def ledger_rows(
    views: SqliteViews | PostgresViews, query: LedgerQuery, area: Area, *, today: date
) -> list[dict[str, Any]]:
    """Every matching row of the area, for exports (no pagination)."""
    where, params = _where(query, area, today)
    terms = (query.q or "").split()
    with _reading(views, terms) as run:
        by_index = bool(terms) and views.dialect == "postgres" and not _common(run, terms)
        matching, matching_params = _matching(terms, grams=by_index)
        with _from_gram_bitmap(run, by_index):
            return run(
                f"SELECT * FROM ledger_cases {_clause(where + matching)} ORDER BY registered_at, case_id",
                params + matching_params,
            )


def _clause(where: list[str]) -> str:
    return f"WHERE {' AND '.join(where)}" if where else ""
