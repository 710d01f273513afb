"""markdownx's preview, rendered by our sanitising renderer (settings.MARKDOWNX_MARKDOWNIFY_FUNCTION).

markdownx's own image upload view is replaced: it neither verifies nor re-encodes images, and it does not
require a signed-in user. Ours (postmortems.views.upload_image, postmortems/uploads.py) does all three.
"""

from django.urls import path
from markdownx.views import MarkdownifyView

from postmortems.views import upload_image

urlpatterns = [
    path("markdownify/", MarkdownifyView.as_view(), name="markdownx_markdownify"),
    path("upload/", upload_image, name="markdownx_upload"),
]
