"""Evaluation of trained runs: their predictions on held-out data (``results.py``), the
neutral-shape error, the fitting rows, the report (tables, targets, figures) and the
spread over training replicates."""
