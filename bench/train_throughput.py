"""Training throughput: this engine vs TRL's RewardTrainer (its defaults), same pairs.

Both recipes get the same pairs, backbone, batch size, epochs and max
length. TRL drops pairs longer than max_length (the engine truncates), so
the pairs are pre-filtered to those that fit whole in both encodings.
Each run happens in a fresh process (clean peak memory, no shared warm
caches); repeats alternate the recipes and the summary quotes medians.

    python bench/train_throughput.py ../shared/data/hh-rlhf-harmless-base-test.jsonl.gz \
        --limit 480 --max-length 256 --batch-size 16 --repeats 3 --out bench/out/throughput.json

Backbones: `minilm` (pretrained, the engine's default), or random-init
`bert-base` and `qwen0.5b` (a Qwen2-style 0.5B decoder) for GPUs. Timing
leaves out each run's first optimizer step (compilation, warm-up) for both
recipes. Besides wall-clock pairs/s it reports pairs per CPU-second of the
process over the same span, which other load on a shared machine disturbs
less. MFU (CUDA only) = 6 x non-embedding params x padded tokens/s over
989 TFLOP/s (H100/H200 dense bf16).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

PEAK_FLOPS = 989e12
BACKBONES = {
    "minilm": None,  # the engine's default, pretrained
    "bert-base": {
        "model_type": "bert",
        "hidden_size": 768,
        "num_hidden_layers": 12,
        "num_attention_heads": 12,
        "intermediate_size": 3072,
        "max_position_embeddings": 512,
    },
    "qwen0.5b": {
        "model_type": "qwen2",
        "hidden_size": 896,
        "num_hidden_layers": 24,
        "num_attention_heads": 14,
        "num_key_value_heads": 2,
        "intermediate_size": 4864,
        "max_position_embeddings": 2048,
        "tie_word_embeddings": True,
    },
}


# --------------------------------------------------------------------------- #
# Shared set-up (runs in each worker process)
# --------------------------------------------------------------------------- #
def backbone_folder(name: str, workdir: Path) -> tuple[str, bool]:
    """(backbone for from_pretrained, random_init). Random-init presets become a folder
    holding their config and the MiniLM tokenizer (vocabulary 30522), as in the anchors."""
    from transformers import AutoConfig

    from rewardmodel.training.config import DEFAULT_BACKBONE
    from rewardmodel.training.model import load_tokenizer, resolve_backbone

    if BACKBONES[name] is None:
        return DEFAULT_BACKBONE, False
    fields = dict(BACKBONES[name])
    config = AutoConfig.for_model(fields.pop("model_type"), vocab_size=30522, pad_token_id=0, **fields)
    folder = workdir / name
    config.save_pretrained(folder)
    load_tokenizer(resolve_backbone(DEFAULT_BACKBONE)).save_pretrained(folder)
    return str(folder), True


def trl_text(prompt: str, response: str) -> str:
    return f"{prompt}\n\n{response}"


def load_pairs(args, tokenizer) -> tuple[list, list]:
    """The prompt-grouped split, keeping pairs that fit whole in both recipes' encodings."""
    from preferences.formats import read_training_pairs
    from rewardmodel.training.data import PairEncoder, split_by_prompt

    pairs = read_training_pairs(args.data, skip_invalid=True).pairs
    encoder = PairEncoder(tokenizer, args.max_length)

    def fits(batch):
        ours = encoder.encode([p.prompt for p in batch] * 2, [p.chosen for p in batch] + [p.rejected for p in batch])
        theirs = tokenizer([trl_text(p.prompt, r) + tokenizer.eos_token for p in batch for r in (p.chosen, p.rejected)])
        n = len(batch)
        return [
            not (ours.truncated[i] or ours.truncated[n + i])
            and max(len(theirs["input_ids"][2 * i]), len(theirs["input_ids"][2 * i + 1])) <= args.max_length
            for i in range(n)
        ]

    train, held_out = split_by_prompt(pairs, 0.2, seed=0)
    train = [p for p, ok in zip(train, fits(train)) if ok][: args.limit]
    held_out = [p for p, ok in zip(held_out, fits(held_out)) if ok][: args.eval_limit]
    return train, held_out


def non_embedding_params(backbone: str) -> int:
    import torch
    from transformers import AutoConfig, AutoModelForSequenceClassification

    from rewardmodel.training.model import resolve_backbone

    with torch.device("meta"):
        model = AutoModelForSequenceClassification.from_config(
            AutoConfig.from_pretrained(resolve_backbone(backbone), num_labels=1)
        )
    return sum(p.numel() for n, p in model.named_parameters() if "embed" not in n)


def peak_memory_gib(cuda: bool) -> float:
    import torch

    if cuda:
        return torch.cuda.max_memory_allocated() / 2**30
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # KiB on Linux: process peak RSS


