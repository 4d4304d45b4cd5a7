"""Attachment benchmark: what checking and storing a phone photo costs.

    python bench/attachments.py [--runs 10]

1. `commands.evidence.check` on a 12-megapixel JPEG (4032x3024) with EXIF GPS: decoded in full
   and re-written without GPS (a resident's photo), and the same photo kept as sent (a grid
   leader's photo of the site: decoded only); median ms.
2. POST /cases/{id}/attachments through the ASGI app on SQLite and the directory store, the same
   photo each time with a different pixel (so each is a new file), median ms per upload.
Writes bench/results/attachments-sqlite.json.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from io import BytesIO
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from fastapi.testclient import TestClient  # noqa: E402
from PIL import Image  # noqa: E402

from commands.evidence import check  # noqa: E402
from config.settings import Settings  # noqa: E402
from service import create_app  # noqa: E402
from tests.api_steps import Driver  # noqa: E402
from tests.factories import CLERK, GRID_LEADER, SECURITY, auth, migrated  # noqa: E402


def phone_photo(seed: int) -> bytes:
    image = Image.effect_noise((4032, 3024), 40).convert("RGB")
    image.putpixel((seed % 4032, 0), (seed % 256, 0, 0))
    exif = Image.Exif()
    exif.get_ifd(0x8825).update({1: "N", 2: (26.0, 5.0, 30.0), 3: "E", 4: (119.0, 18.0, 0.0)})
    out = BytesIO()
    image.save(out, "JPEG", quality=85, exif=exif.tobytes())
    return out.getvalue()


def median_ms(samples: list[float]) -> float:
    return round(statistics.median(samples) * 1000, 1)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=10)
    args = parser.parse_args()
    photos = [phone_photo(i) for i in range(args.runs)]
    size = statistics.median(len(p) for p in photos)
    results: dict[str, object] = {"photo_bytes": size, "pixels": "4032x3024", "runs": args.runs}
    for label, keep in (("check_strip_gps_ms", False), ("check_keep_ms", True)):
        samples = []
        for photo in photos:
            started = time.perf_counter()
            check(photo, keep_location=keep, max_bytes=50 * 1024 * 1024)
            samples.append(time.perf_counter() - started)
        results[label] = median_ms(samples)
    with tempfile.TemporaryDirectory() as where:
        settings = migrated(
            Settings(sqlite_path=Path(where) / "m.sqlite3", attachments_path=Path(where) / "files", **SECURITY)
        )
        with TestClient(create_app(settings, log_cache=False)) as web:
            drive = Driver(web)
            case_id = drive.accepted()
            for stage, actor in (("registration", CLERK), ("progress", GRID_LEADER)):
                samples = []
                registered = drive.register() if stage == "registration" else case_id
                for i, photo in enumerate(photos):
                    data = photo if stage == "progress" else phone_photo(1000 + i)
                    started = time.perf_counter()
                    sent = web.post(
                        f"/cases/{registered}/attachments",
                        params={"stage": stage},
                        content=data,
                        headers={**auth(actor), "Content-Type": "image/jpeg"},
                    )
                    samples.append(time.perf_counter() - started)
                    assert sent.status_code == 201, sent.text
                results[f"http_upload_{stage}_ms"] = median_ms(samples)
    print(json.dumps(results, indent=2))
    (ROOT / "bench" / "results" / "attachments-sqlite.json").write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
