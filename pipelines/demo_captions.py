"""Web-like alt-texts for the demo pool: varied phrasing around a concept's name, plus web noise.

A caption is one of many frames per language (stock-photo titles, shop listings, sticker and icon
sites, social posts, file-name-ish strings) with the concept's CLDR name standing alone, and often
a context word (icon, tattoo, t-shirt, wallpaper …) drawn from a per-language list, so no single
frame word sits on every caption. Noise: camera file names, link text, SEO stuffing, languages
without demo metadata, emoji and hashtags, very long and empty alt-texts, mixed-language captions.
"""
from __future__ import annotations

import random

from pipelines.demo_concepts import LANGS, names

FRAMES: dict[str, list[str]] = {
    "en": ["{w}", "{w} {x}", "{w} {x} png", "{x} with {w}", "{w} icon vector illustration", "Free {w} {x} download",
           "{w} - stock illustration", "cute {w} {x} for kids", "{w} sticker", "Vintage {w} {x}", "my new {w} {x}!",
           "{w} symbol isolated on white", "{x} | {w}", "Buy {w} {x} online", "{w} emoji meaning"],
    "de": ["{w}", "{w} {x}", "Motiv: {w}", "{x} mit Motiv {w}", "{w} – Symbol, Vektorgrafik", "{w} Aufkleber kaufen",
           "Kostenlose Grafik: {w}", "Ausmalbild {w} für Kinder", "{x} {w} günstig bestellen", "Bedeutung von {w}"],
    "es": ["{w}", "{w} {x}", "icono de {w}", "{x} de {w} para niños", "{w} , ilustración vectorial",
           "pegatina {w}", "imagen gratis: {w}", "Comprar {x} {w} online", "significado del emoji {w}", "{w} png"],
    "fr": ["{w}", "{w} {x}", "icône {w}", "{x} {w} pour enfants", "{w} : illustration vectorielle", "autocollant {w}",
           "image gratuite : {w}", "Acheter {x} {w} en ligne", "signification de l'emoji {w}", "{w} png"],
    "it": ["{w}", "{w} {x}", "icona {w}", "{x} {w} per bambini", "{w} , illustrazione vettoriale",
           "adesivo {w}", "immagine gratis: {w}", "Acquista {x} {w} online", "significato dell'emoji {w}", "{w} png"],
    "ru": ["{w}", "{w} {x}", "значок: {w}", "{x} {w} для детей", "{w} , векторная иллюстрация",
           "наклейка {w}", "картинка: {w} , скачать бесплатно", "купить {x} {w}", "что значит эмодзи {w}", "{w} png"],
    "zh": ["{w}", "{w}的{x}", "{w}图标下载", "{w}矢量图素材", "高清{w}{x}图片免费下载", "这个{w}贴纸", "可爱的{w}{x}",
           "{w}表情是什么意思", "{w}图片大全", "这是一张{w}的图片"],
    "ja": ["{w}", "{w}の{x}", "{w}のアイコン", "{w}のイラスト素材", "かわいい{w}の{x}", "{w}ステッカー",
           "{w}の絵文字の意味", "無料の{w}画像", "{w}のフリー素材", "{w}の画像です"],
    "ko": ["{w}", "{w} {x}", "{w} 아이콘", "{w} 일러스트 무료 다운로드", "귀여운 {w} {x}", "{w} 스티커",
           "{w} 이모지 뜻", "{w} 이미지", "{x} {w} 구매", "{w} 벡터 그림"],
    "ar": ["{w}", "{w} {x}", "أيقونة {w}", "صورة {w}", "رسم {w} جميل", "ملصق {w}", "صور {w} مجانية", "معنى رمز {w}",
           "{x} {w} للأطفال", "{w} على خلفية بيضاء"],
}
CONTEXT: dict[str, list[str]] = {
    "en": ["icon", "tattoo", "t-shirt", "wallpaper", "logo", "sticker", "clipart", "poster", "mug", "necklace",
           "drawing", "pattern", "design", "badge", "keychain"],
    "de": ["Tattoo", "T-Shirt", "Hintergrund", "Logo", "Aufkleber", "Poster", "Tasse", "Kette", "Zeichnung", "Muster"],
    "es": ["tatuaje", "camiseta", "fondo", "logo", "pegatina", "póster", "taza", "collar", "dibujo", "patrón"],
    "fr": ["tatouage", "t-shirt", "fond d'écran", "logo", "autocollant", "affiche", "tasse", "collier", "dessin",
           "motif"],
    "it": ["tatuaggio", "maglietta", "sfondo", "logo", "adesivo", "poster", "tazza", "collana", "disegno", "motivo"],
    "ru": ["тату", "футболка", "обои", "логотип", "наклейка", "постер", "кружка", "кулон", "рисунок", "узор"],
    "zh": ["纹身", "T恤", "壁纸", "标志", "贴纸", "海报", "杯子", "项链", "插画", "图案"],
    "ja": ["タトゥー", "Tシャツ", "壁紙", "ロゴ", "ステッカー", "ポスター", "マグカップ", "ネックレス", "イラスト",
           "パターン"],
    "ko": ["타투", "티셔츠", "배경화면", "로고", "스티커", "포스터", "머그컵", "목걸이", "그림", "패턴"],
    "ar": ["وشم", "قميص", "خلفية", "شعار", "ملصق", "ملصق جداري", "كوب", "قلادة", "رسم", "نقش"],
}
# Captions in languages without demo metadata: rejected as "no metadata language" by build-index.
OTHER_LANG_CAPTIONS = ["uma foto bonita do símbolo", "güzel bir sembol resmi", "zdjęcie symbolu na koszulce",
                       "mooie tatoeage van een symbool", "kaunis kuva symbolista", "en vacker symbol på en mugg"]
