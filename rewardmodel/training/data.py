"""From text pairs to padded batches: tokenize, truncate, group by length.

Every (prompt, response) goes through `PairEncoder`, in training and in
scoring alike, so a saved model sees the same token ids it was trained on.

The input text is the backbone's chat template when it has one (the
prompt's turns, then the response as the assistant turn); otherwise it is
the tokenizer's text pair, ``[CLS] prompt [SEP] response [SEP]`` for BERT.

Truncation keeps the response and trims the prompt from the left, so the
latest turn, the one the response answers, survives. Only a response too
long to fit next to a quarter of the budget is cut (at its end). No pair
is ever dropped; the count of truncated pairs is reported instead.
"""

from __future__ import annotations

import copy
import hashlib
import json
import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cached_property

import torch

from preferences.formats import transcript_to_messages
from preferences.records import TrainingPair


def fit_lengths(n_prompt: int, n_response: int, budget: int) -> tuple[int, int]:
    """Tokens to keep from the end of the prompt and from the start of the response.

    >>> fit_lengths(10, 5, 100), fit_lengths(300, 20, 100), fit_lengths(300, 200, 100)
    ((10, 5), (80, 20), (25, 75))
    """
    if n_prompt + n_response <= budget:
        return n_prompt, n_response
    # The prompt always keeps its last quarter-budget of tokens: a reply
    # judged without the question it answers means little.
    keep_response = min(n_response, budget - min(n_prompt, budget // 4))
    return min(n_prompt, budget - keep_response), keep_response


@dataclass
class Encoded:
    """Token ids of sequences, plus what truncation did to each."""

    input_ids: list[list[int]]
    token_type_ids: list[list[int]] | None  # only for backbones that take them (BERT)
    truncated: list[bool]  # prompt or response cut to fit max_length
    response_tokens: list[int]  # response length before truncation
    response_spans: list[tuple[int, int]] = field(default_factory=list)  # [start, end) of the kept response

    def __len__(self) -> int:
        return len(self.input_ids)


class PairEncoder:
    """Encodes (prompt, response) the same way for training and scoring."""

    def __init__(self, tokenizer, max_length: int, token_types: bool = True):
        if not getattr(tokenizer, "is_fast", False):
            raise ValueError(
                f"{type(tokenizer).__name__} is not a fast (tokenizers) tokenizer; "
                "the engine needs one to truncate at token level"
            )
        self.tokenizer = tokenizer
        self.max_length = max_length
        # The wrapped tokenizer may carry padding/truncation settings in
        # tokenizer.json; ours must see the raw token sequence.
        self._backend = copy.deepcopy(tokenizer.backend_tokenizer)
        self._backend.no_padding()
        self._backend.no_truncation()
        if tokenizer.chat_template is not None:
            self.input_format, self._specials = "chat_template", 0  # the template holds the markers
        elif tokenizer.num_special_tokens_to_add(pair=True):
            self.input_format, self._specials = "text_pair", tokenizer.num_special_tokens_to_add(pair=True)
        else:
            # No pair template (GPT-2 style): a sep/eos token between prompt
            # and reply and another at the end, so a decoder reads its reward
            # off a fixed last token.
            self.input_format, self._specials = "separator", 2
            self._separator = tokenizer.sep_token_id if tokenizer.sep_token_id is not None else tokenizer.eos_token_id
            if self._separator is None:
                raise ValueError(
                    "the tokenizer has no chat template, no pair template and no sep/eos token "
                    "to separate the prompt from the response"
                )
        self.chat = self.input_format == "chat_template"
        # Segment ids only where both tokenizer and backbone use them (see
        # model.takes_token_types), so a plain `model(**tokenizer(p, r))` matches.
        self.token_types = (
            token_types and self.input_format == "text_pair" and "token_type_ids" in tokenizer.model_input_names
        )

    def _texts(self, prompts: Sequence[str], responses: Sequence[str]) -> tuple[list[str], list[str]]:
        if not self.chat:
            return list(prompts), list(responses)
        conversations = [transcript_to_messages(p) for p in prompts]
        heads = self.tokenizer.apply_chat_template(conversations, tokenize=False, add_generation_prompt=True)
        fulls = self.tokenizer.apply_chat_template(
            [c + [{"role": "assistant", "content": r}] for c, r in zip(conversations, responses)], tokenize=False
        )
        tails = []
        for head, full in zip(heads, fulls):
            if not full.startswith(head):
                raise ValueError(
                    "the chat template does not render the prompt as a prefix of the "
                    "conversation, so the prompt cannot be trimmed apart from the response"
                )
            tails.append(full[len(head) :])
        return heads, tails

    def encode(self, prompts: Sequence[str], responses: Sequence[str]) -> Encoded:
        heads, tails = self._texts(prompts, responses)
        p_encs = self._backend.encode_batch(heads, add_special_tokens=False)
        r_encs = self._backend.encode_batch(tails, add_special_tokens=False)
        budget = self.max_length - self._specials
        out = Encoded([], [] if self.token_types else None, [], [])
        for p, r in zip(p_encs, r_encs):
            n_p, n_r = len(p.ids), len(r.ids)
            keep_p, keep_r = fit_lengths(n_p, n_r, budget)
            p.truncate(keep_p, direction="left")
            r.truncate(keep_r, direction="right")
            ids, types, span = self._join(p, r)
            out.input_ids.append(ids)
            out.response_spans.append(span)
            if out.token_type_ids is not None:
                out.token_type_ids.append(types)
            out.truncated.append((keep_p, keep_r) != (n_p, n_r))
            out.response_tokens.append(n_r)
        return out

    def _join(self, prompt, response) -> tuple[list[int], list[int], tuple[int, int]]:
        """Token ids, segment ids and the response's [start, end) of one truncated (prompt, response)."""
        n_r = len(response.ids)
        if self.input_format == "text_pair":
            joined = self._backend.post_processor.process(prompt, response, add_special_tokens=True)
            start = joined.sequence_ids.index(1) if n_r else len(joined.ids)
            return joined.ids, joined.type_ids, (start, start + n_r)
        n_p = len(prompt.ids)
        if self.input_format == "chat_template":
            return prompt.ids + response.ids, [], (n_p, n_p + n_r)
        sep = self._separator
        return prompt.ids + [sep] + response.ids + [sep], [], (n_p + 1, n_p + 1 + n_r)


@dataclass
class EncodedPairs:
    """Pairs as sequences: rows 0..n-1 hold the chosen sides, n..2n-1 the rejected."""

    seqs: Encoded
    margins: list[float]
    soft_labels: list[float] | None = None  # P(chosen is better) per pair; None when every label is hard

    @classmethod
    def build(cls, encoder: PairEncoder, pairs: Sequence[TrainingPair], margins: list[float]) -> EncodedPairs:
        prompts = [p.prompt for p in pairs]
        seqs = encoder.encode(prompts + prompts, [p.chosen for p in pairs] + [p.rejected for p in pairs])
        soft = any(p.p_chosen is not None for p in pairs)
        return cls(seqs, margins, [1.0 if p.p_chosen is None else p.p_chosen for p in pairs] if soft else None)

    def __len__(self) -> int:
        return len(self.margins)

    def rows(self, pair_idx: Sequence[int], swap: bool = False) -> list[int]:
        """Sequence rows of a batch: all chosen, then all rejected (or the reverse, if swap)."""
        n = len(self)
        chosen, rejected = list(pair_idx), [n + i for i in pair_idx]
        return rejected + chosen if swap else chosen + rejected

    @cached_property
    def pair_lengths(self) -> list[int]:
        """Both sides of a pair share a batch row length, so the longer one counts."""
        ids, n = self.seqs.input_ids, len(self)
        return [max(len(ids[i]), len(ids[n + i])) for i in range(n)]

    @property
    def truncated_pairs(self) -> int:
        t, n = self.seqs.truncated, len(self)
        return sum(t[i] or t[n + i] for i in range(n))

    def response_tokens(self) -> tuple[list[int], list[int]]:
        """Untruncated (chosen, rejected) response lengths, for the length metrics."""
        n = len(self)
        return self.seqs.response_tokens[:n], self.seqs.response_tokens[n:]


def length_grouped_batches(lengths: Sequence[int], batch_size: int, seed: int, megabatch: int = 50) -> list[list[int]]:
    """Random batches of similar length, so little of each batch is padding.

    Shuffle, cut into megabatches of `megabatch` batches, sort each by
    length, split it into batches and shuffle the batches: similar lengths
    share a batch, yet batch order and membership stay random (the same
    scheme as transformers' LengthGroupedSampler). Nothing is dropped: the
    last batch may be short.
    """
    rng = random.Random(seed)
    order = list(range(len(lengths)))
    rng.shuffle(order)
    span = batch_size * megabatch
    batches = []
    for start in range(0, len(order), span):
        chunk = sorted(order[start : start + span], key=lengths.__getitem__, reverse=True)
        batches += [chunk[i : i + batch_size] for i in range(0, len(chunk), batch_size)]
    rng.shuffle(batches)
    return batches


def sorted_batches(lengths: Sequence[int], batch_size: int) -> list[list[int]]:
    """Evaluation batches: sorted by length, for the least padding; order does not matter."""
    order = sorted(range(len(lengths)), key=lengths.__getitem__)
    return [order[i : i + batch_size] for i in range(0, len(order), batch_size)]


@dataclass
class Batch:
    inputs: dict[str, torch.Tensor]
    real_tokens: int
    padded_tokens: int


@dataclass
class Collator:
    """Pads the rows of a batch to one length, rounded up to `multiple`."""

    pad_id: int
    multiple: int
    max_length: int
    device: torch.device

    def __call__(self, seqs: Encoded, rows: Sequence[int]) -> Batch:
        longest = max(len(seqs.input_ids[r]) for r in rows)
        width = min(-(-longest // self.multiple) * self.multiple, self.max_length)
        ids, mask, types = [], [], []
        for r in rows:
            row = seqs.input_ids[r]
            pad = width - len(row)
            ids.append(row + [self.pad_id] * pad)
            mask.append([1] * len(row) + [0] * pad)
            if seqs.token_type_ids is not None:
                types.append(seqs.token_type_ids[r] + [0] * pad)
        inputs = {"input_ids": ids, "attention_mask": mask}
        if seqs.token_type_ids is not None:
            inputs["token_type_ids"] = types
        real = sum(len(seqs.input_ids[r]) for r in rows)
        return Batch({k: self.to_device(v) for k, v in inputs.items()}, real, width * len(rows))

    def to_device(self, values: list, dtype: torch.dtype = torch.long) -> torch.Tensor:
        tensor = torch.tensor(values, dtype=dtype)
        if self.device.type == "cuda":  # pinned + non-blocking: the copy overlaps queued kernels
            return tensor.pin_memory().to(self.device, non_blocking=True)
        return tensor


def split_by_prompt(
    pairs: Sequence[TrainingPair], eval_fraction: float, seed: int = 0
) -> tuple[list[TrainingPair], list[TrainingPair]]:
    """(train, eval) with every pair of a prompt on the same side.

    Splitting pairs rather than prompts would score the model on prompts it
    trained on, and overstate its accuracy.
    """
    prompts = sorted({p.prompt for p in pairs})
    random.Random(seed).shuffle(prompts)
    held_out = set(prompts[: round(eval_fraction * len(prompts))])
    return [p for p in pairs if p.prompt not in held_out], [p for p in pairs if p.prompt in held_out]


def fingerprint(pairs: Sequence[TrainingPair]) -> str:
    """SHA-256 of the pairs' content, in order: which data a model was trained on.

    A soft label (`p_chosen`) is part of a pair's content only when it is set,
    so hard-labelled data keeps the fingerprint it always had.
    """
    digest = hashlib.sha256()
    for p in pairs:
        fields = [p.prompt, p.chosen, p.rejected, p.strength]
        if p.p_chosen is not None:
            fields.append(p.p_chosen)
        digest.update(json.dumps(fields, ensure_ascii=False).encode())
        digest.update(b"\n")
    return digest.hexdigest()
