"""Evaluation: metrics, the neutral-shape error, predictions of a trained system,
the evaluation report (tables, targets, figures) and inference on images."""
