"""What a command carries, as the API receives it: shapes and sizes checked by
pydantic (a 422 names the field and the reason); meaning is checked by the
reference data and the case. Pure: no I/O."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any, ClassVar

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints

from cases.actor import Actor
from cases.evidence import Stage
from cases.places import CoordinateSystem
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


# --- second handling, transfers and approvals (issue 17) -------------------


class FollowUpIn(Command):
    reached: bool = Field(True, description="False when the petitioner could not be reached.")
    resolved: bool = Field(description="The petitioner says the problem is solved (问题已解决).")
    note: Text


class ReassignIn(Command):
    assignee: Code = Field(description="Id of another grid leader (网格长) of the case's grid.")
    reason: Text


class TransferIn(Command):
    to_department: Code = Field(description="The department (职能部门) taking over this department's part.")
    reason: Text


class DecideIn(Command):
    request_no: int = Field(ge=1, le=10_000, description="The request's number on the case (1, 2, …).")
    approved: bool
    reason: Text


# --- imported hotline work orders (12345 / 110 非警务), issue 17 ------------------
# An order number as platforms print them: letters, digits and a few separators.
OrderNumber = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.:/#-]+$")
]


class ImportedOrder(Strict):
    """One row of a hotline platform's export, after its column mapping: the fields of a
    registration (the same shapes and sizes as POST /cases) and the platform's own facts."""

    external_id: OrderNumber
    channel: Code
    category: Code
    title: Short
    description: Text
    location: Short
    grid: Code
    petitioner_name: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=50), Clean]
    petitioner_phone: Phone
    petitioner_address: Annotated[str, StringConstraints(strip_whitespace=True, max_length=200), Clean] | None = None
    received_at: datetime | None = None


# --- places (issue 18) ----------------------------------------------------------

Latitude = Annotated[float, Field(ge=-90, le=90, allow_inf_nan=False, description="Degrees north.")]
Longitude = Annotated[float, Field(ge=-180, le=180, allow_inf_nan=False, description="Degrees east.")]
COORDINATE_SYSTEM = Field(
    CoordinateSystem.WGS84,
    description="wgs84 (GPS, GeoJSON) or gcj02 (AMap/高德, Tencent: converted to WGS-84 before it is stored).",
)


class LocateIn(Command):
    latitude: Latitude
    longitude: Longitude
    coordinate_system: CoordinateSystem = COORDINATE_SYSTEM
    reason: OptionalText = ""


# --- duplicates (重复件 / 并案) ------------------------------------------------


class LinkDuplicateIn(Command):
    main_case: Annotated[
        str, StringConstraints(strip_whitespace=True, min_length=1, max_length=64, pattern=r"^[A-Za-z0-9-]+$")
    ] = Field(description="The main case: its id or its number (350105001-20260302-K7Q2M).")
    reason: Text


class UnlinkDuplicateIn(Command):
    reason: Text


# --- attachments (附件, cases/evidence.py) -------------------------------------------------


class AttachIn(Command):
    """The fields beside the file: the file itself is the request body (or a multipart part),
    so the route is api/attachments.py, not the generated one (`file_body`)."""

    file_body: ClassVar[bool] = True

    stage: Stage = Field(description="registration, progress, before, after (整改前/后) or verification.")
    name: Annotated[str, StringConstraints(strip_whitespace=True, max_length=200), Clean] = Field(
        "", description="The file's original name (kept sanitised, for the download)."
    )
