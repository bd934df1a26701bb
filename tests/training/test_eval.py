"""Evaluation: metric functions on hand-computed cases, run_eval on tiny folder and WebDataset sets, bad input."""
from __future__ import annotations

import io
import json

import numpy as np
import pytest
import torch
from PIL import Image

from training import cli
from training.eval import query_ranks, recalls, retrieval_metrics, run_eval, zeroshot_metrics
from training.eval_templates import templates_for
from training.export import export_hf
from training.models import build_model
from training.tokenizer import load_tokenizer, special_ids, train_sentencepiece

CORPUS = ["a photo of a cat", "a photo of a dog", "ein Foto von einer Katze", "una foto de un perro",
          "一张猫的照片", "猫の写真", "犬と車と木", "фотография собаки", "bird on a tree", "red car in the street"] * 30


# --- metric functions on hand-computed cases ---

def test_query_ranks_count_ties_against_the_model():
    scores = torch.tensor([[0.9, 0.1, 0.5], [0.2, 0.8, 0.9], [0.3, 0.3, 0.3]])
    ranks = query_ranks(scores, torch.eye(3, dtype=torch.bool))
    assert ranks.tolist() == [0, 1, 2]
    assert recalls(ranks, (1, 2, 3)) == {"R@1": pytest.approx(1 / 3), "R@2": pytest.approx(2 / 3), "R@3": 1.0}
    with pytest.raises(ValueError):
        query_ranks(scores, torch.zeros(3, 3, dtype=torch.bool))


def test_retrieval_metrics_with_two_captions_for_one_image():
    images = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    texts = torch.tensor([[0.6, 0.8], [1.0, 0.0], [0.8, 0.6]])
    r = retrieval_metrics(images, texts, torch.tensor([0, 0, 1]), ks=(1, 5))
    assert r["image_to_text"] == {"R@1": 0.5, "R@5": 1.0}
    assert r["text_to_image"] == {"R@1": pytest.approx(1 / 3), "R@5": 1.0}
    assert (r["images"], r["texts"]) == (2, 3)


def test_retrieval_metrics_blocks_do_not_change_results():
    g = torch.Generator().manual_seed(0)
    images, texts = torch.randn(37, 8, generator=g), torch.randn(53, 8, generator=g)
    owner = torch.randint(0, 37, (53,), generator=g)
    owner[:37] = torch.arange(37)
    assert retrieval_metrics(images, texts, owner, block=5) == retrieval_metrics(images, texts, owner, block=1000)


def test_zeroshot_metrics_top1_top5_and_mean_per_class_recall():
    scores = torch.tensor([[6, 5, 4, 3, 2, 1], [1, 6, 5, 4, 3, 2], [0, 9, 0, 0, 0, 0],
                           [5, 4, 3, 2, 1, 0], [0, 0, 1, 0, 0, 0]], dtype=torch.float)
    m = zeroshot_metrics(scores, torch.tensor([0, 0, 1, 2, 2]), torch.eye(6))
    assert m["top1"] == pytest.approx(0.6) and m["top5"] == pytest.approx(0.8)
    assert m["mean_per_class_recall"] == pytest.approx(2 / 3)
    assert (m["images"], m["classes"]) == (5, 6)


# --- end to end on tiny datasets ---

@pytest.fixture(scope="module")
def tokenizer_dir(tmp_path_factory):
    tok_dir = tmp_path_factory.mktemp("tok")
    train_sentencepiece(CORPUS, 120, tok_dir)
    return tok_dir


def export_tiny(tokenizer_dir, seed: int, out):
    tok = load_tokenizer(tokenizer_dir)
    torch.manual_seed(seed)
    return export_hf(build_model("tiny", len(tok), **special_ids(tok)), tokenizer_dir, 32, out)


@pytest.fixture(scope="module")
def model_dir(tokenizer_dir, tmp_path_factory):
    return export_tiny(tokenizer_dir, 0, tmp_path_factory.mktemp("run") / "hf")


