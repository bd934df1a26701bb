"""Evaluation of an exported model: multilingual zero-shot classification and image<->text retrieval.

    run_eval(model_dir, data, out_json=None, langs=None, batch_size=64, workers=0,
             classnames=None, device=None) -> dict

`model_dir` is a folder written by `export_hf` (RUN/hf) or any MetaClip2/CLIP checkpoint folder;
`data` an image folder or WebDataset shards (training/eval_data.py). Both may be URLs (s3://, gs://,
hf://, file://; core/storage.py): the data is streamed from the store; the model folder, which
transformers reads only from local disk, is copied once per machine (storage.local_copy). `out_json`
may be a URL too (written as one whole object). Images go through the
folder's own image processor with its PIL backend (as training's eval transform and OpenAI CLIP;
torchvision's bicubic differs slightly), texts through its tokenizer (truncated to the context length).
Metrics (docs/evaluation.md): zero-shot top-1/top-5 accuracy and mean per-class recall per
language, with one classifier per language built from that language's templates; retrieval
recall@1/5/10 in both directions. Ties count against the model: a query's rank is the number of
wrong candidates scoring at least as high as its best right one (within TIE_EPS, float noise of
cosine similarities), so a constant model scores 0 at every k below the gallery size.
"""
from __future__ import annotations

import io
import os
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import torch

from core import storage
from core.atomic import write_json_atomic
from core.errors import UserError
from curation.clip import embed_texts, features, load_model
from training.eval_data import EvalSource, open_source
from training.eval_templates import TEMPLATES, resolve_lang, templates_for

RECALL_KS = (1, 5, 10)
TIE_EPS = 1e-5


def query_ranks(scores: torch.Tensor, correct: torch.Tensor, eps: float = TIE_EPS) -> torch.Tensor:
    """Rank of each query's best correct candidate: wrong ones scoring >= it - eps. [Q, G] -> [Q]."""
    if not bool(correct.any(dim=1).all()):
        raise ValueError("every query needs at least one correct candidate")
    best = scores.masked_fill(~correct, float("-inf")).max(dim=1).values
    return ((scores >= best[:, None] - eps) & ~correct).sum(dim=1)


def recalls(ranks: torch.Tensor, ks=RECALL_KS, prefix: str = "R@") -> dict[str, float]:
    """Share of queries whose rank is below k, for each k."""
    return {f"{prefix}{k}": float((ranks < k).float().mean()) for k in ks}


def retrieval_metrics(image_emb: torch.Tensor, text_emb: torch.Tensor, text_image: torch.Tensor,
                      ks=RECALL_KS, block: int = 1024) -> dict:
    """Recall@k image->text and text->image; `text_image[j]` is the image index of text j.

    Similarities are cosine (embeddings are normalised by the caller); computed in row blocks so
    the full similarity matrix is never held at once.
    """
    n, m = image_emb.shape[0], text_emb.shape[0]
    images = torch.arange(n)
    i2t, t2i = [], []
    for s in range(0, n, block):
        scores = image_emb[s:s + block] @ text_emb.T
        i2t.append(query_ranks(scores, images[s:s + block, None] == text_image[None, :]))
    for s in range(0, m, block):
        scores = text_emb[s:s + block] @ image_emb.T
        t2i.append(query_ranks(scores, text_image[s:s + block, None] == images[None, :]))
    return {"image_to_text": recalls(torch.cat(i2t), ks), "text_to_image": recalls(torch.cat(t2i), ks),
            "images": n, "texts": m}


def zeroshot_metrics(image_emb: torch.Tensor, labels: torch.Tensor, classifier: torch.Tensor) -> dict:
    """Top-1, top-5 (top-C when fewer classes) accuracy and mean per-class recall."""
    num_classes = classifier.shape[0]
    ranks = query_ranks(image_emb @ classifier.T, labels[:, None] == torch.arange(num_classes)[None, :])
    hit = (ranks < 1).float()
    present = labels.unique()
    per_class = torch.stack([hit[labels == c].mean() for c in present])
    return {"top1": float(hit.mean()), "top5": float((ranks < min(5, num_classes)).float().mean()),
            "mean_per_class_recall": float(per_class.mean()), "images": int(labels.numel()),
            "classes": num_classes}


def zeroshot_classifier(model, tokenizer, classnames: list[str], templates: list[str], batch_size: int,
                        device: str) -> torch.Tensor:
    """[C, D] class embeddings: the normalised mean of each class's normalised template embeddings."""
    prompts = [t.format(c) for c in classnames for t in templates]
    emb = embed_texts(model, tokenizer, prompts, batch_size, device).view(len(classnames), len(templates), -1)
    return torch.nn.functional.normalize(emb.mean(dim=1), dim=-1)


