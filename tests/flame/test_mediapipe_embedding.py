"""FLAME's MediaPipe embedding: SMIRK's file format, validation, the layer's points and
the stand-in head's own embedding."""

import numpy as np
import pytest
import torch

import flame
from flame.mediapipe_embedding import MEDIAPIPE_105, load_mediapipe_embedding


@pytest.fixture(scope="module")
def model():
    return flame.load_model("bundled")


def _write(path, n_faces, **override):
    rng = np.random.default_rng(0)
    b = rng.uniform(0.1, 1.0, (105, 3))
    arrays = {
        "lmk_face_idx": rng.integers(0, n_faces, 105).astype(np.uint32),  # SMIRK's dtype
        "lmk_b_coords": b / b.sum(1, keepdims=True),
        "landmark_indices": np.array(MEDIAPIPE_105, dtype=np.int64),
    }
    arrays.update(override)
    arrays = {k: v for k, v in arrays.items() if v is not None}
    np.savez(path, **arrays)
    return arrays


def test_smirk_file_round_trip_and_layer_points(tmp_path, model):
    path = tmp_path / "mediapipe_landmark_embedding.npz"
    arrays = _write(path, model.n_faces)
    got = load_mediapipe_embedding(path)
    assert got["mp_lmk_faces_idx"].dtype == np.int64
    np.testing.assert_array_equal(got["mp_landmark_indices"], MEDIAPIPE_105)
    loaded = flame.load_model("bundled", mediapipe=path)
    layer = flame.FLAME(loaded, n_shape=10, n_expr=10)
    assert layer.mediapipe_indices == list(MEDIAPIPE_105)
    out = layer(shape=torch.randn(2, 10), jaw_pose=torch.tensor([[0.2, 0, 0]] * 2))
    pts = layer.mediapipe_landmarks(out.vertices)
    # the barycentric combination of the posed corners, by hand
    corners = out.vertices[:, model.faces[arrays["lmk_face_idx"].astype(np.int64)]]
    expect = (corners * torch.from_numpy(arrays["lmk_b_coords"]).float()[None, :, :, None]).sum(2)
    torch.testing.assert_close(pts, expect)
    # not in the state dict: checkpoints of layers without an embedding still load
    assert not any(k.startswith("mp_") for k in layer.state_dict())


@pytest.mark.parametrize(
    "override, message",
    [
        ({"landmark_indices": None}, "lacks"),
        ({"lmk_b_coords": np.full((105, 3), 0.5)}, "sum to 1"),
        ({"landmark_indices": np.arange(105) + 400}, "in \\[0, 478\\)"),
        ({"landmark_indices": np.zeros(105, dtype=np.int64)}, "distinct"),
        ({"lmk_face_idx": np.zeros(104, dtype=np.int64)}, "\\[104, 3\\]"),
        ({"lmk_face_idx": np.zeros(105)}, "integers"),
    ],
)
def test_bad_files_say_what_is_wrong(tmp_path, model, override, message):
    path = tmp_path / "bad.npz"
    _write(path, model.n_faces, **override)
    with pytest.raises(ValueError, match=message):
        load_mediapipe_embedding(path)


def test_pickled_arrays_and_faces_out_of_range_are_refused(tmp_path, model):
    path = tmp_path / "pickled.npz"
    np.savez(path, lmk_face_idx=np.array([object()] * 3), lmk_b_coords=np.ones((3, 3)) / 3,
             landmark_indices=np.arange(3))  # fmt: skip
    with pytest.raises(ValueError, match="plain .npz"):
        load_mediapipe_embedding(path)
    path = tmp_path / "range.npz"
    _write(path, model.n_faces, lmk_face_idx=np.full(105, model.n_faces, dtype=np.int64))
    with pytest.raises(ValueError, match="out of range"):
        flame.load_model("bundled", mediapipe=path)


def test_layer_without_embedding_says_so(model):
    import dataclasses

    bare = dataclasses.replace(
        model, mp_lmk_faces_idx=None, mp_lmk_bary_coords=None, mp_landmark_indices=None
    )
    layer = flame.FLAME(bare, n_shape=5, n_expr=5)
    assert not layer.has_mediapipe and layer.mediapipe_indices == []
    with pytest.raises(ValueError, match="no MediaPipe embedding"):
        layer.mediapipe_landmarks(layer().vertices)


# MediaPipe points that are also iBUG-68 points (mesh68's correspondences): the
# stand-in's embedding, derived from MediaPipe on renders, must put them where its own
# 68 static landmarks are, to within 7 mm (MediaPipe sees the eyes about 4 mm lower
# and the lips about 4 mm higher than the hand-placed 68)
_SAME_AS_IBUG = {33: 36, 133: 39, 362: 42, 263: 45, 61: 48, 291: 54, 0: 51, 17: 57}


def test_standin_embedding_agrees_with_its_68_landmarks(model):
    layer = flame.FLAME(model, n_shape=5, n_expr=5)
    out = layer()
    mp = layer.mediapipe_landmarks(out.vertices)[0]
    lmk = out.landmarks[0]
    for m, i in _SAME_AS_IBUG.items():
        gap = float((mp[layer.mediapipe_indices.index(m)] - lmk[i])[:2].norm())
        assert gap < 0.007, (m, i, gap)


def test_standin_embedding_is_nearly_mirror_symmetric(model):
    """Mirror pairs of MediaPipe's mesh (x -> -x) sit at mirrored places on the
    symmetric head: a check on the per-point medians of the derivation."""
    pairs = {33: 263, 133: 362, 61: 291, 70: 300, 105: 334, 107: 336, 159: 386, 145: 374,
             78: 308, 13: 13, 14: 14, 129: 358, 98: 327}  # fmt: skip
    layer = flame.FLAME(model, n_shape=5, n_expr=5)
    mp = layer.mediapipe_landmarks(layer().vertices)[0]
    idx = layer.mediapipe_indices
    for a, b in pairs.items():
        pa, pb = mp[idx.index(a)], mp[idx.index(b)]
        assert abs(float(pa[0] + pb[0])) < 0.004 and abs(float(pa[1] - pb[1])) < 0.004, (a, b)