def image_bytes(seed: int, fmt: str = "JPEG") -> bytes:
    rng = np.random.default_rng(seed)
    buf = io.BytesIO()
    Image.fromarray(rng.integers(0, 255, (36 + seed % 5, 40, 3), dtype=np.uint8)).save(buf, fmt)
    return buf.getvalue()


COLOURS = [(0, 0, 0), (255, 255, 255), (255, 0, 0), (0, 255, 0), (0, 0, 255), (255, 255, 0), (0, 255, 255),
           (128, 128, 128), (255, 0, 255)]


def colour_bytes(rgb, fmt: str) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (40, 36), rgb).save(buf, fmt)
    return buf.getvalue()


def make_folder(root, classes: list[str], per_class: int, same_image: bool = False, names=None):
    """Class folders of images: all the same noise image, or solid colours (which a random tiny model
    tells apart, so predictions differ between images)."""
    for c, name in enumerate(classes):
        (root / name).mkdir(parents=True)
        for i in range(per_class):
            fmt = "PNG" if i % 2 else "JPEG"
            data = image_bytes(0, fmt) if same_image else colour_bytes(COLOURS[(per_class * c + i) % len(COLOURS)], fmt)
            (root / name / f"{i}.{fmt.lower().replace('jpeg', 'jpg')}").write_bytes(data)
    for lang, words in (names or {}).items():
        (root / f"classnames.{lang}.txt").write_text("\n".join(words) + "\n", encoding="utf-8")
    return root


def test_identical_images_give_exactly_chance_accuracy(model_dir, tmp_path):
    """One image in every class: exactly one class wins, so top-1 is 1/C. Exact ties need identical
    embeddings for identical images, hence one CPU batch (GPU kernels differ with batch shape), and
    class names that differ as tokens (identical class embeddings tie, and ties count as misses)."""
    from transformers import AutoTokenizer

    data = make_folder(tmp_path / "d", ["0", "1", "2", "3"], 1, same_image=True,
                       names={"en": ["cat", "dog", "car", "tree"], "ja": ["猫", "犬", "車", "木"]})
    tok = AutoTokenizer.from_pretrained(model_dir)
    assert len({tuple(tok(name)["input_ids"]) for name in ["猫", "犬", "車", "木"]}) == 4, \
        "class names must differ as tokens"
    r = run_eval(model_dir, data, tmp_path / "eval.json", batch_size=64, device="cpu")
    assert set(r["zeroshot"]) == {"en", "ja"}
    for m in r["zeroshot"].values():
        assert (m["top1"], m["top5"], m["mean_per_class_recall"], m["images"]) == (0.25, 1.0, 0.25, 4)
    assert r["retrieval"] is None and r["format"] == "folder"
    assert json.loads((tmp_path / "eval.json").read_text()) == json.loads(json.dumps(r))


@torch.no_grad()
def direct_predictions(model_dir, data, classes: list[str], names: list[str], lang: str) -> tuple[list[int], list[int]]:
    """Zero-shot predictions computed one image and one prompt at a time, straight from the definition."""
    from transformers import AutoImageProcessor, AutoTokenizer, MetaClip2Model

    model = MetaClip2Model.from_pretrained(model_dir).eval()
    tok, proc = AutoTokenizer.from_pretrained(model_dir), AutoImageProcessor.from_pretrained(model_dir, backend="pil")
    unit = torch.nn.functional.normalize
    weights = []
    for name in names:
        embs = [unit(model.get_text_features(**tok(t.format(name), return_tensors="pt")).pooler_output[0], dim=0)
                for t in templates_for(lang)]
        weights.append(unit(torch.stack(embs).mean(0), dim=0))
    predicted, labels = [], []
    for label, c in enumerate(classes):
        for f in sorted((data / c).glob("*.*g")):
            pixels = proc(images=Image.open(f).convert("RGB"), return_tensors="pt")["pixel_values"]
            img = unit(model.get_image_features(pixel_values=pixels).pooler_output[0], dim=0)
            predicted.append(int((torch.stack(weights) @ img).argmax()))
            labels.append(label)
    return predicted, labels


