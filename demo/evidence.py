"""The demo district's photos and documents (附件): after the stories have run, a few of the open
cases get the files their stage calls for, through the real checks and the real store: the
resident's photo at registration (its GPS stripped), the grid leader's before/after photos of
the site (their GPS kept), a rectification list as PDF, the resident's photo on verification.
The images are drawn here (Pillow), so no binary file lives in the repository."""

from __future__ import annotations

import random
from io import BytesIO
from typing import Any
from uuid import UUID

from PIL import Image, ImageDraw

from cases.actor import Actor
from cases.case import Case
from cases.evidence import STAGES, Stage
from cases.vocabulary import Role, Status
from commands.evidence import Evidence

CLERK = Actor("CL001", Role.INTAKE_CLERK)
# Around 马尾区 (Mawei, Fuzhou): where a phone would have put the photo.
MAWEI = (26.0, 119.45)

PDF_LIST = (
    b"%PDF-1.4\n1 0 obj<</Type/Catalog/Pages 2 0 R>>endobj\n"
    b"2 0 obj<</Type/Pages/Kids[3 0 R]/Count 1>>endobj\n"
    b"3 0 obj<</Type/Page/Parent 2 0 R/MediaBox[0 0 595 842]>>endobj\n"
    b"trailer<</Root 1 0 R>>\n%%EOF\n"
)


def photo(rng: random.Random, *, fixed: bool, gps: bool) -> bytes:
    """A small JPEG of a 'site': a wall with a crack (before) or without (after)."""
    image = Image.new("RGB", (320, 240), (rng.randint(150, 200), rng.randint(150, 190), rng.randint(140, 180)))
    draw = ImageDraw.Draw(image)
    draw.rectangle((0, 170, 320, 240), fill=(90, 90, 90))  # the ground
    draw.rectangle((40, 40, 280, 170), outline=(60, 60, 60), width=3)  # the wall
    if not fixed:
        x = rng.randint(80, 240)
        draw.line([(x, 45), (x + 20, 90), (x - 10, 130), (x + 15, 165)], fill=(30, 30, 30), width=4)
    exif = Image.Exif()
    exif[0x010F] = "Minqing demo"  # Make
    if gps:
        lat, lon = MAWEI[0] + rng.random() / 50, MAWEI[1] + rng.random() / 50
        exif.get_ifd(0x8825).update({1: "N", 2: _dms(lat), 3: "E", 4: _dms(lon)})
    out = BytesIO()
    image.save(out, "JPEG", quality=80, exif=exif.tobytes())
    return out.getvalue()


def _dms(value: float) -> tuple[float, float, float]:
    degrees = int(value)
    minutes = int((value - degrees) * 60)
    return float(degrees), float(minutes), round(((value - degrees) * 60 - minutes) * 60, 2)


def add_photos(evidence: Evidence, *, per_stage: int = 3, seed: int = 2026) -> dict[str, int]:
    """Files on up to `per_stage` open cases for each stage their status takes; returns counts."""
    rng = random.Random(seed)
    cases = evidence.cases
    counts = dict.fromkeys((s.value for s in Stage), 0)
    for case_id in _case_ids(cases):
        case = cases.get_case(case_id)
        for stage, data, name, actor in _files(case, rng):
            if counts[stage] >= per_stage or case.status not in STAGES[stage].when:
                continue
            evidence.attach(case_id, actor, stage=stage, name=name, data=data)
            counts[stage] += 1
        if all(n >= per_stage for n in counts.values()):
            break
    return counts


def _files(case: Case, rng: random.Random) -> list[tuple[Stage, bytes, str, Actor]]:
    resident = Actor(f"R-{case.number}", Role.RESIDENT)
    if case.status in (Status.REGISTERED, Status.CLASSIFIED, Status.ASSIGNED):
        return [(Stage.REGISTRATION, photo(rng, fixed=False, gps=True), "居民拍摄的现场照片.jpg", CLERK)]
    if case.assignee is None:
        return []
    leader = Actor(case.assignee, Role.GRID_LEADER)
    if case.status in (Status.IN_PROGRESS, Status.RECTIFYING):
        return [
            (Stage.BEFORE, photo(rng, fixed=False, gps=True), "整改前.jpg", leader),
            (Stage.PROGRESS, PDF_LIST, "整改清单.pdf", leader),
        ]
    if case.status == Status.RECTIFIED:
        return [
            (Stage.AFTER, photo(rng, fixed=True, gps=True), "整改后.jpg", leader),
            (Stage.VERIFICATION, photo(rng, fixed=True, gps=True), "居民检验照片.jpg", resident),
        ]
    return []


def _case_ids(cases: Any) -> list[UUID]:
    """Every case, oldest first (their Registered events in the log)."""
    topic = f"{Case.Registered.__module__}:{Case.Registered.__qualname__}"
    ids: list[UUID] = []
    start = 1
    while True:
        page = cases.recorder.select_notifications(start=start, limit=1000, topics=[topic])
        ids += [n.originator_id for n in page]
        if len(page) < 1000:
            return ids
        start = page[-1].id + 1
