"""curate recaption: real loading, batching, Ray actors and writing on tiny random checkpoints."""
from __future__ import annotations

import shutil
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from core.errors import UserError
from curation.cli import main
from curation.recaption import Captioner, Decoding, Fuser, fill_prompt
from curation.recaption_run import run_recaption
from model_factory import tiny_captioner, tiny_lm
from shard_factory import shard_metas, write_shards


@pytest.fixture(scope="module")
def models(tmp_path_factory) -> tuple[Path, Path]:
    d = tmp_path_factory.mktemp("models")
    return tiny_captioner(d / "captioner"), tiny_lm(d / "lm")


@pytest.fixture
def curated(tmp_path) -> Path:
    write_shards(tmp_path / "cur", 3, 4)
    return tmp_path / "cur"


def _captions(curated: Path) -> dict[str, dict]:
    return {uid: meta.get("captions", {}) for uid, meta in shard_metas(curated).items()}


@pytest.mark.slow
def test_captioner_batches_equal_single_images(models):
    from PIL import Image

    cap = Captioner(str(models[0]), decoding=Decoding(max_new_tokens=6))
    ims = [Image.new("RGB", (40, 30), c) for c in ((200, 10, 10), (10, 10, 200), (0, 0, 0))]
    together = cap.caption(ims)
    assert together == [cap.caption([im])[0] for im in ims]
    assert all(isinstance(t, str) and t for t in together)


@pytest.mark.slow
def test_recaption_and_fuse_attach_deterministically(models, curated, tmp_path, ray_address):
    other = tmp_path / "other"
    shutil.copytree(curated, other)
    reports = run_recaption(str(curated), str(models[0]), "tinycap", batch_size=3, fuse_with=str(models[1]),
                            decoding=Decoding(max_new_tokens=5))
    assert [r["rows"] for r in reports] == [12, 12]
    part = pq.read_table(curated / "captions" / "tinycap" / "00001.parquet")
    assert part.column_names == ["uid", "caption", "alt"] and part.num_rows == 4
    caps = _captions(curated)
    assert all(set(c) == {"tinycap", "vecap"} for c in caps.values()) and len(caps) == 12
    run_recaption(str(other), str(models[0]), "tinycap", batch_size=2, workers=2, fuse_with=str(models[1]),
                  decoding=Decoding(max_new_tokens=5))  # Ray actors, other batching: the same bytes
    for shard in (curated / "shards").glob("*.tar"):
        assert shard.read_bytes() == (other / "shards" / shard.name).read_bytes()


@pytest.mark.slow
def test_rerun_skips_finished_parts(models, curated):
    run_recaption(str(curated), str(models[0]), "tinycap", decoding=Decoding(max_new_tokens=3))
    (curated / "captions" / "tinycap" / "00002.parquet").unlink()
    again = run_recaption(str(curated), str(models[0]), "tinycap", decoding=Decoding(max_new_tokens=3))[0]
    assert (again["resumed"], again["rows"], again["attach"]["captioned"]) == (2, 4, 12)
    with pytest.raises(UserError, match="another model or options"):
        run_recaption(str(curated), str(models[0]), "tinycap", decoding=Decoding(max_new_tokens=4))