@pytest.mark.slow
def test_folder_eval_matches_a_direct_computation(tokenizer_dir, tmp_path):
    classes, names = ["cat", "dog", "zebra"], {"en": ["cat", "dog", "zebra"], "de": ["Katze", "Hund", "Zebra"]}
    data = make_folder(tmp_path / "d", classes, 3, names=names)
    (data / "dog" / "notes.md").write_text("not an image")
    for seed in range(10):  # a random model that predicts one class for every image would check nothing
        model_dir = export_tiny(tokenizer_dir, seed, tmp_path / "hf")
        direct = {lang: direct_predictions(model_dir, data, classes, names[lang], lang) for lang in ("de", "en")}
        if all(len(set(predicted)) > 1 for predicted, _ in direct.values()):
            break
    else:
        pytest.fail("no tiny model among 10 seeds predicts more than one class")
    r = run_eval(model_dir, data, tmp_path / "eval.json", langs=["de", "en"], batch_size=4, device="cpu")
    assert r["counts"]["skipped"] == {"not_an_image_file": 1} and r["counts"]["images"] == 9
    for lang, (predicted, labels) in direct.items():
        hits = [p == t for p, t in zip(predicted, labels)]
        assert r["zeroshot"][lang]["top1"] == pytest.approx(sum(hits) / 9)
        per_class = [sum(hits[3 * c:3 * c + 3]) / 3 for c in range(3)]
        assert r["zeroshot"][lang]["mean_per_class_recall"] == pytest.approx(sum(per_class) / 3)
        assert r["zeroshot"][lang]["top5"] == 1.0


def write_shard(path, samples: list[dict]):
    import webdataset as wds

    with wds.TarWriter(str(path)) as w:
        for s in samples:
            w.write(s)


@pytest.mark.slow
def test_webdataset_retrieval_and_zeroshot_exact_case(model_dir, tmp_path):
    same = image_bytes(3)
    captions = ["a photo of a cat", "ein Foto von einer Katze", "a red car", "ein rotes Auto", "bird on a tree",
                "ein Vogel", "a dog", "ein Hund", "the street", "die Straße", "猫の写真", "фотография"]
    samples = [{"__key__": f"s{i:03d}", "jpg": same, "txt": c,
                "json": {"label": i % 4, "lang": "en" if i % 2 == 0 else "de"}} for i, c in enumerate(captions)]
    samples += [{"__key__": "bad", "jpg": b"not an image", "txt": "x", "json": {"label": 0}},
                {"__key__": "noimg", "txt": "only text", "json": {"label": 1}}]
    (tmp_path / "shards").mkdir()
    write_shard(tmp_path / "shards" / "00000.tar", samples[:7])
    write_shard(tmp_path / "shards" / "00001.tar", samples[7:])
    (tmp_path / "shards" / "classnames.en.txt").write_text("cat\ncar\nbird\ndog\n")
    r = run_eval(model_dir, str(tmp_path / "shards" / "{00000..00001}.tar"), tmp_path / "eval.json",
                 batch_size=64, device="cpu")
    assert r["format"] == "webdataset"
    assert r["counts"] == {"images": 12, "labelled": 12, "captioned": 12, "classes": 4,
                           "skipped": {"corrupt_image": 1, "no_image": 1}}
    assert r["zeroshot"]["en"]["top1"] == 0.25
    assert r["retrieval"]["image_to_text"] == {"R@1": pytest.approx(1 / 12), "R@5": pytest.approx(5 / 12),
                                               "R@10": pytest.approx(10 / 12)}
    assert r["retrieval"]["text_to_image"] == {"R@1": 0.0, "R@5": 0.0, "R@10": 0.0}
    assert set(r["retrieval_by_lang"]) == {"en", "de"}
    assert r["retrieval_by_lang"]["de"]["image_to_text"]["R@5"] == pytest.approx(5 / 6)
    assert r["retrieval_by_lang"]["de"]["text_to_image"] == {"R@1": 0.0, "R@5": 0.0, "R@10": 1.0}
    two = run_eval(model_dir, str(tmp_path / "shards"), tmp_path / "eval2.json", batch_size=5, workers=2, device="cpu")
    keys = ("counts", "zeroshot", "retrieval")
    assert {k: two[k] for k in keys} == {k: r[k] for k in keys}


