"""Images pasted or dropped into a postmortem's Markdown: verified, re-encoded, stored under a fresh name,
and recorded as an Upload of that postmortem (served only to people who may see it).

Only PNG, JPEG and WebP are kept, at most UPLOAD_MAX_BYTES (the request itself is refused before it is read
when it declares more: config/middleware.py) and UPLOAD_MAX_PIXELS. The size in pixels is read from the
file's header before anything is decoded, so a small file that would decode into gigabytes is refused
first; what passes costs a worker at most UPLOAD_MEMORY_MB to decode and write again (`max_pixels`).
The pixels are then written again without any metadata (EXIF, XMP, ICC profiles, comments, text
chunks), named by the type Pillow detected, never by what the browser claimed.
"""

from __future__ import annotations

import io
import re
import uuid
import warnings
from datetime import timedelta

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.utils import timezone
from PIL import Image, ImageOps, UnidentifiedImageError

from postmortems.models import Incident, Upload

# Detected format → (extension, format to write, Pillow save options).
FORMATS = {
    "PNG": ("png", "PNG", {"optimize": True}),
    "JPEG": ("jpg", "JPEG", {"quality": 90}),
    "WEBP": ("webp", "WEBP", {"quality": 90}),
    # Many phone cameras write JPEGs with extra pictures (Pillow says MPO); the first one is kept.
    "MPO": ("jpg", "JPEG", {"quality": 90}),
}
# What decoding and re-encoding an image costs a worker per pixel, at most, as bench/upload_memory.py
# measured (Pillow 12): a PNG or JPEG needs its pixels about twice over (turned upright, converted), a
# WebP with transparency 33 bytes a pixel (libwebp's decoder and encoder each keep copies). An image may
# have as many pixels as UPLOAD_MEMORY_MB allows its format, and never more than UPLOAD_MAX_PIXELS.
BYTES_PER_PIXEL = {"PNG": 8, "JPEG": 12, "MPO": 12, "WEBP": 34}


def max_pixels(fmt: str) -> int:
    """The most pixels an upload of format `fmt` may have."""
    budget = settings.UPLOAD_MEMORY_MB * 1024 * 1024 // BYTES_PER_PIXEL[fmt]
    return min(settings.UPLOAD_MAX_PIXELS, budget)


# The only decoders Pillow may try on an upload (its JPEG decoder also reads MPO).
DECODERS = ["PNG", "JPEG", "WEBP"]
REFUSED = "Upload a PNG, JPEG or WebP image."
# The Markdown fields an upload can be shown from (the editor uploads into these).
MARKDOWN_FIELDS = (
    "summary",
    "supporting_data",
    "customer_impact",
    "response_analysis",
    "post_incident_analysis",
)
FOLDER = "uploads"


class UploadRefused(ValidationError):
    """Too many uploads by this person lately."""


def store_image(upload, *, incident: Incident, by) -> Upload:
    """Verify and re-encode an uploaded image, save it as an Upload of `incident` made by `by`.

    Raises ValidationError with a message for the author when the file is not an image we accept, and
    UploadRefused when `by` has uploaded UPLOADS_PER_HOUR images in the last hour.
    """
    since = timezone.now() - timedelta(hours=1)
    if Upload.objects.filter(uploaded_by=by, created_at__gte=since).count() >= settings.UPLOADS_PER_HOUR:
        raise UploadRefused(
            f"You uploaded {settings.UPLOADS_PER_HOUR} images in the last hour, the most allowed; "
            "wait a little and try again."
        )
    if upload is None:
        raise ValidationError("Choose an image to upload.")
    limit = settings.UPLOAD_MAX_BYTES
    if upload.size > limit:
        raise ValidationError(
            f"The image is {upload.size / 1024 / 1024:.1f} MB; the limit is {limit / 1024 / 1024:.0f} MB."
        )
    image = decode(upload.read(limit + 1))
    extension, fmt, options = FORMATS[image.format]
    encoded = encode(image, fmt, options)
    name = default_storage.save(
        f"{FOLDER}/{timezone.now():%Y/%m}/{uuid.uuid4().hex}.{extension}", ContentFile(encoded)
    )
    return Upload.objects.create(
        incident=incident,
        uploaded_by=by,
        name=name,
        width=image.width,
        height=image.height,
        size=len(encoded),
    )


