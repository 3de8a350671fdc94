"""Benchmarks: ``python -m bench.projection`` and (later) ``python -m bench.raster``."""
