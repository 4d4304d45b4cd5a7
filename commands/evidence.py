"""Attachments as evidence: what the application checks before a file reaches the store and its
hash reaches the case. The type is read from the bytes, never from the name or the declared
Content-Type; images lose their location (EXIF GPS, XMP) unless the stage and role may keep it
(cases/evidence.py); the hash is of the bytes stored.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
import warnings
from dataclasses import dataclass
from io import BytesIO
from typing import Any
from uuid import UUID

import structlog
from PIL import Image, UnidentifiedImageError

from cases.actor import Actor
from cases.case import Case
from cases.commands import BY_NAME
from cases.evidence import STAGES, Stage, carries_personal_data, keeps_location
from commands.cases import Cases, CommandOptions, CommandResult
from commands.errors import InvalidInputError
from storage.blobs import BlobStore

log = structlog.get_logger()
GPS_IFD = 0x8825
MAX_PIXELS = 50_000_000  # a larger image is refused, not decoded (decompression bombs)


@dataclass(frozen=True)
class Kind:
    content_type: str
    extensions: tuple[str, ...]
    image: bool


JPEG = Kind("image/jpeg", (".jpg", ".jpeg"), True)
PNG = Kind("image/png", (".png",), True)
WEBP = Kind("image/webp", (".webp",), True)
PDF = Kind("application/pdf", (".pdf",), False)
ACCEPTED = "JPEG、PNG、WebP 图片或 PDF 文档"


def sniff(data: bytes) -> Kind | None:
    """The type the bytes are, by their magic numbers."""
    if data.startswith(b"\xff\xd8\xff"):
        return JPEG
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return PNG
    if len(data) >= 12 and data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return WEBP
    if data.startswith(b"%PDF-"):
        return PDF
    return None


class AttachmentTooLargeError(InvalidInputError):
    """413: over the configured size."""

    code = "attachment_too_large"


class AttachmentNotFoundError(LookupError):
    code = "attachment_not_found"

    def __init__(self, sha256: str) -> None:
        super().__init__(f"本案没有哈希为 {sha256} 的附件。")
        self.message = str(self.args[0])


class AttachmentErasedError(Exception):
    """410: the file was removed with the person whose data it carried; the case keeps its hash."""

    code = "attachment_erased"

    def __init__(self, sha256: str) -> None:
        super().__init__(f"附件 {sha256[:12]}… 已随诉求人的个人信息一并删除，文件不可再读取；案件记录只保留其哈希。")
        self.message = str(self.args[0])


@dataclass(frozen=True)
class Checked:
    data: bytes
    kind: Kind
    sha256: str
    location_removed: bool

    @property
    def size(self) -> int:
        return len(self.data)


def check(data: bytes, *, keep_location: bool, max_bytes: int) -> Checked:
    """The file as it will be stored, or a 422/413 naming `file` with a Chinese reason."""
    if not data:
        raise InvalidInputError("file", "文件为空：请选择要上传的照片或文档")
    if len(data) > max_bytes:
        raise AttachmentTooLargeError("file", f"文件过大：{len(data) // 1024} KiB，上限为 {max_bytes // 1024} KiB")
    kind = sniff(data)
    if kind is None:
        raise InvalidInputError("file", f"文件内容不是允许的类型（{ACCEPTED}）；按内容判断，与文件名和扩展名无关")
    removed = False
    if kind.image:
        data, removed = _image(data, kind, keep_location)
    elif b"%%EOF" not in data[-2048:]:
        raise InvalidInputError("file", "PDF 文档不完整（缺少文件结尾），请重新导出后上传")
    return Checked(data, kind, hashlib.sha256(data).hexdigest(), removed)


def _image(data: bytes, kind: Kind, keep_location: bool) -> tuple[bytes, bool]:
    unreadable = InvalidInputError("file", "图片已损坏或无法解码，请重新拍摄或导出后上传")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(BytesIO(data)) as image:
                if image.width * image.height > MAX_PIXELS:
                    raise InvalidInputError("file", f"图片像素过多（上限 {MAX_PIXELS // 1_000_000} 百万像素）")
                exif = image.getexif()
                xmp = image.info.get("xmp") or b""
                located = GPS_IFD in exif or b"GPS" in (xmp if isinstance(xmp, bytes) else str(xmp).encode())
                image.load()  # decoded in full: a truncated or forged image is refused here
                if keep_location or not located:
                    return data, False
                return _without_location(image, exif, kind), True
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, RuntimeError, Image.DecompressionBombError,
            Image.DecompressionBombWarning) as e:  # fmt: skip
        if isinstance(e, InvalidInputError):
            raise
        raise unreadable from None


def _without_location(image: Image.Image, exif: Image.Exif, kind: Kind) -> bytes:
    """Re-written without the GPS directory and without XMP (which may repeat it); the rest of
    EXIF (orientation, camera, time taken) stays. JPEG keeps its quantisation tables."""
    exif.pop(GPS_IFD, None)  # absent when only XMP told where
    options: dict[str, Any] = {"exif": exif.tobytes()}
    if icc := image.info.get("icc_profile"):
        options["icc_profile"] = icc
    out = BytesIO()
    if kind is JPEG:
        image.save(out, "JPEG", quality="keep", subsampling="keep", **options)
    elif kind is PNG:
        image.save(out, "PNG", **options)
    else:
        image.save(out, "WEBP", lossless=True, **options)
    return out.getvalue()


_UNSAFE = re.compile(r"[^\w.\-()（）+ ]")


def safe_name(name: str, kind: Kind, stage: str) -> str:
    """The last path part, printable, at most 100 characters, and with an extension that matches
    what the file is (a PDF named photo.jpg is downloaded as photo.jpg.pdf)."""
    base = re.split(r"[/\\]", unicodedata.normalize("NFC", name or ""))[-1]
    base = _UNSAFE.sub("_", "".join(ch for ch in base if unicodedata.category(ch)[0] != "C")).strip(" .")
    base = base[:100] or stage
    if not base.lower().endswith(kind.extensions):
        base += kind.extensions[0]
    return base


class Evidence:
    """Adds files to cases and reads them back: the case decides who may, the store keeps the
    bytes, the event keeps the hash."""

    def __init__(self, cases: Cases, blobs: BlobStore, *, max_bytes: int) -> None:
        self.cases = cases
        self.blobs = blobs
        self.max_bytes = max_bytes

    def attach(
        self,
        case_id: UUID,
        actor: Actor,
        *,
        stage: Stage,
        name: str,
        data: bytes,
        url: str | None = None,
        **options: Any,
    ) -> CommandResult:
        idempotency = options.get("idempotency")
        if idempotency is not None and (earlier := self.cases._recorded(idempotency)):
            return earlier  # a retry answers as the first time, whatever the case has done since
        # Refused before anything is stored: a file nobody may add never reaches the store.
        self.cases.get_case(case_id).check_attach(actor, stage)
        checked = check(data, keep_location=keeps_location(stage, actor.role), max_bytes=self.max_bytes)
        holder = _holder(case_id, stage)
        self.blobs.put(checked.sha256, checked.data, checked.kind.content_type, holder)
        if carries_personal_data(stage, actor.role):
            # The log cannot forget: a name like 张秀英身份证.jpg would outlive the person's erasure.
            name = STAGES[stage].label
        fields = {
            "stage": stage,
            "sha256": checked.sha256,
            "content_type": checked.kind.content_type,
            "size": checked.size,
            "name": safe_name(name, checked.kind, stage),
            "location_removed": checked.location_removed,
            "url": url,
        }
        try:
            return self.cases.act(BY_NAME["attach"], case_id, actor, fields, **_options(options))
        except BaseException:
            self._unstore(case_id, stage, checked.sha256)
            raise

    def _unstore(self, case_id: UUID, stage: Stage, sha256: str) -> None:
        """After a save that failed (a conflict, a refusal, the database): the reference goes, and
        the bytes with it unless another attachment holds them. The case is read again first: a
        concurrent upload of the same file to the same stage may have saved it meanwhile."""
        try:
            if not any(a["stage"] == stage and a["sha256"] == sha256 for a in self.cases.get_case(case_id).evidence()):
                self.blobs.discard(sha256, _holder(case_id, stage))
        except Exception:
            log.warning("attachment_left_stored", case_id=str(case_id), sha256=sha256, exc_info=True)

    def link(self, case_id: UUID, actor: Actor, *, stage: Stage, url: str) -> CommandResult:
        """A link kept on the case but not fetched (its host is not allowed)."""
        fields = {"stage": stage, "sha256": None, "content_type": None, "size": None, "name": "", "url": url}
        return self.cases.act(BY_NAME["attach"], case_id, actor, fields)

    def listing(self, case: Case) -> list[dict[str, Any]]:
        return [{**a, "erased": self._erased(case, a)} for a in case.evidence()]

    def read(self, case: Case, sha256: str) -> tuple[dict[str, Any], bytes]:
        found = next((a for a in case.evidence() if a["sha256"] == sha256), None)
        if found is None:
            raise AttachmentNotFoundError(sha256)
        if self._erased(case, found):
            if self.blobs.get(sha256) is not None and _personal(found):
                self._release(case, found)  # an erasure that ran before the ledger knew the case
            raise AttachmentErasedError(sha256)
        data = self.blobs.get(sha256)
        if data is None:
            raise AttachmentNotFoundError(sha256)
        return found, data

    def erase_person(self, case_ids: list[UUID]) -> list[str]:
        """Releases the files that carry the person's data on their cases; returns their hashes.
        The bytes go unless another live attachment holds the same bytes (another case, or a
        file of this case that carries no personal data)."""
        erased = []
        for case_id in case_ids:
            case = self.cases.get_case(case_id)
            for a in case.evidence():
                if a["sha256"] and _personal(a):
                    self._release(case, a)
                    erased.append(a["sha256"])
        return erased

    def _release(self, case: Case, attachment: dict[str, Any]) -> None:
        same = [a for a in case.evidence() if (a["stage"], a["sha256"]) == (attachment["stage"], attachment["sha256"])]
        if all(_personal(a) for a in same):  # the holder is the stage: a site photo of it keeps it
            self.blobs.release(attachment["sha256"], _holder(case.id, attachment["stage"]))

    def _erased(self, case: Case, attachment: dict[str, Any]) -> bool:
        sha = attachment["sha256"]
        if sha is None:
            return False
        person = case.petitioner.get("person") if isinstance(case.petitioner, dict) else None
        vault = self.cases.vault
        if _personal(attachment) and person and vault is not None and vault.erased(person):
            return True
        return self.blobs.erased(sha)


def _holder(case_id: UUID, stage: str) -> str:
    """What references a file in the store: the case and the stage (one file per stage and case)."""
    return f"{case_id}.{stage}"


def _personal(attachment: dict[str, Any]) -> bool:
    return carries_personal_data(attachment["stage"], (attachment.get("added_by") or {}).get("role", ""))


def _options(options: dict[str, Any]) -> CommandOptions:
    return CommandOptions(**{k: v for k, v in options.items() if k in ("expected_version", "idempotency")})  # type: ignore[typeddict-item]
