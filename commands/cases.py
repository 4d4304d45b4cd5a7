"""The Cases application: one method per command. Each loads the case, lets the
aggregate decide, and saves; a conflicting concurrent save reloads and re-runs
the whole command so no decision is ever taken on a stale view."""

from __future__ import annotations

import hashlib
import hmac
import os
import random
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from datetime import date, datetime
from typing import Any, Protocol, TypedDict, Unpack, cast
from uuid import UUID, uuid4

import orjson
from eventsourcing.application import AggregateNotFoundError, Application, ProcessingEvent, Recording
from eventsourcing.persistence import DataError, IntegrityError
from eventsourcing.postgres import PostgresApplicationRecorder

from cases.actor import Actor
from cases.case import Case
from cases.clock import local_date, utc_now
from cases.commands import CaseCommand
from cases.errors import ApprovalRequiredError
from cases.places import CoordinateSystem, to_wgs84
from cases.policy import Policy
from cases.vocabulary import FeedbackMethod, HandlingType, Role, Satisfaction, Status, SuggestionOutcome, Tier
from commands.errors import (
    CaseNotFoundError,
    ConcurrentUpdateError,
    IdempotencyKeyReusedError,
    InvalidInputError,
    InvalidReferenceError,
    StaleVersionError,
)
from commands.group_commit import GroupCommit
from commands.group_load import GroupLoad, postgres_select_many, project
from commands.notices import queued_notices
from commands.recorders import PostgresLog, SQLiteLog, is_key_gone, recorder_topic
from commands.records import (
    CaseNumberIssued,
    CommandRecorded,
    ExternalOrderRecorded,
    event_position,
    streams_present,
    versions_taken,
)
from reference.model import Person, ReferenceData

MAX_ATTEMPTS = 12


def _back_off(attempt: int) -> None:
    # Jitter breaks the lockstep in which racing writers would collide again.
    if attempt:
        time.sleep(random.uniform(0, min(0.001 * 2**attempt, 0.2)))


# Crockford's base 32: no I, L, O or U to misread when a number is read out on the phone.
NUMBER_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"


def case_number(street: str, day: date, rng: random.Random) -> str:
    """Street, local date and five random characters: 33.5 million numbers per
    street and day. A number is reserved atomically with the case (a clash is a
    conflict and retried), so concurrent intake never queues on a counter."""
    suffix = "".join(rng.choice(NUMBER_ALPHABET) for _ in range(5))
    return f"{street}-{day:%Y%m%d}-{suffix}"


@dataclass(frozen=True)
class CommandResult:
    case_id: str
    number: str
    version: int
    position: int | None  # global log position of the case's last event; None when nothing changed
    replayed: bool = False
    changed: bool = True

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Idempotency:
    key: str
    fingerprint: str

    @classmethod
    def of(
        cls,
        key: str,
        command: str,
        case_id: object,
        payload: dict[str, Any],
        keyed: Callable[[bytes], str] | None = None,
    ) -> Idempotency:
        """`keyed` (a secret-keyed hash) when the payload holds personal data: the fingerprint is
        stored in the log, and a plain hash of a phone number can be guessed."""
        body = orjson.dumps([command, str(case_id), payload], option=orjson.OPT_SORT_KEYS, default=str)
        return cls(key, keyed(body) if keyed else hashlib.sha256(body).hexdigest())


class PersonalDataVault(Protocol):
    """What the application needs of the key vault (security.vault.Vault is the one): personal
    data sealed per person before it reaches an event, and a keyed hash for fingerprints; and
    what readers and erasure ask of the vault the application holds."""

    def seal(self, data: dict[str, Any], *, phone: str, cached: bool = False) -> dict[str, Any]: ...
    def seal_many(self, items: list[tuple[dict[str, Any], str]]) -> list[dict[str, Any]]: ...
    def forget(self, person_id: str) -> None: ...
    def unseal(self, envelope: dict[str, Any]) -> dict[str, Any] | None: ...
    def unseal_many(self, envelopes: list[dict[str, Any]]) -> list[tuple[dict[str, Any] | None, bool]]: ...
    def fingerprint(self, payload: bytes) -> str: ...
    def close(self) -> None: ...
    def knows(self, person_id: str) -> bool: ...
    def erase(self, person_id: str) -> bool: ...
    def erased(self, person_id: str) -> bool: ...


