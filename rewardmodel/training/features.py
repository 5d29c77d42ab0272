"""Frozen backbone features of (prompt, response) sides, embedded once and cached on disk.

A *side* is one response to its prompt, encoded exactly as the trainer
encodes it (`PairEncoder`: the prompt's tail and the response, at most
`max_length` tokens). Its feature is the mean, over the response's tokens,
of one hidden layer of a frozen backbone (by default the second-to-last
layer of the MiniLM the fine-tune starts from). The response's tokens have
read the prompt through attention; averaging only them keeps the shared
prompt from diluting what differs between two sides. A linear
Bradley-Terry head on these features (`head.py`) trains in seconds.

`FeatureSpec` names what a feature is; `FeatureSpec.key` changes whenever
any part of it does (backbone, input format, length, layer, pooling), so a
cache under that key can never serve features of another kind: a new key
is a new, empty cache.

`FeatureStore` keeps features in a folder as shards of float16 arrays with
their side keys, appended atomically, read back in bounded memory (shards
are memory-mapped; only the rows asked for are copied). Sides are keyed by
their text (`side_key`), so two pairs that share a response to the same
prompt share its feature, and a file and a project can share one cache.

The feature a head scores, written out with plain transformers::

    model = AutoModel.from_pretrained(backbone)                 # eval mode, no dropout
    ids = <prompt tail + response, as PairEncoder encodes them>
    hidden = model(**ids, output_hidden_states=True).hidden_states[layer]
    mask = <1 on the response's tokens, 0 elsewhere>               # pooling "response_mean"
    feature = (hidden * mask[..., None]).sum(1) / mask.sum(1)
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from .config import DEFAULT_BACKBONE

POOLINGS = ("response_mean", "mean", "last", "cls")
# Encoder families whose hidden states carry no final norm: for them, the
# layers past the one read are never computed (the feature is the same).
_TRUNCATABLE = {"bert", "roberta", "xlm-roberta", "electra", "mpnet", "deberta", "deberta-v2", "camembert"}
# Bump when the way features are computed changes, so old caches are not reused.
FEATURE_VERSION = 1
SHARD_PREFIX = "shard-"

EmbedProgress = Callable[[int, int], None]  # (sides done, sides in total)


def side_key(prompt: str, response: str) -> int:
    """A 63-bit key for one (prompt, response) side: its cache identity."""
    digest = hashlib.blake2b(digest_size=8)
    digest.update(prompt.encode("utf-8"))
    digest.update(b"\x00\x1f")
    digest.update(response.encode("utf-8"))
    return int.from_bytes(digest.digest(), "big") >> 1


@dataclass(frozen=True)
class FeatureSpec:
    """What a feature is: which backbone, which input, which layer, which pooling."""

    backbone: str = DEFAULT_BACKBONE
    max_length: int = 256
    layer: int = -2  # index into hidden_states: -1 is the last layer, -2 the one before
    pooling: str = "response_mean"
    random_init: bool = False  # tests: a backbone built from its config with fresh (seeded) weights
    config_overrides: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.pooling not in POOLINGS:
            raise ValueError(f"pooling must be one of {', '.join(POOLINGS)}, got {self.pooling!r}")
        if self.max_length < 16:
            raise ValueError(f"max_length must be at least 16, got {self.max_length}")
        if not isinstance(self.layer, int) or self.layer == 0:
            raise ValueError(f"layer must be a non-zero hidden-state index, e.g. -2, got {self.layer!r}")

    def to_dict(self) -> dict:
        return asdict(self)

    def key(self, input_format: str) -> str:
        """The cache key: a hash of the spec, the tokenizer's input format and FEATURE_VERSION."""
        payload = json.dumps(
            {**self.to_dict(), "input_format": input_format, "version": FEATURE_VERSION}, sort_keys=True
        )
        return hashlib.sha256(payload.encode()).hexdigest()[:24]


