"""`make run`'s workers: training on its own worker, everything else on another, as docker-compose does."""

from __future__ import annotations

from pathlib import Path

import yaml
from django.conf import settings

from config import runstack
from dashboard import schedules as dashboard_schedules
from labeling import schedules as labeling_schedules
from rewardmodel import schedules as rewardmodel_schedules

ROOT = Path(__file__).resolve().parents[1]


def routed_queues() -> set[str]:
    """Every queue a task can be sent to: the routes, the default, and the periodic tasks' queues."""
    specs = [*labeling_schedules.SCHEDULES, *rewardmodel_schedules.SCHEDULES, *dashboard_schedules.SCHEDULES]
    return (
        {route["queue"] for route in settings.CELERY_TASK_ROUTES.values()}
        | {settings.CELERY_TASK_DEFAULT_QUEUE}
        | {spec.queue for spec in specs}
    )


def compose_worker_queues() -> dict[str, set[str]]:
    services = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]
    out = {}
    for name, service in services.items():
        command = service.get("command") or []
        if command[:4] == ["celery", "-A", "config", "worker"]:
            out[name] = set(command[command.index("-Q") + 1].split(","))
    return out


def test_training_has_a_worker_of_its_own_and_short_jobs_another():
    commands = runstack._stack_commands("127.0.0.1", 8000)
    queues = {spec.name: set(spec.queues.split(",")) for spec in runstack.WORKERS}
    assert queues == {"worker-training": {"training"}, "worker-default": {"default"}}
    for spec in runstack.WORKERS:
        command, env = commands[spec.name]
        assert command[command.index("-Q") + 1] == spec.queues and env == spec.env
    assert list(commands)[-2:] == ["beat", "web"]


def test_every_queue_is_served_in_make_run_and_in_docker_compose_alike():
    make_run = [set(spec.queues.split(",")) for spec in runstack.WORKERS]
    compose = list(compose_worker_queues().values())
    assert routed_queues() <= set().union(*make_run)
    assert sorted(map(sorted, make_run)) == sorted(map(sorted, compose))
