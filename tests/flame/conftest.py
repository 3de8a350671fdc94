"""Fixtures for the flame tests: small random FLAME-format models."""

from __future__ import annotations

import numpy as np
import pytest

from flame.model import FlameModel


def make_tiny_model(seed: int = 0, n_v: int = 40, n_f: int = 60, eyelids: bool = True):
    """A random but valid FLAME-format model, small enough for gradcheck."""
    rng = np.random.default_rng(seed)
    n_j = 5
    v = rng.normal(size=(n_v, 3)) * 0.05
    v[:, 2] += 0.02 * np.arange(n_v) / n_v  # distinct depths
    return FlameModel(
        v_template=v,
        faces=rng.integers(0, n_v, (n_f, 3)).astype(np.int64),
        shapedirs=rng.normal(size=(n_v, 3, 4)) * 0.01,
        exprdirs=rng.normal(size=(n_v, 3, 3)) * 0.01,
        posedirs=rng.normal(size=(n_v, 3, 9 * (n_j - 1))) * 0.01,
        J_regressor=rng.dirichlet(np.ones(n_v), n_j),
        parents=np.array([-1, 0, 1, 1, 1], dtype=np.int64),
        lbs_weights=rng.dirichlet(np.ones(n_j) * 0.5, n_v),
        static_lmk_faces_idx=rng.integers(0, n_f, 51).astype(np.int64),
        static_lmk_bary_coords=rng.dirichlet(np.ones(3), 51),
        dynamic_lmk_faces_idx=rng.integers(0, n_f, (79, 17)).astype(np.int64),
        dynamic_lmk_bary_coords=rng.dirichlet(np.ones(3), (79, 17)),
        eyelids=rng.normal(size=(n_v, 3, 2)) * 0.01 if eyelids else None,
    )


@pytest.fixture
def tiny_model():
    return make_tiny_model()


@pytest.fixture(scope="session")
def tiny_factory():
    return make_tiny_model
