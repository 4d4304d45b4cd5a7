"""The folds of code written twice keep their contracts: the notice outcome events share a base
class but keep their names, topics and stored fields (an outcome stored before still decodes,
and one stored now is written as before); the vault seals alike one by one and many at once."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from uuid import uuid4

from eventsourcing.persistence import StoredEvent

from commands.cases import Cases
from commands.notices import NoticeFailed, NoticeSent, NoticeStopped

COMMON: dict[str, Any] = {
    "timestamp": datetime(2026, 3, 2, 1, 0, tzinfo=UTC),
    "case_id": "5f0c6f2e-3f49-4d53-9a3c-0b6f1f1f1f1f",
    "case_version": 1,
    "number": "MW-20260302-ABCD",
    "units": {"street": "350105002"},
    "actor": {"id": "minqing-notify", "role": "system", "unit": None},
    "kind": "registered",
}
# What each outcome stored before the fold, field by field (docs/notices.md).
STORED_BEFORE = {
    "commands.notices:NoticeSent": (NoticeSent, {"sender": "log", "attempt": 1, "code": "ok", "text": "【民情】…"}),
    "commands.notices:NoticeFailed": (NoticeFailed, {"sender": "http", "attempt": 2, "code": "503", "final": False}),
    "commands.notices:NoticeStopped": (NoticeStopped, {"stop_reason": "opted_out"}),
}
FIELDS_BEFORE = ["timestamp", "case_id", "case_version", "number", "units", "actor", "kind"]


def _stored(cases: Cases, topic: str, state: dict[str, Any]) -> StoredEvent:
    mapper = cases.mapper
    data = mapper.transcoder.encode(state)
    if mapper.compressor:
        data = mapper.compressor.compress(data)
    if mapper.cipher:
        data = mapper.cipher.encrypt(data)
    return StoredEvent(originator_id=uuid4(), originator_version=2, topic=topic, state=data)


def _state(cases: Cases, stored: StoredEvent) -> dict[str, Any]:
    mapper = cases.mapper
    data = mapper.cipher.decrypt(stored.state) if mapper.cipher else stored.state
    data = mapper.compressor.decompress(data) if mapper.compressor else data
    decoded: dict[str, Any] = mapper.transcoder.decode(data)
    return decoded


def test_notice_outcomes_stored_before_the_fold_decode_and_are_written_as_before(cases: Cases) -> None:
    for topic, (cls, own) in STORED_BEFORE.items():
        before = COMMON | own
        event = cases.mapper.to_domain_event(_stored(cases, topic, before))
        assert type(event) is cls and type(event).__name__ == topic.split(":")[1]
        assert {k: getattr(event, k) for k in before} == before
        again = cases.mapper.to_stored_event(event)
        assert again.topic == topic
        assert list(_state(cases, again)) == FIELDS_BEFORE + list(own)  # the same names, in the same order
        built = cls(originator_id=uuid4(), originator_version=2, **before)  # keyword construction unchanged
        assert _state(cases, cases.mapper.to_stored_event(built)) == _state(cases, again)


def test_sealing_one_and_many_give_the_same_person_and_open_alike(cases: Cases) -> None:
    vault = cases.vault
    assert vault is not None
    phones = [f"1390000{i:04d}" for i in range(5)]
    one = vault.seal({"name": "王一", "phone": phones[0]}, phone=phones[0])
    many = vault.seal_many([({"name": f"王{i}", "phone": p}, p) for i, p in enumerate(phones)] + [({}, phones[3])])
    assert many[0]["person"] == one["person"]  # found, not made again
    assert len({m["person"] for m in many[:5]}) == 5 and many[5]["person"] == many[3]["person"]
    assert [vault.unseal(m) for m in many[:2]] == [
        {"name": "王0", "phone": phones[0]},
        {"name": "王1", "phone": phones[1]},
    ]
    assert vault.seal({"name": "王四"}, phone=phones[4])["person"] == many[4]["person"]