class CommandOptions(TypedDict, total=False):
    """What every command takes besides its own fields (from the HTTP headers)."""

    expected_version: int | None  # If-Match
    idempotency: Idempotency | None  # Idempotency-Key


def personal_data(name: str, phone: str, address: str | None, contacts: dict[str, str | None]) -> dict[str, str]:
    """What the petitioner gave: sealed whole under their key, never stored in clear."""
    personal = {"name": name, "phone": phone}
    if address:
        personal["address"] = address
    return personal | {k: v for k, v in contacts.items() if v}


class Cases(Application):
    name = "cases"

    def __init__(
        self,
        env: dict[str, str] | None = None,
        *,
        reference: ReferenceData,
        policy: Policy,
        clock: Callable[[], datetime] = utc_now,
        vault: PersonalDataVault | None = None,
    ) -> None:
        module = (env or {}).get("PERSISTENCE_MODULE") or os.environ.get("PERSISTENCE_MODULE", "")
        topic = recorder_topic(module)
        if topic is not None and env is not None and "APPLICATION_RECORDER_TOPIC" not in env:
            env = {**env, "APPLICATION_RECORDER_TOPIC": topic}
        super().__init__(env)
        # The log checks, in each save, that the person keys sealing its data still stand; so the
        # vault may seal with keys it remembers instead of reading them again (commands/recorders.py).
        self.keys_checked_on_save = isinstance(self.recorder, (PostgresLog, SQLiteLog))
        self.vault = vault  # personal data is sealed with it; without one, registering is refused
        self._random = random.SystemRandom()
        self.reference = reference
        self.policy = policy
        self.clock = clock
        # Concurrent commands of this process share transactions (commands/group_commit.py).
        self.group_commit = GroupCommit(
            self._save_together, lambda keys: versions_taken(self.recorder, keys), isolate=is_key_gone
        )
        # And the cases they load are read together (commands/group_load.py), on PostgreSQL.
        self.group_load = (
            GroupLoad(postgres_select_many(self.recorder))
            if isinstance(self.recorder, PostgresApplicationRecorder) and self.snapshots is None
            else None
        )

    def save(self, *objs: Any, **kwargs: Any) -> list[Recording[UUID]]:
        """Saves these aggregates and records in one transaction, as the library does; concurrent
        saves of this process are grouped into one transaction (each keeps its own outcome: its
        recordings, or `IntegrityError` when one of its events conflicts). Keyword arguments
        (tracking records) are the library's and go straight through."""
        if kwargs:
            return super().save(*objs, **kwargs)
        return self.group_commit.save(*objs)

    def _save_together(self, events: list[Any]) -> list[Recording[UUID]]:
        persons = [
            e.petitioner["person"]
            for e in events
            if isinstance(getattr(e, "petitioner", None), dict) and "person" in e.petitioner
        ]
        # Application.save's own steps, without its `isinstance(obj, DomainEventProtocol)` per object:
        # a runtime Protocol check costs ~20 µs on Python 3.11 (three per registration), and every
        # object here is an event the group commit already collected from its aggregate.
        processing: ProcessingEvent[UUID] = ProcessingEvent()
        processing.events.extend(events)
        if persons:
            processing.saved_kwargs["persons"] = persons
        recordings = self._record(processing)
        self._take_snapshots(processing)
        self._notify(recordings)
        self.notify(processing.events)
        return recordings

    def close(self) -> None:
        if self.vault is not None:
            self.vault.close()
        super().close()

    # --- queries ---------------------------------------------------------------

    def get_case(self, case_id: UUID, version: int | None = None) -> Case:
        if version is None and self.group_load is not None:
            events = [self.mapper.to_domain_event(e) for e in self.group_load.stored_events(case_id)]
            case = project(events)
            if not isinstance(case, Case):  # nothing stored, or a stream that is not a case's
                raise CaseNotFoundError(case_id)
            return case
        try:
            return self.repository.get(case_id, version=version)
        except AggregateNotFoundError:
            raise CaseNotFoundError(case_id) from None

    # --- commands --------------------------------------------------------------

    def register(
        self,
        actor: Actor,
        *,
        channel: str,
        category: str,
        title: str,
        description: str,
        location: str,
        grid: str | None = None,
        petitioner_name: str,
        petitioner_phone: str,
        petitioner_address: str | None = None,
        petitioner_email: str | None = None,
        petitioner_device_id: str | None = None,
        petitioner_account_id: str | None = None,
        latitude: float | None = None,
        longitude: float | None = None,
        coordinate_system: CoordinateSystem = CoordinateSystem.WGS84,
        media_url: str | None = None,
        notices: bool = True,
        idempotency: Idempotency | None = None,
    ) -> CommandResult:
        self._check_actor(actor)
        point = self.place(latitude, longitude, coordinate_system)
        units = self.admit(channel=channel, category=category, grid=grid, point=point)
        if self.vault is None:
            raise RuntimeError("Cases needs a vault to register: personal data is never stored in clear")
        # Open311's contact fields are the petitioner's too: sealed with the rest, never in clear.
        contacts = {"email": petitioner_email, "device_id": petitioner_device_id, "account_id": petitioner_account_id}
        personal = personal_data(petitioner_name, petitioner_phone, petitioner_address, contacts)
        # Only the envelope reaches the event: the person's key decides who can read it, for ever.
        petitioner = self.vault.seal(personal, phone=petitioner_phone, cached=self.keys_checked_on_save)
        for attempt in range(MAX_ATTEMPTS):
            _back_off(attempt)
            if idempotency and (earlier := self._recorded(idempotency)):
                return earlier
            at = self.clock()
            number = case_number(units["street"], local_date(at), self._random)
            stream = CaseNumberIssued.stream_id(number)
            case_id = uuid4()
            case = Case.register(
                case_id=case_id,
                number=number,
                actor=actor,
                at=at,
                units=units,
                channel=channel,
                category=category,
                title=title,
                description=description,
                location=location,
                petitioner=petitioner,
                latitude=point[0] if point else None,
                longitude=point[1] if point else None,
                media_url=media_url,
                notices=notices,
            )
            issued = CaseNumberIssued(
                originator_id=stream, originator_version=1, timestamp=at, number=number, case_id=str(case_id)
            )
            try:
                result = self._save(case, [issued], idempotency)
            except DataError as error:
                if not is_key_gone(error):
                    raise
                # The person was erased since their key was remembered: a new person, a new key.
                self.vault.forget(petitioner["person"])
                petitioner = self.vault.seal(personal, phone=petitioner_phone)
                continue
            if result is not None:
                return result
        raise ConcurrentUpdateError

    def admit(
        self, *, channel: str, category: str, grid: str | None, point: tuple[float, float] | None = None
    ) -> dict[str, str]:
        """The registration's references checked against the reference data; the grid's units
        (without a grid, that of the point: the reference data's grid boundaries)."""
        self._require_known("channel", channel, self.reference.channels, "未知的受理渠道")
        self._require_known("category", category, self.reference.categories, "未知的诉求类别")
        if grid is None:
            grid = self.grid_of(point)
        units = self.reference.units_of(grid)
        if units is None:
            raise InvalidReferenceError("grid", f"未知的网格或微网格编码 {grid}")
        return units

    def classify(
        self, case_id: UUID, actor: Actor, *, handling_type: HandlingType, tier: Tier, **kw: Unpack[CommandOptions]
    ) -> CommandResult:
        def decide(case: Case, at: datetime) -> None:
            start = local_date(case.received_at)  # an imported order's from the platform's registration
            version = self.policy.in_force(local_date(at))
            case.classify(
                actor,
                at,
                handling_type=handling_type,
                tier=tier,
                deadlines=version.deadlines(handling_type, tier, start),
                policy_version=version.version,
            )

        return self._execute(case_id, actor, decide, **kw)

    def recompute_deadlines(self, case_id: UUID, actor: Actor, **kw: Unpack[CommandOptions]) -> CommandResult:
        def decide(case: Case, at: datetime) -> bool:
            if case.handling_type is None or case.tier is None or not case.policy_version:
                # Not classified yet: the case itself refuses, with its own reason (409, not a 500).
                return case.recompute_deadlines(actor, at, deadlines={}, policy_version="")
            version = next(v for v in self.policy.versions if v.version == case.policy_version)
            # A reopened case's limits run from its reopening (不满意重办), not from registration.
            start = local_date(case.reopened_at or case.received_at)
            fresh = version.deadlines(case.handling_type, case.tier, start)
            return case.recompute_deadlines(actor, at, deadlines=fresh, policy_version=version.version)

        return self._execute(case_id, actor, decide, **kw)

    def assign(self, case_id: UUID, actor: Actor, *, assignee: str, **kw: Unpack[CommandOptions]) -> CommandResult:
        leader = self._grid_leader(assignee)
        return self._execute(
            case_id,
            actor,
            lambda case, at: case.assign(
                actor, at, assignee=leader.id, assignee_name=leader.name, assignee_grids=leader.grids
            ),
            **kw,
        )

    def return_case(self, case_id: UUID, actor: Actor, *, reason: str, **kw: Unpack[CommandOptions]) -> CommandResult:
        def decide(case: Case, at: datetime) -> None:
            self._require_alone("return_case", actor, at, "request-return")
            case.return_case(actor, at, reason=reason)

        return self._execute(case_id, actor, decide, **kw)

    def accept(self, case_id: UUID, actor: Actor, **kw: Unpack[CommandOptions]) -> CommandResult:
        return self._execute(case_id, actor, lambda case, at: case.accept(actor, at), **kw)

    def report_progress(
        self, case_id: UUID, actor: Actor, *, progress: str, **kw: Unpack[CommandOptions]
    ) -> CommandResult:
        return self._execute(case_id, actor, lambda case, at: case.report_progress(actor, at, progress=progress), **kw)

    def whistle(
        self, case_id: UUID, actor: Actor, *, departments: list[str], reason: str, **kw: Unpack[CommandOptions]
    ) -> CommandResult:
        for i, code in enumerate(departments):
            self._require_known(f"departments[{i}]", code, self.reference.departments, "未知的职能部门")
        return self._execute(
            case_id,
            actor,
            lambda case, at: case.whistle(actor, at, departments=departments, reason=reason),
            **kw,
        )

    def report_in(self, case_id: UUID, actor: Actor, **kw: Unpack[CommandOptions]) -> CommandResult:
        return self._execute(case_id, actor, lambda case, at: case.report_in(actor, at), **kw)

    def consult(
        self, case_id: UUID, actor: Actor, *, outcome: str, lead_department: str, **kw: Unpack[CommandOptions]
    ) -> CommandResult:
        self._require_known("lead_department", lead_department, self.reference.departments, "未知的职能部门")
        return self._execute(
            case_id,
            actor,
            lambda case, at: case.consult(actor, at, outcome=outcome, lead_department=lead_department),
            **kw,
        )

    def take_lead(self, case_id: UUID, actor: Actor, **kw: Unpack[CommandOptions]) -> CommandResult:
        leader = self.reference.leaders.get(actor.id)
        if leader is None:
            raise InvalidReferenceError("actor.id", f"{actor.id} 不是登记在册的包案领导")
        return self._execute(case_id, actor, lambda case, at: case.take_lead(actor, at, leader_name=leader.name), **kw)

    def plan_rectification(
        self,
        case_id: UUID,
        actor: Actor,
        *,
        measures: str,
        responsible_unit: str,
        responsible_person: str,
        deadline: date,
        **kw: Unpack[CommandOptions],
    ) -> CommandResult:
        return self._execute(
            case_id,
            actor,
            lambda case, at: case.plan_rectification(
                actor,
                at,
                measures=measures,
                responsible_unit=responsible_unit,
                responsible_person=responsible_person,
                deadline=deadline,
            ),
            **kw,
        )

    def extend(
        self, case_id: UUID, actor: Actor, *, new_due: date, reason: str, **kw: Unpack[CommandOptions]
    ) -> CommandResult:
        def decide(case: Case, at: datetime) -> None:
            self._require_alone("extend", actor, at, "request-extension")
            case.extend(actor, at, new_due=new_due, reason=reason)

        return self._execute(case_id, actor, decide, **kw)

    def rectify(self, case_id: UUID, actor: Actor, *, summary: str, **kw: Unpack[CommandOptions]) -> CommandResult:
        return self._execute(case_id, actor, lambda case, at: case.rectify(actor, at, summary=summary), **kw)

    def verify(
        self, case_id: UUID, actor: Actor, *, passed: bool, reason: str, **kw: Unpack[CommandOptions]
    ) -> CommandResult:
        return self._execute(
            case_id, actor, lambda case, at: case.verify(actor, at, passed=passed, reason=reason), **kw
        )

    def close_case(
        self,
        case_id: UUID,
        actor: Actor,
        *,
        summary: str,
        suggestion_outcome: SuggestionOutcome | None,
        **kw: Unpack[CommandOptions],
    ) -> CommandResult:
        def decide(case: Case, at: datetime) -> list[Case]:
            case.close_case(actor, at, summary=summary, suggestion_outcome=suggestion_outcome)
            # Each linked duplicate closes with it, by its own event, in the same transaction.
            duplicates = [d for d in map(self.get_case, map(UUID, case.duplicates)) if d.status != Status.CLOSED]
            for duplicate in duplicates:
                duplicate.close_with_main(actor, at, main=case, summary=summary)
            return duplicates

        return self._execute(case_id, actor, decide, **kw)

    def give_feedback(
        self,
        case_id: UUID,
        actor: Actor,
        *,
        method: FeedbackMethod,
        content: str,
        reached: bool = True,
        **kw: Unpack[CommandOptions],
    ) -> CommandResult:
        def decide(case: Case, at: datetime) -> None:
            case.give_feedback(actor, at, method=method, content=content, reached=reached)

        return self._execute(case_id, actor, decide, **kw)

    def rate(
        self, case_id: UUID, actor: Actor, *, satisfaction: Satisfaction, comment: str, **kw: Unpack[CommandOptions]
    ) -> CommandResult:
        return self._execute(
            case_id,
            actor,
            lambda case, at: case.rate(actor, at, satisfaction=satisfaction, comment=comment),
            **kw,
        )

    def supervise(
        self,
        case_id: UUID,
        actor: Actor,
        *,
        responsible_unit: str,
        new_due: date,
        notice: str,
        **kw: Unpack[CommandOptions],
    ) -> CommandResult:
        return self._execute(
            case_id,
            actor,
            lambda case, at: case.supervise(
                actor, at, responsible_unit=responsible_unit, new_due=new_due, notice=notice
            ),
            **kw,
        )

    # --- second handling, transfers and approvals (issue 17) ---------------

    def reopen(self, case_id: UUID, actor: Actor, *, reason: str, **kw: Unpack[CommandOptions]) -> CommandResult:
        def decide(case: Case, at: datetime) -> None:
            # Fresh 13710 limits counted from the day of reopening, by the policy in force that day.
            version = self.policy.in_force(local_date(at))
            deadlines = (
                version.deadlines(case.handling_type, case.tier, local_date(at))
                if case.handling_type is not None and case.tier is not None
                else {}
            )
            case.reopen(actor, at, reason=reason, deadlines=deadlines, policy_version=version.version)

        return self._execute(case_id, actor, decide, **kw)

    def reassign(
        self, case_id: UUID, actor: Actor, *, assignee: str, reason: str, **kw: Unpack[CommandOptions]
    ) -> CommandResult:
        leader = self._grid_leader(assignee)
        return self._execute(
            case_id,
            actor,
            lambda case, at: case.reassign(
                actor, at, assignee=leader.id, assignee_name=leader.name, assignee_grids=leader.grids, reason=reason
            ),
            **kw,
        )

    def transfer(
        self, case_id: UUID, actor: Actor, *, to_department: str, reason: str, **kw: Unpack[CommandOptions]
    ) -> CommandResult:
        self._require_known("to_department", to_department, self.reference.departments, "未知的职能部门")
        return self._execute(
            case_id, actor, lambda case, at: case.transfer(actor, at, to_department=to_department, reason=reason), **kw
        )

    def _require_alone(self, command: str, actor: Actor, at: datetime, request_path: str) -> None:
        """The policy in force says which roles decide an extension or a return alone; the others ask."""
        if not self.policy.in_force(local_date(at)).may_decide_alone(command, actor.role):
            label = "延期" if command == "extend" else "退单"
            raise ApprovalRequiredError(
                f"按本地审批规定，{actor.role} 不能自行{label}：请提交{label}申请（{request_path}），"
                "由镇（街道）或督查室审批。"
            )

    # --- places (issue 18) ---------------------------------------------------

    def place(
        self, latitude: float | None, longitude: float | None, system: CoordinateSystem = CoordinateSystem.WGS84
    ) -> tuple[float, float] | None:
        """The point as stored (WGS-84), checked to lie inside the district's bounds; None if none given."""
        if latitude is None and longitude is None:
            return None
        if latitude is None or longitude is None:
            missing = "latitude" if latitude is None else "longitude"
            raise InvalidInputError(missing, "纬度（latitude）与经度（longitude）须同时给出")
        lat, lon = to_wgs84(latitude, longitude, system)
        bounds = self.reference.bounds
        if bounds is not None and not bounds.contains(lat, lon):
            hint = "；看来经纬度填反了（纬度约 26，经度约 119）" if bounds.contains(lon, lat) else ""
            raise InvalidInputError(
                "latitude",
                f"坐标（纬度 {lat}，经度 {lon}，WGS-84）不在本区范围内（{bounds.describe()}）{hint}，请核对后重试",
            )
        return lat, lon

    def grid_of(self, point: tuple[float, float] | None) -> str:
        """The grid a point lies in, from the reference data's grid boundaries."""
        if point is None:
            raise InvalidInputError("grid", "必填：请填写网格编码，或给出坐标以便按网格边界定位网格")
        grid = self.reference.grid_at(*point)
        if grid is None:
            where = f"纬度 {point[0]}，经度 {point[1]}"
            raise InvalidInputError("grid", f"坐标（{where}）不在任何网格的边界内，请填写网格编码")
        return grid

    def locate(
        self,
        case_id: UUID,
        actor: Actor,
        *,
        latitude: float,
        longitude: float,
        coordinate_system: CoordinateSystem = CoordinateSystem.WGS84,
        reason: str = "",
        **kw: Unpack[CommandOptions],
    ) -> CommandResult:
        point = self.place(latitude, longitude, coordinate_system)
        assert point is not None

        def decide(case: Case, at: datetime) -> bool:
            return case.locate(
                actor,
                at,
                latitude=point[0],
                longitude=point[1],
                coordinate_system=coordinate_system.value,
                reason=reason,
            )

        return self._execute(case_id, actor, decide, **kw)

    # --- duplicates (重复件 / 并案) --------------------------------------------

    def link_duplicate(
        self, case_id: UUID, actor: Actor, *, main_case: str, reason: str, **kw: Unpack[CommandOptions]
    ) -> CommandResult:
        """The case follows `main_case` (an id or a number); both are saved in one transaction."""
        main_id = self._find_case("main_case", main_case)

        def decide(case: Case, at: datetime) -> list[Case]:
            main = self.get_case(main_id)
            case.link_as_duplicate(actor, at, main=main, reason=reason)
            return [main]

        return self._execute(case_id, actor, decide, **kw)

    def unlink_duplicate(
        self, case_id: UUID, actor: Actor, *, reason: str, **kw: Unpack[CommandOptions]
    ) -> CommandResult:
        def decide(case: Case, at: datetime) -> list[Case]:
            if case.main_case is None:
                case.unlink_duplicate(actor, at, main=case, reason=reason)  # the case refuses, with its reason
            main = self.get_case(UUID(case.main_case))
            case.unlink_duplicate(actor, at, main=main, reason=reason)
            return [main]

        return self._execute(case_id, actor, decide, **kw)

    def _find_case(self, field: str, ref: str) -> UUID:
        """A case named by its id or by the number on its receipt; 422 on `field` if there is none."""
        try:
            case_id = UUID(ref)
        except ValueError:
            issued = list(self.events.get(CaseNumberIssued.stream_id(ref)))
            if not issued:
                raise InvalidReferenceError(field, f"没有编号为 {ref} 的案件") from None
            return UUID(cast(CaseNumberIssued, issued[0]).case_id)
        if not list(self.events.get(case_id, lte=1)):
            raise InvalidReferenceError(field, f"没有标识为 {ref} 的案件")
        return case_id

    def act(
        self,
        command: CaseCommand,
        case_id: UUID,
        actor: Actor,
        fields: dict[str, Any],
        **options: Unpack[CommandOptions],
    ) -> CommandResult:
        """Any command of the table (cases/commands.py): the method of that name here when the
        application adds checks of its own (reference data, policy), else the case decides alone."""
        own = getattr(self, command.name, None)
        if own is not None:
            result: CommandResult = own(case_id, actor, **fields, **options)
            return result
        return self._execute(
            case_id, actor, lambda case, at: getattr(case, command.name)(actor, at, **fields), **options
        )

    # --- the command cycle ---------------------------------------------------

    def _execute(
        self,
        case_id: UUID,
        actor: Actor,
        decide: Callable[[Case, datetime], bool | list[Case] | None],
        *,
        expected_version: int | None = None,
        idempotency: Idempotency | None = None,
    ) -> CommandResult:
        self._check_actor(actor)
        for attempt in range(MAX_ATTEMPTS):
            _back_off(attempt)
            if idempotency and (earlier := self._recorded(idempotency)):
                return earlier
            case = self.get_case(case_id)
            if expected_version is not None and case.version != expected_version:
                raise StaleVersionError(expected_version, case.version)
            decided = decide(case, self.clock())
            if decided is False:
                return CommandResult(str(case.id), case.number, case.version, None, changed=False)
            # Other cases the command changed (a main case and its duplicates): saved with this one.
            others: list[Any] = decided if isinstance(decided, list) else []
            result = self._save(case, others, idempotency)
            if result is not None:
                return result
            if expected_version is not None:
                # The client named the version it decided on; someone got there first.
                raise StaleVersionError(expected_version, self.get_case(case_id).version)
        raise ConcurrentUpdateError

    def _save(self, case: Case, extra: list[Any], idempotency: Idempotency | None) -> CommandResult | None:
        """Saves atomically; None when a concurrent writer won and the command must re-run."""
        recorded: list[Any] = []
        result = CommandResult(str(case.id), case.number, case.version, None)
        if idempotency is not None:
            recorded.append(
                CommandRecorded(
                    originator_id=CommandRecorded.stream_id(idempotency.key),
                    originator_version=1,
                    timestamp=self.clock(),
                    fingerprint=idempotency.fingerprint,
                    result=result.as_dict(),
                )
            )
        # Notices to residents: the outbox is written with the events that queue it (commands/notices.py).
        # Every case saved with it too: a main case's duplicates, closed with it, notify their own petitioners.
        for saved_case in (case, *(o for o in extra if isinstance(o, Case))):
            recorded += queued_notices(saved_case)
        try:
            recordings = self.save(case, *extra, *recorded)
        except IntegrityError:
            return None
        # The last event of the cases saved (this one, and a main case or duplicates saved with it):
        # what a case read model must reach to reflect the command.
        saved = {case.id, *(o.id for o in extra if isinstance(o, Case))}
        position = max(r.notification.id for r in recordings if r.domain_event.originator_id in saved)
        return CommandResult(str(case.id), case.number, case.version, position)

    def _recorded(self, idempotency: Idempotency) -> CommandResult | None:
        events = list(self.events.get(CommandRecorded.stream_id(idempotency.key)))
        if not events:
            return None
        record = cast(CommandRecorded, events[0])
        if not hmac.compare_digest(record.fingerprint, idempotency.fingerprint):
            raise IdempotencyKeyReusedError
        first = CommandResult(**record.result)
        # Nothing changed now; the position is the first result's, so `wait_for` still works.
        position = event_position(self.recorder, UUID(first.case_id), first.version)
        return replace(first, position=position, replayed=True, changed=False)

    def _grid_leader(self, assignee: str) -> Person:
        """The grid leader the reference data knows by that id (assign, reassign); 422 otherwise."""
        leader = self.reference.grid_leaders.get(assignee)
        if leader is None:
            raise InvalidReferenceError("assignee", f"{assignee} 不是登记在册的网格长")
        return leader

    def _check_actor(self, actor: Actor) -> None:
        """The token names the actor; the reference data must know who it names."""
        ref = self.reference
        if actor.role == Role.GRID_LEADER and actor.id not in ref.grid_leaders:
            raise InvalidReferenceError("actor.id", f"{actor.id} 不是登记在册的网格长")
        if actor.role == Role.TOWNSHIP and actor.unit not in ref.streets:
            raise InvalidReferenceError("actor.unit", "镇（街道）角色须注明所属镇（街道）编码")
        if actor.role == Role.DEPARTMENT and actor.unit not in ref.departments:
            raise InvalidReferenceError("actor.unit", "部门角色须注明所属职能部门编码")

    @staticmethod
    def _require_known(field: str, code: str, known: dict[str, Any], reason: str) -> None:
        if code not in known:
            raise InvalidReferenceError(field, f"{reason}：{code}")

    # --- imported hotline work orders (12345 / 110 非警务), issue 17 --------------

    def imported_already(self, platform: str, external_ids: list[str]) -> dict[str, str]:
        """Of these order numbers, those already imported from the platform, with their case ids."""
        streams = {ExternalOrderRecorded.stream_id(platform, x): x for x in external_ids}
        found: dict[str, str] = {}
        for stream in streams_present(self.recorder, list(streams)):
            record = cast(ExternalOrderRecorded, next(iter(self.events.get(stream))))
            found[streams[stream]] = record.case_id
        return found

    def import_orders(
        self, actor: Actor, orders: list[dict[str, Any]], *, platform: str, source: str
    ) -> list[CommandResult | None]:
        """Registers each order (the fields of ImportedOrder) as a case marked with the platform's
        order number, with the same checks and sealing as `register`. All in one transaction when
        nothing clashes; otherwise one order at a time, each all or nothing. None for an order the
        platform's number shows was imported before (by another import, perhaps at this moment)."""
        self._check_actor(actor)
        for order in orders:
            self.admit(channel=order["channel"], category=order["category"], grid=order["grid"])
        petitioners = self._sealed_many(orders)
        prepared = [
            self._imported_case(actor, order, petitioner, platform=platform, source=source)
            for order, petitioner in zip(orders, petitioners, strict=True)
        ]
        try:
            recordings = self.save(*(item for events in prepared for item in events))
        except IntegrityError:
            return [self._import_one(actor, order, platform=platform, source=source) for order in orders]
        positions: dict[UUID, int] = {}
        for r in recordings:
            positions[r.domain_event.originator_id] = r.notification.id
        results: list[CommandResult | None] = []
        for case, *_ in prepared:
            assert isinstance(case, Case)
            results.append(CommandResult(str(case.id), case.number, case.version, positions[case.id]))
        return results

    def _import_one(self, actor: Actor, order: dict[str, Any], *, platform: str, source: str) -> CommandResult | None:
        for attempt in range(MAX_ATTEMPTS):
            _back_off(attempt)
            if self.imported_already(platform, [order["external_id"]]):
                return None
            [petitioner] = self._sealed_many([order])
            case, *extra = self._imported_case(actor, order, petitioner, platform=platform, source=source)
            assert isinstance(case, Case)
            result = self._save(case, extra, None)
            if result is not None:
                return result
        raise ConcurrentUpdateError

    def _sealed_many(self, orders: list[dict[str, Any]]) -> list[dict[str, Any]]:
        if self.vault is None:
            raise RuntimeError("Cases needs a vault to register: personal data is never stored in clear")
        items = []
        for order in orders:
            personal = {"name": order["petitioner_name"], "phone": order["petitioner_phone"]}
            if order.get("petitioner_address"):
                personal["address"] = order["petitioner_address"]
            items.append((personal, order["petitioner_phone"]))
        return self.vault.seal_many(items)

    def _imported_case(
        self, actor: Actor, order: dict[str, Any], petitioner: dict[str, Any], *, platform: str, source: str
    ) -> list[Any]:
        units = self.admit(channel=order["channel"], category=order["category"], grid=order["grid"])
        at = self.clock()
        number = case_number(units["street"], local_date(at), self._random)
        case_id = uuid4()
        case = Case.import_order(
            platform=platform,
            external_id=order["external_id"],
            received_at=order.get("received_at"),
            source=source,
            case_id=case_id,
            number=number,
            actor=actor,
            at=at,
            units=units,
            channel=order["channel"],
            category=order["category"],
            title=order["title"],
            description=order["description"],
            location=order["location"],
            petitioner=petitioner,
        )
        issued = CaseNumberIssued(
            originator_id=CaseNumberIssued.stream_id(number),
            originator_version=1,
            timestamp=at,
            number=number,
            case_id=str(case_id),
        )
        reserved = ExternalOrderRecorded(
            originator_id=ExternalOrderRecorded.stream_id(platform, order["external_id"]),
            originator_version=1,
            timestamp=at,
            platform=platform,
            external_id=order["external_id"],
            case_id=str(case_id),
        )
        return [case, issued, reserved]
