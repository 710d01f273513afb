import io
import json

import pytest
from django.core.files.storage import default_storage
from django.core.files.uploadedfile import SimpleUploadedFile
from PIL import Image

from postmortems import uploads

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _media_in_tmp(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path
    settings.STORAGES = {
        **settings.STORAGES,
        "default": {
            "BACKEND": "django.core.files.storage.FileSystemStorage",
            "OPTIONS": {"location": tmp_path},
        },
    }


def image_bytes(fmt="PNG", size=(40, 30), **options) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, (200, 40, 40)).save(out, format=fmt, **options)
    return out.getvalue()


def upload(client, name, content, content_type="image/png"):
    return client.post(
        "/markdownx/upload/",
        {"image": SimpleUploadedFile(name, content, content_type=content_type)},
        headers={"x-requested-with": "XMLHttpRequest"},
    )


def test_real_png_is_accepted_re_encoded_and_named_by_its_type(client_for, user):
    original = image_bytes("PNG") + b"<script>alert(1)</script>"
    response = upload(client_for(user), "chart.html", original, "text/html")
    assert response.status_code == 200
    code = json.loads(response.content)["image_code"]
    assert code.startswith("![](/media/uploads/")
    assert code.endswith(".png)")
    name = code[len("![](/media/") : -1]
    stored = default_storage.open(name).read()
    assert stored != original
    assert b"<script>" not in stored
    assert Image.open(io.BytesIO(stored)).format == "PNG"


@pytest.mark.parametrize(("fmt", "extension"), [("JPEG", "jpg"), ("WEBP", "webp")])
def test_jpeg_and_webp_are_accepted(client_for, user, fmt, extension):
    response = upload(client_for(user), "photo.png", image_bytes(fmt), "image/png")
    assert json.loads(response.content)["image_code"].endswith(f".{extension})")


def test_svg_is_refused(client_for, user):
    svg = b'<svg xmlns="http://www.w3.org/2000/svg" onload="alert(1)"><rect width="10" height="10"/></svg>'
    response = upload(client_for(user), "chart.svg", svg, "image/svg+xml")
    assert response.status_code == 400
    assert "Upload a PNG, JPEG or WebP image" in json.loads(response.content)["error"]


def test_html_disguised_as_gif_is_refused(client_for, user):
    response = upload(
        client_for(user), "cat.gif", b"GIF89a<html><script>alert(1)</script></html>", "image/gif"
    )
    assert response.status_code == 400
    assert "Upload a PNG, JPEG or WebP image" in json.loads(response.content)["error"]


def test_real_gif_is_refused_by_type(client_for, user):
    response = upload(client_for(user), "anim.gif", image_bytes("GIF"), "image/gif")
    assert response.status_code == 400
    assert "This file is GIF" in json.loads(response.content)["error"]


def test_oversized_file_is_refused(client_for, user, monkeypatch):
    monkeypatch.setattr(uploads, "MAX_BYTES", 1024)
    response = upload(client_for(user), "big.png", image_bytes("PNG", size=(300, 300), compress_level=0))
    assert response.status_code == 400
    assert "the limit is 5 MB" in json.loads(response.content)["error"]


def test_six_megabytes_is_refused_at_the_real_limit(client_for, user):
    response = upload(client_for(user), "big.png", b"\x89PNG" + b"0" * (6 * 1024 * 1024))
    assert response.status_code == 400
    assert "6.0 MB" in json.loads(response.content)["error"]


def test_truncated_image_is_refused(client_for, user):
    data = image_bytes("PNG", size=(400, 400))
    response = upload(client_for(user), "cut.png", data[: len(data) // 2])
    assert response.status_code == 400
    assert "damaged or incomplete" in json.loads(response.content)["error"]


def test_missing_file_is_refused(client_for, user):
    response = client_for(user).post("/markdownx/upload/", {})
    assert response.status_code == 400
    assert json.loads(response.content)["error"] == "Choose an image to upload."


def test_upload_needs_a_signed_in_user(client):
    response = upload(client, "a.png", image_bytes())
    assert response.status_code == 302
    assert not default_storage.exists("uploads")


def test_uploaded_files_are_readable_only_when_signed_in(client, client_for, user):
    name = uploads.store_image(SimpleUploadedFile("a.png", image_bytes(), content_type="image/png"))
    anonymous = client.get(f"/media/{name}")
    assert anonymous.status_code == 302
    assert anonymous["Location"].startswith("/accounts/login/")
    response = client_for(user).get(f"/media/{name}")
    assert response.status_code == 200
    assert response["Content-Type"] == "image/png"
    assert b"".join(response.streaming_content).startswith(b"\x89PNG")
    assert "sandbox" in response["Content-Security-Policy"]


def test_media_path_traversal_is_404(client_for, user):
    assert client_for(user).get("/media/../config/settings.py").status_code == 404


def test_phone_jpeg_with_extra_pictures_is_stored_as_a_plain_jpeg(client_for, user):
    out = io.BytesIO()
    first, second = Image.new("RGB", (40, 30), "red"), Image.new("RGB", (40, 30), "blue")
    first.save(out, format="MPO", save_all=True, append_images=[second])
    response = upload(client_for(user), "IMG_0042.jpg", out.getvalue(), "image/jpeg")
    code = json.loads(response.content)["image_code"]
    assert code.endswith(".jpg)")
    stored = default_storage.open(code[len("![](/media/") : -1]).read()
    assert Image.open(io.BytesIO(stored)).format == "JPEG"
