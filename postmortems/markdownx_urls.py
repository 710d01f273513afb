"""The URLs markdownx's editor calls, served by our own views.

The preview renders through the project's sanitising renderer (postmortems.markdown.render_markdown).

markdownx's own image upload view is replaced: it neither verifies nor re-encodes images, and it does not
require a signed-in user. Ours (views.authoring.upload_image, postmortems/uploads.py) does all three, at
/postmortems/<id>/upload/ so that each image belongs to its postmortem; the editors point there
(forms.MarkdownEditor), and this default address says so.
"""

from django.urls import path

from postmortems.views.authoring import preview_markdown, upload_without_postmortem

urlpatterns = [
    path("markdownify/", preview_markdown, name="markdownx_markdownify"),
    path("upload/", upload_without_postmortem, name="markdownx_upload"),
]
