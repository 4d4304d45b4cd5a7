"""Request and response shapes. Pydantic checks shape and size (422 with the
field and the reason); the reference data and the case check meaning."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, Field, StringConstraints

from cases.inputs import Clean, Code, Command, Phone, Short, Text


class RegisterIn(Command):
    channel: Code = Field(examples=["hotline"])
    category: Code = Field(examples=["housing"])
    title: Short = Field(examples=["楼顶渗水"])
    description: Text = Field(examples=["业主违章搭建导致居民住宅楼顶渗水"])
    location: Short = Field(examples=["胭脂山社区3栋"])
    grid: Code = Field(description="Grid or micro-grid code from the reference data.")
    petitioner_name: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=50), Clean]
    petitioner_phone: Phone
    petitioner_address: Annotated[str, StringConstraints(strip_whitespace=True, max_length=200), Clean] | None = Field(
        None, description="The petitioner's own address, if it differs from the location: encrypted like the name."
    )
    notices: bool = Field(
        True, description="False: the petitioner declines SMS notices (不接收短信通知), for this and later cases."
    )


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
