"""Contrastive losses: symmetric InfoNCE (= MetaClip2Model's own loss) with an unclamped scale; SigLIP's sigmoid
loss and init."""
from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from training.loss import (
    MAX_LOGIT_SCALE,
    SIGLIP_INIT_BIAS,
    SIGLIP_INIT_SCALE,
    clip_loss,
    init_loss_parameters,
    siglip_loss,
)


def reference(img, txt, scale):
    img, txt = F.normalize(img, dim=-1), F.normalize(txt, dim=-1)
    logits = scale * img @ txt.T
    labels = torch.arange(len(img))
    return (F.cross_entropy(logits, labels) + F.cross_entropy(logits.T, labels)) / 2


def test_matches_symmetric_infonce():
    g = torch.Generator().manual_seed(0)
    img, txt = torch.randn(6, 8, generator=g), torch.randn(6, 8, generator=g)
    s = torch.tensor(math.log(1 / 0.07))
    assert torch.allclose(clip_loss(img, txt, s), reference(img, txt, s.exp()), atol=1e-6)


def test_perfect_alignment_gives_low_loss():
    img = torch.eye(5)
    assert clip_loss(img, img.clone(), torch.tensor(MAX_LOGIT_SCALE)) < 0.01


def test_loss_uses_the_scale_as_given_and_passes_its_gradient_at_the_cap():
    x, y = torch.randn(4, 3), torch.randn(4, 3)
    assert torch.allclose(clip_loss(x, y, torch.tensor(5.0)), reference(x, y, torch.tensor(5.0).exp()), atol=1e-5)
    # the trainer clamps after the step, as OpenCLIP; the loss never cuts the gradient
    for value in (MAX_LOGIT_SCALE, 5.0):
        s = torch.tensor(value, requires_grad=True)
        clip_loss(x, y, s).backward()
        assert s.grad != 0


def siglip_reference(img, txt, scale, bias):
    img, txt = F.normalize(img, dim=-1), F.normalize(txt, dim=-1)
    total = 0.0
    for i in range(len(img)):
        for j in range(len(txt)):
            z = scale * img[i] @ txt[j] + bias
            total -= F.logsigmoid(z if i == j else -z)
    return total / len(img)


def test_siglip_matches_the_pairwise_sigmoid_loss():
    g = torch.Generator().manual_seed(1)
    img, txt = torch.randn(5, 8, generator=g), torch.randn(5, 8, generator=g)
    s, b = torch.tensor(SIGLIP_INIT_SCALE), torch.tensor(SIGLIP_INIT_BIAS)
    assert torch.allclose(siglip_loss(img, txt, s, b), siglip_reference(img, txt, s.exp(), b), atol=1e-5)
    assert siglip_loss(torch.eye(5), torch.eye(5), torch.tensor(MAX_LOGIT_SCALE), torch.tensor(-50.0)) < 1e-6


def test_siglip_init_gives_the_model_a_bias_and_the_paper_values():
    from training.models import build_model

    model = build_model("tiny", 50)
    init_loss_parameters(model, "siglip")
    assert model.logit_scale.item() == pytest.approx(math.log(10)) and model.logit_bias.item() == -10.0
    assert "logit_bias" in dict(model.named_parameters())
    clip = build_model("tiny", 50)
    init_loss_parameters(clip, "clip")
    assert not hasattr(clip, "logit_bias") and clip.logit_scale.item() == pytest.approx(math.log(1 / 0.07), rel=1e-4)


def test_equals_metaclip2_model_loss(tokenizer_dir):
    from training.models import build_model
    from training.tokenizer import load_tokenizer, special_ids, tokenize
    from training.train import ClipForward

    tok = load_tokenizer(tokenizer_dir)
    torch.manual_seed(0)
    model = build_model("tiny", len(tok), **special_ids(tok)).eval()
    ids, mask = tokenize(tok, ["a red square", "ein blau Quadrat", "一个红色的方块"])
    pix = torch.randn(3, 3, 32, 32)
    with torch.no_grad():
        hf = model(input_ids=ids, attention_mask=mask, pixel_values=pix, return_loss=True).loss
        ours = clip_loss(*ClipForward(model)(pix, ids, mask))
    assert torch.allclose(hf, ours, atol=1e-5)