def test_cli_writes_eval_json_next_to_the_model(model_dir, tmp_path, capsys):
    data = make_folder(tmp_path / "d", ["0", "1"], 2, names={"fr": ["chat", "chien"]})
    assert cli.main(["eval", "--model", str(model_dir), "--data", str(data), "--batch-size", "2"]) == 0
    result = json.loads((model_dir.parent / "eval.json").read_text())
    assert set(result["zeroshot"]) == {"fr"} and result["counts"]["images"] == 4
    assert "zero-shot fr top1" in capsys.readouterr().err


# --- bad input ---

@pytest.mark.parametrize("case, message", [
    ("missing_model", "config.json missing"),
    ("no_images", "no images found"),
    ("no_class_folders", "no class folders"),
    ("unknown_lang", "no zero-shot templates for language 'xx'"),
    ("lang_without_names", "no class names in that language"),
    ("missing_shard", "not found"),
    ("corrupt_tar", "cannot read this WebDataset shard"),
    ("corrupt_tar_in_worker", "cannot read this WebDataset shard"),
    ("names_differ", "differ in length"),
])
def test_bad_input_is_a_one_line_user_error(case, message, model_dir, tmp_path, capsys):
    model, data, langs = str(model_dir), tmp_path / "d", ["en"]
    if case == "missing_model":
        model = str(tmp_path / "nope")
        make_folder(data, ["0"], 1, names={"en": ["cat"]})
    elif case == "no_images":
        make_folder(data, ["0", "1"], 0, names={"en": ["cat", "dog"]})
    elif case == "no_class_folders":
        data.mkdir()
        (data / "classnames.en.txt").write_text("cat\n")
    elif case in ("unknown_lang", "lang_without_names"):
        make_folder(data, ["0"], 1, names={"en": ["cat"]})
        langs = ["xx"] if case == "unknown_lang" else ["fr"]
    elif case == "missing_shard":
        data = tmp_path / "{00000..00002}.tar"
    elif case.startswith("corrupt_tar"):
        data = tmp_path / "00000.tar"
        data.write_bytes(b"\x00garbage" * 200)
        langs = []
    elif case == "names_differ":
        make_folder(data, ["0", "1"], 1, names={"en": ["cat", "dog"], "de": ["Katze"]})
    argv = ["eval", "--model", model, "--data", str(data), "--out", str(tmp_path / "e.json")]
    argv += ["--langs", *langs] if langs else []
    argv += ["--workers", "2"] if case.endswith("in_worker") else []
    assert cli.main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert message in err.splitlines()[-1] and err.count("error") == 1 and "Traceback" not in err
    assert not (tmp_path / "e.json").exists()


# --- a trained model ---

@pytest.mark.slow
def test_eval_after_training_beats_chance_in_every_language(tmp_path):
    """`train --eval-data`: a tiny model trained on colour shards names held-out colours zero-shot."""
    from shard_factory import COLOURS, WORDS, caption_corpus, colour_image, write_shards

    spec = write_shards(tmp_path / "curated", 4, 128)
    train_sentencepiece(caption_corpus(), 200, tmp_path / "tok")
    rng = np.random.default_rng(7)
    for c in range(len(COLOURS)):
        (tmp_path / "held_out" / str(c)).mkdir(parents=True)
        for i in range(3):
            (tmp_path / "held_out" / str(c) / f"{i}.png").write_bytes(colour_image(c, rng))
    langs = ["en", "de", "zh"]
    for lang in langs:
        (tmp_path / "held_out" / f"classnames.{lang}.txt").write_text("\n".join(WORDS[lang]) + "\n", encoding="utf-8")
    argv = ["--shards", spec, "--model", "tiny", "--tokenizer", str(tmp_path / "tok"), "--out", str(tmp_path / "run"),
            "--steps", "40", "--batch-size", "64", "--lr", "2e-3", "--warmup", "10",
            "--eval-data", str(tmp_path / "held_out")]
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # the tiny model gains nothing from threads, which spin-wait on a loaded machine
    try:
        assert cli.main(argv) == 0
    finally:
        torch.set_num_threads(threads)
    result = json.loads((tmp_path / "run" / "eval.json").read_text())
    assert sorted(result["zeroshot"]) == sorted(langs) and result["counts"]["images"] == 24
    for lang in langs:
        assert result["zeroshot"][lang]["top1"] >= 3 / len(COLOURS), (lang, result["zeroshot"][lang])


