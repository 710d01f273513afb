"""markdownx's preview, rendered by our sanitising renderer (settings.MARKDOWNX_MARKDOWNIFY_FUNCTION).

markdownx's own image upload view is not routed: it neither verifies nor re-encodes images.
"""

from django.urls import path
from markdownx.views import MarkdownifyView

urlpatterns = [
    path("markdownify/", MarkdownifyView.as_view(), name="markdownx_markdownify"),
]
