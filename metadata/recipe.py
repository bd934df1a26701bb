"""MetaCLIP 2's metadata recipe as numbers (build_metadata.py, build_ngram.py), and build-wiki's memory budget.

The one home of these values: metadata.wiki builds with them, metadata.build_wiki_cli shows them as
defaults. Imports nothing, so `curate --help` stays light.
"""
from __future__ import annotations

UNIGRAM_SHARE, UNIGRAM_CAP = 0.10, 251_465
BIGRAM_PMI, BIGRAM_CAP = 30.0, 100_646
TITLE_SHARE, TITLE_CAP = 0.76, 61_235
DEFAULT_BUDGET_MIB = 2048  # build-wiki --memory-budget
MIN_BUDGET_MIB = 64
