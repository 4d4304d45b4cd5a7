"""The commands a signed-in role may send on a case now, as forms, and reading them back.

Which commands are offered follows the command table (roles and the statuses in which the case
takes each one); the aggregate stays the judge when the form is sent.
"""

from __future__ import annotations

import re
import typing
from dataclasses import dataclass
from datetime import date
from typing import Any

from pydantic import ValidationError

from cases.case import WHILE_LINKED
from cases.commands import COMMANDS
from cases.inputs import Command
from cases.vocabulary import Role, Status
from web import labels

LONG_TEXT = 1000  # longer limits get a text area


@dataclass(frozen=True)
class Field:
    name: str
    label: str
    kind: str  # text, textarea, date, select, list
    required: bool
    choices: dict[str, str] | None = None


@dataclass(frozen=True)
class CommandForm:
    path: str
    label: str
    fields: list[Field]


def available(role: Role, status: Status, *, linked: bool = False) -> list[CommandForm]:
    """The table's commands this role may send in this status (cases/commands.py); a linked
    duplicate (重复件) only those it takes while it follows its main case."""
    return [
        CommandForm(c.path, c.label, fields_of(c.body))
        for c in COMMANDS
        if role in c.roles and status in c.when and (not linked or c.name in WHILE_LINKED)
    ]


def fields_of(model: type[Command]) -> list[Field]:
    fields = []
    for name, info in model.model_fields.items():
        if name == "actor":
            continue
        annotation = info.annotation
        kind, choices = "text", None
        if name in labels.CHOICES:
            kind, choices = "select", labels.CHOICES[name]
        elif annotation is bool:
            kind, choices = "select", {"true": "是", "false": "否"}
        elif annotation is date:
            kind = "date"
        elif typing.get_origin(annotation) is list:
            kind = "list"
        elif any((getattr(m, "max_length", 0) or 0) > LONG_TEXT for m in info.metadata):
            kind = "textarea"
        fields.append(Field(name, labels.FIELDS.get(name, name), kind, info.is_required(), choices))
    return fields


def parse(model: type[Command], form: dict[str, str]) -> Command:
    data: dict[str, Any] = {}
    for field in fields_of(model):
        value = form.get(field.name, "").strip()
        if value == "" and not field.required:
            continue
        data[field.name] = [v for v in re.split(r"[,，、\s]+", value) if v] if field.kind == "list" else value
    return model.model_validate(data)


def problems(error: ValidationError) -> list[str]:
    named = ((str(e["loc"][0]) if e["loc"] else "表单", e["msg"]) for e in error.errors())
    return [f"{labels.FIELDS.get(field, field)}：{reason}" for field, reason in named]
