"""What a command carries, as the API receives it: shapes and sizes checked by
pydantic (a 422 names the field and the reason); meaning is checked by the
reference data and the case. Pure: no I/O."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any, ClassVar

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints

from cases.actor import Actor
from cases.evidence import Stage
from cases.vocabulary import FeedbackMethod, HandlingType, Role, Satisfaction, SuggestionOutcome, Tier

# Control characters (but tab and newline), C1 controls (NEL U+0085…), the bidi
# marks, embeddings, overrides and isolates (U+202E shows text reversed to the
# clerk who reads it), and lone surrogates: PostgreSQL text cannot hold NUL, JSON
# encoders refuse surrogates, and none of them belongs in a petition.
_FORBIDDEN = ({*map(chr, range(0x20)), *map(chr, range(0x7F, 0xA0))} - {"\t", "\n", "\r"}) | {
    "\u061c",
    "\u200e",
    "\u200f",
    *map(chr, range(0x202A, 0x202F)),
    *map(chr, range(0x2066, 0x206A)),
}


def printable(value: str) -> str:
    for ch in value:
        if ch in _FORBIDDEN or "\ud800" <= ch <= "\udfff":
            raise ValueError(f"含有不允许的控制字符 U+{ord(ch):04X}，请删除后重试")
    return value


Clean = AfterValidator(printable)
CODE_PATTERN = r"^[A-Za-z0-9_.-]+$"
Code = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=64, pattern=CODE_PATTERN)]
Short = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200), Clean]
Text = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=5000), Clean]
OptionalText = Annotated[str, StringConstraints(strip_whitespace=True, max_length=5000), Clean]
# Mainland mobile (1[3-9]xxxxxxxxx) or a landline with area code (0xxx-xxxxxxx).
Phone = Annotated[str, StringConstraints(strip_whitespace=True, pattern=r"^(1[3-9]\d{9}|0\d{2,3}-?\d{7,8})$")]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ActorIn(Strict):
    id: Code = Field(description="The acting person's id (工号).")
    role: Role
    unit: Code | None = Field(None, description="Street code for a township officer, department code for a department.")

    def to_actor(self) -> Actor:
        return Actor(self.id, self.role, self.unit)


class Command(Strict):
    # Deprecated: the actor is the bearer token's. If sent, it must be the same (else 403 actor_mismatch).
    actor: ActorIn | None = Field(None, description="Deprecated: the token decides; if given it must match it.")

    def fields(self) -> dict[str, Any]:
        """The command's own arguments, without the actor."""
        return {name: getattr(self, name) for name in type(self).model_fields if name != "actor"}


class ClassifyIn(Command):
    handling_type: HandlingType
    tier: Tier


class AssignIn(Command):
    assignee: Code = Field(description="Id of a grid leader (网格长) of the case's grid.")


class ReasonIn(Command):
    reason: Text


class ActorOnlyIn(Command):
    pass


class ProgressIn(Command):
    progress: Text


class WhistleIn(Command):
    departments: list[Code] = Field(min_length=1, max_length=20)
    reason: Text


class ConsultIn(Command):
    outcome: Text
    lead_department: Code


class PlanIn(Command):
    measures: Text
    responsible_unit: Short
    responsible_person: Short
    deadline: date


class ExtendIn(Command):
    new_due: date
    reason: Text


class RectifyIn(Command):
    summary: Text


class VerifyIn(Command):
    passed: bool
    reason: OptionalText = ""


class CloseIn(Command):
    summary: OptionalText = ""
    suggestion_outcome: SuggestionOutcome | None = None


class FeedbackIn(Command):
    method: FeedbackMethod
    content: Text
    reached: bool = Field(True, description="False when the petitioner could not be reached (回访未接通).")


class RateIn(Command):
    satisfaction: Satisfaction
    comment: OptionalText = ""


class SuperviseIn(Command):
    responsible_unit: Short
    new_due: date
    notice: Text


# --- attachments (附件, cases/evidence.py) -------------------------------------------------


class AttachIn(Command):
    """The fields beside the file: the file itself is the request body (or a multipart part),
    so the route is api/attachments.py, not the generated one (`file_body`)."""

    file_body: ClassVar[bool] = True

    stage: Stage = Field(description="registration, progress, before, after (整改前/后) or verification.")
    name: Annotated[str, StringConstraints(strip_whitespace=True, max_length=200), Clean] = Field(
        "", description="The file's original name (kept sanitised, for the download)."
    )
