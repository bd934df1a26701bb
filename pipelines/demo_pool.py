"""Embedded demo pool: rendered images with web-like multilingual alt-texts, in img2dataset's format.

`make_demo_pool(out_dir, n_images, seed)` writes, deterministically for a given (n_images, seed, ...):

- `OUT/pool/`: exactly what `img2dataset --output_format webdataset` writes: per shard `NNNNN.tar`
  (`KEY.jpg`, `KEY.txt`, `KEY.json`), `NNNNN.parquet` (caption, url, key, status, error_message,
  width, height, original_width, original_height, exif, sha256) and `NNNNN_stats.json`; keys are
  shard * 10**ceil(log10(samples per shard)) + row, zero-padded as img2dataset's `compute_key`.
- `OUT/eval/`: a held-out image folder `eval/<class_id>/*.jpg` with `eval/classnames.json`
  {lang: [name per class]} for every demo language (different images from the pool).
- `OUT/eval_captions/00000.tar`: the same held-out images as WebDataset samples with a clean caption
  in one of the demo languages (`.txt`) and `.json` {label, lang}, for image<->text retrieval.
- `OUT/metadata/<lang>.txt`: the demo concept words, one per line, for `curate metadata add`, so
  every concept word is a metadata entry whatever the packaged sources' cut-offs.

The pool is built to show what curation does: concept frequencies follow a Zipf law (balancing
flattens the head), captions come in 10 languages with realistic noise (camera file names, "click
here", SEO keyword stuffing, languages without metadata, emoji, very long texts, empty alt-texts),
some images have several alt-texts (same url in several rows, as Common Crawl gives), and some rows
failed to download. Images are simple enough for a tiny CLIP to learn on CPU in minutes.
"""
from __future__ import annotations

import argparse
import hashlib
import io
import json
import math
import random
import sys
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
from PIL import Image, ImageDraw

from curation.common import UserError, write_bytes_atomic, write_json_atomic, write_parquet_atomic

CONCEPTS = ["sun", "apple", "tree", "sea", "fire", "flower", "moon", "house", "grapes", "snow"]

WORDS: dict[str, list[str]] = {
    "en": ["sun", "apple", "tree", "sea", "fire", "flower", "moon", "house", "grapes", "snow"],
    "de": ["Sonne", "Apfel", "Baum", "Meer", "Feuer", "Blume", "Mond", "Haus", "Trauben", "Schnee"],
    "es": ["sol", "manzana", "árbol", "mar", "fuego", "flor", "luna", "casa", "uvas", "nieve"],
    "fr": ["soleil", "pomme", "arbre", "mer", "feu", "fleur", "lune", "maison", "raisin", "neige"],
    "ru": ["солнце", "яблоко", "дерево", "море", "огонь", "цветок", "луна", "дом", "виноград", "снег"],
    "zh": ["太阳", "苹果", "树", "大海", "火", "花", "月亮", "房子", "葡萄", "雪"],
    "ja": ["太陽", "りんご", "木", "海", "火", "花", "月", "家", "ぶどう", "雪"],
    "ar": ["شمس", "تفاحة", "شجرة", "بحر", "نار", "زهرة", "قمر", "منزل", "عنب", "ثلج"],
    "hi": ["सूरज", "सेब", "पेड़", "समुद्र", "आग", "फूल", "चाँद", "घर", "अंगूर", "बर्फ"],
    "th": ["ดวงอาทิตย์", "แอปเปิ้ล", "ต้นไม้", "ทะเล", "ไฟ", "ดอกไม้", "ดวงจันทร์", "บ้าน", "องุ่น", "หิมะ"],
}
LANGS = list(WORDS)

