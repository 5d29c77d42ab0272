import random

import pytest
import torch

from preferences.records import TrainingPair
from rewardmodel.training.config import DEFAULT_BACKBONE
from rewardmodel.training.data import (
    Collator,
    EncodedPairs,
    PairEncoder,
    fit_lengths,
    length_grouped_batches,
    sorted_batches,
)
from rewardmodel.training.model import load_tokenizer, resolve_backbone


@pytest.fixture(scope="module")
def tokenizer():
    return load_tokenizer(resolve_backbone(DEFAULT_BACKBONE))


def test_short_pairs_encode_exactly_like_the_tokenizers_text_pair(tokenizer):
    encoder = PairEncoder(tokenizer, max_length=64)
    enc = encoder.encode(["Human: is the sky blue?"], ["Yes, on a clear day."])
    plain = tokenizer("Human: is the sky blue?", "Yes, on a clear day.")
    assert enc.input_ids[0] == plain["input_ids"]
    assert enc.token_type_ids[0] == plain["token_type_ids"]
    assert enc.truncated == [False]
    assert encoder.input_format == "text_pair"


def test_truncation_keeps_the_response_and_trims_the_prompt_from_the_left(tokenizer):
    prompt = " ".join(f"w{i}" for i in range(40)) + " final question"
    response = "the whole answer stays"
    enc = PairEncoder(tokenizer, max_length=16).encode([prompt], [response])
    ids = enc.input_ids[0]
    assert len(ids) == 16 and enc.truncated == [True]
    text = tokenizer.decode(ids)
    assert text.endswith("final question [SEP] the whole answer stays [SEP]")
    assert "w0 " not in text  # the start of the prompt went


def test_only_an_overlong_response_is_cut_at_its_end(tokenizer):
    response = " ".join(["yes"] * 40)
    enc = PairEncoder(tokenizer, max_length=24).encode(["a b c d e f g h i j"], [response])
    text = tokenizer.decode(enc.input_ids[0])
    budget = 24 - 3
    assert len(enc.input_ids[0]) == 24
    assert text.startswith("[CLS] " + " ".join("abcdefghij"[-(budget // 4) :]) + " [SEP] yes")
    assert enc.response_tokens == [40]  # the length before truncation, for the length metrics


def test_fit_lengths_never_exceeds_the_budget():
    for n_p in range(0, 60, 7):
        for n_r in range(0, 60, 5):
            keep_p, keep_r = fit_lengths(n_p, n_r, 32)
            assert keep_p <= n_p and keep_r <= n_r and keep_p + keep_r <= 32
            if n_p + n_r > 32:
                assert keep_p + keep_r == 32


def test_truncated_pairs_are_counted_not_dropped(tokenizer):
    long_prompt = "Human: " + "tell me more " * 30
    pairs = [
        TrainingPair("Human: hi", "hello", "go away"),
        TrainingPair(long_prompt, "sure", "no"),
        TrainingPair("Human: short", "fine " * 40, "no"),
    ]
    data = EncodedPairs.build(PairEncoder(tokenizer, max_length=32), pairs, [0.0] * 3)
    assert len(data) == 3 and data.truncated_pairs == 2


def test_chat_template_backbones_format_turns_and_trim_the_prompt_from_the_left(tokenizer):
    chat = load_tokenizer(resolve_backbone(DEFAULT_BACKBONE))
    chat.chat_template = (
        "{% for m in messages %}[{{ m.role }}] {{ m.content }} {% endfor %}"
        "{% if add_generation_prompt %}[assistant] {% endif %}"
    )
    encoder = PairEncoder(chat, max_length=16)
    assert encoder.input_format == "chat_template" and not encoder.token_types
    prompt = "Human: " + " ".join(f"w{i}" for i in range(30)) + "\n\nAssistant: ok\n\nHuman: and now?"
    enc = encoder.encode([prompt], ["fine thanks"])
    text = chat.decode(enc.input_ids[0])
    assert len(enc.input_ids[0]) == 16
    assert text.endswith("[ user ] and now? [ assistant ] fine thanks")


def test_length_grouped_batches_pad_less_than_random_batches():
    rng = random.Random(0)
    lengths = [rng.randint(8, 512) for _ in range(2000)]

    def pad_fraction(batches):
        real = sum(lengths[i] for b in batches for i in b)
        return 1 - real / sum(max(lengths[i] for i in b) * len(b) for b in batches)

    grouped = length_grouped_batches(lengths, batch_size=16, seed=1)
    order = list(range(len(lengths)))
    rng.shuffle(order)
    random_batches = [order[i : i + 16] for i in range(0, len(order), 16)]
    assert sorted(i for b in grouped for i in b) == list(range(2000))  # every pair, once
    assert pad_fraction(grouped) < 0.1 < 0.3 < pad_fraction(random_batches)
    assert grouped != length_grouped_batches(lengths, batch_size=16, seed=2)  # still shuffled


def test_sorted_batches_cover_everything_in_length_order():
    batches = sorted_batches([5, 1, 4, 2, 3], 2)
    assert batches == [[1, 3], [4, 2], [0]]


def test_collator_pads_to_a_multiple_and_masks_the_padding():
    from rewardmodel.training.data import Encoded

    seqs = Encoded([[101, 5, 102], [101, 6, 7, 8, 9, 102]], [[0, 0, 0], [0, 0, 0, 1, 1, 1]], [False] * 2, [1, 4])
    batch = Collator(pad_id=0, multiple=8, max_length=64, device=torch.device("cpu"))(seqs, [0, 1])
    assert batch.inputs["input_ids"].shape == (2, 8)
    assert batch.inputs["attention_mask"].sum(dim=1).tolist() == [3, 6]
    assert batch.inputs["token_type_ids"][1].tolist() == [0, 0, 0, 1, 1, 1, 0, 0]
    assert (batch.real_tokens, batch.padded_tokens) == (9, 16)


def test_split_by_prompt_keeps_each_prompt_on_one_side():
    from rewardmodel.training.data import split_by_prompt

    pairs = [TrainingPair(f"prompt {i % 10}", f"good {i}", f"bad {i}") for i in range(50)]
    train, held_out = split_by_prompt(pairs, 0.2, seed=0)
    assert len(train) + len(held_out) == 50 and len(held_out) == 10  # 2 of 10 prompts, 5 pairs each
    assert not {p.prompt for p in train} & {p.prompt for p in held_out}
    assert split_by_prompt(pairs, 0.2, seed=0) == (train, held_out)


def test_tokenizers_without_a_pair_template_get_separators(tokenizer):
    from tokenizers import processors

    plain = load_tokenizer(resolve_backbone(DEFAULT_BACKBONE))
    plain.backend_tokenizer.post_processor = processors.ByteLevel(trim_offsets=False)  # GPT-2 style: no specials
    encoder = PairEncoder(plain, max_length=16)
    assert encoder.input_format == "separator" and not encoder.token_types
    enc = encoder.encode(["a b c d e f g h i j k l m n"], ["yes sir"])
    assert enc.token_type_ids is None
    assert plain.decode(enc.input_ids[0]) == "c d e f g h i j k l m n [SEP] yes sir [SEP]"
