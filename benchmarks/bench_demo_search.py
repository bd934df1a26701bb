"""Search for a demo training setting that learns: an in-memory stand-in for `train` + the ablation's zero-shot.

Same model (the tiny preset, HF MetaClip2; --patch/--width/--vlayers/--tlayers change it), the same
clip_loss, AdamW param groups and betas, warmup + cosine schedule, random resized crop and logit-scale
clamp as `train`; the shards (a quickstart's CURATED/UNBALANCED, or a demo pool's tars) are decoded
once into memory and each batch's text is cut to its longest alt-text. One seed, single process, one
torch thread. Prints zero-shot top-1 per bucket (pipelines.ablation.buckets) and language on the
held-out folder at --evals points, with training.eval's templates (--bare also scores the bare
name) — or, with --sup, a supervised linear head on the concept labels (a ceiling for the image tower).

    python benchmarks/bench_demo_search.py --base DEMO_OUT --cond UNBALANCED --steps 800
    python benchmarks/bench_demo_search.py --base POOLDIR --cond demo/pool --steps 600   # after demo_search_pool.py
"""

import argparse
import io
import json
import math
import sys
import tarfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import numpy as np
import torch
from PIL import Image

torch.set_num_threads(1)
from pipelines.ablation import buckets
from training.eval import zeroshot_classifier
from training.eval_templates import templates_for
from training.loss import clip_loss
from training.models import build_model
from training.optim import param_groups
from training.schedule import lr_lambda
from training.tokenizer import load_tokenizer, special_ids
from training.transforms import eval_image, normalize, train_crop

ap = argparse.ArgumentParser()
ap.add_argument("--base")
ap.add_argument("--cond", default="CURATED")
ap.add_argument("--steps", type=int, default=500)
ap.add_argument("--bs", type=int, default=64)
ap.add_argument("--lr", type=float, default=2e-3)
ap.add_argument("--warmup", type=int, default=20)
ap.add_argument("--img", type=int, default=32)
ap.add_argument("--ctx", type=int, default=77)
ap.add_argument("--seed", type=int, default=0)
ap.add_argument("--wd", type=float, default=0.2)
ap.add_argument("--evals", type=int, default=2)
ap.add_argument("--langs", default=None)
ap.add_argument("--scale", type=float, default=None)
ap.add_argument("--sup", action="store_true")
ap.add_argument("--bare", action="store_true")
ap.add_argument("--nimages", default=8000)
ap.add_argument("--patch", type=int, default=8)
ap.add_argument("--width", type=int, default=64)
ap.add_argument("--vlayers", type=int, default=2)
ap.add_argument("--tlayers", type=int, default=2)
ap.add_argument("--init", help="start from this state_dict (a --save of an earlier run: the warm start)")
ap.add_argument("--save", help="write the model's state_dict here at the end")
a = ap.parse_args()
base = Path(a.base)
tok = load_tokenizer(base / "TOKENIZER")
imgs, txts, urls = [], [], []
for tarp in sorted(
    ((base / a.cond / "shards") if (base / a.cond / "shards").is_dir() else (base / a.cond)).glob("*.tar")
):
    with tarfile.open(tarp) as tf:
        mem = {}
        for m in tf.getmembers():
            k, ext = m.name.rsplit(".", 1)
            mem.setdefault(k, {})[ext] = tf.extractfile(m).read()
        for k, d in mem.items():
            if "jpg" in d and "txt" in d:
                imgs.append(Image.open(io.BytesIO(d["jpg"])).convert("RGB"))
                imgs[-1].load()
                txts.append(d["txt"].decode())
                urls.append(json.loads(d["json"])["url"])
enc = tok(txts, max_length=77, truncation=True, padding="max_length", return_tensors="pt")
ids, am = enc["input_ids"], enc["attention_mask"]
lens = am.sum(1)
print(
    f"{len(imgs)} samples; token length p50 {lens.median().item()} "
    f"p90 {lens.float().quantile(0.9).item()} max {lens.max().item()}",
    flush=True,
)
g = torch.Generator().manual_seed(a.seed)
torch.manual_seed(a.seed)
rng = np.random.default_rng(a.seed)
import dataclasses

import training.presets as P

P.PRESETS["tiny"] = dataclasses.replace(
    P.PRESETS["tiny"],
    patch_size=a.patch,
    vision_width=a.width,
    vision_mlp=4 * a.width,
    embed_dim=a.width,
    text_width=a.width,
    vision_layers=a.vlayers,
    text_layers=a.tlayers,
)
model = build_model("tiny", len(tok), image_size=a.img, **special_ids(tok))
if a.init:
    model.load_state_dict(torch.load(a.init))
if a.scale:
    with torch.no_grad():
        model.logit_scale.fill_(math.log(a.scale))
