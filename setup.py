"""Build hook for the one compiled part: the ngram matcher's scan (everything else is in pyproject.toml).

The extension is optional: without a C compiler the install still succeeds and the matcher runs
its numpy path (same results, slower; `curate build-index` says which path it uses).
"""
from setuptools import Extension, setup

setup(ext_modules=[Extension("matching._ngram_kernel", ["matching/_ngram_kernel.c"],
                             extra_compile_args=["-O3"], optional=True)])
