"""io.labels: DexYCB-style labelled joints, 3D and 2D, through one reader."""

import numpy as np
import pytest

from c2f_core.errors import C2FError
from c2f_core.io.labels import labels_path, read_joint_2d, read_joint_labels


def _write(root, frame: int, **arrays) -> None:
    path = labels_path(root, frame)
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez(path, **arrays)


def test_both_joint_arrays_read_in_dexycbs_shapes(tmp_path):
    joints_3d = np.arange(63, dtype=np.float32).reshape(1, 21, 3) / 100
    joints_2d = np.arange(42, dtype=np.float32).reshape(1, 21, 2)
    _write(tmp_path, 0, joint_3d=joints_3d, joint_2d=joints_2d)
    np.testing.assert_allclose(read_joint_labels(tmp_path, 0), joints_3d[0])
    np.testing.assert_allclose(read_joint_2d(tmp_path, 0), joints_2d[0])
    assert read_joint_labels(tmp_path, 1) is None and read_joint_2d(tmp_path, 1) is None  # no file


def test_no_labelled_hand_or_no_2d_array_is_none_and_a_wrong_shape_is_an_error(tmp_path):
    _write(tmp_path, 0, joint_3d=-np.ones((1, 21, 3)), joint_2d=-np.ones((1, 21, 2)))
    assert read_joint_labels(tmp_path, 0) is None and read_joint_2d(tmp_path, 0) is None
    _write(tmp_path, 1, joint_3d=np.zeros((1, 21, 3)))
    assert read_joint_2d(tmp_path, 1) is None  # 2D joints are optional
    _write(tmp_path, 2, joint_2d=np.zeros((1, 21, 2)))
    with pytest.raises(C2FError, match="no 'joint_3d'"):
        read_joint_labels(tmp_path, 2)  # the 3D joints are not
    _write(tmp_path, 3, joint_3d=np.zeros((1, 21, 3)), joint_2d=np.zeros((1, 20, 2)))
    with pytest.raises(C2FError, match=r"joint_2d must hold 21 \[u, v\] joints"):
        read_joint_2d(tmp_path, 3)
