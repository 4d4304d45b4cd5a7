"""Chinese search on the ledger (issue 16): PostgreSQL finds the candidates in a GIN index over
the searched text's characters and pairs, and answers exactly what LIKE answered before, row for
row, page for page; SQLite keeps LIKE. The oracle is Python's substring test (ASCII letters
folded on SQLite, whose LIKE ignores their case; PostgreSQL's does not)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import date
from typing import Any

import pytest

from config.settings import Settings
from projections import ledger_query
from projections.area import Area
from projections.ledger import SEARCHED
from projections.ledger_query import LedgerQuery, ledger_page, ledger_rows, term_grams
from service import migrate
from storage.views import Cursor, PostgresViews, Row, SqliteViews, open_views
from tests.api_steps import Driver

TODAY = date(2026, 3, 2)
STREET = "350105001"
OTHER_STREET = "350105002"

# (title, description, location): one, two and more characters, Latin, digits, LIKE's wildcards,
# its escape character, NULLs, a term split by a space, and pairs that span two columns.
TEXTS: list[tuple[str | None, str | None, str | None]] = [
    ("小区渗水严重", "楼顶渗水，墙面发霉", "马尾镇君竹路12号"),
    ("停车难", "夜间乱停车占用消防通道", None),
    ("物业不作为", "物业费50%上涨未公示", "罗星街道"),
    ("噪音扰民", "KTV 深夜噪音 Case-12345", "江滨路"),
    ("路灯不亮", "lamp_post 编号 A_17 坏了!", "马限社区"),
    ("水管爆裂", None, "水"),
    ("Water leak", "water in the basement", "Block B"),
    ("垃圾清运", "渗 水 分开写", "马尾"),
    ("漏水", "渗透", "水渗"),
    ("屋顶渗", "水流不止", None),  # 渗 | 水 across two columns is not 渗水
    ("墙体问题", "渗水后水渗出", None),  # every pair of 渗水渗, but not 渗水渗 itself
    (None, None, None),
    ("物业", "小区物业停车收费", "物业"),
    ("充电桩", "电动车停放 50_60 号", "物业楼下"),
]
QUERIES = [
    "渗水", "停车", "物业", "水", "渗", "马", "渗水严重", "渗水渗", "水渗", "渗水 马尾", "物业 停车",
    "物业 50%", "50%", "%", "_", "50_60", "A_17", "A%17", "!", "坏了!", "12345", "Case-12345", "case",
    "water", "Water", "KTV", "B", "没有这样的事", "渗水 没有这样的事", "  渗水  ", "路灯不亮",
]  # fmt: skip


@pytest.fixture
def views(settings: Settings) -> Iterator[SqliteViews | PostgresViews]:
    views = open_views(settings)
    try:
        yield views
    finally:
        views.close()


@pytest.fixture
def corpus(views: SqliteViews | PostgresViews) -> list[Row]:
    """Each text three times, registered at distinct moments (and twice at the same one, so
    pages tie on the sort column and the case id decides), in two streets."""
    rows: list[Row] = []
    for copy in range(3):
        for i, (title, description, location) in enumerate(TEXTS):
            moment = f"2026-02-{1 + i:02d}T0{copy if copy < 2 else 1}:00:00+00:00"
            rows.append({
                "case_id": str(uuid.uuid4()), "number": f"C-{copy}-{i:03d}", "registered_at": moment,
                "registered_date": moment[:10], "title": title, "description": description, "location": location,
                "street": STREET if i % 3 else OTHER_STREET, "status": "registered",
            })  # fmt: skip
    columns = list(rows[0])
    with views.transaction() as cur:
        cur.executemany(
            f"INSERT INTO ledger_cases ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})",
            [[r[c] for c in columns] for r in rows],
        )
    return rows


def expected(views: SqliteViews | PostgresViews, rows: list[Row], q: str, street: str | None = None) -> list[str]:
    """The case ids LIKE finds, newest first (the ledger's default order)."""

    def fold(text: str) -> str:
        return text.translate(ASCII_LOWER) if views.dialect == "sqlite" else text

    def found(row: Row, term: str) -> bool:
        return any(row[c] is not None and fold(term) in fold(row[c]) for c in SEARCHED)

    hits = [r for r in rows if all(found(r, t) for t in q.split()) and street in (None, r["street"])]
    hits.sort(key=lambda r: (r["registered_at"], r["case_id"]), reverse=True)
    return [r["case_id"] for r in hits]


ASCII_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")


def pages(views: SqliteViews | PostgresViews, limit: int, **options: Any) -> tuple[list[str], list[dict[str, Any]]]:
    """Every page of a query, following its cursor: the case ids in order, and each page."""
    seen: list[str] = []
    answers: list[dict[str, Any]] = []
    cursor: str | None = None
    while True:
        query = LedgerQuery(limit=limit, cursor=cursor, **options)
        page = ledger_page(views, query, Area.all(), today=TODAY, yellow_within=2)
        answers.append(page)
        seen += [item["case_id"] for item in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            return seen, answers


@pytest.fixture(params=["rare", "common"])
def commonness(
    request: pytest.FixtureRequest,
    monkeypatch: pytest.MonkeyPatch,
    views: SqliteViews | PostgresViews,
    corpus: list[Row],
) -> str:
    """Each search as a rare term (counted and paged from the gram index) and as a common one
    (counted and paged by LIKE, along the sort's index): the same answer either way."""
    if request.param == "common":
        monkeypatch.setattr(ledger_query, "INDEX_PAGE_MATCHES", 0)
        monkeypatch.setattr(ledger_query, "COUNT_BY_INDEX_SHARE", -1.0)
        if isinstance(views, PostgresViews):
            with views.transaction() as cur:
                cur.execute("ANALYZE ledger_cases")  # a table never analysed is taken for small
    return str(request.param)


@pytest.mark.parametrize("q", QUERIES)
def test_search_finds_what_like_finds_page_by_page(
    views: SqliteViews | PostgresViews, corpus: list[Row], q: str, commonness: str
) -> None:
    want = expected(views, corpus, q)
    found, answers = pages(views, 4, q=q)
    assert found == want
    assert {(a["total"], a["total_exact"]) for a in answers} == {(len(want), True)}


def test_search_with_a_street_filter_and_an_ascending_sort(
    views: SqliteViews | PostgresViews, corpus: list[Row], commonness: str
) -> None:
    for q in ("物业", "水", "渗水 马尾", "50%"):
        want = expected(views, corpus, q, street=STREET)
        found, _ = pages(views, 2, q=q, filters={"street": STREET}, descending=False)
        assert found == list(reversed(want))


def test_search_on_a_single_page_finds_the_same_total(views: SqliteViews | PostgresViews, corpus: list[Row]) -> None:
    page = ledger_page(views, LedgerQuery(q="渗水"), Area.all(), today=TODAY, yellow_within=2)
    assert page["total"] == len(expected(views, corpus, "渗水")) == 6
    assert page["next_cursor"] is None


def test_exports_search_the_same_way(views: SqliteViews | PostgresViews, corpus: list[Row]) -> None:
    for q in ("渗水", "水", "渗水渗", "50_60", "物业 停车"):
        rows = ledger_rows(views, LedgerQuery(q=q), Area.all(), today=TODAY)
        assert sorted(r["case_id"] for r in rows) == sorted(expected(views, corpus, q))


def test_a_term_is_found_by_its_characters_or_their_pairs() -> None:
    assert term_grams("水") == ["水"]
    assert term_grams("渗水") == ["渗水"]
    assert term_grams("渗水严重") == ["渗水", "水严", "严重"]
    assert term_grams("A_1") == ["A_", "_1"]


def test_search_through_the_api_pages_the_registered_cases(driver: Driver) -> None:
    ids = [driver.register(title="楼顶渗水", description=f"第{n}户") for n in range(3)]
    driver.register(title="停车难", description="夜间乱停车")
    first = driver.get("/ledger", q="渗水", limit=2)
    second = driver.get("/ledger", q="渗水", limit=2, cursor=first["next_cursor"])
    assert (first["total"], second["next_cursor"]) == (3, None)
    assert sorted(r["case_id"] for r in first["items"] + second["items"]) == sorted(ids)
    assert [r["title"] for r in driver.get("/ledger", q="停车")["items"]] == ["停车难"]


# --- PostgreSQL: the index, made by `minqing migrate`, and chosen ----------------------------


def postgres(views: SqliteViews | PostgresViews) -> PostgresViews:
    if not isinstance(views, PostgresViews):
        pytest.skip("the search index is PostgreSQL's; SQLite keeps LIKE")
    return views


def test_migrate_makes_the_search_index_on_an_older_store(
    settings: Settings, views: SqliteViews | PostgresViews
) -> None:
    pg = postgres(views)
    index = "SELECT indexdef FROM pg_indexes WHERE schemaname = current_schema() AND indexname = 'ledger_cases_grams'"
    [made] = pg.query(index)
    assert "USING gin (minqing_grams(" in made["indexdef"]
    with pg.transaction() as cur:  # a store migrated before issue 16's search
        cur.execute("DROP FUNCTION minqing_grams(text) CASCADE")
    assert pg.query(index) == []
    migrate(settings)
    assert len(pg.query(index)) == 1


def test_the_grams_are_each_character_and_each_pair(views: SqliteViews | PostgresViews) -> None:
    [row] = postgres(views).query("SELECT minqing_grams(?) AS grams", ["渗水 a渗"])
    assert set(row["grams"]) == {"渗", "水", " ", "a", "渗水", "水 ", " a", "a渗"}
    # A line feed joins the columns: no pair holds one (no term does).
    [row] = postgres(views).query("SELECT minqing_grams(?) AS grams", ["渗水\na渗"])
    assert set(row["grams"]) == {"渗", "水", "\n", "a", "渗水", "a渗"}


class Recording(PostgresViews):
    """The store, remembering each statement it runs: to explain the ledger's own SQL."""

    def __init__(self, url: str) -> None:
        super().__init__(url)
        self.statements: list[tuple[str, Sequence[Any]]] = []

    def query(self, sql: str, params: Sequence[Any] = ()) -> list[Row]:
        self.statements.append((sql, params))
        return super().query(sql, params)

    @contextmanager
    def transaction(self) -> Iterator[Cursor]:
        with super().transaction() as cur:
            yield RecordingCursor(cur, self.statements)


class RecordingCursor:
    def __init__(self, cur: Cursor, statements: list[tuple[str, Sequence[Any]]]) -> None:
        self.cur = cur
        self.statements = statements

    def execute(self, sql: str, params: Sequence[Any] = ()) -> list[Row]:
        self.statements.append((sql, params))
        return self.cur.execute(sql, params)

    def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        self.cur.executemany(sql, rows)


READS = ("SELECT COUNT(*)", "SELECT * FROM ledger_cases")


def plan_of(views: PostgresViews, sql: str, params: Sequence[Any]) -> str:
    with views.transaction() as cur:
        # Fourteen texts fit in a page: only a table this small is read whole by choice.
        cur.execute("SET LOCAL enable_seqscan = off")
        cur.execute("SET LOCAL enable_indexscan = off")
        return "\n".join(r["QUERY PLAN"] for r in cur.execute(f"EXPLAIN {sql}", params))


@pytest.mark.parametrize("q", ["渗水", "水", "渗水严重 马尾"])
def test_search_reads_the_gram_index(
    settings: Settings, views: SqliteViews | PostgresViews, corpus: list[Row], q: str
) -> None:
    postgres(views)
    assert settings.database_url
    recording = Recording(settings.database_url)
    try:
        ledger_page(recording, LedgerQuery(q=q, limit=2), Area.all(), today=TODAY, yellow_within=2)
        reads = [(sql, params) for sql, params in recording.statements if sql.startswith(READS)]
        assert [sql.split()[1] for sql, _ in reads] == ["COUNT(*)", "*"]  # the count, then the page
        for sql, params in reads:
            assert "Bitmap Index Scan on ledger_cases_grams" in plan_of(recording, sql, params)
    finally:
        recording.close()


def test_a_common_term_pages_along_the_sort_with_like(
    settings: Settings, views: SqliteViews | PostgresViews, corpus: list[Row], monkeypatch: pytest.MonkeyPatch
) -> None:
    postgres(views)
    assert settings.database_url
    monkeypatch.setattr(ledger_query, "INDEX_PAGE_MATCHES", 3)  # 渗水 is in 6 rows: many, here
    recording = Recording(settings.database_url)
    try:
        found, _ = pages(recording, 4, q="渗水")
        assert found == expected(views, corpus, "渗水")
        count, *pages_read = [sql for sql, _ in recording.statements if sql.startswith(READS)]
        assert "minqing_grams" in count
        assert all("minqing_grams" not in sql and "LIKE" in sql for sql in pages_read)
    finally:
        recording.close()
