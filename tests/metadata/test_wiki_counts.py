import random

import pytest

from metadata.ngrams import NgramCounts
from metadata.wiki_counts import SpillingCounts, max_ngrams_for


def _zipf_texts(seed: int, n: int, lang_words: list[str]) -> list[str]:
    rng = random.Random(seed)
    weights = [1 / (i + 1) for i in range(len(lang_words))]
    lines = lambda: (" ".join(rng.choices(lang_words, weights=weights, k=rng.randint(1, 12)))
                     + rng.choice(["", ".", ","]))
    return ["\n".join(lines() for _ in range(3)) for _ in range(n)]


def _merged(tmp_path, lang: str, texts: list[str], max_ngrams: int):
    counts = SpillingCounts(lang, tmp_path, max_ngrams, memory_limit_mib=64)
    for t in texts:
        counts.add_text(t)
    return counts, counts.finish()


@pytest.mark.slow
@pytest.mark.parametrize("max_ngrams", [1, 37, 10**9])
def test_merged_ranking_equals_in_memory_counts_whatever_the_spill_points(tmp_path, max_ngrams):
    texts = _zipf_texts(0, 300, [f"w{i}" for i in range(200)])
    ref = NgramCounts("en")
    for t in texts:
        ref.add_text(t)
    counts, merged = _merged(tmp_path, "en", texts, max_ngrams)
    assert counts.runs == 1 if max_ngrams == 10**9 else counts.runs > 50
    assert merged.tokens == sum(ref.unigrams.values())
    assert (merged.distinct_unigrams, merged.distinct_bigrams) == (len(ref.unigrams), len(ref.bigrams))
    assert list(merged.top_unigrams()) == ref.top_unigrams()  # counts tie a lot: the order is first-seen
    for threshold in (-100.0, 3.0):
        n, bigrams = merged.pmi_bigrams(threshold)
        expected = [b for b, _ in ref.pmi_bigrams(threshold)]
        assert n == len(expected) and list(bigrams) == expected
    merged.close()


def test_tie_order_is_first_seen_across_runs(tmp_path):
    # b and a tie at 2; b is seen first (run 0) although a is seen first in run 1
    counts, merged = _merged(tmp_path, "en", ["b", "a", "a b"], max_ngrams=1)
    assert counts.runs >= 3  # one spill per text, then finish()'s
    assert list(merged.top_unigrams()) == ["b", "a"]
    n, bigrams = merged.pmi_bigrams(-100.0)
    assert n == 1 and list(bigrams) == ["a b"]
    merged.close()


def test_no_space_bigrams_concatenated(tmp_path):
    _, merged = _merged(tmp_path, "zh", ["经济中心。经济中心"], max_ngrams=2)
    n, bigrams = merged.pmi_bigrams(-100.0)
    assert n >= 1 and all(" " not in b for b in bigrams)
    merged.close()


def test_budget_in_mib():
    assert max_ngrams_for(1) > 1000 and max_ngrams_for(2048) >= 2048 * max_ngrams_for(1)
