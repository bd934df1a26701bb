"""CLIP_benchmark's WebDataset evaluation layout (what `clip_benchmark_export_wds` writes and the
`clip-benchmark/wds_*` sets hold):

    ROOT/test/nshards.txt          number of shards N
    ROOT/test/{0..N-1}.tar         samples: KEY.webp|png|jpg|jpeg + KEY.cls (class index) or KEY.txt
                                   (retrieval: one caption per line, several per image)
    ROOT/classnames.txt            one class name per line (taken as English; classnames.<lang>.txt too)
    ROOT/zeroshot_classification_templates.txt   one template per line with {c} for the class name
    ROOT/dataset_type.txt          "retrieval" for retrieval sets (default: classification)

`clip_benchmark_fields(ROOT, …)` returns the fields of the EvalSource (training.eval_data builds it) whose
shards are read by the usual WebDataset reader; for retrieval sets each `.txt` is split into its lines
(several captions per image). This module imports no other eval module.
"""
from __future__ import annotations

from core.errors import UserError

CLASSNAMES = "classnames.txt"
TEMPLATES = "zeroshot_classification_templates.txt"
TYPE = "dataset_type.txt"
SPLIT = "test"


def is_clip_benchmark(root, split: str = SPLIT) -> bool:
    return (root / split / "nshards.txt").is_file()


def as_format_template(template: str) -> str:
    """A CLIP_benchmark template ({c} = class name) as a one-field `str.format` template (other braces escaped)."""
    return template.replace("{", "{{").replace("}", "}}").replace("{{c}}", "{}")


def _lines(path) -> list[str]:
    return [s.strip() for s in path.read_text(encoding="utf-8").splitlines() if s.strip()]


def clip_benchmark_fields(root, classnames: dict[str, list[str]], own_names: bool, split: str = SPLIT) -> dict:
    """The EvalSource fields of a CLIP_benchmark WebDataset folder (see the module docstring). `classnames`:
    the folder's own (own_names: read_classnames of ROOT, completed here by classnames.txt as English) or
    those of --classnames, which replace them."""
    nfile = root / split / "nshards.txt"
    try:
        n = int(nfile.read_text().strip())
    except ValueError as e:
        raise UserError(f"{nfile}: expected the number of shards, found {nfile.read_text()[:40]!r}") from e
    shards = [root / split / f"{i}.tar" for i in range(n)]
    if missing := [s for s in shards if not s.is_file()]:
        raise UserError(f"{root}: {nfile} says {n} shards but {missing[0]} is missing; download the whole split")
    kind = (root / TYPE).read_text().strip().lower() if (root / TYPE).is_file() else "classification"
    names = dict(classnames)
    if own_names and (root / CLASSNAMES).is_file() and "en" not in names:
        names["en"] = _lines(root / CLASSNAMES)
    templates = {}
    if (root / TEMPLATES).is_file() and names:
        lang = "en" if "en" in names else sorted(names)[0]
        templates[lang] = [as_format_template(t) for t in _lines(root / TEMPLATES)]
    if len({len(v) for v in names.values()}) > 1:
        raise UserError(f"{root}: class-name lists differ in length: { {k: len(v) for k, v in names.items()} }")
    return {"kind": "webdataset", "location": str(root), "files": shards, "classnames": names,
            "templates": templates, "split_captions": kind == "retrieval"}
