"""Benchmarks: each module measures one part of the platform against a named baseline.

``bench/run.py`` runs them all (``make bench``); every module also runs alone as a script and
writes its figures to ``bench/results/<module>.json``.
"""

__all__: list[str] = []
