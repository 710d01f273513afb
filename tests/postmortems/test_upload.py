import io
import json
import os
import time
from datetime import timedelta

import pytest
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils import timezone
from PIL import Image, PngImagePlugin

from postmortems import tasks, uploads
from postmortems.models import Status, Upload, Visibility
from tests import factories

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


@pytest.fixture
def draft(user):
    return factories.IncidentFactory(owner=user, status=Status.DRAFT)


def image_bytes(fmt="PNG", size=(40, 30), mode="RGB", **options) -> bytes:
    out = io.BytesIO()
    Image.new(mode, size, (200, 40, 40) if mode == "RGB" else 0).save(out, format=fmt, **options)
    return out.getvalue()


def upload(client, incident, name, content, content_type="image/png"):
    return client.post(
        f"/postmortems/{incident.pk}/upload/",
        {"image": SimpleUploadedFile(name, content, content_type=content_type)},
        headers={"x-requested-with": "XMLHttpRequest"},
    )


def stored_name(response) -> str:
    code = json.loads(response.content)["image_code"]
    return code[len("![](/media/") : -1]


def test_real_png_is_accepted_re_encoded_named_by_its_type_and_belongs_to_the_postmortem(
    client_for, user, draft
):
    original = image_bytes("PNG") + b"<script>alert(1)</script>"
    response = upload(client_for(user), draft, "chart.html", original, "text/html")
    assert response.status_code == 200
    code = json.loads(response.content)["image_code"]
    assert code.startswith("![](/media/uploads/")
    assert code.endswith(".png)")
    stored = default_storage.open(stored_name(response)).read()
    assert stored != original
    assert b"<script>" not in stored
    assert Image.open(io.BytesIO(stored)).format == "PNG"
    record = Upload.objects.get()
    assert (record.incident, record.uploaded_by, record.name) == (draft, user, stored_name(response))
    assert (record.width, record.height) == (40, 30)


@pytest.mark.parametrize(("fmt", "extension"), [("JPEG", "jpg"), ("WEBP", "webp")])
def test_jpeg_and_webp_are_accepted(client_for, user, draft, fmt, extension):
    response = upload(client_for(user), draft, "photo.png", image_bytes(fmt), "image/png")
    assert json.loads(response.content)["image_code"].endswith(f".{extension})")


def test_only_an_author_uploads_into_a_postmortem(client_for, draft):
    stranger = factories.UserFactory()
    assert upload(client_for(stranger), draft, "a.png", image_bytes()).status_code == 404
    reader = factories.UserFactory()
    published = factories.IncidentFactory(status=Status.PUBLISHED)
    assert upload(client_for(reader), published, "a.png", image_bytes()).status_code == 403
    assert not Upload.objects.exists()


def test_the_default_markdownx_address_refuses_uploads(client_for, user):
    response = client_for(user).post(
        "/markdownx/upload/", {"image": SimpleUploadedFile("a.png", image_bytes())}
    )
    assert response.status_code == 400
    assert "postmortem's own form" in json.loads(response.content)["error"]
    assert not default_storage.exists("uploads")


def test_the_editors_upload_into_their_postmortem(client_for, user, draft):
    page = client_for(user).get(f"/postmortems/{draft.pk}/edit/impact/").content.decode()
    assert page.count(f'data-markdownx-upload-urls-path="/postmortems/{draft.pk}/upload/"') == 3


def test_svg_is_refused(client_for, user, draft):
    svg = b'<svg xmlns="http://www.w3.org/2000/svg" onload="alert(1)"><rect width="10" height="10"/></svg>'
    response = upload(client_for(user), draft, "chart.svg", svg, "image/svg+xml")
    assert response.status_code == 400
    assert "Upload a PNG, JPEG or WebP image" in json.loads(response.content)["error"]


def test_html_disguised_as_gif_is_refused(client_for, user, draft):
    response = upload(
        client_for(user), draft, "cat.gif", b"GIF89a<html><script>alert(1)</script></html>", "image/gif"
    )
    assert response.status_code == 400
    assert "Upload a PNG, JPEG or WebP image" in json.loads(response.content)["error"]