# --- model and data in object storage ---

def upload(folder, url: str) -> None:
    from core import storage

    for f in sorted(p for p in folder.rglob("*") if p.is_file()):
        storage.write_bytes(storage.join(url, f.relative_to(folder).as_posix()), f.read_bytes())


@pytest.mark.slow
def test_eval_with_model_and_data_in_a_bucket_matches_the_local_run(s3, model_dir, tmp_path, capsys, monkeypatch):
    """A real S3 server (rclone on 127.0.0.1): `train eval --model s3://… --data s3://…` writes the local
    run's numbers to s3://…/eval.json; the model is copied once; a missing object is one line naming it."""
    from core import storage

    monkeypatch.setenv("WORLDCLIP_SCRATCH", str(tmp_path / "scratch"))
    images = make_folder(tmp_path / "d", ["0", "1", "2"], 2,
                         names={"en": ["cat", "dog", "car"], "de": ["Katze", "Hund", "Auto"]})
    shards = tmp_path / "shards"
    shards.mkdir()
    samples = [{"__key__": f"s{i:03d}", "jpg": colour_bytes(COLOURS[i], "JPEG"), "txt": CORPUS[i],
                "json": {"label": i % 3, "lang": "en" if i % 2 else "de"}} for i in range(8)]
    write_shard(shards / "00000.tar", samples[:5])
    write_shard(shards / "00001.tar", samples[5:])
    (shards / "classnames.en.txt").write_text("cat\ndog\ncar\n")
    for folder, name in ((model_dir, "run/hf"), (images, "d"), (shards, "shards")):
        upload(folder, s3.url(name))
    keys = ("format", "counts", "zeroshot", "retrieval", "retrieval_by_lang")
    cases = [(images, s3.url("d"), 0), (shards / "{00000..00001}.tar", s3.url("shards", "{00000..00001}.tar"), 0),
             (shards, s3.url("shards"), 2)]
    for local_data, url, workers in cases:
        local = run_eval(model_dir, local_data, tmp_path / "local.json", batch_size=4, workers=workers, device="cpu")
        argv = ["eval", "--model", s3.url("run", "hf"), "--data", url, "--batch-size", "4", "--workers", str(workers),
                "--device", "cpu"]
        assert cli.main(argv) == 0, capsys.readouterr().err
        remote = storage.read_json(s3.url("run", "eval.json"))
        assert {k: remote[k] for k in keys} == {k: json.loads(json.dumps(local))[k] for k in keys}, url
        assert remote["model"] == s3.url("run", "hf") and remote["data"] == url
    assert len(list((tmp_path / "scratch" / "worldclip-copies").iterdir())) == 1  # one copy of the model
    capsys.readouterr()
    for argv, named in [
        (["--model", s3.url("run", "hf"), "--data", s3.url("shards", "{00000..00002}.tar")],
         s3.url("shards", "00002.tar")),
        (["--model", s3.url("nope"), "--data", s3.url("d")], s3.url("nope")),
        (["--model", s3.url("run", "hf"), "--data", s3.url("d2")], s3.url("d2")),
    ]:
        assert cli.main(["eval", *argv, "--device", "cpu"]) == 2
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and named in err and "Traceback" not in err, err
