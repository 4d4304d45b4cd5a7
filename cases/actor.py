from dataclasses import asdict, dataclass

from cases.vocabulary import Role


@dataclass(frozen=True)
class Actor:
    """Who acts: a person's id, the role they act in, and the unit they act for
    (a street code for a township officer, a department code for a department)."""

    id: str
    role: Role
    unit: str | None = None

    def as_dict(self) -> dict[str, str | None]:
        return {k: str(v) if v is not None else None for k, v in asdict(self).items()}