def test_real_gif_is_refused_by_type(client_for, user, draft):
    response = upload(client_for(user), draft, "anim.gif", image_bytes("GIF"), "image/gif")
    assert response.status_code == 400
    assert "Upload a PNG, JPEG or WebP image" in json.loads(response.content)["error"]


def test_oversized_file_is_refused(client_for, user, draft, settings):
    settings.UPLOAD_MAX_BYTES = 1024
    response = upload(
        client_for(user), draft, "big.png", image_bytes("PNG", size=(300, 300), compress_level=0)
    )
    assert response.status_code in (400, 413)
    assert not Upload.objects.exists()


def test_six_megabytes_is_refused_from_its_length_before_it_is_read(client_for, user, draft):
    response = upload(client_for(user), draft, "big.png", b"\x89PNG" + b"0" * (6 * 1024 * 1024))
    assert response.status_code == 413
    assert "the limit here is 5.1 MB" in response.content.decode()


def test_a_huge_image_in_a_small_file_is_refused_from_its_header_before_decoding(
    client_for, user, draft, monkeypatch
):
    # The attack that raised a worker to 1.1 GB: a lossless WebP of 6300×6300 in a few kilobytes.
    bomb = image_bytes("WEBP", size=(6300, 6300), lossless=True)
    assert len(bomb) < 100_000
    decoded = []
    monkeypatch.setattr(Image.Image, "load", lambda image: decoded.append(image))
    started = time.perf_counter()
    response = upload(client_for(user), draft, "bomb.webp", bomb, "image/webp")
    assert time.perf_counter() - started < 1
    assert response.status_code == 400
    assert (
        "6300×6300 pixels; the limit for a WebP image is 9.25 megapixels"
        in json.loads(response.content)["error"]
    )
    assert decoded == []


def test_an_image_of_25_megapixels_is_accepted(client_for, user, draft):
    response = upload(client_for(user), draft, "wide.png", image_bytes("PNG", size=(5000, 5000), mode="L"))
    assert response.status_code == 200, response.content


def test_a_png_over_25_megapixels_is_refused(client_for, user, draft):
    response = upload(client_for(user), draft, "wide.png", image_bytes("PNG", size=(5001, 5000), mode="L"))
    assert response.status_code == 400
    assert "5001×5000 pixels; the limit is 25 megapixels" in json.loads(response.content)["error"]


def test_every_metadata_segment_is_stripped(client_for, user, draft):
    exif = Image.Exif()
    exif[0x010E] = "secret-exif-description"  # ImageDescription
    xmp = b'<x:xmpmeta xmlns:x="adobe:ns:meta/">secret-xmp</x:xmpmeta>'
    jpeg = image_bytes("JPEG", exif=exif, comment=b"secret-comment", xmp=xmp)
    png_out = io.BytesIO()
    text = PngImagePlugin.PngInfo()
    text.add_text("Comment", "secret-png-text")
    Image.new("RGB", (40, 30)).save(png_out, format="PNG", pnginfo=text, exif=exif)
    webp = image_bytes("WEBP", exif=exif, xmp=xmp)
    for name, data in [("a.jpg", jpeg), ("b.png", png_out.getvalue()), ("c.webp", webp)]:
        response = upload(client_for(user), draft, name, data)
        assert response.status_code == 200, response.content
        stored = default_storage.open(stored_name(response)).read()
        assert b"secret" not in stored, name
        assert b"Exif" not in stored, name
        info = Image.open(io.BytesIO(stored)).info
        assert not {"exif", "icc_profile", "comment", "xmp", "Comment"} & set(info), (name, info)


def test_a_photo_stays_upright_without_its_orientation_tag(client_for, user, draft):
    exif = Image.Exif()
    exif[0x0112] = 6  # Orientation: rotate 90° clockwise to show
    response = upload(client_for(user), draft, "phone.jpg", image_bytes("JPEG", size=(40, 30), exif=exif))
    stored = Image.open(default_storage.open(stored_name(response)))
    assert stored.size == (30, 40)


def test_uploads_per_person_are_rate_limited(client_for, user, draft, settings):
    settings.UPLOADS_PER_HOUR = 2
    client = client_for(user)
    assert upload(client, draft, "1.png", image_bytes()).status_code == 200
    assert upload(client, draft, "2.png", image_bytes()).status_code == 200
    refused = upload(client, draft, "3.png", image_bytes())
    assert refused.status_code == 429
    assert "2 images in the last hour" in json.loads(refused.content)["error"]
    Upload.objects.update(created_at=timezone.now() - timedelta(minutes=61))
    assert upload(client, draft, "4.png", image_bytes()).status_code == 200


