"""2-process gloo DDP gives the single-process loss and gradients on the same global batch (CLIP and SigLIP)."""
from __future__ import annotations

import pytest
import torch
import torch.multiprocessing as mp

from training.loss import clip_loss, init_loss_parameters, siglip_loss

BATCH = 8


def _setup(tokenizer_dir, loss="clip"):
    from training.models import build_model
    from training.tokenizer import load_tokenizer, special_ids, tokenize

    tok = load_tokenizer(tokenizer_dir)
    torch.manual_seed(0)
    model = build_model("tiny", len(tok), **special_ids(tok))
    init_loss_parameters(model, loss)
    words = ["red", "blau", "绿色", "สีแดง", "أزرق", "grey", "gelb", "紫色"]
    ids, mask = tokenize(tok, [f"a {w} square" for w in words])
    pix = torch.randn(BATCH, 3, 32, 32, generator=torch.Generator().manual_seed(1))
    return model, pix, ids, mask


def _grads(model):
    return {n: p.grad.detach().clone() for n, p in model.named_parameters() if p.grad is not None}


def _loss(name, model, features, local_loss=False, gather=False):
    if name == "siglip":
        return siglip_loss(*features, model.logit_bias)
    return clip_loss(*features, local_loss=local_loss, gather_with_grad=gather)


def _worker(rank, world, init, tokenizer_dir, loss_name, local_loss, gather, out):
    import torch.distributed as dist

    from training.distributed import shutdown
    from training.train import ClipForward

    dist.init_process_group("gloo", init_method=init, rank=rank, world_size=world)
    try:
        model, pix, ids, mask = _setup(tokenizer_dir, loss_name)
        ddp = torch.nn.parallel.DistributedDataParallel(ClipForward(model))
        sl = slice(rank * BATCH // world, (rank + 1) * BATCH // world)
        loss = _loss(loss_name, model, ddp(pix[sl], ids[sl], mask[sl]), local_loss, gather)
        loss.backward()
        total = loss.detach().clone()
        dist.all_reduce(total)
        if rank == 0:
            torch.save({"loss": total / world, "grads": _grads(model)}, out)
        del ddp, model, loss
    except BaseException:
        shutdown(sync=False)
        raise
    shutdown()  # as the train CLI: collect what holds the group, leave together


@pytest.mark.slow
@pytest.mark.parametrize("loss_name,local_loss,gather", [("clip", False, True), ("clip", True, True),
                                                        ("clip", False, False), ("siglip", False, False)])
def test_two_process_gloo_matches_one_process(tokenizer_dir, tmp_path, loss_name, local_loss, gather):
    from training.train import ClipForward

    model, pix, ids, mask = _setup(tokenizer_dir, loss_name)
    ref = _loss(loss_name, model, ClipForward(model)(pix, ids, mask))
    ref.backward()
    ref_grads = _grads(model)

    out = tmp_path / "rank0.pt"
    mp.start_processes(_worker, nprocs=2, join=True, start_method="spawn",
                       args=(2, f"file://{tmp_path / 'store'}", tokenizer_dir, loss_name, local_loss, gather, out))
    got = torch.load(out)
    assert torch.allclose(got["loss"], ref.detach(), atol=1e-5)
    assert got["grads"].keys() == ref_grads.keys()
    for name, g in ref_grads.items():
        if gather or loss_name == "siglip" or name == "logit_scale":  # siglip always gathers texts with gradient
            expected = g
        else:  # OpenCLIP semantics without gather-with-grad: only local features get gradient -> 1/world
            expected = g / 2
        assert torch.allclose(got["grads"][name], expected, atol=1e-5, rtol=1e-3), name


@pytest.mark.slow
def test_torchrun_two_process_train_run(shards, tokenizer_dir, tmp_path):
    import json
    import shutil
    import subprocess
    import sys
    from pathlib import Path

    torchrun = Path(sys.executable).parent / "torchrun"
    cmd = [str(torchrun) if torchrun.exists() else shutil.which("torchrun"), "--standalone", "--nproc_per_node", "2",
           "-m", "training.cli", "--shards", shards, "--tokenizer", str(tokenizer_dir), "--out", str(tmp_path / "run"),
           "--steps", "4", "--batch-size", "4", "--accum-freq", "2", "--workers", "1", "--save-every", "2",
           "--gather-with-grad", "--local-loss", "--log-samples"]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    ranks = [[json.loads(x) for x in (tmp_path / "run" / "samples" / f"rank{k}.jsonl").read_text().splitlines()]
             for k in (0, 1)]
    uids = [{u for row in rows for u in row["uids"]} for rows in ranks]
    assert len(ranks[0]) == len(ranks[1]) == 4 and not uids[0] & uids[1]
    ck = torch.load(tmp_path / "run" / "checkpoints" / "step_00000004.pt", weights_only=False)
    assert ck["world_size"] == 2 and ck["loader"]["lanes"] == 2 and ck["loader"]["global_batch"] == 16
    assert sorted(ck["loader"]["positions"]) == ["0", "1"]
