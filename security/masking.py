"""Masking personal data for anything published (公示): 张*, 138****1234."""


def _marker(value: str) -> bool:
    # "[已删除]" and the like are already safe to show: masking them again would garble them.
    return value.startswith("[") and value.endswith("]")


def mask_name(name: str | None) -> str | None:
    if not name or _marker(name):
        return name
    return name[0] + "*" * max(1, len(name) - 1)


def mask_phone(phone: str | None) -> str | None:
    if not phone or _marker(phone):
        return phone
    digits = phone.replace("-", "")
    if len(digits) < 7:
        return "*" * len(digits)
    return digits[:3] + "*" * (len(digits) - 7) + digits[-4:]
