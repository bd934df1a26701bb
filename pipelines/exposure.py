"""How often each concept is seen in training: the mechanism behind balancing at equal compute.

Read back from the stage outputs: an image counts toward a concept when the alt-text that curate
balance chose for it matched the concept's name (in any demo language) — INDEX/entries.parquet maps
entry ids to names, CURATED/curated.parquet lists the kept images. At `samples` training samples
(steps × batch) drawn uniformly from the kept images, concept k is seen samples × n_k / N times.
"""
from __future__ import annotations

from pathlib import Path


def concept_of_entry(index: Path) -> dict[int, int]:
    """{entry_id: concept id} for the concept names of every demo language."""
    import pyarrow.parquet as pq

    from pipelines.demo_concepts import names

    wanted = {(lang, name): c for lang, ns in names().items() for c, name in enumerate(ns)}
    t = pq.read_table(index / "entries.parquet", columns=["entry_id", "lang", "entry"]).to_pydict()
    return {e: wanted[(lang, s)] for e, lang, s in zip(t["entry_id"], t["lang"], t["entry"]) if (lang, s) in wanted}


def images_per_concept(index: Path, curated: Path) -> tuple[list[int], int]:
    """([kept images whose chosen text names concept k], total kept images) of one balance output."""
    import pyarrow.parquet as pq

    from pipelines.demo_concepts import GLYPHS

    concept = concept_of_entry(index)
    counts = [0] * len(GLYPHS)
    rows = pq.read_table(curated / "curated.parquet", columns=["entry_ids"]).column("entry_ids").to_pylist()
    for ids in rows:
        for c in {concept[i] for i in ids if i in concept}:
            counts[c] += 1
    return counts, len(rows)


def seen_in_training(index: Path, curated: Path, samples: int) -> dict:
    """{images: per concept, kept: total, seen: expected samples per concept at `samples` drawn}."""
    counts, total = images_per_concept(index, curated)
    return {"images": counts, "kept": total, "seen": [samples * n / max(1, total) for n in counts]}
