from django.apps import AppConfig


class PostmortemsConfig(AppConfig):
    name = "postmortems"
    verbose_name = "Postmortems"

    def ready(self):
        from postmortems import caching  # noqa: F401 (connects its signal receivers)
