"""Peak memory of a process that accepts one worst-case image upload (README, "Security").

Each case runs in a fresh interpreter with Django set up, as a web worker is: its resident set is read
before the image is handled and its peak after (VmHWM). The images are the largest accepted: as many
pixels as uploads.max_pixels allows their format, in each pixel mode, under 5 MB on the wire.

    .venv/bin/python bench/upload_memory.py
"""

import io
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

CASES = {
    "PNG RGBA": ("PNG", "RGBA", {}),
    "PNG 16-bit grey": ("PNG", "I;16", {}),
    "PNG palette + transparency": ("PNG", "P", {"transparency": 0}),
    "WebP lossless, opaque": ("WEBP", "RGBA", {"lossless": True}),
    "WebP lossless, with alpha": ("WEBP", "RGBA+alpha", {"lossless": True}),
    "PNG RGBA, EXIF rotated": ("PNG", "RGBA+alpha", {"exif_orientation": 6}),
    "JPEG RGB, EXIF rotated": ("JPEG", "RGB", {"exif_orientation": 6}),
    "JPEG CMYK, EXIF rotated": ("JPEG", "CMYK", {"exif_orientation": 6}),
}


def side(fmt: str) -> int:
    """The side of the largest square image of `fmt` an upload may be (uploads.max_pixels)."""
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    os.environ.setdefault("DEBUG", "1")
    import django

    django.setup()
    from postmortems.uploads import max_pixels

    return int(max_pixels(fmt) ** 0.5)


def make(fmt: str, mode: str, options: dict) -> bytes:
    from PIL import Image

    SIDE = side(fmt)

    options = dict(options)
    orientation = options.pop("exif_orientation", None)
    if mode == "I;16":
        image = Image.linear_gradient("L").resize((SIDE, SIDE)).convert("I").point(lambda v: v * 200)
        image = image.convert("I;16")
    elif mode == "RGBA+alpha":
        grey = Image.linear_gradient("L").resize((SIDE, SIDE))
        image = Image.merge("RGBA", (grey, grey, grey, grey.rotate(90)))
    else:
        image = Image.linear_gradient("L").resize((SIDE, SIDE)).convert(mode if mode != "P" else "L")
        if mode == "P":
            image = image.convert("P")
    if orientation:
        exif = Image.Exif()
        exif[0x0112] = orientation
        options["exif"] = exif
    out = io.BytesIO()
    image.save(out, format=fmt, **options)
    return out.getvalue()


def high_water_mb() -> float:
    """This process's peak resident memory (VmHWM: unlike ru_maxrss, not inherited from a parent)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmHWM in /proc/self/status (Linux only)")


def child(case: str, path: str) -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    os.environ.setdefault("DEBUG", "1")
    import django

    django.setup()
    from django.conf import settings

    from postmortems import uploads

    data = Path(path).read_bytes()
    assert len(data) <= settings.UPLOAD_MAX_BYTES, f"{case}: {len(data)} bytes, over the upload limit"
    before = high_water_mb()
    started = time.process_time()
    image = uploads.decode(data)
    extension, fmt, options = uploads.FORMATS[image.format]
    encoded = uploads.encode(image, fmt, options)
    cpu = time.process_time() - started
    peak = high_water_mb()
    print(
        f"| {case} | {image.width}×{image.height} ({image.width * image.height / 1e6:.1f} MP) | "
        f"{len(data) / 1024 / 1024:.2f} MB | {before:.0f} MB | {peak:.0f} MB | "
        f"+{peak - before:.0f} MB | {cpu:.1f} s | {len(encoded) / 1024 / 1024:.2f} MB {extension} |"
    )


def main() -> None:
    if len(sys.argv) == 4 and sys.argv[1] == "--case":
        child(sys.argv[2], sys.argv[3])
        return
    if len(sys.argv) == 4 and sys.argv[1] == "--make":
        Path(sys.argv[3]).write_bytes(make(*CASES[sys.argv[2]]))
        return
    print("| image | pixels | upload | process before | peak | added | CPU | stored |")
    print("|---|---|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as folder:
        for case in CASES:
            path = Path(folder) / "image"
            subprocess.run([sys.executable, __file__, "--make", case, str(path)], cwd=ROOT, check=True)
            subprocess.run([sys.executable, __file__, "--case", case, str(path)], cwd=ROOT, check=True)


if __name__ == "__main__":
    main()