class DecodedImages(torch.utils.data.IterableDataset):
    """Records of a source with images decoded and preprocessed; failures carry a reason instead."""

    def __init__(self, source: EvalSource, processor):
        self.source, self.processor = source, processor

    def __iter__(self):
        info = torch.utils.data.get_worker_info()
        worker, n = (info.id, info.num_workers) if info else (0, 1)
        try:
            for r in self.source.records(worker, n):
                yield self.decoded(r)
        except UserError as e:  # raised in the main process, as one line, not as a worker traceback
            yield {"fatal": str(e)}

    def decoded(self, r) -> dict:
        item = {"key": r.key, "label": r.label, "text": r.text, "lang": r.lang, "pixels": None, "error": None}
        if r.image is None:
            item["error"] = "no_image"
        else:
            try:
                item["pixels"] = self.decode(r.image)
            except Exception:  # noqa: BLE001 - any decoder failure means an unusable image
                item["error"] = "corrupt_image"
        return item

    def decode(self, data: bytes) -> torch.Tensor:
        from PIL import Image

        with Image.open(io.BytesIO(data)) as im:
            rgb = im.convert("RGB")
        return torch.as_tensor(self.processor(images=rgb, return_tensors="np")["pixel_values"][0])


def as_list(batch: list) -> list:
    return batch


@dataclass
class Embedded:
    """Image embeddings with their labels, captions and languages; skipped records by reason."""

    images: torch.Tensor
    labels: list[int | None] = field(default_factory=list)
    texts: list[str | None] = field(default_factory=list)
    langs: list[str | None] = field(default_factory=list)
    skipped: Counter = field(default_factory=Counter)


@torch.inference_mode()
def embed_images(model, processor, source: EvalSource, batch_size: int, workers: int, device: str) -> Embedded:
    """Decode, preprocess and embed every image of `source` (normalised, float32 on CPU)."""
    from tqdm import tqdm

    kwargs = {}
    if workers > 0 and any(storage.protocol(str(f)) not in (None, "file", "local", "memory") for f in source.files):
        kwargs["multiprocessing_context"] = "spawn"  # fsspec's async loop (s3fs, gcsfs) does not survive fork
        # (memory:// lives in this process only, so it keeps fork)
    loader = torch.utils.data.DataLoader(DecodedImages(source, processor), batch_size=batch_size,
                                         num_workers=workers, collate_fn=as_list, **kwargs)
    result = Embedded(images=torch.zeros(0), skipped=Counter(source.skipped))
    chunks = []
    total = len(source.files) if source.kind == "folder" else None
    with tqdm(total=total, unit="img", desc="eval images", file=sys.stderr, disable=None) as bar:
        for batch in loader:
            fatal = next((it["fatal"] for it in batch if "fatal" in it), None)
            if fatal is not None:
                raise UserError(fatal)
            good = [it for it in batch if it["error"] is None]
            result.skipped.update(it["error"] for it in batch if it["error"] is not None)
            bar.update(len(batch))
            if not good:
                continue
            pixels = torch.stack([it["pixels"] for it in good]).to(device)
            emb = features(model.get_image_features(pixel_values=pixels))
            chunks.append(torch.nn.functional.normalize(emb.float(), dim=-1).cpu())
            for it in good:
                result.labels.append(it["label"])
                result.texts.append(it["text"])
                result.langs.append(it["lang"])
    result.images = torch.cat(chunks) if chunks else torch.zeros(0, model.config.projection_dim)
    return result


def choose_langs(source: EvalSource, langs: list[str] | None) -> tuple[list[str], dict[str, str]]:
    """Languages to run zero-shot in, and those with class names left out (with the reason)."""
    if langs:
        for lang in langs:
            if lang not in source.templates:
                resolve_lang(lang)
            if lang not in source.classnames:
                have = ", ".join(sorted(source.classnames)) or "none"
                raise UserError(f"--langs {lang}: no class names in that language in {source.location} (have: {have})")
        return list(langs), {}
    chosen, left_out = [], {}
    for lang in sorted(source.classnames):
        try:
            if lang not in source.templates:
                resolve_lang(lang)
            chosen.append(lang)
        except UserError:
            left_out[lang] = f"no templates (known: {', '.join(sorted(TEMPLATES))})"
    return chosen, left_out


def evaluate(model, tokenizer, processor, source: EvalSource, langs: list[str] | None = None,
             batch_size: int = 64, workers: int = 0, device: str = "cpu") -> dict:
    """All metrics for one source with a loaded model (the pure-ish core of run_eval)."""
    chosen, left_out = choose_langs(source, langs)
    emb = embed_images(model, processor, source, batch_size, workers, device)
    labelled = [i for i, lab in enumerate(emb.labels) if lab is not None]
    captioned = [i for i, t in enumerate(emb.texts) if t is not None]
    if emb.images.shape[0] == 0:
        raise UserError(f"{source.flag} {source.location}: no usable images (skipped: {dict(emb.skipped)})")
    if not captioned and not (labelled and chosen):
        raise UserError(f"{source.flag} {source.location}: nothing to evaluate: samples need a class label with "
                        "class names "
                        f"(zero-shot) or a .txt caption (retrieval)")
    if langs and not labelled:
        raise UserError(f"--langs given but no sample in {source.location} has a class label")
    result: dict = {"counts": {"images": int(emb.images.shape[0]), "labelled": len(labelled),
                               "captioned": len(captioned), "classes": source.num_classes,
                               "skipped": dict(emb.skipped)},
                    "zeroshot": {}, "retrieval": None, "retrieval_by_lang": {}}
    if left_out:
        result["zeroshot_left_out"] = left_out
    if labelled and chosen:
        labels = torch.tensor([emb.labels[i] for i in labelled])
        images = emb.images[labelled]
        for lang in chosen:
            templates = source.templates.get(lang) or templates_for(lang)
            classifier = zeroshot_classifier(model, tokenizer, source.classnames[lang], templates, batch_size, device)
            result["zeroshot"][lang] = {**zeroshot_metrics(images, labels, classifier), "templates": len(templates)}
    if captioned:
        result["retrieval"], result["retrieval_by_lang"] = retrieval_results(model, tokenizer, emb, captioned,
                                                                             batch_size, device)
    return result