def test_truncated_image_is_refused(client_for, user, draft):
    data = image_bytes("PNG", size=(400, 400))
    response = upload(client_for(user), draft, "cut.png", data[: len(data) // 2])
    assert response.status_code == 400
    assert "damaged or incomplete" in json.loads(response.content)["error"]


def test_missing_file_is_refused(client_for, user, draft):
    response = client_for(user).post(f"/postmortems/{draft.pk}/upload/", {})
    assert response.status_code == 400
    assert json.loads(response.content)["error"] == "Choose an image to upload."


def test_upload_needs_a_signed_in_user(client, draft):
    response = upload(client, draft, "a.png", image_bytes())
    assert response.status_code == 302
    assert not default_storage.exists("uploads")


def store(incident, by=None) -> Upload:
    return uploads.store_image(
        SimpleUploadedFile("a.png", image_bytes(), content_type="image/png"), incident=incident, by=by
    )


def test_an_upload_is_served_only_to_those_who_may_see_its_postmortem(client, client_for, user):
    team = factories.TeamFactory()
    member, outsider = factories.UserFactory(), factories.UserFactory()
    team.members.add(member)
    restricted = factories.IncidentFactory(owner=user, visibility=Visibility.RESTRICTED, teams=[team])
    name = store(restricted, user).name
    anonymous = client.get(f"/media/{name}")
    assert anonymous.status_code == 302
    assert anonymous["Location"].startswith("/accounts/login/")
    assert client_for(outsider).get(f"/media/{name}").status_code == 404
    response = client_for(member).get(f"/media/{name}")
    assert response.status_code == 200
    assert response["Content-Type"] == "image/png"
    assert b"".join(response.streaming_content).startswith(b"\x89PNG")
    assert "sandbox" in response["Content-Security-Policy"]


def test_a_file_no_upload_records_is_not_served(client_for, user):
    default_storage.save("uploads/2026/01/" + "a" * 32 + ".png", ContentFile(image_bytes()))
    assert client_for(user).get("/media/uploads/2026/01/" + "a" * 32 + ".png").status_code == 404


def test_media_path_traversal_is_404(client_for, user):
    assert client_for(user).get("/media/../config/settings.py").status_code == 404


def test_phone_jpeg_with_extra_pictures_is_stored_as_a_plain_jpeg(client_for, user, draft):
    out = io.BytesIO()
    first, second = Image.new("RGB", (40, 30), "red"), Image.new("RGB", (40, 30), "blue")
    first.save(out, format="MPO", save_all=True, append_images=[second])
    response = upload(client_for(user), draft, "IMG_0042.jpg", out.getvalue(), "image/jpeg")
    assert json.loads(response.content)["image_code"].endswith(".jpg)")
    stored = default_storage.open(stored_name(response)).read()
    assert Image.open(io.BytesIO(stored)).format == "JPEG"


def test_unused_uploads_are_deleted_after_a_day(user, draft):
    shown, unused, recent = store(draft, user), store(draft, user), store(draft, user)
    draft.summary = f"The graph: ![](/media/{shown.name})"
    draft.save()
    gone_with_its_postmortem = store(factories.IncidentFactory(), user)
    gone_with_its_postmortem.incident.delete()
    orphan = default_storage.save("uploads/2025/01/" + "b" * 32 + ".png", ContentFile(image_bytes()))
    day_ago = timezone.now() - timedelta(days=1, minutes=1)
    Upload.objects.exclude(pk=recent.pk).update(created_at=day_ago)
    os.utime(default_storage.path(orphan), (day_ago.timestamp(), day_ago.timestamp()))

    assert tasks.delete_unused_uploads() == 3

    assert set(Upload.objects.values_list("pk", flat=True)) == {shown.pk, recent.pk}
    assert default_storage.exists(shown.name)
    assert default_storage.exists(recent.name)
    assert not default_storage.exists(unused.name)
    assert not default_storage.exists(gone_with_its_postmortem.name)
    assert not default_storage.exists(orphan)
