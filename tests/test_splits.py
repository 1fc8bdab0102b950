"""Protocols and validation data: model selection never sees the test split."""

from __future__ import annotations

import numpy as np
import pytest

from skelrobust.classifier import Classifier
from skelrobust.config import DataConfig, load_experiment_data, load_prepared
from skelrobust.data.dataset import SkeletonDataset
from skelrobust.data.registry import dataset_spec, load_dataset, split_role
from skelrobust.data.splits import carve_validation
from skelrobust.errors import ConfigError, UnknownNameError
from skelrobust.training import TrainConfig, fit

PREP = {"num_frames": 16, "center_mode": "first", "normalize_view": True}


def _toy(counts):
    y = np.repeat(np.arange(len(counts)), counts)
    x = np.random.default_rng(0).normal(size=(len(y), 3, 4, 25, 1)).astype(np.float32)
    data = SkeletonDataset(x=x, y=y, class_names=[f"c{i}" for i in range(len(counts))],
                           skeleton="ntu25", name="toy")
    data.info.update(split="train", role="train")
    return data


def test_carve_is_stratified_seeded_and_disjoint():
    data = _toy([50, 20, 9, 2, 1])
    train, val = carve_validation(data, 0.1, seed=4)
    assert np.bincount(val.y, minlength=5).tolist() == [5, 2, 1, 1, 0]
    assert np.bincount(train.y, minlength=5).tolist() == [45, 18, 8, 1, 1]
    # disjoint and complete: every clip lands in exactly one part
    rows = {r.tobytes() for r in data.x}
    assert {r.tobytes() for r in train.x} | {r.tobytes() for r in val.x} == rows
    assert not {r.tobytes() for r in train.x} & {r.tobytes() for r in val.x}
    again, _ = carve_validation(data, 0.1, seed=4)
    other, _ = carve_validation(data, 0.1, seed=5)
    assert np.array_equal(again.x, train.x) and not np.array_equal(other.x, train.x)
    assert val.info["role"] == "val" and train.info["role"] == "train"
    assert val.info["carved_from"] == "train" and val.info["seed"] == 4
    with pytest.raises(ConfigError, match="val_fraction"):
        carve_validation(data, 1.0)
    with pytest.raises(ConfigError, match="too few clips"):
        carve_validation(_toy([1, 1, 1]), 0.5)


def test_loaded_splits_know_their_role():
    spec = dataset_spec("synthetic")
    assert [split_role(spec, s) for s in ("train", "val", "test")] == ["train", "val", "test"]
    assert split_role(dataset_spec("kinetics"), "val") == "test"  # Kinetics tests on 'val'
    assert split_role(dataset_spec("ntu60"), "xview-test") == "test"
    data = load_dataset("synthetic", split="test", num_clips=40)
    assert data.info["role"] == "test" and data.info["split"] == "test"
    assert load_prepared("synthetic", "test", preprocess_args=PREP,
                         num_clips=40).info["role"] == "test"  # preprocessing keeps it


def test_fit_refuses_to_choose_the_epoch_on_test_data():
    train = load_prepared("synthetic", "train", preprocess_args=PREP, num_clips=60)
    test = load_prepared("synthetic", "test", preprocess_args=PREP, num_clips=40)
    clf = Classifier.create("mlp", train)
    with pytest.raises(ConfigError, match="model selection on test data"):
        fit(clf, train, test, TrainConfig(epochs=1, progress=False))
    sub = test.subset(np.arange(10))  # a subset of test data is still test data
    with pytest.raises(ConfigError, match="test split"):
        fit(clf, train, sub, TrainConfig(epochs=1, progress=False, keep="best"))
    res = fit(clf, train, test, TrainConfig(epochs=1, progress=False, keep="last"))
    assert res.best_epoch == 1  # monitoring test data is allowed; choosing on it is not


def test_experiment_data_carves_or_keeps_last():
    d = DataConfig(name="synthetic", frames=16, options={"num_clips": 80}, val_split="carve")
    data = load_experiment_data(d, keep="best", seed=1)
    assert len(data.val) == 19  # one clip of each of the 19 classes (10 % rounds up to 1)
    assert data.val.info["role"] == "val" and data.test.info["role"] == "test"
    assert "carved from the training data" in data.validation and data.keep == "best"
    assert len(data.train) + len(data.val) == 80
    data = load_experiment_data(DataConfig(name="synthetic", frames=16, val_split="none",
                                           options={"num_clips": 40}), keep="best")
    assert data.val is None and data.keep == "last"
    default = DataConfig(name="synthetic")
    assert default.resolved_val_split("best") == "val"  # the release's own validation split
    assert DataConfig(name="nw-ucla").resolved_val_split("best") == "carve"
    assert DataConfig(name="nw-ucla").resolved_val_split("last") == "none"


def test_protocols():
    ntu = dataset_spec("ntu60")
    assert ntu.get_protocol().name == "xsub"
    assert ntu.get_protocol("xview").train == "xview-train"
    with pytest.raises(UnknownNameError, match="available: xsub, xview"):
        ntu.get_protocol("xset")
    assert DataConfig(name="sbu", protocol="fold3").resolved_protocol().test == "fold3-test"
    assert DataConfig(name="hdm05").resolved_protocol().name == "cross-subject"
    with pytest.raises(ConfigError, match="val_fraction"):
        DataConfig(val_fraction=0.0)


def test_data_for_a_classifier_follows_its_record():
    from skelrobust.config import load_for_classifier

    train = load_prepared("synthetic", "train", preprocess_args=PREP, num_clips=40)
    clf = Classifier.create("mlp", train, preprocess=PREP)
    clf.info["data"] = {"name": "synthetic", "test_split": "val", "options": {"num_clips": 40}}
    data = load_for_classifier(clf)  # its dataset, its test split, its loader options
    assert data.info["split"] == "val" and len(data) == 40 and data.num_frames == 16
    assert len(load_for_classifier(clf, split="test")) == 40
    clf.info["data"] = {"name": "kinetics", "options": {"only_kinetics_takes_this": 1}}
    other = load_for_classifier(clf, name="synthetic", options={"num_clips": 20})
    assert len(other) == 20 and other.info["split"] == "test"  # no kinetics options carried
    clf.info.pop("data")
    clf.info.pop("train_data", None)
    with pytest.raises(ConfigError, match="name one with --data"):
        load_for_classifier(clf)
