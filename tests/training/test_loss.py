"""Contrastive loss: equals the symmetric InfoNCE (and MetaClip2Model's own loss); logit scale clamp."""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from training.loss import MAX_LOGIT_SCALE, clip_loss


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


def test_perfect_alignment_gives_low_loss_and_clamp_at_ln100():
    img = torch.eye(5)
    low = clip_loss(img, img.clone(), torch.tensor(MAX_LOGIT_SCALE))
    assert low < 0.01
    big = torch.tensor(10.0, requires_grad=True)
    loss = clip_loss(torch.randn(4, 3), torch.randn(4, 3), big)
    loss.backward()
    assert big.grad == 0  # clamped: no gradient above ln 100
    x, y = torch.randn(4, 3), torch.randn(4, 3)
    assert torch.allclose(clip_loss(x, y, torch.tensor(10.0)), reference(x, y, torch.tensor(100.0)), atol=1e-6)


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