# Caption templates per language; the concept word always stands alone (spaces or wrapped punctuation).
TEMPLATES: dict[str, list[str]] = {
    "en": ["{w}", "a photo of a {w}", "{w} on a plain background, stock photo", "picture of the {w}, free stock image",
           "Beautiful {w} drawing for kids", "{w} clipart free download", "look at this {w} , so cute"],
    "de": ["Ein schönes Bild mit dem Motiv {w}", "{w} – Stockfoto und Bild", "Kostenloses Foto: {w} auf einfarbigem Hintergrund",
           "Zeichnung für Kinder: {w}", "Unser Motiv des Tages: {w}"],
    "es": ["foto de {w} sobre fondo liso", "imagen gratis de {w} para niños", "dibujo de {w} , ilustración",
           "{w} , foto de stock gratuita para descargar", "una imagen bonita: {w}"],
    "fr": ["photo : {w} sur fond uni", "image gratuite de {w} pour les enfants", "dessin : {w} , illustration",
           "{w} : photo libre de droits", "une très belle image : {w}"],
    "ru": ["{w}", "Фото: {w}", "красивая картинка: {w} , скачать бесплатно", "рисунок для детей: {w}", "{w} на однотонном фоне"],
    "zh": ["{w}", "这是一张{w}的照片", "高清{w}图片素材免费下载", "{w}图片大全", "一张{w}的图片"],
    "ja": ["{w}", "{w}の写真", "{w}のイラスト素材", "かわいい{w}のイラスト", "{w}の画像です"],
    "ar": ["{w}", "صورة {w}", "رسم {w} جميل", "صور {w} مجانية", "{w} على خلفية"],
    "hi": ["{w}", "{w} की तस्वीर", "{w} का चित्र", "सुंदर {w} फोटो", "{w} वॉलपेपर डाउनलोड"],
    "th": ["{w}", "รูป{w}", "ภาพวาด{w}สวยๆ", "{w}ภาพฟรี", "ภาพ{w}น่ารัก"],
}
# Share of alt-texts per language (English-heavy, like the web).
LANG_WEIGHTS = {"en": 0.28, "de": 0.08, "es": 0.08, "fr": 0.08, "ru": 0.08,
                "zh": 0.08, "ja": 0.08, "ar": 0.08, "hi": 0.08, "th": 0.08}
# Languages with no demo metadata: their alt-texts are rejected as "no metadata language".
OTHER_LANG_CAPTIONS = ["foto del sole al tramonto", "uma foto bonita da casa", "güzel bir elma resmi",
                       "zdjęcie drzewa w parku", "mooie foto van de zee", "kaunis kuva kukasta"]
NOISE_KINDS = ["filename", "click", "spam", "other_lang", "emoji", "long", "empty", "mixed"]
ZIPF_S = 1.1
SAMPLES_PER_SHARD = 10000
FAIL_ERRORS = ["HTTP Error 404: Not Found", "HTTP Error 403: Forbidden",
               "<urlopen error [Errno -2] Name or service not known>", "The read operation timed out"]
DEFAULT_BASE_URL = "https://images.worldclip-demo.invalid/img"


@dataclass(frozen=True)
class Row:
    """One pool row (one alt-text of one image)."""
    image_id: int
    concept: int
    caption: str
    lang: str  # language the caption was written in ("" for noise without language)
    failed: str | None  # img2dataset error_message for a failed download, else None


# ---------------------------------------------------------------- images

def _palette(rng: random.Random) -> tuple[int, int, int]:
    """A muted background colour, kept away from the saturated concept colours."""
    base = rng.randint(150, 215)
    return tuple(max(0, min(255, base + rng.randint(-25, 25))) for _ in range(3))


def _background(draw: ImageDraw.ImageDraw, size: int, rng: random.Random) -> None:
    c1, c2 = _palette(rng), _palette(rng)
    draw.rectangle([0, 0, size, size], fill=c1)
    kind = rng.randrange(4)
    step = rng.randint(5, 12)
    if kind == 1:
        for x in range(0, size, step):
            draw.line([x, 0, x, size], fill=c2, width=2)
    elif kind == 2:
        for y in range(0, size, step):
            for x in range(0, size, step):
                draw.ellipse([x, y, x + 2, y + 2], fill=c2)
    elif kind == 3:
        for i in range(size):
            t = i / size
            draw.line([0, i, size, i], fill=tuple(int(a * (1 - t) + b * t) for a, b in zip(c1, c2)))


def _jitter(rgb: tuple[int, int, int], rng: random.Random, amount: int = 20) -> tuple[int, int, int]:
    return tuple(max(0, min(255, c + rng.randint(-amount, amount))) for c in rgb)


