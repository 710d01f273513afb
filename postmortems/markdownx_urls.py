"""The URLs markdownx's editor calls, served by our own views.

The preview renders through the project's sanitising renderer (postmortems.markdown.render_markdown).

markdownx's own image upload view is replaced: it neither verifies nor re-encodes images, and it does not
require a signed-in user. Ours (views.authoring.upload_image, postmortems/uploads.py) does all three.
"""

from django.urls import path

from postmortems.views.authoring import preview_markdown, upload_image

urlpatterns = [
    path("markdownify/", preview_markdown, name="markdownx_markdownify"),
    path("upload/", upload_image, name="markdownx_upload"),
]
