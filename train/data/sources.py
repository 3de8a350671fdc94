"""The data sources a run trains and evaluates on: three synthetic regimes with ground
truth, and real images from a folder (``--folder``), which have none."""

from __future__ import annotations

#: the synthetic regimes (train.data.synthetic): head-mounted camera, studio, in the wild
REGIMES = ("hmc", "studio", "wild")
#: Real data from ``--folder``: the fourth source, with no ground-truth camera.
FOLDER = "folder"
#: every source, in the order of the samples' ``regime`` index
SOURCES = (*REGIMES, FOLDER)
