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
