"""config/gunicorn.py: the worker settings every launcher shares."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_gunicorn_reads_the_shared_config():
    # when gunicorn resolves its settings with the shared config module
    gunicorn = str(Path(sys.executable).parent / "gunicorn")
    done = subprocess.run(
        [gunicorn, "--config", "python:config.gunicorn", "--print-config", "config.wsgi"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    printed = (line.partition(" = ") for line in done.stdout.splitlines())
    settings = {key.strip(): value.strip() for key, _, value in printed}
    # then workers are threaded and keep their heartbeat off the disk
    assert settings["worker_class"] == "gthread"
    assert settings["worker_tmp_dir"] == "/dev/shm"


def test_every_launcher_uses_the_shared_config():
    from config import runstack

    web, _env = runstack._stack_commands("127.0.0.1", 8000)["web"]
    assert web[web.index("--config") + 1] == "python:config.gunicorn"
    for launcher in ("docker-compose.yml", "Dockerfile", "bench/labeling.py"):
        assert "python:config.gunicorn" in (ROOT / launcher).read_text(), launcher
