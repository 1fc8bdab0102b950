"""Every training recipe in configs/ loads, names a registered dataset and a zoo model."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import yaml

from skelrobust.config import load_config
from skelrobust.data.registry import dataset_spec
from skelrobust.models.registry import create_model, list_models
from skelrobust.skeleton import get_skeleton

CONFIGS = Path(__file__).resolve().parents[1] / "configs"
RECIPES = sorted(CONFIGS.glob("*.yaml"))

# The model zoo (some models may still be in progress, so a fixed list, not the registry).
ZOO = ("hrnn", "stgcn", "asgcn", "dgnn", "agcn", "ctrgcn", "sgn", "msg3d", "shiftgcn", "mlp")
# Frames per clip after resampling, from the clip lengths (docs/DATASETS.md, measured).
FRAMES = {"nw-ucla": 52, "utd-mhad": 64, "hdm05": 60}


def test_the_grid_is_complete():
    names = {p.stem for p in RECIPES}
    missing = [f"{m}_{d}" for m in ZOO for d in FRAMES if f"{m}_{d}" not in names]
    assert not missing, missing


@pytest.mark.parametrize("path", RECIPES, ids=[p.stem for p in RECIPES])
def test_recipe_loads_and_is_consistent(path):
    exp = load_config(path)
    spec = dataset_spec(exp.data.name)  # raises UnknownNameError for unregistered datasets
    protocol = exp.data.resolved_protocol()
    assert protocol.train in spec.splits and protocol.test in spec.splits
    val = exp.data.resolved_val_split(exp.train.keep)
    assert val in (*spec.splits, "carve", "none") and val != protocol.test  # never test data
    assert exp.model.name in ZOO
    raw = yaml.safe_load(path.read_text())
    assert "seed" in raw["train"], "a recipe states its seed"
    assert exp.train.batch_size % 2 == 0, "runs under torchrun --nproc_per_node=2"
    model, dataset = path.stem.split("_", 1)
    if dataset in FRAMES:  # the zoo grid: the file name says what it trains
        assert (exp.model.name, exp.data.name) == (model, dataset)
        assert exp.model.size == "small"
        assert exp.data.frames == FRAMES[dataset]
        assert exp.train.warmup_epochs < exp.train.epochs


@pytest.mark.parametrize("path", [p for p in RECIPES if p.stem.split("_", 1)[0] in ZOO],
                         ids=lambda p: p.stem)
def test_registered_models_build_for_the_recipe(path):
    """Where the model is already registered, it runs on the recipe's layout and length."""
    exp = load_config(path)
    if exp.model.name not in list_models():
        pytest.skip(f"model {exp.model.name!r} is not registered yet")
    spec = dataset_spec(exp.data.name)
    classes = spec.num_classes or 11  # hdm05: the 11-class subset of the shared data
    torch.manual_seed(0)
    model = create_model(exp.model.name, skeleton=spec.layout, num_classes=classes,
                         size=exp.model.size, **exp.model.kwargs).eval()
    x = torch.randn(2, 3, exp.data.frames, get_skeleton(spec.layout).num_joints, 1) * 0.1
    with torch.no_grad():
        logits = model(x)
    assert logits.shape == (2, classes) and torch.isfinite(logits).all()