def _draw_concept(draw: ImageDraw.ImageDraw, concept: str, cx: float, cy: float, r: float, rng: random.Random) -> None:
    """Draw one instance of `concept` centred at (cx, cy) with radius about r."""
    j = lambda rgb: _jitter(rgb, rng)  # noqa: E731
    box = [cx - r, cy - r, cx + r, cy + r]
    if concept == "sun":
        for k in range(8):
            a = k * math.pi / 4
            draw.line([cx, cy, cx + 1.5 * r * math.cos(a), cy + 1.5 * r * math.sin(a)], fill=j((250, 200, 0)), width=max(1, int(r / 5)))
        draw.ellipse([cx - 0.8 * r, cy - 0.8 * r, cx + 0.8 * r, cy + 0.8 * r], fill=j((255, 215, 0)))
    elif concept == "apple":
        draw.ellipse(box, fill=j((210, 20, 30)))
        draw.line([cx, cy - r, cx + 0.2 * r, cy - 1.4 * r], fill=(90, 50, 20), width=max(1, int(r / 6)))
        draw.ellipse([cx + 0.1 * r, cy - 1.4 * r, cx + 0.7 * r, cy - 1.0 * r], fill=j((40, 160, 40)))
    elif concept == "tree":
        draw.rectangle([cx - 0.18 * r, cy + 0.3 * r, cx + 0.18 * r, cy + 1.3 * r], fill=j((110, 70, 30)))
        draw.polygon([(cx, cy - 1.3 * r), (cx - r, cy + 0.5 * r), (cx + r, cy + 0.5 * r)], fill=j((20, 130, 40)))
    elif concept == "sea":
        for k in range(4):
            y = cy - 0.6 * r + k * 0.45 * r
            pts = [(cx - 1.4 * r + i * 0.14 * r, y + 0.15 * r * math.sin(i * 0.9)) for i in range(21)]
            draw.line(pts, fill=j((20, 80, 200)), width=max(2, int(r / 4)))
    elif concept == "fire":
        draw.polygon([(cx, cy - 1.3 * r), (cx - 0.8 * r, cy + 0.3 * r), (cx - 0.5 * r, cy + r),
                      (cx + 0.5 * r, cy + r), (cx + 0.8 * r, cy + 0.3 * r)], fill=j((255, 110, 0)))
        draw.polygon([(cx, cy - 0.3 * r), (cx - 0.35 * r, cy + 0.6 * r), (cx + 0.35 * r, cy + 0.6 * r)], fill=j((255, 220, 60)))
    elif concept == "flower":
        for k in range(6):
            a = k * math.pi / 3
            px, py = cx + 0.6 * r * math.cos(a), cy + 0.6 * r * math.sin(a)
            draw.ellipse([px - 0.45 * r, py - 0.45 * r, px + 0.45 * r, py + 0.45 * r], fill=j((220, 40, 200)))
        draw.ellipse([cx - 0.3 * r, cy - 0.3 * r, cx + 0.3 * r, cy + 0.3 * r], fill=j((250, 230, 80)))
    elif concept == "moon":
        draw.rectangle([cx - 1.3 * r, cy - 1.3 * r, cx + 1.3 * r, cy + 1.3 * r], fill=j((15, 20, 60)))
        draw.ellipse(box, fill=j((240, 235, 170)))
        draw.ellipse([cx - 0.5 * r, cy - 1.1 * r, cx + 1.5 * r, cy + 0.9 * r], fill=(15, 20, 60))
    elif concept == "house":
        draw.rectangle([cx - 0.8 * r, cy - 0.1 * r, cx + 0.8 * r, cy + r], fill=j((150, 100, 60)))
        draw.polygon([(cx, cy - 1.1 * r), (cx - 1.05 * r, cy), (cx + 1.05 * r, cy)], fill=j((90, 30, 30)))
        draw.rectangle([cx - 0.2 * r, cy + 0.4 * r, cx + 0.2 * r, cy + r], fill=(60, 40, 20))
    elif concept == "grapes":
        g = 0.32 * r
        for row, n in enumerate([4, 3, 2, 1]):
            for i in range(n):
                gx = cx + (i - (n - 1) / 2) * 2 * g
                gy = cy - 0.8 * r + row * 1.7 * g
                draw.ellipse([gx - g, gy - g, gx + g, gy + g], fill=j((100, 30, 140)))
    elif concept == "snow":
        draw.rectangle([cx - 1.3 * r, cy + 0.6 * r, cx + 1.3 * r, cy + 1.3 * r], fill=(250, 250, 255))
        for k in range(7):
            fx, fy = cx + rng.uniform(-1.1, 1.1) * r, cy + rng.uniform(-1.1, 0.5) * r
            s = rng.uniform(0.25, 0.4) * r
            for a in (0, math.pi / 3, 2 * math.pi / 3):
                draw.line([fx - s * math.cos(a), fy - s * math.sin(a), fx + s * math.cos(a), fy + s * math.sin(a)],
                          fill=(255, 255, 255), width=max(1, int(r / 7)))
    else:
        raise ValueError(f"unknown concept {concept!r}")


