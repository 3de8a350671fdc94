"""FLAME head model layer (filled in by the flame issue)."""
