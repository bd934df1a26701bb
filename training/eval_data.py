"""Evaluation datasets: an image folder or WebDataset shards, read as a stream of `Record`s.

Accepted layouts (see docs/evaluation.md):
- image folder: `DIR/<class>/*.{jpg,jpeg,png,webp}`; class names per language in
  `DIR/classnames.<lang>.txt` (one per line) or `DIR/classnames.json` ({lang: [names]}).
  Class folders named 0, 1, 2 ... index the name lists directly; other names are sorted and
  matched to the lists in order.
- CLIP_benchmark's WebDataset layout (ROOT/test/nshards.txt, classnames.txt, templates, dataset_type.txt):
  see training/eval_clipbench.py.
- WebDataset: a `.tar`, a brace pattern (`shards/{00000..00009}.tar`), several joined with `::`, or a
  folder of `*.tar`. A sample has an image (jpg/jpeg/png/webp), optionally `.txt` (a caption, for
  retrieval), `.cls` or a `.json` field label/class/cls/class_id/target (for classification) and a json
  `lang` (for per-language retrieval). Class names are looked up next to the shards, as above.

Every layout may also be a URL (s3://, gs://, hf://, file://, memory://; core/storage.py): folders are
listed once each and every image and shard is streamed from the store, never copied to local disk first.
Local paths are handled by pathlib exactly as before; a URL by `RemotePath`, which offers the few pathlib
operations this module and training/eval_clipbench.py use.
"""
from __future__ import annotations

import fnmatch
import json
import os
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Iterator, Union

from core import storage
from core.errors import UserError
from training.data import IMAGE_EXTS, Unit, read_raw
from training.eval_clipbench import clip_benchmark_fields, is_clip_benchmark

LABEL_FIELDS = ("label", "class", "cls", "class_id", "target")


class RemotePath:
    """A file or folder in an object store, with the pathlib operations evaluation needs. Folder listings
    are cached (shared by every RemotePath made from this one), so a folder of shards or of class folders
    costs one listing request; files are read through core.storage (failures: one line naming the URL)."""

    def __init__(self, url: str, listings: dict | None = None):
        self.url = storage.normalize(url).rstrip("/")
        self._listings = listings if listings is not None else {}  # folder URL -> {name: is a folder}

    def __truediv__(self, name: str) -> "RemotePath":
        return RemotePath(storage.join(self.url, name), self._listings)

    def __str__(self) -> str:
        return self.url

    def __repr__(self) -> str:
        return f"RemotePath({self.url!r})"

    def __eq__(self, other) -> bool:
        return isinstance(other, RemotePath) and other.url == self.url

    def __lt__(self, other: "RemotePath") -> bool:
        return self.url < other.url

    def __hash__(self) -> int:
        return hash(self.url)

    @property
    def name(self) -> str:
        return storage.name(self.url)

    @property
    def suffix(self) -> str:
        return PurePosixPath(self.name).suffix

    @property
    def parent(self) -> "RemotePath":
        return RemotePath(storage.parent(self.url), self._listings)

    def _children(self) -> dict[str, bool]:
        if self.url not in self._listings:
            fs, path = storage.filesystem(self.url)
            with storage.errors(self.url):
                try:
                    entries = fs.ls(path, detail=True) if fs.isdir(path) else []
                except FileNotFoundError:
                    entries = []
            self._listings[self.url] = {storage.name(e["name"]): e.get("type") == "directory" for e in entries}
        return self._listings[self.url]

    def _kind(self) -> bool | None:
        """True: a folder, False: a file, None: nothing there."""
        if "/" not in self.url.split("://", 1)[1]:  # a bucket
            return True if storage.isdir(self.url) else None
        return self.parent._children().get(self.name)

    def is_dir(self) -> bool:
        return self._kind() is True

    def is_file(self) -> bool:
        return self._kind() is False

    def exists(self) -> bool:
        return self._kind() is not None

    def iterdir(self) -> Iterator["RemotePath"]:
        return (self / n for n in sorted(self._children()))

    def glob(self, pattern: str) -> list["RemotePath"]:
        """Files directly in this folder whose name matches `pattern` (a name pattern only)."""
        return [self / n for n, folder in sorted(self._children().items())
                if not folder and fnmatch.fnmatchcase(n, pattern)]

    def relative_to(self, base: str) -> str:
        return self.url[len(storage.normalize(base).rstrip("/")) + 1:]

    def read_bytes(self) -> bytes:
        return storage.read_bytes(self.url)

    def read_text(self, encoding: str = "utf-8") -> str:
        return self.read_bytes().decode(encoding)


AnyPath = Union[Path, RemotePath]


def location(spec: str | os.PathLike, listings: dict | None = None) -> AnyPath:
    """A plain path or file:// URL as a Path; any other URL as a RemotePath."""
    s = os.fspath(spec) if not isinstance(spec, RemotePath) else spec.url
    if storage.is_local(s):
        return storage.local_path(s)
    return RemotePath(s, listings)


