"""Towers: --init-from copies whole towers from MetaClip2/CLIP folders (refusing other shapes or activations);
--lock-image freezes one."""
from __future__ import annotations

import pytest
import torch
from safetensors.torch import load_file

from core.errors import UserError
from training.models import build_config, build_model
from training.towers import init_from, lock_image_tower, tower_of


def seeded(seed, **kw):
    torch.manual_seed(seed)
    return build_model("tiny", 60, **kw)


def same(a, b, tower):
    sa, sb = a.state_dict(), b.state_dict()
    return all(torch.equal(sa[k], sb[k]) for k in sa if tower_of(k) == tower)


def test_from_a_metaclip2_folder_every_tower(tmp_path):
    src, dst = seeded(1), seeded(2)
    src.save_pretrained(tmp_path)
    assert init_from(dst, str(tmp_path)) == ["vision", "text", "head"]
    assert same(src, dst, "vision") and same(src, dst, "text") and same(src, dst, "head")


def test_from_a_clip_folder_and_from_a_vision_only_folder(tmp_path):
    from transformers import CLIPConfig, CLIPModel, CLIPVisionModelWithProjection

    c = build_config("tiny", 60)
    clip = CLIPModel(CLIPConfig(text_config=c.text_config.to_dict(), vision_config=c.vision_config.to_dict(),
                                projection_dim=c.projection_dim))
    clip.save_pretrained(tmp_path / "clip")
    dst = seeded(3)
    assert init_from(dst, str(tmp_path / "clip")) == ["vision", "text", "head"]
    assert all(torch.equal(v, clip.state_dict()[k]) for k, v in dst.state_dict().items())

    vision = CLIPVisionModelWithProjection(clip.config.vision_config)
    vision.save_pretrained(tmp_path / "vision")
    before = seeded(4)
    dst = seeded(4)
    assert init_from(dst, str(tmp_path / "vision")) == ["vision"]
    assert torch.equal(dst.visual_projection.weight, vision.visual_projection.weight) and same(dst, before, "text")


def test_mismatches_are_one_line_errors(tmp_path):
    seeded(1).save_pretrained(tmp_path / "tiny")
    with pytest.raises(UserError, match="shape"):
        init_from(build_model("tiny", 60, image_size=48), str(tmp_path / "tiny"))
    quick = build_config("tiny", 60)
    quick.vision_config.hidden_act = "quick_gelu"
    from transformers import MetaClip2Model

    MetaClip2Model(quick).save_pretrained(tmp_path / "quick")
    with pytest.raises(UserError, match="vision tower uses quick_gelu but the --model preset uses gelu"):
        init_from(seeded(1), str(tmp_path / "quick"))
    state = load_file(tmp_path / "tiny" / "model.safetensors")
    from safetensors.torch import save_file

    (tmp_path / "part").mkdir()
    save_file({k: v for k, v in state.items() if not k.startswith("text_model.encoder.layers.1.")},
              tmp_path / "part" / "model.safetensors")
    with pytest.raises(UserError, match="text tower is incomplete"):
        init_from(seeded(1), str(tmp_path / "part"))
    with pytest.raises(UserError, match="no model.safetensors"):
        init_from(seeded(1), str(tmp_path))
    with pytest.raises(UserError, match="folder not found"):
        init_from(seeded(1), str(tmp_path / "nope"))
    with pytest.raises(UserError, match=r"model\.safetensors: a file, but a folder is needed.*tiny\)"):
        init_from(seeded(1), str(tmp_path / "tiny" / "model.safetensors"))


def test_lock_image_freezes_exactly_the_image_tower():
    model = seeded(1)
    frozen = lock_image_tower(model)
    assert frozen == sum(p.numel() for n, p in model.named_parameters()
                         if n.startswith(("vision_model.", "visual_projection.")))
    assert all(p.requires_grad == (tower_of(n) != "vision") for n, p in model.named_parameters())


@pytest.mark.slow
def test_lit_run_keeps_the_initial_image_tower_and_trains_the_text(shards, tokenizer_dir, tmp_path):
    from training.tokenizer import load_tokenizer, special_ids
    from training.train import TrainConfig, train

    tok = load_tokenizer(tokenizer_dir)
    torch.manual_seed(7)
    init = build_model("tiny", len(tok), **special_ids(tok))
    init.save_pretrained(tmp_path / "init")
    run = tmp_path / "run"
    train(TrainConfig(shards=shards, tokenizer=str(tokenizer_dir), out=str(run), steps=3, batch_size=8, workers=0,
                      warmup=1, lr=1e-2, init_from=str(tmp_path / "init"), lock_image=True))
    a, b = load_file(tmp_path / "init" / "model.safetensors"), load_file(run / "hf" / "model.safetensors")
    vision = [k for k in a if tower_of(k) == "vision"]
    text = [k for k in a if tower_of(k) == "text"]
    assert vision and all(torch.equal(a[k], b[k]) for k in vision)
    assert sum(not torch.equal(a[k], b[k]) for k in text) > len(text) // 2


def test_a_siglip_export_keeps_the_bias_in_its_config_and_initialises_it(tokenizer_dir, tmp_path):
    import json

    from training.export import export_hf
    from training.loss import init_loss_parameters
    from training.tokenizer import load_tokenizer, special_ids

    tok = load_tokenizer(tokenizer_dir)
    src = build_model("tiny", len(tok), **special_ids(tok))
    init_loss_parameters(src, "siglip")
    with torch.no_grad():
        src.logit_bias.fill_(-7.5)
    export_hf(src, tokenizer_dir, 32, tmp_path / "hf")
    # MetaClip2Model loads it without unexpected keys
    assert "logit_bias" not in load_file(tmp_path / "hf" / "model.safetensors")
    assert json.loads((tmp_path / "hf" / "config.json").read_text())["logit_bias"] == -7.5
    dst = build_model("tiny", len(tok), **special_ids(tok))
    init_loss_parameters(dst, "siglip")
    assert init_from(dst, str(tmp_path / "hf")) == ["vision", "text", "head"]
    assert dst.logit_bias.item() == -7.5 and torch.equal(dst.logit_scale, src.logit_scale)