def render_image(concept: int, rng: random.Random, size: int = 64) -> bytes:
    """JPEG bytes of one or a few instances of CONCEPTS[concept] on a textured, muted background."""
    img = Image.new("RGB", (size, size))
    draw = ImageDraw.Draw(img)
    _background(draw, size, rng)
    count = rng.choices([1, 2, 3], weights=[6, 2, 1])[0]
    r = size * rng.uniform(0.22, 0.3) / math.sqrt(count)
    for _ in range(count):
        cx = rng.uniform(0.3, 0.7) * size if count == 1 else rng.uniform(0.2, 0.8) * size
        cy = rng.uniform(0.3, 0.7) * size if count == 1 else rng.uniform(0.2, 0.8) * size
        _draw_concept(draw, CONCEPTS[concept], cx, cy, r, rng)
    buf = io.BytesIO()
    img.save(buf, format="JPEG", quality=90)
    return buf.getvalue()


# ---------------------------------------------------------------- captions

def _zipf_weights(n: int, s: float = ZIPF_S) -> list[float]:
    return [1.0 / (k + 1) ** s for k in range(n)]


def concept_caption(concept: int, lang: str, rng: random.Random) -> str:
    """A templated alt-text naming the concept in `lang`, sometimes with a count."""
    word = WORDS[lang][concept]
    text = rng.choice(TEMPLATES[lang]).format(w=word)
    if rng.random() < 0.1:
        text = f"{text} {rng.randint(2, 3)}"
    return text


def noise_caption(kind: str, concept: int, lang: str, rng: random.Random) -> str:
    """Web noise. Kinds: camera file names, link text, SEO stuffing, other languages, emoji, very long
    texts, empty alt-text, and mixed-language captions."""
    if kind == "filename":
        return rng.choice(["IMG_{:04d}.JPG", "DSC{:05d}.jpg", "image-{}.png", "photo_{}.jpeg"]).format(rng.randint(1, 99999))
    if kind == "click":
        return rng.choice(["click here", "Click here to enlarge", "read more", "thumbnail", "logo", "banner"])
    if kind == "spam":
        words = [WORDS[lang][c] for c in rng.sample(range(len(CONCEPTS)), 6)]
        return " ".join(["BEST", "cheap", *words, "free shipping", "buy now", "discount", "100%", "original"])
    if kind == "other_lang":
        return rng.choice(OTHER_LANG_CAPTIONS)
    if kind == "emoji":
        return f"{rng.choice(['☀️', '🍎', '🌳', '🌊', '🔥', '🌸', '🌙', '🏠', '🍇', '❄️'])} {concept_caption(concept, lang, rng)} ✨✨ #{rng.choice(['love', 'art', 'nature', 'instagood'])}"
    if kind == "long":
        filler = ("Lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusmod tempor incididunt "
                  "ut labore et dolore magna aliqua. ")
        return concept_caption(concept, lang, rng) + " " + filler * rng.randint(6, 20)
    if kind == "empty":
        return rng.choice(["", " ", "\t"])
    if kind == "mixed":
        other = rng.choice([x for x in LANGS if x != lang])
        return f"{WORDS[lang][concept]} / {WORDS[other][concept]}"
    raise ValueError(f"unknown noise kind {kind!r}")


def plan_rows(n_images: int, seed: int, noise: float = 0.15, multi: float = 0.1, failed: float = 0.03) -> list[Row]:
    """All pool rows in order: one per alt-text; a `multi` share of images get 2-3 alt-texts."""
    rng = random.Random(f"worldclip-demo-pool:{seed}")
    weights = _zipf_weights(len(CONCEPTS))
    lang_w = [LANG_WEIGHTS[x] for x in LANGS]
    rows: list[Row] = []
    for image_id in range(n_images):
        concept = rng.choices(range(len(CONCEPTS)), weights=weights)[0]
        n_texts = rng.choice([2, 3]) if rng.random() < multi else 1
        for _ in range(n_texts):
            lang = rng.choices(LANGS, weights=lang_w)[0]
            if rng.random() < noise:
                kind = rng.choice(NOISE_KINDS)
                caption = noise_caption(kind, concept, lang, rng)
                lang = "" if kind in ("filename", "click", "other_lang", "empty") else lang
            else:
                caption = concept_caption(concept, lang, rng)
            fail = rng.choice(FAIL_ERRORS) if rng.random() < failed else None
            rows.append(Row(image_id, concept, caption, lang, fail))
    return rows


