"""Request and response shapes. Pydantic checks shape and size (422 with the
field and the reason); the reference data and the case check meaning."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, Field, StringConstraints

from cases.inputs import COORDINATE_SYSTEM, Clean, Code, Command, Latitude, Longitude, Phone, Short, Text
from cases.places import CoordinateSystem

URL_PATTERN = r"^https?://\S+$"
EMAIL_PATTERN = r"^[^@\s]+@[^@\s]+\.[^@\s]+$"
MediaUrl = Annotated[str, StringConstraints(strip_whitespace=True, max_length=2000, pattern=URL_PATTERN), Clean]
Email = Annotated[str, StringConstraints(strip_whitespace=True, max_length=254, pattern=EMAIL_PATTERN), Clean]
ContactId = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200), Clean]


class RegisterIn(Command):
    channel: Code = Field(examples=["hotline"])
    category: Code = Field(examples=["housing"])
    title: Short = Field(examples=["楼顶渗水"])
    description: Text = Field(examples=["业主违章搭建导致居民住宅楼顶渗水"])
    location: Short = Field(examples=["胭脂山社区3栋"])
    grid: Code | None = Field(
        None,
        description="Grid or micro-grid code from the reference data; may be left out when latitude and longitude"
        " are given and the reference data has grid boundaries (the grid is then the one holding the point).",
    )
    petitioner_name: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=50), Clean]
    petitioner_phone: Phone
    petitioner_address: Annotated[str, StringConstraints(strip_whitespace=True, max_length=200), Clean] | None = Field(
        None, description="The petitioner's own address, if it differs from the location: encrypted like the name."
    )
    # Places (issue 18): where the problem is, checked to lie inside the district.
    latitude: Latitude | None = None
    longitude: Longitude | None = None
    coordinate_system: CoordinateSystem = COORDINATE_SYSTEM
    media_url: MediaUrl | None = Field(None, description="A photo of the problem on the web (as Open311 sends it).")
    # Open311's contact fields: the petitioner's, encrypted like the name.
    petitioner_email: Email | None = None
    petitioner_device_id: ContactId | None = None
    petitioner_account_id: ContactId | None = None

    notices: bool = Field(
        True, description="False: the petitioner declines SMS notices (不接收短信通知), for this and later cases."
    )

    def fingerprinted(self) -> dict[str, Any]:
        """The body as its idempotency fingerprint sees it. Fields added since the first release are left
        out while at their default, so a request retried across an upgrade still matches its first send."""
        added = {name for name in LATER_FIELDS if getattr(self, name) == type(self).model_fields[name].default}
        return self.model_dump(mode="json", exclude={"actor", *added})


# RegisterIn's fields added after the first release (issue 18: places, Open311's contacts, notices).
LATER_FIELDS = ("latitude", "longitude", "coordinate_system", "media_url", "petitioner_email",
                "petitioner_device_id", "petitioner_account_id", "notices")  # fmt: skip


class CommandOut(BaseModel):
    case_id: str
    number: str
    version: int
    position: int | None = Field(
        description="Global log position of the case's last event (on an idempotent replay: the first"
        " result's); null when nothing changed."
    )
    replayed: bool
    changed: bool
    resident_token: str | None = Field(
        None, description="On registration only: the petitioner's per-case token, to print on the receipt."
    )
