"""The ablation summary: buckets partition the concepts by rank, mean ± sd, and the 2-sd verdict."""
from __future__ import annotations

import math

import pytest

from pipelines import ablation
from pipelines.demo_concepts import GLYPHS, LANGS
from pipelines.demo_pool import concept_ranks


def test_buckets_are_rank_thirds_covering_every_concept_once():
    b = ablation.buckets()
    assert list(b) == ["head", "middle", "tail"]
    flat = b["head"] + b["middle"] + b["tail"]
    assert flat == concept_ranks() and sorted(flat) == list(range(len(GLYPHS)))
    assert len(b["head"]) == len(b["middle"]) >= len(b["tail"]) >= len(GLYPHS) // 3


def test_mean_sd_is_the_sample_sd():
    s = ablation.mean_sd([1.0, 2.0, 3.0])
    assert s["mean"] == 2.0 and s["sd"] == pytest.approx(1.0) and s["n"] == 3
    assert ablation.mean_sd([0.5])["sd"] == 0.0


def _per_class(value_by_bucket: dict[str, float]) -> dict[str, list[float]]:
    row = [0.0] * len(GLYPHS)
    for name, concepts in ablation.buckets().items():
        for c in concepts:
            row[c] = value_by_bucket[name]
    return {lang: list(row) for lang in LANGS}


def test_summary_and_verdict_follow_the_numbers():
    runs = {"balanced": {s: _per_class({"head": 0.2, "middle": 0.3, "tail": 0.30 + 0.01 * s}) for s in range(3)},
            "unbalanced": {s: _per_class({"head": 0.4, "middle": 0.3, "tail": 0.10 + 0.01 * s}) for s in range(3)}}
    out = ablation.summarise(runs)
    assert out["buckets"]["balanced"]["tail"]["mean"] == pytest.approx(0.31)
    assert out["by_lang"]["unbalanced"]["en"]["head"]["mean"] == pytest.approx(0.4)
    v = out["verdict"]
    assert v["tail"]["diff"] == pytest.approx(0.2) and v["tail"]["beyond_2sd"]
    assert v["head"]["diff"] == pytest.approx(-0.2) and v["head"]["beyond_2sd"]
    assert v["middle"]["diff"] == pytest.approx(0.0) and not v["middle"]["beyond_2sd"]


def test_a_difference_inside_seed_noise_is_not_called_an_effect():
    noisy = {"balanced": {s: _per_class({"head": 0.2, "middle": 0.2, "tail": [0.1, 0.3, 0.5][s]}) for s in range(3)},
             "unbalanced": {s: _per_class({"head": 0.2, "middle": 0.2, "tail": [0.1, 0.2, 0.3][s]}) for s in range(3)}}
    v = ablation.summarise(noisy)["verdict"]["tail"]
    assert v["diff"] == pytest.approx(0.1) and v["two_sd"] == pytest.approx(2 * math.sqrt(0.04)) and not v["beyond_2sd"]


def test_paired_differences_are_per_seed():
    """Same seed, same warm start: the paired sd sees through a seed effect both conditions share."""
    runs = {"balanced": {s: _per_class({"head": 0.2, "middle": 0.3, "tail": 0.10 * s + 0.05}) for s in range(3)},
            "unbalanced": {s: _per_class({"head": 0.3, "middle": 0.3, "tail": 0.10 * s}) for s in range(3)}}
    out = ablation.summarise(runs)
    assert not out["verdict"]["tail"]["beyond_2sd"]  # unpaired: the seed spread (sd 0.1) hides +0.05
    tail = out["paired"]["tail"]
    assert tail["values"] == pytest.approx([0.05, 0.05, 0.05]) and tail["sd"] == pytest.approx(0.0, abs=1e-12)
    assert tail["beyond_2sd"] and out["paired"]["head"]["mean"] == pytest.approx(-0.1)
    assert out["paired"]["middle"]["mean"] == pytest.approx(0.0) and not out["paired"]["middle"]["beyond_2sd"]


def test_paired_uses_only_seeds_both_conditions_ran():
    runs = {"balanced": {0: _per_class({"head": 0.2, "middle": 0.2, "tail": 0.3}),
                         1: _per_class({"head": 0.2, "middle": 0.2, "tail": 0.9})},
            "unbalanced": {0: _per_class({"head": 0.2, "middle": 0.2, "tail": 0.1})}}
    tail = ablation.summarise(runs)["paired"]["tail"]
    assert tail["n"] == 1 and tail["mean"] == pytest.approx(0.2) and not tail["beyond_2sd"]