# --------------------------------------------------------------------------- #
# The two recipes
# --------------------------------------------------------------------------- #
def run_engine(args, backbone: str, random_init: bool, train_pairs, eval_pairs) -> dict:
    from rewardmodel.training import TrainConfig, train

    config = TrainConfig(
        backbone=backbone,
        random_init=random_init,
        max_length=args.max_length,
        batch_size=args.batch_size,
        epochs=args.epochs,
        seed=args.seed,
        train_eval_pairs=0,
    )  # no train-accuracy pass: not part of either recipe's timing
    cpu = {}

    def clock(p) -> None:  # the same span as TRL's clock: end of step 1 to end of the last step
        if p.phase == "train" and p.step in (1, p.total):
            cpu[p.step] = time.process_time()

    m = train(config, train_pairs, eval_pairs, on_progress=clock).metrics
    pairs_timed = m["pairs_per_second"] * m["train_seconds"]
    return {
        "pairs_per_second": m["pairs_per_second"],
        "tokens_per_second": m["tokens_per_second"],
        "pairs_per_cpu_second": pairs_timed / (cpu[max(cpu)] - cpu[1]),
        "pad_fraction": m["pad_fraction"],
        "held_out_accuracy": m["held_out_accuracy"],
        "lr": config.lr,
        "bf16": m["bf16"],
        "compiled": m["compiled"],
    }


def run_trl(args, backbone: str, random_init: bool, train_pairs, eval_pairs) -> dict:
    import torch
    from datasets import Dataset
    from transformers import AutoConfig, AutoModelForSequenceClassification, TrainerCallback
    from trl import RewardConfig, RewardTrainer

    from rewardmodel.training.model import load_tokenizer, resolve_backbone

    cuda = torch.cuda.is_available()
    path = resolve_backbone(backbone)
    tokenizer = load_tokenizer(path)
    if tokenizer.eos_token is None:  # TRL appends EOS to every text; BERT has none
        tokenizer.eos_token = tokenizer.sep_token
    torch.manual_seed(args.seed)
    config = AutoConfig.from_pretrained(path, num_labels=1, pad_token_id=tokenizer.pad_token_id)
    model = (
        AutoModelForSequenceClassification.from_config(config)
        if random_init
        else AutoModelForSequenceClassification.from_pretrained(path, config=config)
    )
    data = Dataset.from_dict(
        {
            "prompt": [p.prompt + "\n\n" for p in train_pairs],
            "chosen": [p.chosen for p in train_pairs],
            "rejected": [p.rejected for p in train_pairs],
        }
    )
    clock = {}
    counted = {"real": 0, "padded": 0}

    def synchronize():
        if cuda:
            torch.cuda.synchronize()

    class Clock(TrainerCallback):  # time from the end of the first step, as for the engine
        def on_step_begin(self, args_, state, control, **kw):
            if state.global_step == 1:
                synchronize()
                clock.update(t0=time.perf_counter(), cpu0=time.process_time(), tokens0=trainer._total_train_tokens)

        def on_train_end(self, args_, state, control, **kw):
            synchronize()
            clock.update(t1=time.perf_counter(), cpu1=time.process_time())

    with tempfile.TemporaryDirectory() as tmp:
        trl_args = RewardConfig(
            output_dir=tmp,
            per_device_train_batch_size=args.batch_size,
            num_train_epochs=args.epochs,
            max_length=args.max_length,
            seed=args.seed,
            logging_steps=10**6,
            save_strategy="no",
            report_to=[],
            use_cpu=not cuda,
            dataloader_num_workers=0,
            disable_tqdm=True,
            # TRL turns bf16 on by default; on a CPU without native bf16 it is emulated
            # and many times slower, so --trl-fp32 gives the fairer comparison there.
            **({"bf16": False} if args.trl_fp32 else {}),
        )
        trainer = RewardTrainer(
            model=model, args=trl_args, train_dataset=data, processing_class=tokenizer, callbacks=[Clock()]
        )
        kept = len(trainer.train_dataset)
        collate = trainer.data_collator

        def counting_collator(features):  # TRL does not report padding: count it over every batch
            batch = collate(features)
            counted["real"] += int(batch["attention_mask"].sum())
            counted["padded"] += batch["input_ids"].numel()
            return batch

        trainer.data_collator = counting_collator
        trainer.train()
    seconds = clock["t1"] - clock["t0"]
    real = trainer._total_train_tokens - clock["tokens0"]
    pairs = args.epochs * kept - args.batch_size
    return {
        "pairs_per_second": pairs / seconds,
        "tokens_per_second": real / seconds,
        "pairs_per_cpu_second": pairs / (clock["cpu1"] - clock["cpu0"]),
        "pad_fraction": 1 - counted["real"] / counted["padded"],
        "held_out_accuracy": trl_accuracy(trainer.model, tokenizer, eval_pairs, cuda),
        "lr": trl_args.learning_rate,
        "bf16": trl_args.bf16,
        "compiled": False,
        "gradient_checkpointing": trl_args.gradient_checkpointing,
        "trl_kept_pairs": kept,
    }


