"""Score (prompt, response) pairs with a saved reward model: load once, score many.

Inputs are encoded by the same `PairEncoder` as in training. A fine-tune's
scores are computed in fp32, so they match a plain `transformers` forward
pass of the saved folder; an ensemble's score is its members' mean. A head
folder (`kind: "head"` in reward_meta.json) scores by embedding each side
with its frozen backbone and taking the head's dot product (`HeadScorer`).
`RewardScorer.load` picks the right one.

Loading checks the folder first (`integrity.folder_verify`): safetensors
weights only, and the recorded checksums when the caller passes them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import torch
from transformers import AutoModelForSequenceClassification

from .data import Collator, PairEncoder, sorted_batches
from .integrity import folder_verify
from .model import load_tokenizer, read_meta, takes_token_types


class RewardScorer:
    def __init__(self, models: list[torch.nn.Module], encoder: PairEncoder, device: torch.device, meta: dict):
        self.models = models
        self.encoder = encoder
        self.device = device
        self.meta = meta
        # Normalised score = (raw - mean) / std, with the eval set's mean and std.
        self.mean = meta.get("reward_mean") or 0.0
        self.std = meta.get("reward_std") or 1.0
        self.collate = Collator(encoder.tokenizer.pad_token_id, 8, encoder.max_length, device)

    @classmethod
    def load(
        cls, path: str | Path, device: str = "auto", checksums: Mapping[str, str] | None = None
    ) -> RewardScorer | HeadScorer:
        """Load a saved folder; refuses pickle weights, and files that differ from `checksums` if given."""
        folder_verify(path, checksums)
        if device == "auto":
            device = "cuda" if torch.cuda.is_available() else "cpu"
        device = torch.device(device)
        meta = read_meta(path)
        if meta.get("kind") == "head":
            return HeadScorer.load(path, device=str(device), meta=meta)
        tokenizer = load_tokenizer(str(path))
        models = [
            AutoModelForSequenceClassification.from_pretrained(
                Path(path) / m["path"], attn_implementation="sdpa", use_safetensors=True
            )
            .to(device)
            .eval()
            for m in meta["members"]
        ]
        encoder = PairEncoder(tokenizer, meta["config"]["max_length"], token_types=takes_token_types(models[0].config))
        return cls(models, encoder, device, meta)

    @torch.inference_mode()
    def score(
        self, prompts: Sequence[str], responses: Sequence[str], batch_size: int = 32
    ) -> tuple[list[float], list[float]]:
        """(raw, normalised) reward of each response to its prompt, in input order."""
        if len(prompts) != len(responses):
            raise ValueError(f"{len(prompts)} prompts but {len(responses)} responses")
        if not prompts:
            return [], []
        seqs = self.encoder.encode(prompts, responses)
        rewards = torch.empty(len(seqs), device=self.device)
        for rows in sorted_batches([len(ids) for ids in seqs.input_ids], batch_size):
            inputs = self.collate(seqs, rows).inputs
            member_rewards = [m(**inputs).logits.squeeze(-1).float() for m in self.models]
            rewards[torch.tensor(rows, device=self.device)] = torch.stack(member_rewards).mean(dim=0)
        raw = rewards.cpu().tolist()
        return raw, [(r - self.mean) / self.std for r in raw]


class HeadScorer:
    """Scores with a linear head on frozen features: reward = w . feature(prompt, response)."""

    def __init__(self, head, embedder, meta: dict):
        self.head = head
        self.embedder = embedder
        self.meta = meta
        self.mean = meta.get("reward_mean") or 0.0
        self.std = meta.get("reward_std") or 1.0

    @classmethod
    def load(cls, path: str | Path, device: str = "auto", meta: dict | None = None) -> HeadScorer:
        from .features import Embedder, FeatureSpec
        from .head import LinearHead

        meta = meta or read_meta(path)
        spec = FeatureSpec(**meta["feature_spec"])
        # The precision the head was trained with, so scores match its training features.
        embedder = Embedder(spec, device=device, bf16=meta["metrics"].get("bf16", False))
        if embedder.key != meta["feature_key"]:
            raise ValueError(
                f"{path}: the backbone's features are not the ones this head was trained on "
                f"(key {embedder.key}, expected {meta['feature_key']})"
            )
        return cls(LinearHead.load(path), embedder, meta)

    def score(
        self, prompts: Sequence[str], responses: Sequence[str], batch_size: int = 32
    ) -> tuple[list[float], list[float]]:
        """(raw, normalised) reward of each response to its prompt, in input order."""
        if len(prompts) != len(responses):
            raise ValueError(f"{len(prompts)} prompts but {len(responses)} responses")
        if not prompts:
            return [], []
        raw = self.head.rewards(self.embedder.embed(list(prompts), list(responses))).tolist()
        return raw, [(r - self.mean) / self.std for r in raw]