if a.sup:
    from pipelines.demo_pool import plan_rows

    n_img = int(json.loads((base / "demo/pool/00000_stats.json").read_text())["count"])
    rows = plan_rows(int(a.nimages), 0)
    cmap = {r.image_id: r.concept for r in rows}
    labels = torch.tensor([cmap[int(u.rsplit("/", 1)[1].split(".")[0])] for u in urls])
    head = torch.nn.Linear(a.width, 117)
    model.add_module("suphead", head)
opt = torch.optim.AdamW(param_groups(model, a.wd, a.lr, None), lr=a.lr, betas=(0.9, 0.98), eps=1e-6)
sched = torch.optim.lr_scheduler.LambdaLR(opt, lr_lambda(a.warmup, a.steps))
# eval set
ev = base / "demo" / "eval"
names = json.loads((ev / "classnames.json").read_text())
langs = a.langs.split(",") if a.langs else list(names)
eimgs, elabels = [], []
for cdir in sorted(p for p in ev.iterdir() if p.is_dir()):
    for f in sorted(cdir.glob("*.jpg")):
        eimgs.append(eval_image(Image.open(f), a.img))
        elabels.append(int(cdir.name))
eimgs = torch.stack(eimgs)
elabels = torch.tensor(elabels)
B = buckets()


def print_eval(tag: str, step: int, r: dict, keys: tuple[str, ...]) -> None:
    """One line: the mean over languages of each bucket's top-1 in `keys` that `r` has, then each language's all."""
    summ = {k: np.mean([r[l][k] for l in langs]) for k in keys if k in r[langs[0]]}
    print(f"{tag} step {step}: " + " ".join(f"{k} {v:.3f}" for k, v in summ.items()) + " | "
          + " ".join(f"{l} {r[l]['all']:.2f}" for l in langs), flush=True)


def evaluate():
    model.eval()
    with torch.no_grad():
        o = model.get_image_features(pixel_values=eimgs)
        o = o if isinstance(o, torch.Tensor) else o.pooler_output
        ie = torch.nn.functional.normalize(o, dim=-1)
        res = {}
        if a.sup:
            pred = head(o).argmax(1)
            pc = [float((pred[elabels == c] == c).float().mean()) for c in range(117)]
            r = {b: float(np.mean([pc[c] for c in cls])) for b, cls in B.items()}
            r["all"] = float(np.mean(pc))
            model.train()
            return {l: r for l in langs}
        for lang in langs:
            cl = zeroshot_classifier(model, tok, names[lang], templates_for(lang) if not a.bare else ["{}"], 256, "cpu")
            pred = (ie @ cl.T).argmax(1)
            pc = [float((pred[elabels == c] == c).float().mean()) for c in range(len(names[lang]))]
            res[lang] = {b: float(np.mean([pc[c] for c in cls])) for b, cls in B.items()}
            res[lang]["all"] = float(np.mean(pc))
            from pipelines.demo_pool import concept_ranks

            res[lang]["top10"] = float(np.mean([pc[c] for c in concept_ranks()[:10]]))
    model.train()
    return res


order = []
t0 = time.perf_counter()
losses = []
evpts = {int(a.steps * (i + 1) / a.evals) for i in range(a.evals)}
for step in range(1, a.steps + 1):
    if not order:
        order = list(rng.permutation(len(imgs)))
    idx = [order.pop() for _ in range(min(a.bs, len(order)))]
    px = normalize(torch.from_numpy(np.stack([train_crop(imgs[i], a.img, rng) for i in idx])))
    L = min(a.ctx, int(lens[idx].max()))
    ii, mm = ids[idx, :L].clone(), am[idx, :L]
    # keep </s> for truncated texts
    cut = lens[idx] > L
    ii[cut, L - 1] = tok.eos_token_id
    img = model.get_image_features(pixel_values=px)
    txt = model.get_text_features(input_ids=ii, attention_mask=mm)
    img = img if isinstance(img, torch.Tensor) else img.pooler_output
    txt = txt if isinstance(txt, torch.Tensor) else txt.pooler_output
    loss = (
        clip_loss(img, txt, model.logit_scale)
        if not a.sup
        else torch.nn.functional.cross_entropy(head(img), labels[idx])
    )
    opt.zero_grad()
    loss.backward()
    opt.step()
    sched.step()
    with torch.no_grad():
        model.logit_scale.clamp_(0, math.log(100))
    losses.append(loss.item())
    if step % 100 == 0:
        print(
            f"step {step} loss {np.mean(losses[-100:]):.3f} scale {model.logit_scale.exp().item():.1f} "
            f"{time.perf_counter() - t0:.0f}s",
            flush=True,
        )
    if step in evpts:
        if a.bare:
            a.bare = False
            r = evaluate()
            a.bare = True
            print_eval("EVAL-templates", step, r, ("head", "middle", "tail", "all"))
        r = evaluate()
        print_eval("EVAL", step, r, ("head", "middle", "tail", "all", "top10"))
if a.save:
    torch.save(model.state_dict(), a.save)
print(json.dumps(vars(a)), f"train+eval {time.perf_counter() - t0:.0f}s")
