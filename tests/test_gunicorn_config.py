"""config/gunicorn.py: the worker settings every launcher shares."""
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# A worker's start, as gunicorn runs it: load the app, then post_worker_init.
_WORKER_START = """
import gc, json, sys
from config.wsgi import application
from config import gunicorn
before = gc.get_freeze_count()
gunicorn.post_worker_init(worker=None)
print(json.dumps({"before": before, "after": gc.get_freeze_count(), "tracked": len(gc.get_objects()),
                  "api_loaded": "labeling.api" in sys.modules, "urls_loaded": "config.urls" in sys.modules}))
"""


def test_worker_start_freezes_the_loaded_app_with_its_urlconf():
    # when a worker has loaded the app and runs the config's post_worker_init
    done = subprocess.run([sys.executable, "-c", _WORKER_START], cwd=ROOT, capture_output=True, text=True, check=True)
    state = __import__("json").loads(done.stdout.strip().splitlines()[-1])
    # then the URLconf and the API it imports were loaded before the freeze,
    assert state["urls_loaded"] and state["api_loaded"]
    # and the app's objects are out of the collector's sight: a full
    # collection walks next to nothing instead of ~100k objects
    assert state["before"] == 0 and state["after"] > 50_000
    assert state["tracked"] < 1_000


def test_every_launcher_uses_the_shared_config():
    from config import runstack

    web = runstack._stack_commands("127.0.0.1", 8000)["web"]
    assert web[web.index("--config") + 1] == "python:config.gunicorn"
    for launcher in ("docker-compose.yml", "Dockerfile", "bench/labeling.py"):
        assert "python:config.gunicorn" in (ROOT / launcher).read_text(), launcher
