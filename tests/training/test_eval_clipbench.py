"""train eval on CLIP_benchmark's WebDataset layout: dataset templates, .cls labels, several captions per image."""
from __future__ import annotations

import io

import pytest
import torch
from PIL import Image

from core.errors import UserError
from training.eval import embed_texts, features, load_model, retrieval_metrics, run_eval
from training.eval_clipbench import as_format_template
from training.export import export_hf
from training.models import build_model
from training.tokenizer import load_tokenizer, special_ids, train_sentencepiece

COLOURS = [(0, 0, 0), (255, 255, 255), (255, 0, 0), (0, 255, 0), (0, 0, 255), (255, 255, 0), (0, 255, 255)]
CAPTIONS = [["a black square", "dark", "night sky"], ["white paper"], ["a red car", "red"], ["green grass", "a lawn"],
            ["blue sea"], ["a yellow sun", "yellow", "sunny day"], ["cyan water", "turquoise"]]


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    tok_dir = tmp_path_factory.mktemp("tok")
    train_sentencepiece([c for cs in CAPTIONS for c in cs] * 30 + ["a photo of a cat", "itap of a dog"] * 30, 80,
                        tok_dir)
    tok = load_tokenizer(tok_dir)
    torch.manual_seed(0)
    return export_hf(build_model("tiny", len(tok), **special_ids(tok)), tok_dir, 32,
                     tmp_path_factory.mktemp("run") / "hf")


def png(rgb) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (40, 36), rgb).save(buf, "PNG")
    return buf.getvalue()


def write_set(root, samples: list[dict], per_shard: int, **files: str):
    import webdataset as wds

    (root / "test").mkdir(parents=True)
    shards = [samples[i:i + per_shard] for i in range(0, len(samples), per_shard)]
    for k, part in enumerate(shards):
        with wds.TarWriter(str(root / "test" / f"{k}.tar")) as w:
            for s in part:
                w.write(s)
    (root / "test" / "nshards.txt").write_text(f"{len(shards)}\n")
    for name, text in files.items():
        (root / f"{name}.txt").write_text(text, encoding="utf-8")
    return root


def test_retrieval_with_several_captions_per_image_equals_a_direct_computation(model_dir, tmp_path):
    samples = [{"__key__": f"s{i}", "png": png(c), "txt": "\n".join(caps) + "\n"} for i, (c, caps) in
               enumerate(zip(COLOURS, CAPTIONS))]
    root = write_set(tmp_path / "wds_flickr", samples, 3, dataset_type="retrieval")
    r = run_eval(model_dir, str(root), tmp_path / "eval.json", batch_size=4, device="cpu")
    model, tok, proc = load_model(model_dir, "cpu")
    with torch.no_grad():
        pixels = proc(images=[Image.new("RGB", (40, 36), c) for c in COLOURS], return_tensors="pt")["pixel_values"]
        images = torch.nn.functional.normalize(features(model.get_image_features(pixel_values=pixels)).float(), dim=-1)
    texts = embed_texts(model, tok, [c for cs in CAPTIONS for c in cs], 64, "cpu")
    owner = torch.tensor([i for i, cs in enumerate(CAPTIONS) for _ in cs])
    want = retrieval_metrics(images, texts, owner)
    assert r["retrieval"]["images"] == 7 and r["retrieval"]["texts"] == 14
    for side in ("image_to_text", "text_to_image"):
        assert r["retrieval"][side] == pytest.approx(want[side])
    assert r["counts"]["captioned"] == 7 and r["zeroshot"] == {}


def test_classification_uses_the_datasets_templates_and_cls(model_dir, tmp_path, capsys):
    samples = [{"__key__": f"s{i}", "webp" if i % 2 else "png": png(COLOURS[i % 3]), "cls": str(i % 3)}
               for i in range(9)]
    samples[1]["webp"] = png(COLOURS[1])  # PNG bytes under .webp: images are sniffed, not trusted by name
    root = write_set(tmp_path / "wds_imagenet", samples, 4, classnames="black\nwhite\nred\n",
                     zeroshot_classification_templates="a photo of a {c}.\na {c} thing {with braces}.\n")
    r = run_eval(model_dir, str(root), tmp_path / "eval.json", device="cpu")
    assert r["zeroshot"]["en"]["templates"] == 2 and r["zeroshot"]["en"]["images"] == 9
    assert r["counts"]["labelled"] == 9 and r["retrieval"] is None
    (root / "test" / "2.tar").unlink()
    with pytest.raises(UserError, match="2.tar is missing"):
        run_eval(model_dir, str(root), tmp_path / "eval2.json", device="cpu")


def test_template_conversion_escapes_other_braces():
    assert as_format_template("a {c} in {x}").format("cat") == "a cat in {x}"
    assert as_format_template("{c}").format("{0}") == "{0}"


def test_classnames_folder_overrides_the_sets_names(model_dir, tmp_path):
    samples = [{"__key__": f"s{i}", "png": png(COLOURS[i % 2]), "cls": str(i % 2)} for i in range(4)]
    root = write_set(tmp_path / "wds", samples, 4, classnames="black\nwhite\n")
    (tmp_path / "names").mkdir()
    (tmp_path / "names" / "classnames.de.txt").write_text("schwarz\nweiß\n", encoding="utf-8")
    r = run_eval(model_dir, str(root), tmp_path / "eval.json", classnames=str(tmp_path / "names"), device="cpu")
    assert set(r["zeroshot"]) == {"de"} and r["zeroshot"]["de"]["templates"] == 6