def retrieval_results(model, tokenizer, emb: Embedded, captioned: list[int], batch_size: int, device: str
                      ) -> tuple[dict, dict]:
    """Retrieval over the captioned images (each with one or several captions, as COCO/Flickr30k), and
    per language when the set holds several (each language its own gallery)."""
    caps = [emb.texts[i] if isinstance(emb.texts[i], list) else [emb.texts[i]] for i in captioned]
    owner = torch.tensor([j for j, c in enumerate(caps) for _ in c], dtype=torch.long)
    texts = embed_texts(model, tokenizer, [t for c in caps for t in c], batch_size, device)
    images = emb.images[captioned]
    overall = retrieval_metrics(images, texts, owner)
    by_lang: dict[str, list[int]] = {}
    for j, i in enumerate(captioned):
        if emb.langs[i] is not None:
            by_lang.setdefault(str(emb.langs[i]), []).append(j)
    per_lang = {}
    if len(by_lang) > 1:
        for lang, rows in sorted(by_lang.items()):
            keep = torch.isin(owner, torch.tensor(rows))
            remap = torch.full((len(caps),), -1, dtype=torch.long)
            remap[torch.tensor(rows)] = torch.arange(len(rows))
            per_lang[lang] = retrieval_metrics(images[torch.tensor(rows)], texts[keep], remap[owner[keep]])
    return overall, per_lang


def summary_line(result: dict, out: Path | str) -> str:
    parts = [f"eval: {result['counts']['images']} images"]
    for lang, m in result["zeroshot"].items():
        parts.append(f"zero-shot {lang} top1 {m['top1']:.3f} top5 {m['top5']:.3f}")
    if result["retrieval"]:
        r = result["retrieval"]
        i2t, t2i = r["image_to_text"], r["text_to_image"]
        parts.append(f"retrieval ({r['images']} images, {r['texts']} captions) i->t R@1 {i2t['R@1']:.3f} "
                     f"R@5 {i2t['R@5']:.3f} t->i R@1 {t2i['R@1']:.3f} R@5 {t2i['R@5']:.3f}")
    skipped = sum(result["counts"]["skipped"].values())
    if skipped:
        parts.append(f"{skipped} skipped {result['counts']['skipped']}")
    parts.append(f"{result['images_per_s']:.1f} img/s -> {out}")
    return "; ".join(parts)


def run_eval(model_dir: str | os.PathLike, data: str | os.PathLike, out_json: str | os.PathLike | None = None,
             langs: list[str] | None = None, batch_size: int = 64, workers: int = 0,
             classnames: str | os.PathLike | None = None, device: str | None = None, flag: str = "--data") -> dict:
    """Evaluate `model_dir` on `data`; write the results to `out_json` (default: next to the model
    folder, i.e. RUN/eval.json for RUN/hf) atomically and return them. `flag` names `data` in errors
    (`train --eval-data`)."""
    if batch_size < 1:
        raise UserError(f"--batch-size {batch_size}: must be at least 1")
    if workers < 0:
        raise UserError(f"--workers {workers}: must be 0 or more")
    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    if out_json is None:  # next to the model folder
        out_json = (storage.local_path(model_dir).resolve().parent / "eval.json" if storage.is_local(model_dir)
                    else storage.join(storage.parent(storage.normalize(model_dir)), "eval.json"))
    out = storage.local_path(out_json) if storage.is_local(out_json) else os.fspath(out_json)
    source = open_source(data, classnames, flag)
    choose_langs(source, langs)
    model, tokenizer, processor = load_model(model_dir, device)
    start = time.perf_counter()
    result = evaluate(model, tokenizer, processor, source, langs, batch_size, workers, device)
    seconds = time.perf_counter() - start
    result = {"model": str(model_dir), "data": str(data), "format": source.kind, **result,
              "seconds": round(seconds, 3), "images_per_s": result["counts"]["images"] / max(seconds, 1e-9)}
    if isinstance(out, Path):
        write_json_atomic(out, result)
    else:
        with storage.errors(out, "--out"):
            storage.write_json(out, result)
    print(summary_line(result, out), file=sys.stderr)
    return result