@dataclass
class Record:
    """One evaluation sample before decoding."""

    key: str
    image: bytes | None
    label: int | None = None
    text: str | list[str] | None = None  # a list: several captions of one image
    lang: str | None = None


@dataclass
class EvalSource:
    """Where the samples are and what they are called: files to read plus class names per language."""

    kind: str
    location: str
    files: list[AnyPath]
    classnames: dict[str, list[str]]
    labels: list[int] = field(default_factory=list)
    skipped: Counter = field(default_factory=Counter)
    templates: dict[str, list[str]] = field(default_factory=dict)  # the dataset's own, per language
    split_captions: bool = False  # each .txt line is one caption (CLIP_benchmark retrieval sets)
    flag: str = "--data"  # the flag that named the data (`train --eval-data`), for hints in errors

    def records(self, worker: int = 0, num_workers: int = 1) -> Iterator[Record]:
        """This worker's share of the records, in a fixed order: image files round-robin; shards
        round-robin when there are at least as many as workers, else every worker reads every shard
        and keeps every num_workers-th sample (reading a tar is cheap next to decoding its images)."""
        if self.kind == "folder":
            for i in range(worker, len(self.files), num_workers):
                path = self.files[i]
                yield Record(key=str(path.relative_to(self.location)), image=path.read_bytes(), label=self.labels[i])
        elif len(self.files) >= num_workers:
            for shard in self.files[worker::num_workers]:
                yield from shard_records(shard, self.num_classes, self.split_captions, self.flag)
        else:
            records = (r for shard in self.files
                       for r in shard_records(shard, self.num_classes, self.split_captions, self.flag))
            for i, record in enumerate(records):
                if i % num_workers == worker:
                    yield record

    @property
    def num_classes(self) -> int:
        return len(next(iter(self.classnames.values()), []))


def read_classnames(folder: AnyPath) -> dict[str, list[str]]:
    """{lang: names} from `classnames.json` and/or `classnames.<lang>.txt` in `folder` (empty if none)."""
    names: dict[str, list[str]] = {}
    js = folder / "classnames.json"
    if js.is_file():
        obj = storage.read_json(str(js))
        if not isinstance(obj, dict) or not all(isinstance(v, list) and all(isinstance(s, str) for s in v)
                                                for v in obj.values()):
            raise UserError(f"{js}: expected {{\"<lang>\": [\"<class name>\", ...], ...}}")
        names.update(obj)
    for txt in sorted(folder.glob("classnames.*.txt")):
        lang = txt.name[len("classnames."):-len(".txt")]
        lines = [s.strip() for s in txt.read_text(encoding="utf-8").splitlines()]
        while lines and not lines[-1]:
            lines.pop()
        if any(not s for s in lines):
            raise UserError(f"{txt}: line {lines.index('') + 1} is empty; write one class name per line")
        names[lang] = lines
    empty = sorted(lang for lang, v in names.items() if not v)
    if empty:
        raise UserError(f"{folder}: the class-name list for {empty[0]!r} is empty; give one name per class")
    sizes = {lang: len(v) for lang, v in names.items()}
    if len(set(sizes.values())) > 1:
        raise UserError(f"class-name lists in {folder} differ in length: {sizes}; "
                        "every language needs one name per class")
    return names


def open_folder(root: AnyPath, classnames: dict[str, list[str]]) -> EvalSource:
    """An image-folder source: one sub-folder per class."""
    class_dirs = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not class_dirs:
        raise UserError(f"{root}: no class folders; expected {root}/<class>/*.jpg")
    if not classnames:
        raise UserError(f"{root}: no class names; add {root}/classnames.<lang>.txt (one per line) or classnames.json")
    n = len(next(iter(classnames.values())))
    if all(d.name.isdigit() for d in class_dirs):
        index = {d: int(d.name) for d in class_dirs}
        bad = [d.name for d in class_dirs if index[d] >= n]
        if bad:
            raise UserError(f"{root}: class folder {bad[0]} has no name: "
                            f"the class-name lists have {n} entries (0..{n - 1})")
    else:
        if len(class_dirs) != n:
            raise UserError(f"{root}: {len(class_dirs)} class folders but {n} class names; "
                            "they must match one to one (sorted folder names)")
        index = {d: i for i, d in enumerate(class_dirs)}
    source = EvalSource("folder", str(root), [], classnames)
    for d in class_dirs:
        for f in sorted(d.iterdir()):
            if f.is_file() and f.suffix.lower().lstrip(".") in IMAGE_EXTS:
                source.files.append(f)
                source.labels.append(index[d])
            elif not f.name.startswith("."):
                source.skipped["not_an_image_file"] += 1
    if not source.files:
        raise UserError(f"{root}: no images found "
                        f"(looked for {', '.join('*.' + e for e in IMAGE_EXTS)} in the class folders)")
    return source


