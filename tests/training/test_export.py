"""export_hf: a tiny MetaClip2Model + a locally trained XLM-V-layout tokenizer -> RUN/hf, reloaded offline."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from core.errors import UserError
from training.export import export_hf
from training.models import build_model
from training.tokenizer import load_tokenizer, special_ids, tokenize, train_sentencepiece
from training.transforms import eval_image

TEXTS = ["a photo of a cat", "a photo of a dog", "ein Foto von einer Katze", "une photo d'un chien",
         "一张猫的照片", "猫の写真", "ภาพถ่ายของแมว", "صورة قطة", "фотография собаки", "고양이 사진"] * 30
CAPTIONS = ["a photo of a cat", "ein Foto von einer Katze", "猫の写真", "ภาพถ่ายของแมว", "صورة قطة " * 40]


@pytest.fixture(scope="module")
def tokenizer_dir(tmp_path_factory):
    d = tmp_path_factory.mktemp("tok")
    train_sentencepiece(TEXTS, 120, d)
    return d


@pytest.fixture(scope="module")
def model(tokenizer_dir):
    torch.manual_seed(0)
    tok = load_tokenizer(tokenizer_dir)
    return build_model("tiny", len(tok), **special_ids(tok)).eval()


def images(n: int = 3) -> list[Image.Image]:
    rng = np.random.default_rng(0)
    return [Image.fromarray(rng.integers(0, 255, (40 + 7 * i, 50, 3), dtype=np.uint8)) for i in range(n)]


def pil_processor(path):
    """The PIL flavour of the exported processor (where torchvision is installed, CLIPImageProcessor
    resizes with torchvision's bicubic, which differs slightly from PIL's, i.e. from training's)."""
    try:
        from transformers import CLIPImageProcessorPil as Processor
    except ImportError:
        from transformers import CLIPImageProcessor as Processor
    return Processor.from_pretrained(path, local_files_only=True)


@pytest.fixture(scope="module")
def exported(model, tokenizer_dir, tmp_path_factory):
    return export_hf(model, tokenizer_dir, 32, tmp_path_factory.mktemp("run") / "hf")


def test_from_pretrained_gives_identical_embeddings(model, tokenizer_dir, exported, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    from transformers import AutoProcessor, AutoTokenizer, CLIPImageProcessor, MetaClip2Model

    loaded = MetaClip2Model.from_pretrained(exported, local_files_only=True).eval()
    tok = AutoTokenizer.from_pretrained(exported, local_files_only=True)
    processor = CLIPImageProcessor.from_pretrained(exported, local_files_only=True)
    assert type(AutoProcessor.from_pretrained(exported, local_files_only=True)).__name__ == "CLIPProcessor"

    ids, mask = tokenize(load_tokenizer(tokenizer_dir), CAPTIONS)
    enc = tok(CAPTIONS, padding="max_length", max_length=77, truncation=True, return_tensors="pt")
    assert torch.equal(enc["input_ids"], ids)
    pixels = torch.stack([eval_image(im, 32) for im in images()])
    assert processor.crop_size == {"height": 32, "width": 32}
    assert torch.allclose(pil_processor(exported)(images=images(), return_tensors="pt")["pixel_values"], pixels,
                          atol=1e-4)
    with torch.no_grad():
        text, image = (
            [m.get_text_features(input_ids=ids, attention_mask=mask).pooler_output for m in (model, loaded)],
            [m.get_image_features(pixel_values=pixels).pooler_output for m in (model, loaded)],
        )
    assert torch.allclose(*text, atol=1e-6) and not torch.allclose(text[0][0], text[0][1])
    assert torch.allclose(*image, atol=1e-6)
    assert torch.equal(model.logit_scale, loaded.logit_scale)
    assert (exported / "sentencepiece.bpe.model").is_file()
    assert not [p.name for p in exported.parent.iterdir() if p.name.startswith(".")]


def test_zero_shot_pipeline_runs_offline(exported, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    from transformers import pipeline

    classify = pipeline("zero-shot-image-classification", model=str(exported))
    out = classify(images(1)[0], candidate_labels=["猫", "dog", "Katze"], hypothesis_template="{}の写真")
    assert sorted(r["label"] for r in out) == ["Katze", "dog", "猫"]
    assert sum(r["score"] for r in out) == pytest.approx(1.0, abs=1e-5)


@pytest.mark.slow
def test_reexport_replaces_folder_and_unwraps_compiled_model(model, tokenizer_dir, tmp_path):
    out = tmp_path / "hf"
    out.mkdir()
    (out / "stale.txt").write_text("old")
    export_hf(torch.compile(model), tokenizer_dir, 32, out)
    assert not (out / "stale.txt").exists() and (out / "model.safetensors").is_file()
    assert [p.name for p in tmp_path.iterdir()] == ["hf"]


def test_failed_export_keeps_previous_and_leaves_no_temp(model, tokenizer_dir, tmp_path):
    out = export_hf(model, tokenizer_dir, 32, tmp_path / "hf")
    before = sorted(p.name for p in out.iterdir())
    with pytest.raises(UserError, match="not found"):
        export_hf(model, tmp_path / "no-such-tokenizer", 32, out)
    assert sorted(p.name for p in out.iterdir()) == before
    assert [p.name for p in tmp_path.iterdir()] == ["hf"]


def test_tokenizer_model_mismatch_is_a_user_error(tokenizer_dir, tmp_path):
    tok = load_tokenizer(tokenizer_dir)
    small = build_model("tiny", len(tok) - 5, **special_ids(tok))
    with pytest.raises(UserError, match="vocabulary"):
        export_hf(small, tokenizer_dir, 32, tmp_path / "hf")
    wrong_eos = build_model("tiny", len(tok), pad_token_id=1, bos_token_id=0, eos_token_id=3)
    with pytest.raises(UserError, match="pools at"):
        export_hf(wrong_eos, tokenizer_dir, 32, tmp_path / "hf")
    assert not (tmp_path / "hf").exists()