# --------------------------------------------------------------------------- #
# Embedding
# --------------------------------------------------------------------------- #
class Embedder:
    """A frozen backbone that turns (prompt, response) sides into feature vectors.

    Sides are sorted by length and cut into batches of at most
    `batch_tokens` padded tokens, so little compute goes to padding and
    memory stays bounded; bf16 autocast where the hardware has it natively.
    """

    def __init__(self, spec: FeatureSpec, *, device: str = "auto", bf16: object = "auto", batch_tokens: int = 4096):
        import torch
        from transformers import AutoConfig, AutoModel

        from .data import PairEncoder
        from .model import load_tokenizer, resolve_backbone, takes_token_types
        from .runtime import cpu_has_native_bf16

        self.spec = spec
        if device == "auto":
            device = "cuda" if torch.cuda.is_available() else "cpu"
        self.device = torch.device(device)
        self.bf16 = (
            (torch.cuda.is_bf16_supported() if self.device.type == "cuda" else cpu_has_native_bf16())
            if bf16 == "auto"
            else bool(bf16)
        )
        source = resolve_backbone(spec.backbone)
        self.tokenizer = load_tokenizer(source)
        config = AutoConfig.from_pretrained(source, **spec.config_overrides)
        config.pad_token_id = self.tokenizer.pad_token_id
        layers = int(config.num_hidden_layers)
        read = spec.layer if spec.layer > 0 else layers + 1 + spec.layer  # hidden_states[read]
        if not 0 <= read <= layers:
            raise ValueError(f"layer {spec.layer} does not exist: the backbone has {layers} layers")
        if config.model_type in _TRUNCATABLE and read < layers and not spec.random_init:
            # The layers after `read` would only be thrown away. (Not for a
            # random init: fewer layers would draw different random weights.)
            config.num_hidden_layers = max(read, 1)
        if spec.random_init:
            torch.manual_seed(0)
            model = AutoModel.from_config(config, attn_implementation="sdpa")
        else:
            from transformers.utils import logging as hf_logging

            quiet = hf_logging.get_verbosity()
            hf_logging.set_verbosity_error()  # the cut layers' weights go unused, on purpose: no warning
            try:
                model = AutoModel.from_pretrained(source, config=config, attn_implementation="sdpa")
            finally:
                hf_logging.set_verbosity(quiet)
        self.read = read
        self.model = model.to(self.device).eval()
        self.encoder = PairEncoder(self.tokenizer, spec.max_length, token_types=takes_token_types(config))
        self.input_format = self.encoder.input_format
        self.key = spec.key(self.input_format)
        self.batch_tokens = batch_tokens
        self.dim = int(config.hidden_size)
        # Running totals, for throughput metrics: sides and tokens embedded, tokens padded, seconds.
        self.sides = self.real_tokens = self.padded_tokens = 0
        self.seconds = 0.0

    def embed(
        self, prompts: Sequence[str], responses: Sequence[str], on_progress: EmbedProgress | None = None
    ) -> np.ndarray:
        """Features of each (prompt, response), in input order: float32 (n, dim)."""
        import torch

        from .data import Collator

        n = len(prompts)
        out = np.empty((n, self.dim), dtype=np.float32)
        if not n:
            return out
        started = time.perf_counter()
        seqs = self.encoder.encode(prompts, responses)
        lengths = [len(ids) for ids in seqs.input_ids]
        collate = Collator(self.tokenizer.pad_token_id, 8, self.spec.max_length, self.device)
        done = 0
        with torch.inference_mode(), torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.bf16):
            for rows in _token_budget_batches(lengths, self.batch_tokens):
                batch = collate(seqs, rows)
                inputs = batch.inputs
                self.real_tokens += batch.real_tokens
                self.padded_tokens += batch.padded_tokens
                hidden = self.model(**inputs, output_hidden_states=True).hidden_states[self.read].float()
                mask = inputs["attention_mask"]
                if self.spec.pooling == "response_mean":
                    mask = _span_mask(mask, [seqs.response_spans[r] for r in rows])
                out[rows] = _pool(hidden, mask, self.spec.pooling).cpu().numpy()
                done += len(rows)
                if on_progress is not None:
                    on_progress(done, n)
        self.sides += n
        self.seconds += time.perf_counter() - started
        return out


