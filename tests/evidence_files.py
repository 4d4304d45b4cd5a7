"""Small real files for the attachment tests, made in code (no binaries in git)."""

from __future__ import annotations

from io import BytesIO

from PIL import Image

GPS_IFD = 0x8825
MODEL = 0x0110


def jpeg(*, gps: bool = True, colour: tuple[int, int, int] = (200, 80, 40), size: tuple[int, int] = (64, 48)) -> bytes:
    image = Image.new("RGB", size, colour)
    exif = Image.Exif()
    exif[MODEL] = "TestCam"
    if gps:
        exif.get_ifd(GPS_IFD).update({1: "N", 2: (26.0, 5.0, 30.0), 3: "E", 4: (119.0, 18.0, 0.0)})
    out = BytesIO()
    image.save(out, "JPEG", exif=exif.tobytes())
    return out.getvalue()


XMP_WITH_GPS = (
    b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">'
    b'<rdf:Description xmlns:exif="http://ns.adobe.com/exif/1.0/" exif:GPSLatitude="26,5.5N" '
    b'exif:GPSLongitude="119,18.0E"/></rdf:RDF></x:xmpmeta>'
)


def jpeg_with_xmp_location() -> bytes:
    """No EXIF GPS at all: the place is only in XMP (as some editors write it)."""
    out = BytesIO()
    Image.new("RGB", (40, 30), (120, 60, 30)).save(out, "JPEG", xmp=XMP_WITH_GPS)
    return out.getvalue()


def png(colour: tuple[int, int, int] = (30, 120, 200)) -> bytes:
    out = BytesIO()
    Image.new("RGB", (32, 32), colour).save(out, "PNG")
    return out.getvalue()


def webp() -> bytes:
    out = BytesIO()
    Image.new("RGB", (16, 16), (10, 200, 10)).save(out, "WEBP")
    return out.getvalue()


PDF = (
    b"%PDF-1.4\n1 0 obj<</Type/Catalog/Pages 2 0 R>>endobj\n2 0 obj<</Type/Pages/Kids[]/Count 0>>endobj\n"
    b"trailer<</Root 1 0 R>>\n%%EOF\n"
)


def has_gps(data: bytes) -> bool:
    with Image.open(BytesIO(data)) as image:
        return GPS_IFD in image.getexif()
