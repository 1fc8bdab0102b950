"""The defense groundwork: registry, fingerprints, nested defense files, train_defense."""

from __future__ import annotations

import pytest
import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file

from attack_fixtures import one_thread  # noqa: F401  (autouse: single-threaded module)
from defense_fixtures import PREP, alter_base_weight, tiny_data, tiny_mlp
from skelrobust.classifier import Classifier
from skelrobust.config import load_prepared
from skelrobust.defenses.base import (
    DefendedClassifier,
    create_defense,
    describe_defense,
    get_defense,
    list_defenses,
    load_defended,
    weights_fingerprint,
)
from skelrobust.defenses.training import defense_config, train_defense
from skelrobust.errors import CheckpointError, ConfigError
from skelrobust.training import TrainConfig

BEAT_FAST = {"samples": 2, "training": {"burn_in": 1, "sample_every": 1, "sgld_steps": 1,
                                        "adversary_steps": 1, "buffer_size": 8}}
FAST_CONFIG = TrainConfig(epochs=2, batch_size=8, lr=0.05, seed=0, progress=False, keep="last")


@pytest.fixture(scope="module")
def data():
    return tiny_data()


@pytest.fixture
def mlp(data):
    return tiny_mlp(data)


def _state(module):
    return {k: v.detach().clone() for k, v in module.state_dict().items()}


def test_registry_has_the_six_defenses():
    assert set(list_defenses()) >= {"beat", "smoothing", "smart-at", "trades", "mart", "mmat"}
    for name in list_defenses():
        cls = get_defense(name)
        assert issubclass(cls, DefendedClassifier) and cls.defense == name
        assert describe_defense(name)
    assert get_defense("randomized-smoothing") is get_defense("smoothing")  # an alias
    with pytest.raises(ConfigError, match="unknown defense 'shield'; known: beat"):
        get_defense("shield")


def test_unknown_option_is_named(mlp):
    with pytest.raises(ConfigError, match=r"defense 'beat': unknown option\(s\) \['gamma'\]"):
        create_defense("beat", mlp, gamma=1.0)
    with pytest.raises(ConfigError, match=r"unknown option\(s\) \['sigma'\].*sigma_mm"):
        create_defense("smoothing", mlp, sigma=1.0)
    with pytest.raises(ConfigError, match="sigma_mm"):
        create_defense("smoothing", mlp, sigma_mm=0.0)
    with pytest.raises(ConfigError, match="must be >= n0"):
        create_defense("smoothing", mlp, n0=50, n=10)


def test_weights_fingerprint_changes_with_one_weight(mlp):
    first = weights_fingerprint(mlp)
    assert len(first) == 64 and weights_fingerprint(mlp) == first
    other = Classifier.from_header(mlp.header())
    other.load_state_dict(mlp.state_dict())
    assert weights_fingerprint(other) == first  # the same weights, another object
    name, tensor = next((k, v) for k, v in other.state_dict().items() if v.is_floating_point()
                        and v.numel() > 1 and k.startswith("model."))
    with torch.no_grad():
        tensor.view(-1)[3] = torch.nextafter(tensor.view(-1)[3], torch.tensor(1e9))
    assert weights_fingerprint(other) != first, name  # one ulp of one weight


def test_beat_leaves_the_base_bit_identical(mlp, data, tmp_path):
    before = _state(mlp)
    beat = create_defense("beat", mlp, **BEAT_FAST)
    result = train_defense(beat, data, None, FAST_CONFIG, out_dir=tmp_path)
    assert len(result.history) == 2 and beat.num_samples == 1
    after = mlp.state_dict()
    assert before.keys() == after.keys()
    assert all(torch.equal(before[k], after[k]) for k in before)
    assert beat.info["training"]["epochs"] == 2
    back = Classifier.load(tmp_path / "classifier.safetensors")
    x, _ = data.tensors()
    assert type(back) is type(beat) and back.args == beat.args
    assert torch.equal(back(x), beat(x))


