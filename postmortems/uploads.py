"""Images pasted or dropped into a Markdown field: verified, re-encoded and stored under a fresh name.

Only PNG, JPEG and WebP up to `MAX_BYTES` are kept. The bytes are decoded completely with Pillow and
written again, so what is stored is a clean image (no trailing HTML, no metadata), named by the type
Pillow detected, never by what the browser claimed.
"""

from __future__ import annotations

import io
import uuid
import warnings

from django.core.exceptions import ValidationError
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.utils import timezone
from PIL import Image, UnidentifiedImageError

MAX_BYTES = 5 * 1024 * 1024
MAX_PIXELS = 40_000_000
# Detected format → (extension, Pillow save options).
FORMATS = {
    "PNG": ("png", {"optimize": True}),
    "JPEG": ("jpg", {"quality": 90}),
    "WEBP": ("webp", {"quality": 90}),
    # Many phone cameras write JPEGs with extra pictures (Pillow says MPO); the first one is kept.
    "MPO": ("jpg", {"quality": 90}),
}
REFUSED = "Upload a PNG, JPEG or WebP image."


def store_image(upload, *, folder: str = "uploads") -> str:
    """Verify and re-encode an uploaded image, save it, and return its storage name.

    Raises ValidationError with a message for the author when the file is not an image we accept.
    """
    if upload is None:
        raise ValidationError("Choose an image to upload.")
    if upload.size > MAX_BYTES:
        raise ValidationError(f"The image is {upload.size / 1024 / 1024:.1f} MB; the limit is 5 MB.")
    data = upload.read(MAX_BYTES + 1)
    image = _decode(data)
    extension, options = FORMATS[image.format]
    encoded = _encode(image, "JPEG" if image.format == "MPO" else image.format, options)
    name = f"{folder}/{timezone.now():%Y/%m}/{uuid.uuid4().hex}.{extension}"
    return default_storage.save(name, ContentFile(encoded))


def _decode(data: bytes) -> Image.Image:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            probe = Image.open(io.BytesIO(data))
            if probe.format not in FORMATS:
                raise ValidationError(f"{REFUSED} This file is {probe.format or 'not an image we know'}.")
            if probe.width * probe.height > MAX_PIXELS:
                raise ValidationError("The image has too many pixels; resize it below 40 megapixels.")
            probe.verify()
            # verify() leaves the image unusable; decode every pixel from a fresh handle to catch truncation.
            image = Image.open(io.BytesIO(data))
            image.load()
    except ValidationError:
        raise
    except (UnidentifiedImageError, Image.DecompressionBombError, Image.DecompressionBombWarning) as error:
        raise ValidationError(f"{REFUSED} This file is not one (or is far too large).") from error
    except (OSError, SyntaxError, ValueError, EOFError) as error:
        raise ValidationError("The image is damaged or incomplete; export it again and retry.") from error
    return image


def _encode(image: Image.Image, fmt: str, options: dict) -> bytes:
    if fmt == "JPEG" and image.mode not in ("RGB", "L"):
        image = image.convert("RGB")
    elif fmt == "PNG" and image.mode not in ("1", "L", "LA", "P", "RGB", "RGBA", "I", "I;16"):
        image = image.convert("RGBA")
    elif fmt == "WEBP" and image.mode not in ("RGB", "RGBA"):
        image = image.convert("RGBA" if "A" in image.mode else "RGB")
    out = io.BytesIO()
    image.save(out, format=fmt, **options)
    return out.getvalue()
