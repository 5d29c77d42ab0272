"""The command line, and the engine's independence from Django, in fresh processes."""

import json
import os
import subprocess
import sys
from pathlib import Path

from rewardmodel.training import TrainConfig

REPO = Path(__file__).resolve().parents[2]


def run_python(args: list[str]) -> subprocess.CompletedProcess:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "PYTHONPATH": str(REPO)}
    env.pop("DJANGO_SETTINGS_MODULE", None)
    return subprocess.run([sys.executable, *args], cwd=REPO, env=env, capture_output=True, text=True, timeout=300)


def write_files(tmp_path: Path, train_pairs, eval_pairs) -> tuple[Path, Path, Path]:
    train_file, eval_file, config_file = tmp_path / "train.jsonl", tmp_path / "eval.jsonl", tmp_path / "tiny.json"
    # trl shape for training, pairwise (this project's export) for eval
    train_file.write_text(
        "".join(
            json.dumps({"prompt": p.prompt, "chosen": p.chosen, "rejected": p.rejected}) + "\n" for p in train_pairs
        )
    )
    eval_file.write_text(
        "".join(
            json.dumps(
                {
                    "prompt": p.prompt,
                    "response_a": p.rejected,
                    "response_b": p.chosen,
                    "votes": [{"annotator": "x", "choice": "b", "strength": 2}],
                }
            )
            + "\n"
            for p in eval_pairs
        )
    )
    config_file.write_text(json.dumps(TrainConfig.tiny().to_dict()))
    return train_file, eval_file, config_file


def test_cli_trains_saves_and_prints_json_metrics_last(tmp_path, train_pairs, eval_pairs):
    train_file, eval_file, config_file = write_files(tmp_path, train_pairs, eval_pairs)
    out = tmp_path / "model"
    proc = run_python(
        [
            "-m",
            "rewardmodel.training",
            "--train",
            str(train_file),
            "--eval",
            str(eval_file),
            "--output",
            str(out),
            "--config",
            str(config_file),
            "--epochs",
            "2",
            "--seed",
            "3",
        ]
    )
    assert proc.returncode == 0, proc.stderr
    metrics = json.loads(proc.stdout.strip().splitlines()[-1])
    assert {"held_out_accuracy", "train_accuracy", "pairs_per_second"} <= set(metrics)
    assert metrics["n_train"] == len(train_pairs) and metrics["n_eval"] == len(eval_pairs)
    assert metrics["epochs_run"] == 2.0
    meta = json.loads((out / "reward_meta.json").read_text())
    assert meta["config"]["seed"] == 3 and meta["config"]["output_dir"] == str(out)


def test_torchrun_trains_ddp_replicas_and_rank_zero_saves(tmp_path, train_pairs, eval_pairs):
    # Two CPU processes over gloo: the same code path as multi-GPU, minus NCCL.
    train_file, eval_file, config_file = write_files(tmp_path, train_pairs, eval_pairs)
    out = tmp_path / "model"
    proc = run_python(
        [
            "-m",
            "torch.distributed.run",
            "--nproc-per-node",
            "2",
            "-m",
            "rewardmodel.training",
            "--train",
            str(train_file),
            "--eval",
            str(eval_file),
            "--output",
            str(out),
            "--config",
            str(config_file),
            "--epochs",
            "1",
        ]
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    json_lines = [line for line in proc.stdout.splitlines() if line.startswith("{")]
    assert len(json_lines) == 1  # only rank 0 prints
    metrics = json.loads(json_lines[0])
    assert metrics["world_size"] == 2 and metrics["held_out_accuracy"] is not None
    assert (out / "model.safetensors").exists() and (out / "reward_meta.json").exists()


def test_cli_rejects_unknown_config_fields(tmp_path, train_pairs, eval_pairs):
    train_file, _, config_file = write_files(tmp_path, train_pairs, eval_pairs)
    config_file.write_text(json.dumps({"learning_rate": 1}))
    proc = run_python(
        [
            "-m",
            "rewardmodel.training",
            "--train",
            str(train_file),
            "--output",
            str(tmp_path / "m"),
            "--config",
            str(config_file),
        ]
    )
    assert proc.returncode != 0 and "unknown TrainConfig field" in proc.stderr


def test_engine_never_imports_django(tmp_path, train_pairs, eval_pairs):
    train_file, eval_file, config_file = write_files(tmp_path, train_pairs, eval_pairs)
    script = (
        "import sys\n"
        "from rewardmodel.training import RewardScorer, TrainConfig, train\n"
        "from rewardmodel.training.__main__ import main\n"
        f"main(['--train', {str(train_file)!r}, '--eval', {str(eval_file)!r}, '--output', {str(tmp_path / 'm')!r},"
        f" '--config', {str(config_file)!r}, '--epochs', '1'])\n"
        f"RewardScorer.load({str(tmp_path / 'm')!r}).score(['hi'], ['hello'])\n"
        "assert 'django' not in sys.modules, sorted(m for m in sys.modules if 'django' in m)\n"
        "print('NO_DJANGO')\n"
    )
    proc = run_python(["-c", script])
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip().endswith("NO_DJANGO")


def test_importing_the_row_parser_does_not_load_torch():
    proc = run_python(
        [
            "-c",
            "import sys, preferences.formats, rewardmodel.training as t; t.TrainConfig()\n"
            "assert 'torch' not in sys.modules",
        ]
    )
    assert proc.returncode == 0, proc.stderr