def expand_shards(spec: str, listings: dict | None = None, flag: str = "--data") -> list[AnyPath]:
    """Shard paths from a .tar, a folder of .tar, a brace pattern, or several joined with `::` (URLs too)."""
    import braceexpand

    listings = {} if listings is None else listings
    shards: list[AnyPath] = []
    for part in spec.split("::"):
        p = location(part, listings)
        if p.is_dir():
            found = sorted(p.glob("*.tar"))
            if not found:
                raise UserError(f"{p}: no .tar shards in this folder")
            shards.extend(found)
            continue
        for s in braceexpand.braceexpand(part):
            shard = location(s, listings)
            if not shard.is_file():
                raise UserError(f"shard {s} not found (from {flag} {spec})")
            shards.append(shard)
    return shards


def parse_label(sample: dict, where: str) -> int | None:
    """The class index of a sample: `.cls`, else a label field of its `.json`; None if it has none."""
    raw = sample.get("cls")
    if raw is None and sample.get("json") is not None:
        meta = sample["json"]
        raw = next((meta[f] for f in LABEL_FIELDS if f in meta and meta[f] is not None), None)
    if raw is None:
        return None
    if isinstance(raw, bytes):
        raw = raw.decode("utf-8", errors="replace").strip()
    try:
        value = int(raw)
    except (ValueError, TypeError) as e:
        raise UserError(f"{where}: class label {raw!r} is not an integer class index") from e
    if value < 0:
        raise UserError(f"{where}: class label {value} is negative")
    return value


def shard_records(shard: AnyPath, num_classes: int, split_captions: bool = False,
                  flag: str = "--data") -> Iterator[Record]:
    """Records of one WebDataset shard; a corrupt tar is a UserError naming the shard. With
    split_captions, `text` is the list of the .txt's non-empty lines (several captions per image)."""
    for s in read_raw(Unit(str(shard)), flag=flag):
        where = f"{shard} sample {s['__key__']}"
        if s.get("json") is not None:
            try:
                s["json"] = json.loads(s["json"])
            except (json.JSONDecodeError, UnicodeDecodeError) as e:
                raise UserError(f"{where}: .json is not valid JSON ({e})") from e
        label = parse_label(s, where)
        if label is not None and num_classes and label >= num_classes:
            raise UserError(f"{where}: class label {label} but the class-name lists have {num_classes} entries")
        image = next((s[e] for e in IMAGE_EXTS if e in s), None)
        text = s["txt"].decode("utf-8", errors="replace") if "txt" in s else None
        if split_captions and text is not None:
            text = [line.strip() for line in text.splitlines() if line.strip()] or None
        meta = s.get("json") if isinstance(s.get("json"), dict) else {}
        yield Record(key=s["__key__"], image=image, label=label, text=text, lang=meta.get("lang"))


def open_source(data: str | os.PathLike, classnames: str | os.PathLike | None = None,
                flag: str = "--data") -> EvalSource:
    """Detect the layout of `data` (image folder or WebDataset) and list its files.

    Class names come from the folder `classnames` when given, else from the data folder (or the
    folder of the first shard). Every error starts with `flag` (the flag that gave `data`) or names it.
    """
    try:
        source = _open_source(data, classnames, flag)
    except UserError as e:
        message = str(e)
        raise UserError(message if message.startswith(("--", "shard ")) else f"{flag} {message}") from e  # "PATH: what"
    source.flag = flag
    return source


def _open_source(data: str | os.PathLike, classnames: str | os.PathLike | None, flag: str) -> EvalSource:
    spec = str(data)
    listings: dict = {}
    root = location(spec, listings) if "::" not in spec else None  # parts may differ in kind (a path, a URL)
    if classnames is not None:
        where = location(classnames)
        if not where.is_dir():
            raise UserError(f"--classnames {where}: not a folder; "
                            "give the folder holding classnames.json or classnames.<lang>.txt")
        names = read_classnames(where)
        if not names:
            raise UserError(f"--classnames {where}: no classnames.json or classnames.<lang>.txt there")
    if root is not None and root.is_dir() and is_clip_benchmark(root):
        own = classnames is None
        return EvalSource(**clip_benchmark_fields(root, read_classnames(root) if own else names, own_names=own))
    if root is not None and root.is_dir() and not any(root.glob("*.tar")):
        return open_folder(root, names if classnames is not None else read_classnames(root))
    if root is not None and "{" not in spec and not root.exists():
        raise UserError(f"{flag} {spec}: not found; give an image folder, a .tar shard, a brace pattern or a "
                        "folder of shards")
    shards = expand_shards(spec, listings, flag)
    if classnames is None:
        first = location(spec.split("::")[0], listings)
        names = read_classnames(first if first.is_dir() else shards[0].parent)
    return EvalSource("webdataset", spec, shards, names)
