"""A health check for load balancers and docker-compose: is the database reachable?"""

from django.contrib.auth.decorators import login_not_required
from django.db import connection
from django.http import JsonResponse
from django.views.decorators.http import require_GET


@require_GET
@login_not_required
def healthz(request):
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
    except Exception as exc:
        return JsonResponse({"database": "down", "error": type(exc).__name__}, status=503)
    return JsonResponse({"database": "ok"})