def image_rng(image_id: int, seed: int, stream: str = "pool") -> random.Random:
    """The renderer's random state for one image: a function of (seed, stream, image_id) only."""
    return random.Random(f"worldclip-demo-{stream}:{seed}:{image_id}")


def image_url(image_id: int, base_url: str = DEFAULT_BASE_URL) -> str:
    return f"{base_url.rstrip('/')}/{image_id:07d}.jpg"


# ---------------------------------------------------------------- writers

def img2dataset_key(shard_id: int, row: int, samples_per_shard: int = SAMPLES_PER_SHARD, oom_shard_count: int = 5) -> str:
    """img2dataset's `compute_key`: shard * 10**ceil(log10(samples per shard)) + row, zero-padded."""
    oom_sample = math.ceil(math.log10(samples_per_shard))
    return f"{(10 ** oom_sample) * shard_id + row:0{oom_sample + oom_shard_count}d}"


PARQUET_SCHEMA = pa.schema([
    ("caption", pa.string()), ("url", pa.string()), ("key", pa.string()), ("status", pa.string()),
    ("error_message", pa.string()), ("width", pa.int32()), ("height", pa.int32()),
    ("original_width", pa.int32()), ("original_height", pa.int32()), ("exif", pa.string()), ("sha256", pa.string()),
])


def _write_shard(folder: Path, shard_id: int, rows: list[Row], seed: int, size: int, base_url: str,
                 samples_per_shard: int) -> dict:
    """Write NNNNN.tar, NNNNN.parquet and NNNNN_stats.json for one shard as img2dataset does."""
    import webdataset as wds

    name = f"{shard_id:05d}"
    meta_rows: list[dict] = []
    status_dict: dict[str, int] = {}
    tar_buf = io.BytesIO()
    writer = wds.TarWriter(tar_buf, mtime=0.0)
    image_cache: dict[int, bytes] = {}
    for i, row in enumerate(rows):
        key = img2dataset_key(shard_id, i, samples_per_shard)
        meta = {"caption": row.caption, "url": image_url(row.image_id, base_url), "key": key, "status": None,
                "error_message": row.failed, "width": None, "height": None, "original_width": None,
                "original_height": None, "exif": None, "sha256": None}
        if row.failed is not None:
            meta["status"] = "failed_to_download"
            status_dict[row.failed] = status_dict.get(row.failed, 0) + 1
        else:
            if row.image_id not in image_cache:
                image_cache[row.image_id] = render_image(row.concept, image_rng(row.image_id, seed), size)
            img = image_cache[row.image_id]
            meta.update(status="success", width=size, height=size, original_width=size, original_height=size,
                        exif="{}", sha256=hashlib.sha256(img).hexdigest())
            status_dict["success"] = status_dict.get("success", 0) + 1
            writer.write({"__key__": key, "jpg": img, "txt": row.caption, "json": json.dumps(meta, indent=4)})
        meta_rows.append(meta)
    writer.close()
    write_bytes_atomic(folder / f"{name}.tar", tar_buf.getvalue())
    write_parquet_atomic(folder / f"{name}.parquet", pa.Table.from_pylist(meta_rows, schema=PARQUET_SCHEMA))
    successes = status_dict.get("success", 0)
    # img2dataset's fields; times are zero so that the output is byte-identical across runs
    stats = {"count": len(rows), "successes": successes, "failed_to_download": len(rows) - successes,
             "failed_to_resize": 0, "duration": 0.0, "start_time": 0.0, "end_time": 0.0,
             "status_dict": dict(sorted(status_dict.items()))}
    write_json_atomic(folder / f"{name}_stats.json", stats)
    return stats