NOISE_KINDS = ["filename", "click", "spam", "other_lang", "emoji", "long", "empty", "mixed"]
LOREM = "Lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusmod tempor incididunt ut labore. "


def concept_caption(concept: int, lang: str, rng: random.Random) -> str:
    """A web-like alt-text naming `concept` in `lang` (the name stands alone under MetaCLIP's spacing)."""
    word = names()[lang][concept]
    text = rng.choice(FRAMES[lang]).format(w=word, x=rng.choice(CONTEXT[lang]))
    if rng.random() < 0.1:
        text = f"{text} {rng.randint(2, 99)}"
    return text


def noise_caption(kind: str, concept: int, lang: str, rng: random.Random) -> str:
    """One of NOISE_KINDS; kinds that name the concept use `lang`'s name for it."""
    if kind == "filename":
        template = rng.choice(["IMG_{:04d}.JPG", "DSC{:05d}.jpg", "image-{}.png", "photo_{}.jpeg"])
        return template.format(rng.randint(1, 99999))
    if kind == "click":
        return rng.choice(["click here", "Click here to enlarge", "read more", "thumbnail", "logo", "banner"])
    if kind == "spam":
        others = [names()[lang][c] for c in rng.sample(range(len(names()[lang])), 5)]
        return " ".join(["BEST", "cheap", names()[lang][concept], *others, "free shipping", "buy now", "100%"])
    if kind == "other_lang":
        return rng.choice(OTHER_LANG_CAPTIONS)
    if kind == "emoji":
        return f"✨ {concept_caption(concept, lang, rng)} ✨ #{rng.choice(['love', 'art', 'design', 'instagood'])}"
    if kind == "long":
        return concept_caption(concept, lang, rng) + " " + LOREM * rng.randint(6, 20)
    if kind == "empty":
        return rng.choice(["", " ", "\t"])
    if kind == "mixed":
        other = rng.choice([x for x in LANGS if x != lang])
        return f"{names()[lang][concept]} / {names()[other][concept]}"
    raise ValueError(f"unknown noise kind {kind!r}")
