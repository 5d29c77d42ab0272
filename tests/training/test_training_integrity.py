"""What the scorer agrees to load: safetensors weights only, and files that match their checksums."""

import json
import shutil

import pytest

from rewardmodel.training import RewardScorer
from rewardmodel.training.integrity import ArtifactIntegrityError, checksums_compute, folder_verify


@pytest.fixture
def model_copy(saved_run, tmp_path):
    _, out = saved_run
    return shutil.copytree(out, tmp_path / "model")


def test_a_folder_that_matches_its_checksums_loads_and_scores(model_copy):
    checksums = checksums_compute(model_copy)
    raw, _ = RewardScorer.load(model_copy, device="cpu", checksums=checksums).score(["hi"], ["hello"])
    assert len(raw) == 1


def test_a_pickle_weights_file_is_refused_even_beside_safetensors(model_copy):
    # given a folder someone dropped a pytorch_model.bin into (torch.load would run its pickle)
    (model_copy / "pytorch_model.bin").write_bytes(b"\x80\x04not really a model")
    # when loaded, with or without checksums, then it is refused naming the file
    with pytest.raises(ArtifactIntegrityError, match="pytorch_model.bin"):
        RewardScorer.load(model_copy, device="cpu")


def test_changed_missing_or_extra_files_are_refused(model_copy):
    checksums = checksums_compute(model_copy)
    meta = model_copy / "reward_meta.json"
    meta.write_text(json.dumps({**json.loads(meta.read_text()), "reward_std": 99.0}))
    with pytest.raises(ArtifactIntegrityError, match="reward_meta.json \\(missing or changed\\)"):
        RewardScorer.load(model_copy, device="cpu", checksums=checksums)
    checksums = checksums_compute(model_copy)
    (model_copy / "extra.safetensors").write_bytes(b"")
    with pytest.raises(ArtifactIntegrityError, match="extra.safetensors \\(not recorded\\)"):
        folder_verify(model_copy, checksums)


def test_a_folder_without_safetensors_weights_is_refused(tmp_path):
    (tmp_path / "reward_meta.json").write_text("{}")
    with pytest.raises(ArtifactIntegrityError, match="no .safetensors"):
        folder_verify(tmp_path)
    with pytest.raises(FileNotFoundError):
        folder_verify(tmp_path / "missing")


def test_any_folder_of_safetensors_and_metadata_passes_whatever_its_layout(tmp_path):
    # e.g. a linear head on frozen features: head.safetensors beside reward_meta.json
    (tmp_path / "head.safetensors").write_bytes(b"\x08\x00\x00\x00\x00\x00\x00\x00{}      ")
    (tmp_path / "reward_meta.json").write_text('{"kind": "head"}')
    folder_verify(tmp_path, checksums_compute(tmp_path))