def write_eval_set(folder: Path, captions_folder: Path, per_class: int, seed: int, size: int = 64) -> None:
    """Held-out images `folder/<class_id>/<n>.jpg` (class_id 00..NN in CONCEPTS order) + classnames.json,
    and the same images with captions (languages in turn) as a WebDataset shard for retrieval."""
    import webdataset as wds

    classnames = {lang: list(WORDS[lang]) for lang in LANGS}
    rng = random.Random(f"worldclip-demo-eval-captions:{seed}")
    buf = io.BytesIO()
    writer = wds.TarWriter(buf, mtime=0.0)
    for c in range(len(CONCEPTS)):
        for k in range(per_class):
            img = render_image(c, image_rng(c * 100000 + k, seed, stream="eval"), size)
            write_bytes_atomic(folder / f"{c:02d}" / f"{k:04d}.jpg", img)
            lang = LANGS[(c * per_class + k) % len(LANGS)]
            writer.write({"__key__": f"{c:02d}_{k:04d}", "jpg": img, "txt": concept_caption(c, lang, rng),
                          "json": json.dumps({"label": c, "lang": lang})})
    writer.close()
    write_json_atomic(folder / "classnames.json", classnames)
    write_bytes_atomic(captions_folder / "00000.tar", buf.getvalue())
    write_json_atomic(captions_folder / "classnames.json", classnames)


def write_demo_metadata(folder: Path) -> None:
    """One file per language with the demo concept words, for `curate metadata add --lang L --file F`."""
    for lang in LANGS:
        write_bytes_atomic(folder / f"{lang}.txt", ("\n".join(WORDS[lang]) + "\n").encode())


@dataclass(frozen=True)
class DemoPool:
    pool: Path
    eval: Path
    eval_captions: Path
    metadata: Path
    rows: int
    images: int
    failed: int


def make_demo_pool(out_dir: str | Path, n_images: int = 20000, seed: int = 0, shards: int | None = None,
                   image_size: int = 64, eval_per_class: int = 30, base_url: str = DEFAULT_BASE_URL,
                   progress: bool = True) -> DemoPool:
    """Write the demo pool (img2dataset format), the held-out eval set and the demo metadata lists.

    `shards=None` splits rows as img2dataset's default (10000 per shard); `shards=K` splits them into
    K shards as img2dataset would with `number_sample_per_shard = ceil(rows / K)`.
    """
    if n_images < 1 or (shards is not None and shards < 1):
        raise UserError(f"--images ({n_images}) and --shards ({shards}) must be >= 1")
    out = Path(out_dir)
    rows = plan_rows(n_images, seed)
    per_shard = SAMPLES_PER_SHARD if shards is None else max(1, math.ceil(len(rows) / shards))
    from tqdm import tqdm

    failed = 0
    chunks = [rows[i:i + per_shard] for i in range(0, len(rows), per_shard)]
    for shard_id, chunk in enumerate(tqdm(chunks, desc="demo pool shards", disable=not progress)):
        failed += _write_shard(out / "pool", shard_id, chunk, seed, image_size, base_url, per_shard)["failed_to_download"]
    write_eval_set(out / "eval", out / "eval_captions", eval_per_class, seed, image_size)
    write_demo_metadata(out / "metadata")
    return DemoPool(out / "pool", out / "eval", out / "eval_captions", out / "metadata", len(rows), n_images, failed)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m pipelines.demo_pool", description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", required=True, help="output folder: writes OUT/pool, OUT/eval, OUT/eval_captions, OUT/metadata")
    parser.add_argument("--images", type=int, default=20000, help="number of distinct images (default 20000)")
    parser.add_argument("--seed", type=int, default=0, help="seed; same seed and sizes give byte-identical output")
    parser.add_argument("--shards", type=int, default=None,
                        help="number of img2dataset shards (default: 10000 rows per shard, as img2dataset)")
    parser.add_argument("--image-size", type=int, default=64, help="rendered image side in pixels (default 64)")
    parser.add_argument("--eval-per-class", type=int, default=30, help="held-out images per class (default 30)")
    parser.add_argument("--base-url", default=DEFAULT_BASE_URL, help="url prefix written in the pool's url column")
    args = parser.parse_args(argv)
    try:
        p = make_demo_pool(args.out, args.images, args.seed, args.shards, args.image_size, args.eval_per_class, args.base_url)
    except UserError as e:
        print(f"{parser.prog}: error: {e}", file=sys.stderr)
        return 2
    print(f"demo pool: {p.rows} alt-texts of {p.images} images ({p.failed} failed downloads) in {p.pool}; "
          f"eval set in {p.eval} and {p.eval_captions}; demo metadata lists in {p.metadata}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
