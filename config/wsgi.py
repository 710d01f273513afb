import gc
import os

from django.core.wsgi import get_wsgi_application

from config import settings

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
application = get_wsgi_application()
settings.require_secret_key()

# Everything loaded so far lives as long as the process: keep it out of the garbage collector's full
# passes, which otherwise walk it again and again on every request.
gc.freeze()