def decode(data: bytes) -> Image.Image:
    """The image in `data`, fully decoded, after its header said it is small enough to decode."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            probe = Image.open(io.BytesIO(data), formats=DECODERS)  # reads the header only
            limit = max_pixels(probe.format)
            if probe.width * probe.height > limit:
                named = {"WEBP": "WebP", "MPO": "JPEG"}.get(probe.format, probe.format)
                kind = "" if limit == settings.UPLOAD_MAX_PIXELS else f" for a {named} image"
                raise ValidationError(
                    f"The image is {probe.width}×{probe.height} pixels; the limit{kind} is "
                    f"{limit / 1_000_000:.3g} megapixels. Resize it and upload it again."
                )
            probe.verify()
            # verify() leaves the image unusable; decode every pixel from a fresh handle to catch truncation.
            image = Image.open(io.BytesIO(data), formats=DECODERS)
            image.load()
    except ValidationError:
        raise
    except UnidentifiedImageError as error:
        raise ValidationError(f"{REFUSED} This file is not one of those.") from error
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as error:
        raise ValidationError(f"{REFUSED} This one is far too large.") from error
    except (OSError, SyntaxError, ValueError, EOFError) as error:
        raise ValidationError("The image is damaged or incomplete; export it again and retry.") from error
    return image


def encode(image: Image.Image, fmt: str, options: dict) -> bytes:
    """The pixels of `image` written as `fmt`, upright, with no metadata at all."""
    ImageOps.exif_transpose(image, in_place=True)  # a photo stays upright once its EXIF orientation is gone
    if fmt == "JPEG" and image.mode not in ("RGB", "L"):
        image = image.convert("RGB")
    elif fmt == "PNG" and image.mode not in ("1", "L", "LA", "P", "RGB", "RGBA", "I", "I;16"):
        image = image.convert("RGBA")
    elif fmt == "WEBP" and image.mode not in ("RGB", "RGBA"):
        image = image.convert("RGBA" if "A" in image.mode or "transparency" in image.info else "RGB")
    # Pillow writes some of what it read (a JPEG's comment, a PNG's ICC profile) back out from `info`:
    # keep only what the pixels need.
    image.info = {key: image.info[key] for key in ("transparency",) if key in image.info}
    out = io.BytesIO()
    image.save(out, format=fmt, exif=b"", **options)
    return out.getvalue()


def media_url(upload: Upload) -> str:
    return default_storage.url(upload.name)


_UPLOAD_NAME = re.compile(rf"{FOLDER}/\d{{4}}/\d{{2}}/[0-9a-f]{{32}}\.(?:png|jpg|webp)")


def referenced_names(incident: Incident) -> set[str]:
    """The storage names of the uploads the incident's Markdown shows now."""
    text = "\n".join(getattr(incident, field) or "" for field in MARKDOWN_FIELDS)
    return set(_UPLOAD_NAME.findall(text))


def delete_unused(*, older_than: timedelta = timedelta(days=1)) -> int:
    """Delete the uploads made more than `older_than` ago that their postmortem no longer shows (or whose
    postmortem is gone), files and rows; return how many went."""
    candidates = Upload.objects.filter(created_at__lt=timezone.now() - older_than).order_by("incident_id")
    shown: dict[int, set[str]] = {}
    unused = []
    for upload in candidates.iterator(chunk_size=500):
        if upload.incident_id is not None and upload.incident_id not in shown:
            incident = Incident.objects.filter(pk=upload.incident_id).only(*MARKDOWN_FIELDS).first()
            shown[upload.incident_id] = referenced_names(incident) if incident else set()
        if upload.name not in shown.get(upload.incident_id, set()):
            unused.append(upload)
    for upload in unused:
        default_storage.delete(upload.name)
    Upload.objects.filter(pk__in=[upload.pk for upload in unused]).delete()
    return len(unused) + _delete_files_without_upload(older_than)


def _delete_files_without_upload(older_than: timedelta) -> int:
    """Files in the uploads folder that no Upload records (stored before uploads had rows, or a save that
    failed half-way): nobody is served them, so they go too."""
    cutoff, deleted = timezone.now() - older_than, 0
    years, _ = default_storage.listdir(FOLDER) if default_storage.exists(FOLDER) else ([], [])
    for year in years:
        for month in default_storage.listdir(f"{FOLDER}/{year}")[0]:
            folder = f"{FOLDER}/{year}/{month}"
            known = set(Upload.objects.filter(name__startswith=f"{folder}/").values_list("name", flat=True))
            for filename in default_storage.listdir(folder)[1]:
                name = f"{folder}/{filename}"
                if name not in known and default_storage.get_modified_time(name) < cutoff:
                    default_storage.delete(name)
                    deleted += 1
    return deleted
