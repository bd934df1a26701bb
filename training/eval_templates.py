"""Zero-shot prompt templates per language: `templates_for(lang) -> list[str]`, each with one `{}`.

English uses the seven templates OpenAI selected for ImageNet plus "a photo of a {}.". Other
languages have a handful written in the language; where grammar would inflect the class name
(case, gender, articles) the templates put the name after a colon or use a construction that
leaves it in its dictionary form, since class-name files hold dictionary forms.
"""
from __future__ import annotations

from core.errors import UserError

TEMPLATES: dict[str, list[str]] = {
    "en": ["a photo of a {}.", "itap of a {}.", "a bad photo of the {}.", "a origami {}.",
           "a photo of the large {}.", "a {} in a video game.", "art of the {}.", "a photo of the small {}."],
    "de": ["ein Foto von {}.", "ein Bild von {}.", "eine Nahaufnahme von {}.", "ein unscharfes Foto von {}.",
           "eine Zeichnung von {}.", "Foto: {}."],
    "fr": ["une photo de {}.", "une image de {}.", "une photo en gros plan de {}.", "une photo floue de {}.",
           "un dessin de {}.", "photo : {}."],
    "es": ["una foto de {}.", "una imagen de {}.", "una foto de cerca de {}.", "una foto borrosa de {}.",
           "un dibujo de {}.", "foto: {}."],
    "it": ["una foto di {}.", "un'immagine di {}.", "una foto ravvicinata di {}.", "una foto sfocata di {}.",
           "un disegno di {}.", "foto: {}."],
    "pt": ["uma foto de {}.", "uma imagem de {}.", "uma foto de perto de {}.", "uma foto desfocada de {}.",
           "um desenho de {}.", "foto: {}."],
    "nl": ["een foto van {}.", "een afbeelding van {}.", "een close-up foto van {}.", "een onscherpe foto van {}.",
           "een tekening van {}.", "foto: {}."],
    "pl": ["zdjęcie: {}.", "obraz: {}.", "zbliżenie: {}.", "rozmazane zdjęcie: {}.", "rysunek: {}.",
           "{} na zdjęciu."],
    "ru": ["фотография: {}.", "изображение: {}.", "крупный план: {}.", "размытая фотография: {}.",
           "рисунок: {}.", "{} на фотографии."],
    "tr": ["bir {} fotoğrafı.", "bir {} resmi.", "yakından çekilmiş bir {} fotoğrafı.", "bulanık bir {} fotoğrafı.",
           "bir {} çizimi.", "fotoğraf: {}."],
    "id": ["foto {}.", "sebuah foto {}.", "gambar {}.", "foto {} dari dekat.", "foto buram {}.", "lukisan {}."],
    "vi": ["một bức ảnh về {}.", "ảnh chụp {}.", "hình ảnh {}.", "ảnh cận cảnh {}.", "một bức ảnh mờ về {}.",
           "một bức vẽ {}."],
    "zh": ["一张{}的照片。", "{}的照片。", "一张{}的图片。", "{}的特写照片。", "一张模糊的{}的照片。", "一幅{}的画。"],
    "ja": ["{}の写真。", "{}の画像。", "{}のクローズアップ写真。", "{}のぼやけた写真。", "{}の絵。", "写真：{}。"],
    "ko": ["{}의 사진.", "{} 사진.", "{}의 이미지.", "{}의 근접 사진.", "{}의 흐릿한 사진.", "{}의 그림."],
    "ar": ["صورة {}.", "صورة فوتوغرافية: {}.", "صورة مقربة: {}.", "صورة ضبابية: {}.", "رسم: {}.", "هذه صورة {}."],
    "hi": ["{} की एक तस्वीर।", "{} की तस्वीर।", "{} का एक फ़ोटो।", "{} की नज़दीकी तस्वीर।", "{} की एक धुंधली तस्वीर।",
           "{} का चित्र।"],
    "th": ["ภาพถ่ายของ{}", "รูปภาพของ{}", "ภาพถ่าย{}ระยะใกล้", "ภาพถ่ายเบลอของ{}", "ภาพวาดของ{}", "รูป{}"],
}


def resolve_lang(lang: str) -> str:
    """The TEMPLATES key for `lang`: exact, else its base code (`pt-BR`, `zh_Hans` -> `pt`, `zh`)."""
    if lang in TEMPLATES:
        return lang
    base = lang.replace("_", "-").split("-")[0].lower()
    if base in TEMPLATES:
        return base
    raise UserError(f"no zero-shot templates for language {lang!r}; known: {', '.join(sorted(TEMPLATES))}")


def templates_for(lang: str) -> list[str]:
    """The prompt templates for `lang` (see resolve_lang)."""
    return TEMPLATES[resolve_lang(lang)]