def test_defense_config_defaults_and_overrides(mlp):
    beat = create_defense("beat", mlp, **BEAT_FAST)
    objective = beat.training_objective(num_data=24)
    cfg = defense_config(beat, objective)
    assert cfg.keep == "last" and cfg.epochs == objective.epochs() == 1 + 2 * 1
    defaults = TrainConfig(keep="last", **getattr(type(beat), "training_defaults", {}))
    assert (cfg.lr, cfg.batch_size, cfg.optimizer) == (defaults.lr, defaults.batch_size,
                                                       defaults.optimizer)  # the defense's
    cfg = defense_config(beat, objective, None, epochs=5, lr=0.01)
    assert (cfg.epochs, cfg.lr, cfg.keep) == (5, 0.01, "last")
    given = TrainConfig(epochs=7)
    assert defense_config(beat, objective, given) is given  # a whole config is taken as is
    trades = create_defense("trades", mlp, steps=1)
    assert defense_config(trades, trades.training_objective()).epochs == TrainConfig().epochs
    smoothing = create_defense("smoothing", mlp)
    with pytest.raises(ConfigError, match="nothing to train"):
        train_defense(smoothing, load_prepared("synthetic", "val", preprocess_args=PREP,
                                               num_clips=4, num_frames=16))


def test_nested_defenses_save_and_reload(mlp, data, tmp_path):
    x, _ = data.tensors()
    trades = create_defense("trades", mlp, steps=1)
    beat = create_defense("beat", trades, **BEAT_FAST)
    smooth = create_defense("smoothing", beat, sigma_mm=5.0, n0=5, n=10)
    assert smooth.root_base is trades.base and beat.root_base is trades.base
    assert smooth.stochastic and not beat.stochastic
    assert create_defense("beat", smooth, **BEAT_FAST).stochastic  # random underneath
    path = smooth.save(tmp_path / "nested.safetensors")
    back = Classifier.load(path)
    assert [type(c) for c in (back, back.base, back.base.base)] == [
        type(smooth), type(beat), type(trades)]
    assert back.base.base.args == trades.args and back.base.args == beat.args
    torch.manual_seed(3)
    want = smooth(x)
    torch.manual_seed(3)
    assert torch.equal(back(x), want)
    assert torch.equal(back.base(x), beat(x))
    header = back.header()
    assert header["base"]["base"]["defense"] == "trades" and "model" in header["base"]["base"][
        "base"]


def test_altered_base_weights_are_refused(mlp, tmp_path):
    beat = create_defense("beat", mlp, **BEAT_FAST)
    path = beat.save(tmp_path / "beat.safetensors")
    altered = tmp_path / "altered.safetensors"
    alter_base_weight(path, altered, 1e-4)
    with pytest.raises(CheckpointError, match=r"altered\.safetensors.*fingerprint.*altered"):
        Classifier.load(altered)
    with safe_open(str(path), framework="pt") as f:
        meta = f.metadata()
    tensors = load_file(str(path))  # the defense's own weights may change; the base's not
    tensors["w2"] = tensors["w2"] + 1.0
    save_file(tensors, str(altered), metadata=meta)
    assert not torch.equal(Classifier.load(altered).w2, beat.w2)


def test_malformed_defense_header_is_refused(mlp, tmp_path):
    beat = create_defense("beat", mlp, **BEAT_FAST)
    header, tensors = beat.header(), beat.state_dict()
    for broken, needle in (({**header, "defense": "shield"}, "unknown defense 'shield'"),
                           ({k: v for k, v in header.items() if k != "base_fingerprint"},
                            "malformed defense header"),
                           ({**header, "args": {**header["args"], "samples": 0}},
                            "cannot rebuild defense 'beat'")):
        with pytest.raises(CheckpointError, match=needle):
            load_defended(broken, tensors, tmp_path / "f.safetensors")