def test_not_a_checkpoint_is_one_line(models, curated, tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    assert main(["recaption", str(curated), "--model", str(tmp_path / "empty"), "--source", "x", "--workers", "1"]) == 2
    assert "no config.json" in capsys.readouterr().err
    assert main(["recaption", str(curated), "--model", str(models[1]), "--source", "x", "--workers", "1"]) == 2
    err = capsys.readouterr().err.strip()
    assert "gpt2 checkpoint is not an image-to-text" in err and "\n" not in err
    (models[0].parent / "broken").mkdir(exist_ok=True)
    shutil.copy(models[0] / "config.json", models[0].parent / "broken" / "config.json")
    with pytest.raises(UserError, match="not a loadable image-to-text checkpoint"):
        Captioner(str(models[0].parent / "broken"))


@pytest.mark.slow
def test_cli_prints_throughput(models, curated, capsys):
    assert main(["recaption", str(curated), "--model", str(models[0]), "--source", "tinycap", "--workers", "1",
                 "--max-new-tokens", "3"]) == 0
    out = capsys.readouterr().out
    assert "recaption tinycap: 12 images in 3 parts (0 resumed)" in out and "images/s" in out


def test_fuser_and_prompt_filling(models):
    assert fill_prompt("A {alt} B {caption} {x}", "{caption}", "c") == "A {caption} B c {x}"
    fused = Fuser(str(models[1]), decoding=Decoding(max_new_tokens=4)).fuse(["a red square", "x"], ["blue", "y"])
    assert len(fused) == 2 and all(isinstance(f, str) for f in fused)


def test_undecodable_images_are_left_out_and_counted(models, tmp_path):
    import numpy as np
    import webdataset as wds

    from shard_factory import sample

    rng = np.random.default_rng(0)
    (tmp_path / "cur" / "shards").mkdir(parents=True)
    with wds.TarWriter(str(tmp_path / "cur" / "shards" / "00000.tar")) as w:
        for i in range(3):
            s = sample(i, rng)
            if i == 1:
                s["png"] = b"not an image"
            w.write(s)
    r = run_recaption(str(tmp_path / "cur"), str(models[0]), "tinycap", decoding=Decoding(max_new_tokens=3))[0]
    assert (r["rows"], r["undecodable"], r["attach"]["captioned"], r["attach"]["uncaptioned"]) == (2, 1, 2, 1)
    assert "captions" not in _captions(tmp_path / "cur")["u000001"]


@pytest.mark.slow
def test_processor_models_and_prompts(tmp_path, models):
    """A checkpoint with a multimodal processor (BLIP) and a prompt; captions exclude the echoed prompt."""
    from PIL import Image

    from model_factory import tiny_blip

    blip = Captioner(str(tiny_blip(tmp_path / "blip")), prompt="a photo of", decoding=Decoding(max_new_tokens=4))
    assert hasattr(blip.processor, "image_processor")
    ims = [Image.new("RGB", (40, 30), c) for c in ((200, 0, 0), (0, 0, 200))]
    inputs = blip._inputs(ims)
    raw = blip.model.generate(**inputs, max_new_tokens=4)
    full = blip.tokenizer.batch_decode(raw, skip_special_tokens=True)
    got = blip.caption(ims)
    assert all(f.startswith("a photo of") for f in full)
    assert got == [f[len("a photo of"):].strip() for f in full]
    ved = Captioner(str(models[0]), prompt="a red", decoding=Decoding(max_new_tokens=3))
    plain = Captioner(str(models[0]), decoding=Decoding(max_new_tokens=3))
    assert ved.caption(ims) != plain.caption(ims)  # the prompt conditions the decoder


@pytest.mark.slow
def test_curated_and_model_in_a_bucket_equal_the_local_run(models, curated, s3):
    from core import storage
    from test_captions import _bucket_shards, _local_shards, upload

    upload(curated, s3.url("CUR"))
    upload(models[0], s3.url("models", "cap"))
    local = run_recaption(str(curated), str(models[0]), "tinycap", batch_size=3, decoding=Decoding(max_new_tokens=3))[0]
    remote = run_recaption(s3.url("CUR"), s3.url("models", "cap"), "tinycap", batch_size=3,
                           decoding=Decoding(max_new_tokens=3))[0]
    assert (remote["rows"], remote["attach"]["captioned"]) == (local["rows"], local["attach"]["captioned"]) == (12, 12)
    assert _bucket_shards(s3.url("CUR")) == _local_shards(curated)
    part = storage.join(s3.url("CUR"), "captions", "tinycap", "00001.parquet")
    assert pq.read_table(storage.open_input(part)) == pq.read_table(curated / "captions" / "tinycap" / "00001.parquet")
    again = run_recaption(s3.url("CUR"), s3.url("models", "cap"), "tinycap", batch_size=3,
                          decoding=Decoding(max_new_tokens=3))[0]
    assert (again["resumed"], again["rows"]) == (3, 0)  # every part is committed: nothing is redone
