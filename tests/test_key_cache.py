"""The vault remembers the person keys it sealed with (issue 15: no key lookup before each
registration's save); the save itself proves the remembered key still stands, so an erasure in
another process is never outlived by this one's memory."""

from __future__ import annotations

from uuid import UUID

from commands.cases import Cases
from config.settings import Settings
from security.erasure import erase_person
from service import build_cases
from tests.factories import ADMIN, CLERK, registration


def test_a_remembered_key_erased_by_another_process_is_never_used_again(cases: Cases, settings: Settings) -> None:
    assert cases.keys_checked_on_save and cases.vault is not None
    first = cases.get_case(UUID(cases.register(CLERK, **registration()).case_id))
    second = cases.get_case(UUID(cases.register(CLERK, **registration()).case_id))
    person = first.petitioner["person"]
    assert second.petitioner["person"] == person  # the same phone, the same person (remembered)
    other = build_cases(settings)  # another process erases the person
    try:
        assert erase_person(other, None, person, by=ADMIN)["key_destroyed"] is True
    finally:
        other.close()
    third = cases.get_case(UUID(cases.register(CLERK, **registration(title="删除后的新诉求")).case_id))
    # Not sealed with the destroyed key: a new person, whose data this process can read.
    assert third.petitioner["person"] != person
    assert cases.vault.unseal(third.petitioner) == {"name": "张秀英", "phone": "13812341234"}
    assert cases.vault.unseal(first.petitioner) is None


def test_without_the_check_in_the_save_the_vault_reads_the_key_every_time(settings: Settings) -> None:
    cases = build_cases(settings)
    try:
        cases.keys_checked_on_save = False  # e.g. a recorder without the check
        assert cases.vault is not None
        cases.register(CLERK, **registration())
        assert cases.vault._people == {}
    finally:
        cases.close()
