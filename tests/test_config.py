from dataclasses import dataclass, field
from typing import Literal

import pytest

from c2f_core.config import dump_config, load_config
from c2f_core.errors import C2FError


@dataclass
class Inner:
    width: int = 64
    """Channels."""
    rate: float = 1e-4
    """Learning rate."""


@dataclass
class Outer:
    name: str = "x"
    """Run name."""
    device: Literal["cpu", "cuda"] = "cpu"
    """Device."""
    inner: Inner = field(default_factory=Inner)
    """Nested component."""
    sizes: tuple[int, int] = (128, 128)
    """Crop size."""
    tag: str | None = None
    """Optional tag."""


def test_load_from_yaml_and_dump(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("name: run\ninner:\n  width: 32\n  rate: 1\nsizes: [64, 48]\n")
    cfg = load_config(Outer, path)
    assert cfg.inner.width == 32 and cfg.inner.rate == 1.0 and cfg.sizes == (64, 48)
    assert load_config(Outer, dump_config(cfg) and __import__("yaml").safe_load(dump_config(cfg))) == cfg


@pytest.mark.parametrize(
    "data, message",
    [
        ({"nmae": "x"}, "unknown key 'nmae'"),
        ({"inner": {"widht": 3}}, "unknown key 'inner.widht'"),
        ({"inner": {"width": "3"}}, "'inner.width' must be an integer"),
        ({"inner": {"width": True}}, "'inner.width' must be an integer"),
        ({"device": "tpu"}, r"'device' must be one of \['cpu', 'cuda'\]"),
        ({"sizes": [1]}, "'sizes' must have 2 items"),
        ({"tag": 3}, "'tag' has the wrong type"),
    ],
)
def test_errors_name_the_key(data, message):
    with pytest.raises(C2FError, match=message):
        load_config(Outer, data)


def test_missing_file_and_bad_yaml(tmp_path):
    with pytest.raises(C2FError, match="config file not found"):
        load_config(Outer, tmp_path / "none.yaml")
    (tmp_path / "bad.yaml").write_text("a: [1,\n")
    with pytest.raises(C2FError, match="not valid YAML"):
        load_config(Outer, tmp_path / "bad.yaml")


def test_extends_merges_over_the_base_file(tmp_path):
    (tmp_path / "base.yaml").write_text("name: base\ninner:\n  width: 32\n  rate: 0.5\n")
    (tmp_path / "sub").mkdir()
    child = tmp_path / "sub" / "child.yaml"
    child.write_text("extends: ../base.yaml\ninner:\n  width: 8\n")
    cfg = load_config(Outer, child)
    assert (cfg.name, cfg.inner.width, cfg.inner.rate) == ("base", 8, 0.5)


def test_extends_errors_name_the_problem(tmp_path):
    (tmp_path / "a.yaml").write_text("extends: b.yaml\n")
    (tmp_path / "b.yaml").write_text("extends: a.yaml\n")
    with pytest.raises(C2FError, match="cycle"):
        load_config(Outer, tmp_path / "a.yaml")
    (tmp_path / "c.yaml").write_text("extends: missing.yaml\n")
    with pytest.raises(C2FError, match="not found"):
        load_config(Outer, tmp_path / "c.yaml")
    (tmp_path / "e.yaml").write_text("name: e\n")
    (tmp_path / "d.yaml").write_text("extends: e.yaml\ninner:\n  widht: 3\n")
    with pytest.raises(C2FError, match="inner.widht"):
        load_config(Outer, tmp_path / "d.yaml")


def test_cpu_ablation_configs_differ_from_cpu_only_in_their_switches():
    from pathlib import Path

    from c2f_core.config import config_to_dict
    from c2f_core.train.config import load_c2f_config

    configs = Path(__file__).resolve().parents[1] / "configs"
    full = config_to_dict(load_c2f_config(configs / "cpu.yaml"))
    for path in sorted(configs.glob("cpu_ablation_*.yaml")):
        row = config_to_dict(load_c2f_config(path))
        changed = {k for k in full["model"] if full["model"][k] != row["model"][k]}
        assert changed and changed <= {"modality", "point_features", "coarse_refinement"}, path
        assert {k: v for k, v in row.items() if k != "model"} == {
            k: v for k, v in full.items() if k != "model"
        }
