"""Input factories for training tests: small DESIGN-format CURATED shard sets (webdataset.TarWriter).

Images are learnable: each sample is a noisy solid colour and its caption names the colour, in one
of several languages, so a tiny CLIP's loss falls within a few dozen steps. Plain functions and
constants, importable as `shard_factory` from any test folder (pyproject's pytest `pythonpath`).
"""
from __future__ import annotations

import io
import json
import tarfile
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from PIL import Image

COLOURS = {
    "red": (220, 30, 30), "green": (30, 200, 40), "blue": (30, 40, 220), "yellow": (230, 220, 30),
    "purple": (140, 30, 160), "cyan": (30, 210, 220), "orange": (240, 140, 20), "grey": (128, 128, 128),
}
WORDS = {  # lang -> colour word per colour, in COLOURS order
    "en": ["red", "green", "blue", "yellow", "purple", "cyan", "orange", "grey"],
    "de": ["rot", "grün", "blau", "gelb", "lila", "türkis", "orange", "grau"],
    "zh": ["红色", "绿色", "蓝色", "黄色", "紫色", "青色", "橙色", "灰色"],
    "th": ["สีแดง", "สีเขียว", "สีน้ำเงิน", "สีเหลือง", "สีม่วง", "สีฟ้า", "สีส้ม", "สีเทา"],
    "ar": ["أحمر", "أخضر", "أزرق", "أصفر", "بنفسجي", "سماوي", "برتقالي", "رمادي"],
}
TEMPLATES = {"en": "a {} square", "de": "ein {} Quadrat", "zh": "一个{}的方块", "th": "สี่เหลี่ยม{}", "ar": "مربع {}"}
LANGS = list(WORDS)


def entry_id(lang: str, colour: int) -> int:
    return LANGS.index(lang) * len(COLOURS) + colour


def colour_image(colour: int, rng: np.random.Generator, size: int = 40, fmt: str = "PNG") -> bytes:
    rgb = np.array(list(COLOURS.values())[colour], dtype=np.int16)
    a = np.clip(rgb + rng.integers(-20, 21, (size, size, 3)), 0, 255).astype(np.uint8)
    buf = io.BytesIO()
    Image.fromarray(a).save(buf, format=fmt)
    return buf.getvalue()


def sample(i: int, rng: np.random.Generator, n_texts: int = 1) -> dict:
    """One DESIGN-format sample: uid u<i>, a colour image and 1..n matched texts."""
    colour = int(rng.integers(len(COLOURS)))
    texts = []
    for _ in range(n_texts):
        lang = LANGS[int(rng.integers(len(LANGS)))]
        texts.append([TEMPLATES[lang].format(WORDS[lang][colour]), lang, [entry_id(lang, colour)]])
    text, lang, ents = texts[0]
    meta = {"uid": f"u{i:06d}", "url": f"http://example.com/{i}.png", "lang": lang, "entry_ids": ents,
            "text": text, "texts": texts}
    return {"__key__": f"{i:08d}", "png": colour_image(colour, rng), "txt": text,
            "json": json.dumps(meta, ensure_ascii=False)}


def write_shards(curated: Path, n_shards: int, per_shard: int, seed: int = 0, n_texts: int = 1,
                 online: bool = False, t: float | None = None, extra: dict | None = None) -> str:
    """CURATED/shards/{00000..}.tar (+ curation.json and counts.parquet when online); returns the brace spec."""
    import webdataset as wds

    rng = np.random.default_rng(seed)
    shards = curated / "shards"
    shards.mkdir(parents=True, exist_ok=True)
    counts = np.zeros(len(LANGS) * len(COLOURS), dtype=np.int64)
    i = 0
    for s in range(n_shards):
        with wds.TarWriter(str(shards / f"{s:05d}.tar")) as w:
            for _ in range(per_shard):
                smp = sample(i, rng, n_texts)
                for _, _, ents in json.loads(smp["json"])["texts"]:
                    counts[ents] += 1
                smp.update((extra or {}).get(i, {}))
                w.write(smp)
                i += 1
    if online:
        ids = np.arange(len(counts), dtype=np.int32)
        pq.write_table(pa.table({"entry_id": ids, "lang": [LANGS[k // len(COLOURS)] for k in ids], "count": counts}),
                       curated / "counts.parquet")
        (curated / "curation.json").write_text(json.dumps({"online": True, "t": t, "seed": 0,
                                                           "counts": "counts.parquet"}))
    return str(shards / ("{00000..%05d}.tar" % (n_shards - 1)) if n_shards > 1 else shards / "00000.tar")


def caption_corpus() -> list[str]:
    return [TEMPLATES[lang].format(w) for lang in LANGS for w in WORDS[lang]] * 20


def shard_metas(curated: Path) -> dict[str, dict]:
    """Each sample's JSON metadata in CURATED's shards, by uid (what captions/recaption attached, for checks)."""
    out = {}
    for shard in sorted((curated / "shards").glob("*.tar")):
        with tarfile.open(shard) as tf:
            for m in tf:
                if m.name.endswith(".json"):
                    meta = json.loads(tf.extractfile(m).read())
                    out[meta["uid"]] = meta
    return out