def _span_mask(attention_mask, spans: Sequence[tuple[int, int]]):
    """1 on each row's [start, end) tokens (its response), 0 elsewhere; the whole row if the span is empty."""
    import torch

    positions = torch.arange(attention_mask.shape[1], device=attention_mask.device)
    start = torch.tensor([s for s, _ in spans], device=attention_mask.device)[:, None]
    end = torch.tensor([e for _, e in spans], device=attention_mask.device)[:, None]
    mask = ((positions >= start) & (positions < end)).to(attention_mask.dtype)
    empty = mask.sum(1) == 0  # an empty response: the whole sequence stands for it
    return torch.where(empty[:, None], attention_mask, mask)


def _pool(hidden, mask, pooling: str):
    """One vector per row of `hidden` (batch, tokens, dim) over the tokens `mask` marks."""
    import torch

    if pooling in ("mean", "response_mean"):
        weights = mask.unsqueeze(-1).to(hidden.dtype)
        return (hidden * weights).sum(1) / weights.sum(1).clamp(min=1.0)
    if pooling == "cls":
        return hidden[:, 0]
    last = mask.sum(1) - 1  # right padding: the last real token
    return hidden[torch.arange(hidden.shape[0], device=hidden.device), last]


def _token_budget_batches(lengths: Sequence[int], batch_tokens: int) -> list[list[int]]:
    """Rows sorted by length, cut so each batch pads to at most `batch_tokens` tokens."""
    order = sorted(range(len(lengths)), key=lengths.__getitem__)
    batches: list[list[int]] = []
    current: list[int] = []
    for i in order:
        width = max(8, -(-lengths[i] // 8) * 8)  # the batch pads to its longest (sorted: this one)
        if current and width * (len(current) + 1) > batch_tokens:
            batches.append(current)
            current = []
        current.append(i)
    if current:
        batches.append(current)
    return batches


# --------------------------------------------------------------------------- #
# The cache on disk
# --------------------------------------------------------------------------- #
class FeatureStore:
    """Features of sides under one spec key, in a folder of append-only shards.

    Each shard is a folder `shard-<n>` with `keys.npy` (int64 side keys) and
    `vectors.npy` (float16, one row per key), published by renaming a
    finished temp folder, so a reader never sees half a shard and a killed
    writer leaves only a temp folder behind. `meta.json` records the spec.
    """

    def __init__(self, root: str | Path, *, spec: dict | None = None, dim: int | None = None):
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        meta_path = self.root / "meta.json"
        if meta_path.exists():
            self.meta = json.loads(meta_path.read_text())
        else:
            self.meta = {"spec": spec or {}, "dim": dim, "version": FEATURE_VERSION}
            _write_atomic(meta_path, json.dumps(self.meta, indent=2))
        self._index: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None

    @property
    def dim(self) -> int | None:
        return self.meta.get("dim")

    def _shards(self) -> list[Path]:
        return sorted(p for p in self.root.glob(f"{SHARD_PREFIX}*") if p.is_dir() and (p / "vectors.npy").exists())

    def _load_index(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(sorted keys, their shard numbers, their rows), rebuilt when shards were added."""
        if self._index is None:
            keys, shard_of, row_of = [], [], []
            for s, shard in enumerate(self._shards()):
                k = np.load(shard / "keys.npy")
                keys.append(k)
                shard_of.append(np.full(len(k), s, dtype=np.int32))
                row_of.append(np.arange(len(k), dtype=np.int64))
            if keys:
                all_keys = np.concatenate(keys)
                order = np.argsort(all_keys, kind="stable")
                self._index = (all_keys[order], np.concatenate(shard_of)[order], np.concatenate(row_of)[order])
            else:
                self._index = (np.empty(0, np.int64), np.empty(0, np.int32), np.empty(0, np.int64))
        return self._index

    def __len__(self) -> int:
        return len(self._load_index()[0])

    def contains(self, keys: np.ndarray) -> np.ndarray:
        """A boolean mask: which of `keys` are stored."""
        sorted_keys = self._load_index()[0]
        keys = np.asarray(keys, dtype=np.int64)
        if not len(sorted_keys):
            return np.zeros(len(keys), dtype=bool)
        at = np.searchsorted(sorted_keys, keys).clip(max=len(sorted_keys) - 1)
        return sorted_keys[at] == keys

    def add(self, keys: np.ndarray, vectors: np.ndarray) -> None:
        """Store the vectors of new keys as one new shard (keys already stored are skipped)."""
        keys = np.asarray(keys, dtype=np.int64)
        fresh = ~self.contains(keys)
        keys, unique = np.unique(keys[fresh], return_index=True)
        if not len(keys):
            return
        vectors = np.asarray(vectors)[fresh][unique].astype(np.float16)
        if self.dim is None:
            self.meta["dim"] = int(vectors.shape[1])
            _write_atomic(self.root / "meta.json", json.dumps(self.meta, indent=2))
        tmp = Path(tempfile.mkdtemp(prefix=".tmp-shard-", dir=self.root))
        try:
            np.save(tmp / "keys.npy", keys)
            np.save(tmp / "vectors.npy", vectors)
            number = len(self._shards()) + 1
            while True:  # another writer may have published this number meanwhile
                try:
                    os.rename(tmp, self.root / f"{SHARD_PREFIX}{number:06d}")
                    break
                except OSError:
                    if not (self.root / f"{SHARD_PREFIX}{number:06d}").exists():
                        raise
                    number += 1
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        self._index = None

    def read(self, keys: np.ndarray) -> np.ndarray:
        """The vectors of `keys`, in that order, as float32; KeyError if any is not stored."""
        sorted_keys, shard_of, row_of = self._load_index()
        keys = np.asarray(keys, dtype=np.int64)
        out = np.empty((len(keys), self.dim or 0), dtype=np.float32)
        if not len(keys):
            return out
        at = np.searchsorted(sorted_keys, keys).clip(max=max(len(sorted_keys) - 1, 0))
        if not len(sorted_keys) or not (sorted_keys[at] == keys).all():
            raise KeyError(f"{int((~self.contains(keys)).sum())} of {len(keys)} sides have no stored feature")
        shards = self._shards()
        for s in np.unique(shard_of[at]):
            wanted = np.flatnonzero(shard_of[at] == s)
            vectors = np.load(shards[s] / "vectors.npy", mmap_mode="r")
            out[wanted] = vectors[row_of[at][wanted]]
        return out


def _write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def embed_missing(
    keys: np.ndarray,
    prompts: Sequence[str],
    responses: Sequence[str],
    *,
    embedder: Embedder,
    store: FeatureStore,
    on_progress: EmbedProgress | None = None,
) -> int:
    """Embed and store the sides (`keys`, their `side_key`s) the store does not hold yet; how many it embedded.

    One embedding per distinct side, however often it repeats.
    """
    missing = np.flatnonzero(~store.contains(keys))
    if not len(missing):
        return 0
    _, first = np.unique(keys[missing], return_index=True)
    todo = missing[first]
    store.add(keys[todo], embedder.embed([prompts[i] for i in todo], [responses[i] for i in todo], on_progress))
    return len(todo)


def features_for(
    prompts: Sequence[str],
    responses: Sequence[str],
    *,
    embedder: Embedder,
    store: FeatureStore | None = None,
    on_progress: EmbedProgress | None = None,
) -> np.ndarray:
    """Features of the sides, embedding only those the store does not hold yet (and storing them)."""
    if store is None:
        return embedder.embed(prompts, responses, on_progress)
    keys = np.array([side_key(p, r) for p, r in zip(prompts, responses)], dtype=np.int64)
    if not embed_missing(keys, prompts, responses, embedder=embedder, store=store, on_progress=on_progress):
        if on_progress is not None:
            on_progress(0, 0)
    return store.read(keys)


def pair_features(
    prompts: Sequence[str],
    responses_a: Sequence[str],
    responses_b: Sequence[str],
    *,
    embedder: Embedder,
    store: FeatureStore | None = None,
    on_progress: EmbedProgress | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """The features of both sides of each pair, (a, b), in order: one `features_for` call for all of them."""
    prompts = list(prompts)
    both = features_for(
        prompts + prompts,
        list(responses_a) + list(responses_b),
        embedder=embedder,
        store=store,
        on_progress=on_progress,
    )
    return both[: len(prompts)], both[len(prompts) :]