def trl_accuracy(model, tokenizer, pairs, cuda: bool) -> float | None:
    """Held-out accuracy of the TRL-trained model, on TRL's own input format."""
    import torch

    if not pairs:
        return None
    model.eval()
    correct = 0
    with torch.no_grad():
        for i in range(0, len(pairs), 32):
            batch = pairs[i : i + 32]
            texts = [trl_text(p.prompt, p.chosen) + tokenizer.eos_token for p in batch] + [
                trl_text(p.prompt, p.rejected) + tokenizer.eos_token for p in batch
            ]
            inputs = tokenizer(texts, padding=True, return_tensors="pt").to(model.device)
            inputs.pop("token_type_ids", None)  # TRL's collator passes ids and mask only
            rewards = model(**inputs).logits.squeeze(-1).float()
            r_chosen, r_rejected = rewards.chunk(2)
            correct += int((r_chosen > r_rejected).sum())
    return correct / len(pairs)


def worker(args) -> dict:
    import torch

    from rewardmodel.training.model import load_tokenizer, resolve_backbone

    with tempfile.TemporaryDirectory() as tmp:
        backbone, random_init = backbone_folder(args.backbone, Path(tmp))
        tokenizer = load_tokenizer(resolve_backbone(backbone))
        if tokenizer.eos_token is None:
            tokenizer.eos_token = tokenizer.sep_token
        train_pairs, eval_pairs = load_pairs(args, tokenizer)
        run = run_engine if args.worker == "engine" else run_trl
        result = run(args, backbone, random_init, train_pairs, eval_pairs)
        cuda = torch.cuda.is_available()
        result.update(
            recipe=args.worker,
            backbone=args.backbone,
            n_train=len(train_pairs),
            n_eval=len(eval_pairs),
            peak_memory_gib=round(peak_memory_gib(cuda), 2),
        )
        if cuda:
            padded_per_s = result["tokens_per_second"] / (1 - result["pad_fraction"])
            result["mfu"] = 6 * non_embedding_params(backbone) * padded_per_s / PEAK_FLOPS
    return result


# --------------------------------------------------------------------------- #
# Orchestration
# --------------------------------------------------------------------------- #
def machine() -> str:
    import torch

    if torch.cuda.is_available():
        return torch.cuda.get_device_name(0)
    return f"CPU ({platform.machine()}, {os.cpu_count()} cores), torch {torch.__version__}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("data", help="pair file, e.g. ../shared/data/hh-rlhf-harmless-base-test.jsonl.gz")
    ap.add_argument("--backbone", default="minilm", choices=sorted(BACKBONES))
    ap.add_argument("--limit", type=int, default=480, help="training pairs (after filtering)")
    ap.add_argument("--eval-limit", type=int, default=200, help="held-out pairs (after filtering)")
    ap.add_argument("--max-length", type=int, default=256)
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--epochs", type=int, default=1)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--recipes", default="engine,trl")
    ap.add_argument(
        "--trl-fp32",
        action="store_true",
        help="run TRL with bf16=False (its default is bf16, emulated on CPUs without native bf16)",
    )
    ap.add_argument("--out", help="also write the JSON lines here")
    ap.add_argument("--worker", choices=["engine", "trl"], help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        print(json.dumps(worker(args)))
        return

    lines, runs = [], {}
    for repeat in range(args.repeats):
        for recipe in args.recipes.split(","):
            proc = subprocess.run(
                [sys.executable, __file__, *sys.argv[1:], "--worker", recipe], capture_output=True, text=True
            )
            if proc.returncode != 0:
                sys.exit(f"{recipe} run failed:\n{proc.stderr[-3000:]}")
            result = json.loads(proc.stdout.strip().splitlines()[-1])
            result["repeat"] = repeat
            runs.setdefault(recipe, []).append(result)
            lines.append(json.dumps(result))
            print(lines[-1], flush=True)

    summary = {"summary": True, "machine": machine(), "command": " ".join(["python", *sys.argv])}
    for recipe, results in runs.items():
        for key in (
            "pairs_per_second",
            "pairs_per_cpu_second",
            "tokens_per_second",
            "pad_fraction",
            "peak_memory_gib",
            "held_out_accuracy",
            "mfu",
        ):
            values = [r[key] for r in results if r.get(key) is not None]
            if values:
                summary[f"{recipe}_{key}_median"] = round(statistics.median(values), 4)
        summary[f"{recipe}_pairs_per_second_all"] = [round(r["pairs_per_second"], 2) for r in results]
        summary[f"{recipe}_pairs_per_second_best"] = round(max(r["pairs_per_second"] for r in results), 4)
    if "engine" in runs and "trl" in runs:
        # On a shared machine wall-clock rates swing with other load; the best
        # run and the CPU-time rate are less sensitive to it than the median.
        for name, key in (
            ("wall_median", "pairs_per_second_median"),
            ("wall_best", "pairs_per_second_best"),
            ("cpu_time_median", "pairs_per_cpu_second_median"),
        ):
            summary[f"speedup_{name}"] = round(summary[f"engine_{key}"] / summary[f"trl_{key}"], 2)
    lines.append(json.dumps(summary))
    print(lines[-1])
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
