"""The petitioner's personal data as each reader may see it: clear, masked or erased.

Events hold an envelope `{"v", "person", "sealed"}`; this turns it back into
fields. Rows written before encryption (a clear dict) are still masked.
"""

from __future__ import annotations

from typing import Any

from commands.cases import PersonalDataVault
from security.masking import mask_name, mask_phone

ERASED = "[已删除]"
WITHHELD = "[不可用]"


def is_sealed(petitioner: Any) -> bool:
    return isinstance(petitioner, dict) and "sealed" in petitioner and "person" in petitioner


def mask_address(address: str | None) -> str | None:
    return address[:2] + "****" if address else address


def masked(fields: dict[str, Any]) -> dict[str, Any]:
    out = {"name": mask_name(fields.get("name")), "phone": mask_phone(fields.get("phone"))}
    if fields.get("address"):
        out["address"] = mask_address(fields["address"])
    return out


def reveal(petitioner: Any, *, clear: bool, vault: PersonalDataVault | None = None) -> dict[str, Any] | None:
    """Clear fields (with the person id) for readers allowed them, masked for the rest."""
    if not isinstance(petitioner, dict):
        return None
    if not is_sealed(petitioner):
        return dict(petitioner) if clear else masked(petitioner)
    person = petitioner["person"]
    # Without the vault that holds the keys (it is always passed in), the fields are withheld.
    # One key query answers both: the fields, or whether the person was erased.
    fields, gone = vault.unseal_many([petitioner])[0] if vault is not None else (None, False)
    if fields is None:
        mark = ERASED if gone else WITHHELD
        out: dict[str, Any] = {"name": mark, "phone": mark}
        if gone:
            out["erased"] = True
        return {"person": person, **out} if clear else out
    return {"person": person, **fields} if clear else masked(fields)


def reveal_masked_many(petitioners: list[Any], vault: PersonalDataVault | None) -> list[dict[str, Any] | None]:
    """`reveal(p, clear=False)` for a projection's batch: the keys are read in one
    query, not one query per petitioner."""
    sealed = [p for p in petitioners if is_sealed(p)]
    if vault is None or not sealed:
        return [reveal(p, clear=False, vault=vault) for p in petitioners]
    opened = iter(vault.unseal_many(sealed))
    out: list[dict[str, Any] | None] = []
    for p in petitioners:
        if not is_sealed(p):
            out.append(reveal(p, clear=False, vault=vault))
            continue
        fields, gone = next(opened)
        if fields is not None:
            out.append(masked(fields))
        else:
            mark = ERASED if gone else WITHHELD
            out.append({"name": mark, "phone": mark, "erased": True} if gone else {"name": mark, "phone": mark})
    return out
