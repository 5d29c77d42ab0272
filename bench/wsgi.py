"""The app plus one trivial view, for benchmarks that need Django's own floor.

`/bench/trivial` passes through the whole middleware stack but touches no
database: what a request costs before our code runs.
"""

import os

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

from django.conf import settings

settings.ROOT_URLCONF = "bench.urls"

from django.core.wsgi import get_wsgi_application  # noqa: E402

application = get_wsgi_application()
