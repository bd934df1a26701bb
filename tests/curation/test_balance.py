"""Balancing formulas against a literal transcription of MetaCLIP 2's curate.py (numpy)."""
import numpy as np
import pyarrow as pa
import pytest

from core.errors import UserError
from curation import balance


# ---- MetaCLIP 2 metaclip/curation/curate.py, transcribed literally (the oracle) ----
def ref_p_to_t(entry_counts, p=0.1):
    counts = np.sort(entry_counts)
    cumsum_counts = np.cumsum(counts)
    portion = cumsum_counts / counts.sum()
    p_idx = (np.abs(portion - p)).argmin()
    t = counts[p_idx]
    return t


def ref_t_to_p(entry_counts, t=20000):
    return float(entry_counts[entry_counts < t].sum() / entry_counts.sum())


def ref_count_to_prob(entry_count, t):
    p_entry_counts = np.array(entry_count)
    p_entry_counts[p_entry_counts < t] = t
    entry_probs = t / p_entry_counts
    return entry_probs
# ---------------------------------------------------------------------------------------


CASES = [
    np.array([0, 0, 1, 5, 5, 10, 100], dtype=np.uint64),  # zeros and a tie
    np.array([3, 3, 3, 3], dtype=np.uint64),  # all tied
    np.array([0, 7, 0, 2, 2, 2, 50, 50, 1000], dtype=np.uint64),
    np.array([1], dtype=np.uint64),
]


@pytest.mark.parametrize("counts", CASES)
@pytest.mark.parametrize("x", [0.0, 0.05, 0.1, 0.3, 0.5, 0.999, 1.0])
def test_p_to_t_matches_reference(counts, x):
    assert balance.p_to_t(counts.astype(np.int64), x) == ref_p_to_t(counts, x)


@pytest.mark.parametrize("counts", CASES)
@pytest.mark.parametrize("t", [1, 2, 3, 5, 6, 50, 51, 20000])
def test_t_to_p_and_count_to_prob_match_reference(counts, t):
    assert balance.t_to_p(counts.astype(np.int64), t) == ref_t_to_p(counts, t)
    ref = ref_count_to_prob(counts, t)
    np.testing.assert_allclose(balance.count_to_prob(counts.astype(np.int64), t), ref)


def test_hand_computed_values():
    c = np.array([0, 0, 1, 5, 5, 10, 100])  # sum 121; cumsum of sorted: 0 0 1 6 11 21 121
    assert balance.t_to_p(c, 10) == pytest.approx(11 / 121)  # 1 + 5 + 5 below 10
    assert balance.t_to_p(c, 5) == pytest.approx(1 / 121)  # strictly below
    assert balance.p_to_t(c, 6 / 121) == 5  # first of the tied 5s
    assert balance.p_to_t(c, 0.0) == 0  # the first zero
    assert balance.p_to_t(c, 1.0) == 100
    np.testing.assert_allclose(balance.count_to_prob(c, 10), [1, 1, 1, 1, 1, 1, 0.1])


def test_zero_total_language_and_zero_threshold():
    assert balance.p_to_t(np.zeros(4, np.int64), 0.3) == 0  # reference: argmin over NaN -> index 0 -> 0
    assert balance.count_to_prob(np.array([0, 3]), 0).tolist() == [0.0, 0.0]


def counts_table(rows):
    return pa.table({"entry_id": pa.array([r[0] for r in rows], pa.int32()), "lang": [r[1] for r in rows],
                     "count": pa.array([r[2] for r in rows], pa.int64())})


def test_thresholds_follow_english_tail_share():
    en = [0, 1, 2, 10, 20, 100]
    de = [0, 4, 4, 8, 30]
    rows = [(i, "en", c) for i, c in enumerate(en)] + [(6 + i, "de", c) for i, c in enumerate(de)]
    p_entry, th = balance.entry_probabilities(counts_table(rows), t=20)
    p = ref_t_to_p(np.array(en), 20)
    assert th["en"] == 20 and th["de"] == ref_p_to_t(np.array(de), p)
    np.testing.assert_allclose(p_entry[:6], ref_count_to_prob(np.array(en, float), 20))
    np.testing.assert_allclose(p_entry[6:], ref_count_to_prob(np.array(de, float), th["de"]))


def test_p_sets_tail_share_without_english():
    rows = [(0, "de", 1), (1, "de", 9), (2, "ja", 5), (3, "ja", 5)]
    with pytest.raises(UserError, match="no English"):
        balance.entry_probabilities(counts_table(rows), t=20)
    rows_zero_en = rows + [(4, "en", 0)]
    with pytest.raises(UserError, match="--p"):
        balance.entry_probabilities(counts_table(rows_zero_en), t=20)
    p_entry, th = balance.entry_probabilities(counts_table(rows), p=0.1)
    assert th == {"de": 1, "ja": 5}
    np.testing.assert_allclose(p_entry, [1.0, 1 / 9, 1.0, 1.0])


@pytest.mark.parametrize("t", [0, -5, float("inf"), float("nan")])
def test_non_positive_or_non_finite_t_is_a_user_error(t):
    with pytest.raises(UserError, match="--t must be a finite number > 0"):
        balance.entry_probabilities(counts_table([(0, "en", 3)]), t=t)
