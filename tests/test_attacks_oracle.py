"""The victim interface: label access, query counting and budgets, callables, white-box
counting, refusals of label-only attacks, failing and stochastic victims."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from attack_fixtures import one_thread  # noqa: F401 (fixtures)
from skelrobust.attacks import EOT, PGD, GradientOracle, HopSkipJump, QueryOracle
from skelrobust.errors import ConfigError, QueryBudgetError, VictimError

LABEL_ONLY = [HopSkipJump]  # every label-only attack obeys the same refusals
N = 4


@pytest.fixture(scope="module")
def batch(v):
    return v.x[:N], v.y[:N]


def _pred(v, x: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        return v.classifier(x).argmax(1)


class Labels:
    """A labels-only victim around a classifier: counts motions and calls, may fail or lie.

    ``fail_after``: raise after this many calls; ``on_call(k, a, labels)``: rewrite answers.
    """

    def __init__(self, classifier, fail_after: int | None = None, on_call=None) -> None:
        self.classifier, self.fail_after, self.on_call = classifier, fail_after, on_call
        self.rows = self.calls = 0
        self.seen: list[tuple[type, np.dtype, tuple[int, ...]]] = []

    def __call__(self, a: np.ndarray):
        self.seen.append((type(a), a.dtype, a.shape))
        if self.fail_after is not None and self.calls >= self.fail_after:
            raise RuntimeError("victim went away")
        self.calls += 1
        self.rows += len(a)
        with torch.no_grad():
            labels = self.classifier(torch.as_tensor(a)).argmax(1).numpy()
        return labels if self.on_call is None else self.on_call(self.calls, a, labels)


def labels_oracle(v, fn, **kw) -> QueryOracle:
    return QueryOracle.from_callable(fn, num_classes=v.classifier.num_classes,
                                     skeleton=v.classifier.skeleton, **kw)


# ---------------------------------------------------------------------- label access
def test_label_oracle_from_a_classifier_answers_labels_only(v, batch):
    x, _ = batch
    oracle = QueryOracle.from_classifier(v.classifier)
    oracle.reset(N)
    labels = oracle.label(x)
    assert labels.dtype == torch.long and labels.shape == (N,)
    assert torch.equal(labels, _pred(v, x)) and not labels.requires_grad
    with pytest.raises(ConfigError, match="scores"):
        oracle.scores(x)
    for key, value in vars(oracle).items():  # nothing an attack could differentiate through
        assert not isinstance(value, nn.Module | nn.Parameter), key
        assert not (isinstance(value, torch.Tensor) and value.requires_grad), key
    xg = x.clone().requires_grad_(True)
    out = oracle.label(xg)
    assert not out.requires_grad
    with pytest.raises(RuntimeError):
        torch.autograd.grad(out.float().sum(), xg)
    v.classifier.train()  # the victim runs in eval mode, its mode restored afterwards
    try:
        assert torch.equal(oracle.label(x), labels) and v.classifier.training
    finally:
        v.classifier.eval()


def test_scores_access_answers_probabilities_without_grad(v, batch):
    x, _ = batch
    oracle = QueryOracle.from_classifier(v.classifier, access="scores")
    oracle.reset(N)
    p = oracle.scores(x.clone().requires_grad_(True))
    assert p.shape == (N, v.classifier.num_classes) and not p.requires_grad
    assert torch.allclose(p.sum(1), torch.ones(N)) and torch.equal(p.argmax(1), _pred(v, x))
    assert torch.equal(oracle.queries, torch.ones(N, dtype=torch.long))


# ---------------------------------------------------------------------- counting and budgets
def test_queries_are_counted_per_row_with_repeats(v, batch):
    x, _ = batch
    oracle = QueryOracle.from_classifier(v.classifier)
    oracle.reset(3)
    oracle.label(x[[0, 0, 1, 0]], rows=torch.tensor([0, 0, 1, 0]))
    assert oracle.queries.tolist() == [3, 1, 0]
    oracle.label(x[[2]], rows=torch.tensor([False, False, True]))
    assert oracle.queries.tolist() == [3, 1, 1]
    with oracle.bookkeeping():  # the attack base's own evaluations: apart, no budget
        oracle.label(x[:3])
    assert oracle.queries.tolist() == [3, 1, 1]
    assert oracle.bookkeeping_queries.tolist() == [1, 1, 1]


def test_budget_refuses_and_counts_nothing(v, batch):
    x, _ = batch
    oracle = QueryOracle.from_classifier(v.classifier, budget=2)
    oracle.reset(2)
    oracle.label(x[:2])
    with pytest.raises(QueryBudgetError, match="sample 0"):
        oracle.label(x[[0, 0]], rows=torch.tensor([0, 0]))
    assert oracle.queries.tolist() == [1, 1] and oracle.remaining().tolist() == [1, 1]
    oracle.label(x[:1], rows=torch.tensor([0]))
    assert oracle.exhausted().tolist() == [True, False]
    with pytest.raises(QueryBudgetError):
        oracle.label(x[:2])
    assert oracle.queries.tolist() == [2, 1]
    with oracle.bookkeeping():  # bookkeeping is never refused
        oracle.label(x[:2])
    assert oracle.queries.tolist() == [2, 1] and oracle.bookkeeping_queries.tolist() == [1, 1]


def test_reset_lowers_the_budget_never_raises_it(v):
    oracle = QueryOracle.from_classifier(v.classifier, budget=10)
    oracle.reset(2, 3)
    assert oracle.limit == 3 and oracle.remaining().tolist() == [3, 3]
    oracle.reset(2, 50)
    assert oracle.limit == 10
    oracle.reset(2)
    assert oracle.limit == 10 and oracle.queries.tolist() == [0, 0]
    unbounded = QueryOracle.from_classifier(v.classifier)
    unbounded.reset(1)
    assert unbounded.limit is None and not bool(unbounded.exhausted().any())


@pytest.mark.parametrize("kw,name", [
    ({"budget": 0}, "budget"), ({"budget": -3}, "budget"), ({"budget": True}, "budget"),
    ({"budget": 2.5}, "budget"), ({"access": "gradient"}, "access"),
    ({"access": "logits"}, "access"), ({"access": "scores"}, "access"),
    ({"answers": "ranks"}, "answers"), ({"num_classes": 1}, "num_classes"),
])
def test_bad_oracle_configuration_names_the_argument(kw, name):
    args = {"num_classes": 5, **kw}  # a labels-only callable: scores access is refused
    with pytest.raises(ConfigError, match=name):
        QueryOracle.from_callable(lambda a: np.zeros(len(a), int), **args)


def test_bad_reset_budget_names_the_argument(v):
    oracle = QueryOracle.from_classifier(v.classifier)
    for bad in (0, -1, True):
        with pytest.raises(ConfigError, match="budget"):
            oracle.reset(2, bad)


# ---------------------------------------------------------------------- callables
def test_from_callable_gets_numpy_and_answers_labels(v, batch):
    x, _ = batch
    fn = Labels(v.classifier, on_call=lambda k, a, labels: labels.tolist())  # a list is fine
    oracle = labels_oracle(v, fn)
    oracle.reset(N)
    out = oracle.label(x)
    assert out.dtype == torch.long and torch.equal(out, _pred(v, x))
    assert fn.seen == [(np.ndarray, np.dtype("float32"), tuple(x.shape))]


@pytest.mark.parametrize("answer,answers,match", [
    (lambda a: np.full(len(a), 99), "labels", "label 99"),
    (lambda a: np.full(len(a), -1), "labels", "label -1"),
    (lambda a: np.zeros(len(a) + 1, int), "labels", "shape"),
    (lambda a: np.zeros((len(a), 3), int), "labels", "shape"),
    (lambda a: np.full(len(a), 0.5), "labels", "non-integer"),
    (lambda a: np.full((len(a), 5), np.nan), "logits", "NaN"),
    (lambda a: np.zeros((len(a), 4)), "logits", "shape"),
])
def test_a_victim_answering_nonsense_is_a_victim_error(batch, answer, answers, match):
    oracle = QueryOracle.from_callable(answer, num_classes=5, answers=answers, name="remote")
    oracle.reset(N)
    with pytest.raises(VictimError, match=match) as err:
        oracle.label(batch[0])
    assert "remote" in str(err.value)


def test_a_victim_that_raises_is_a_victim_error(batch):
    def broken(a):
        raise ValueError("connection reset by peer")

    oracle = QueryOracle.from_callable(broken, num_classes=5)
    oracle.reset(N)
    with pytest.raises(VictimError, match=r"broken.*connection reset by peer"):
        oracle.label(batch[0])


# ---------------------------------------------------------------------- label-only attacks
@pytest.mark.parametrize("cls", LABEL_ONLY)
def test_label_only_attacks_refuse_what_needs_scores_or_budget(v, pool, cls):
    with pytest.raises(ConfigError, match="anything-but-N"):
        cls(v.classifier, goal="abn", pool=pool)
    with pytest.raises(ConfigError, match="least_likely"):
        cls(v.classifier, goal="sa", target_mode="least_likely", pool=pool)
    for bad in (0, -10, True, 2.5):
        with pytest.raises(ConfigError, match="max_queries"):
            cls(v.classifier, max_queries=bad, pool=pool)


@pytest.mark.parametrize("cls", LABEL_ONLY)
def test_label_only_attacks_refuse_a_pool_without_the_needed_class(v, batch, cls):
    x, y = batch
    fn = Labels(v.classifier)
    keep = v.y[20:] != 1
    targeted = cls(labels_oracle(v, fn), goal="sa", pool=(v.x[20:][keep], v.y[20:][keep]))
    with pytest.raises(ConfigError, match="no clip of class 1"):
        targeted.attack(x, y, target=torch.ones(N, dtype=torch.long))
    assert fn.rows == N  # refused before any query but the clean evaluation
    same = v.y[20:] == y[0]
    untargeted = cls(v.classifier, pool=(v.x[20:][same], v.y[20:][same]))
    with pytest.raises(ConfigError, match="other than"):
        untargeted.attack(x[:1], y[:1])


# ---------------------------------------------------------------------- white-box counting
def test_gradient_oracle_counts_like_queries(v, batch):
    x, y = batch
    oracle = GradientOracle(v.classifier)
    oracle.reset(2)
    logits = oracle.logits(x[:2].clone().requires_grad_(True))
    assert logits.requires_grad and oracle.queries.tolist() == [1, 1]
    res = PGD(v.classifier, steps=5, report=False).attack(x, y)
    assert res.queries.tolist() == [5] * N and res.info["bookkeeping_queries"] == 2.0
    res = EOT(PGD(v.classifier, steps=5, report=False), samples=3).attack(x, y)
    assert res.queries.tolist() == [15] * N and res.info["bookkeeping_queries"] == 6.0
    assert res.info["eot_samples"] == 3


# ---------------------------------------------------------------------- failing victims
def test_a_victim_failing_mid_attack_loses_nothing(v, pool):
    x, y = v.x[:6], v.y[:6]
    fn = Labels(v.classifier, fail_after=30)
    res = HopSkipJump(labels_oracle(v, fn), max_queries=400, pool=pool,
                      report=False).attack(x, y)
    assert "victim went away" in res.info["victim_error"]
    found = (res.x_adv != x).flatten(1).any(1)
    assert bool(found.any()) and int(found.sum()) == res.info["found_adversarial"]
    pred = _pred(v, res.x_adv)
    assert bool((pred[found] != y[found]).all())  # what was found is adversarial
    assert torch.equal(res.success, found) and torch.equal(res.adv_pred[found], pred[found])
    assert int(res.queries.max()) < 400


def test_a_victim_failing_at_the_final_evaluation_reports_the_last_answers(v, batch):
    x, y = batch
    holder: list[QueryOracle] = []

    def fn(a):
        if holder[0]._in_bookkeeping and holder[0].bookkeeping_queries.sum() > N:
            raise RuntimeError("victim went away")
        with torch.no_grad():
            return v.classifier(torch.as_tensor(a)).argmax(1).numpy()

    holder.append(labels_oracle(v, fn))
    res = HopSkipJump(holder[0], max_queries=200, report=False).attack(x, y)
    assert "victim went away" in res.info["victim_error"]
    assert torch.equal(res.adv_pred, _pred(v, res.x_adv))  # the labels of the best motions
    assert bool(res.success.all())


def test_a_victim_failing_at_the_clean_evaluation_raises(v, batch):
    with pytest.raises(VictimError, match="victim went away"):
        HopSkipJump(labels_oracle(v, Labels(v.classifier, fail_after=0)),
                    max_queries=50).attack(*batch)


# ---------------------------------------------------------------------- stochastic victims
def test_a_stochastic_victim_is_counted_and_judged_at_the_end(v, batch):
    x, y = batch
    rng = np.random.default_rng(0)
    clf = v.classifier

    def noisy(a):  # answers at random where the top two classes are close
        with torch.no_grad():
            z = clf(torch.as_tensor(a))
        top = z.topk(2, dim=1)
        close = (top.values[:, 0] - top.values[:, 1]).numpy() < 0.5
        coin = rng.random(len(a)) < 0.5
        return np.where(close & coin, top.indices[:, 1].numpy(), top.indices[:, 0].numpy())

    calls = Labels(clf, on_call=lambda k, a, labels: noisy(a))
    oracle = labels_oracle(v, calls, stochastic=True)
    res = HopSkipJump(oracle, max_queries=300, report=False).attack(x, y)
    assert res.info["stochastic_victim"] is True
    assert calls.rows == int(res.queries.sum()) + 2 * N and bool((res.queries <= 300).all())
    assert torch.equal(res.success, res.adv_pred != y)  # decided by the final evaluation
    # a victim that changes its mind at the end: found during the attack, failed at the end
    first: list[np.ndarray] = []

    def fickle(k, a, labels):
        if k == 1:
            first.append(labels)
        return first[0] if oracle2._in_bookkeeping and k > 1 else labels

    oracle2 = labels_oracle(v, Labels(clf, on_call=fickle), stochastic=True)
    res = HopSkipJump(oracle2, max_queries=100, report=False).attack(x, y)
    assert res.info["found_adversarial"] == N and not bool(res.success.any())
