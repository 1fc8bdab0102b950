"""One training loop (:func:`fit`) and one evaluation (:func:`evaluate`) for every model.

``fit`` trains a :class:`~skelrobust.classifier.Classifier` with SGD/Adam(W),
a step or cosine schedule with optional linear warm-up, weight decay, gradient
clipping and label smoothing, under a seed; it evaluates every epoch, keeps
the best checkpoint (held-out top-1) and writes its history as it goes.

**Distributed data parallel.** Launched by ``torchrun --nproc_per_node=K``
(``RANK``/``WORLD_SIZE``/``LOCAL_RANK`` set, or a process group already
initialised by the caller), ``fit`` trains with PyTorch DDP on the ``gloo``
backend (CPU): each rank sees its shard of every epoch's permutation
(:class:`~torch.utils.data.DistributedSampler`, seeded with ``seed``,
``set_epoch`` each epoch, last partial shard dropped) and gradients are averaged
over ranks. ``batch_size`` stays the *global* batch (each rank takes
``batch_size / K``; it must divide), so the optimisation steps per epoch, the
learning rate and its schedule mean the same as in one process (no linear LR
scaling; BatchNorm statistics are per rank, over ``batch_size / K`` samples).
Only rank 0 evaluates, writes checkpoints and ``history.json`` and calls
``on_epoch``; train loss/accuracy are summed over ranks, the held-out metrics
are broadcast, and every rank ends with rank 0's best weights. A process group
that ``fit`` creates it also destroys. Without those variables (or with
``WORLD_SIZE=1``) nothing of this runs.

**Hooks.** ``loss`` replaces the cross-entropy: a callable
``loss(net, x, y) -> (loss, logits)`` (the scalar to minimise and the logits of
``net`` on the clean ``x``, for the train accuracy). Adversarial training (SMART-AT,
TRADES, MART, MMAT) and BEAT are such losses, so there is one training loop.
``optimizer`` replaces the optimiser built from the config: a callable
``optimizer(params, config) -> torch.optim.Optimizer`` (BEAT's SGHMC sampler).
Only parameters with ``requires_grad`` are trained (a defense's frozen base is not).
A loss with an ``end_epoch(classifier, epoch)`` method has it called after each
epoch's last step, before the evaluation (BEAT keeps its posterior samples so).

**Resuming.** With ``out_dir`` (one process), every finished epoch also writes ``resume.pt``
(the weights, optimiser state, the data-order and augmentation generators, torch's RNG,
the step, the best epoch, the history and the loss's ``state_dict()`` when it has one,
e.g. BEAT's replay buffer; tensors and plain values only, read back with
``weights_only=True``; one file replaced atomically, so a kill leaves one epoch's state
whole). ``fit(..., resume=True)`` reloads that state and continues with the next
epoch: an interrupted run loses only the epoch it was in, and a run resumed after any
epoch ends with the same weights as an uninterrupted one (single process; under DDP
``resume`` is refused).
"""

from __future__ import annotations

import io
import json
import logging
import math
import os
import random
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
import torch.nn.functional as F
from safetensors.torch import load_file
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DistributedSampler

from skelrobust.classifier import Classifier
from skelrobust.data.dataset import SkeletonDataset
from skelrobust.data.transforms import random_rotate_scale
from skelrobust.errors import ConfigError
from skelrobust.fileio import atomic_write, write_json
from skelrobust.progress import progress_bar
from skelrobust.validation import check

__all__ = ["EvalResult", "LossFn", "OptimizerFn", "TrainConfig", "TrainResult",
           "cross_entropy_loss", "distributed_env", "epoch_line", "evaluate", "fit",
           "is_main_process", "seed_everything"]

#: ``loss(net, x, y) -> (scalar loss, logits of net on x)``: a training objective for fit
LossFn = Callable[[torch.nn.Module, torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor]]
#: ``optimizer(params, config) -> Optimizer``: the optimiser (or sampler) fit steps
OptimizerFn = Callable[[Iterable[torch.nn.Parameter], "TrainConfig"], torch.optim.Optimizer]
RESUME_NAME = "resume.pt"

log = logging.getLogger(__name__)


@dataclass
class TrainConfig:
    """Hyper-parameters of :func:`fit` (every field maps to a CLI flag / YAML key).

    ``batch_size`` is the global batch: under DDP each of ``K`` ranks takes
    ``batch_size / K`` samples per step, so ``lr`` needs no rescaling.
    """

    epochs: int = 30
    batch_size: int = 32
    optimizer: str = "sgd"  # sgd | adam | adamw
    lr: float = 0.05
    momentum: float = 0.9
    nesterov: bool = True
    weight_decay: float = 5e-4
    schedule: str = "cosine"  # cosine | step | none
    milestones: tuple[int, ...] = ()
    gamma: float = 0.1
    warmup_epochs: int = 0
    grad_clip: float | None = None
    label_smoothing: float = 0.0
    augment_yaw_deg: float = 0.0
    augment_scale: float = 0.0
    seed: int = 0
    num_threads: int | None = None
    eval_batch_size: int = 256
    progress: bool = True
    # "best": keep the epoch with the best validation top-1 (fit refuses a test split as
    # validation data); "last": keep the final weights, no choice made on any data.
    keep: str = "best"

    def __post_init__(self) -> None:
        for f in fields(self):  # the numeric ranges: the rules every CLI flag and YAML key obey
            setattr(self, f.name, check(f"train.{f.name}", getattr(self, f.name),
                                        f"TrainConfig: {f.name}"))
        self.milestones = tuple(int(m) for m in self.milestones)
        checks = [
            (self.optimizer in ("sgd", "adam", "adamw"), "optimizer must be sgd, adam or adamw"),
            (self.schedule in ("cosine", "step", "none"), "schedule must be cosine, step or none"),
            (self.keep in ("best", "last"), "keep must be 'best' or 'last'"),
        ]
        for ok, message in checks:
            if not ok:
                raise ConfigError(f"TrainConfig: {message}")

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> TrainConfig:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ConfigError(f"TrainConfig: unknown keys {unknown}; known: {sorted(known)}")
        return cls(**values)


@dataclass
class EvalResult:
    """Accuracy figures of a classifier on a dataset."""

    top1: float
    top5: float
    loss: float
    n: int
    per_class: dict[str, float]
    confusion: np.ndarray
    predictions: np.ndarray

    def as_dict(self, full: bool = False) -> dict[str, Any]:
        out: dict[str, Any] = {"top1": self.top1, "top5": self.top5, "loss": self.loss,
                               "n": self.n, "per_class": self.per_class}
        if full:
            out["confusion"] = self.confusion.tolist()
        return out


@dataclass
class TrainResult:
    history: list[dict[str, Any]] = field(default_factory=list)
    best_epoch: int = 0
    best: dict[str, Any] = field(default_factory=dict)
    seconds: float = 0.0  # this call's wall time (a resumed run: since it resumed)
    train_seconds: float = 0.0  # the epochs' training time, all runs of a resumed fit together
    samples_per_second: float = 0.0
    world_size: int = 1
    resumed_from: int = 0  # the last finished epoch a resumed run started after (0: fresh)


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)  # noqa: NPY002 - seeds third-party code using the legacy API
    torch.manual_seed(seed)


@torch.no_grad()
def evaluate(classifier: Classifier, data: SkeletonDataset, batch_size: int = 256) -> EvalResult:
    """Top-1/top-5 accuracy (%), mean loss, per-class accuracy and confusion matrix."""
    x, y = data.tensors()
    logits = classifier.predict_logits(x, batch_size)
    k = classifier.num_classes
    if data.num_classes != k:
        raise ConfigError(f"evaluate: dataset {data.name!r} has {data.num_classes} classes, "
                          f"the classifier {k}")
    pred = logits.argmax(1)
    top = logits.topk(min(5, k), dim=1).indices
    confusion = np.zeros((k, k), dtype=np.int64)
    np.add.at(confusion, (y.numpy(), pred.numpy()), 1)
    support = confusion.sum(1)
    per_class = {name: (100.0 * confusion[i, i] / support[i]) if support[i] else float("nan")
                 for i, name in enumerate(classifier.class_names)}
    n = len(y)
    return EvalResult(
        top1=100.0 * float((pred == y).float().mean()) if n else float("nan"),
        top5=100.0 * float((top == y[:, None]).any(1).float().mean()) if n else float("nan"),
        loss=float(F.cross_entropy(logits, y)) if n else float("nan"),
        n=n, per_class=per_class, confusion=confusion, predictions=pred.numpy(),
    )


def cross_entropy_loss(label_smoothing: float = 0.0) -> LossFn:
    """The default objective: cross-entropy of ``net(x)`` (with optional label smoothing)."""
    def loss(net: torch.nn.Module, x: torch.Tensor, y: torch.Tensor,
             ) -> tuple[torch.Tensor, torch.Tensor]:
        logits = net(x)
        return F.cross_entropy(logits, y, label_smoothing=label_smoothing), logits
    return loss


def _optimizer(params: Any, cfg: TrainConfig) -> torch.optim.Optimizer:
    if cfg.optimizer == "sgd":
        return torch.optim.SGD(params, lr=cfg.lr, momentum=cfg.momentum,
                               nesterov=cfg.nesterov and cfg.momentum > 0,
                               weight_decay=cfg.weight_decay)
    opt = torch.optim.Adam if cfg.optimizer == "adam" else torch.optim.AdamW
    return opt(params, lr=cfg.lr, weight_decay=cfg.weight_decay)


def learning_rate(cfg: TrainConfig, step: int, steps_per_epoch: int) -> float:
    """LR at optimisation ``step``: linear warm-up, then cosine or step decay (per step)."""
    epoch = step / steps_per_epoch
    if cfg.warmup_epochs and epoch < cfg.warmup_epochs:
        return cfg.lr * (step + 1) / (cfg.warmup_epochs * steps_per_epoch)
    if cfg.schedule == "cosine":
        span = max(cfg.epochs - cfg.warmup_epochs, 1e-9)
        progress = min((epoch - cfg.warmup_epochs) / span, 1.0)
        return cfg.lr * 0.5 * (1.0 + math.cos(math.pi * progress))
    if cfg.schedule == "step":
        return cfg.lr * cfg.gamma ** sum(int(epoch) >= m for m in cfg.milestones)
    return cfg.lr


@dataclass(frozen=True)
class _Dist:
    """This process's place in a DDP job; ``owned``: :func:`fit` created the group."""

    rank: int
    world_size: int
    local_rank: int
    owned: bool

    @property
    def main(self) -> bool:
        return self.rank == 0


def distributed_env() -> tuple[int, int, int] | None:
    """``(rank, world_size, local_rank)`` of a multi-process job, else ``None``.

    An initialised process group wins; otherwise torchrun's ``RANK``,
    ``WORLD_SIZE`` and ``LOCAL_RANK`` variables are read. One process is ``None``.
    """
    if dist.is_available() and dist.is_initialized():
        world, rank = dist.get_world_size(), dist.get_rank()
    else:
        try:
            world = int(os.environ.get("WORLD_SIZE", "1"))
            rank = int(os.environ.get("RANK", "0"))
        except ValueError:
            raise ConfigError("RANK and WORLD_SIZE must be integers (as torchrun sets them), "
                              f"got RANK={os.environ.get('RANK')!r}, "
                              f"WORLD_SIZE={os.environ.get('WORLD_SIZE')!r}") from None
    if world <= 1:
        return None
    if not 0 <= rank < world:
        raise ConfigError(f"RANK={rank} is not in [0, WORLD_SIZE={world})")
    return rank, world, int(os.environ.get("LOCAL_RANK", str(rank)))


def is_main_process() -> bool:
    """True in a single process and on rank 0 of a distributed job (the one that writes)."""
    env = distributed_env()
    return env is None or env[0] == 0


def _setup_distributed() -> _Dist | None:
    env = distributed_env()
    if env is None:
        return None
    rank, world, local = env
    owned = not dist.is_initialized()
    if owned:  # env:// rendezvous: MASTER_ADDR/MASTER_PORT from torchrun
        if not os.environ.get("MASTER_ADDR") or not os.environ.get("MASTER_PORT"):
            raise ConfigError("distributed training: WORLD_SIZE > 1 but MASTER_ADDR/MASTER_PORT "
                              "are unset; launch with torchrun --nproc_per_node=K")
        dist.init_process_group(backend="gloo", rank=rank, world_size=world)
    return _Dist(rank, world, local, owned)


def _broadcast(obj: Any) -> Any:
    box = [obj]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def fit(classifier: Classifier, train: SkeletonDataset, val: SkeletonDataset | None = None,
        config: TrainConfig | None = None, out_dir: str | os.PathLike[str] | None = None,
        on_epoch: Callable[[dict[str, Any]], None] | None = None, loss: LossFn | None = None,
        optimizer: OptimizerFn | None = None, resume: bool = False) -> TrainResult:
    """Train ``classifier`` on ``train``; keep the best epoch on ``val`` (or the last).

    ``val`` must not be a test split when ``config.keep == "best"`` (a
    :class:`ConfigError`): choosing an epoch on test data is model selection on
    the test set. Splits loaded by :func:`~skelrobust.data.registry.load_dataset`
    know their role; carve validation data with
    :func:`~skelrobust.data.splits.carve_validation`.

    With ``out_dir``, writes ``classifier.safetensors`` (best), ``last.safetensors``
    and ``history.json`` after every epoch. The classifier ends with the best
    weights loaded. Returns the per-epoch history and the best metrics.
    Under torchrun it trains with DDP (see the module docstring); only rank 0
    writes files and calls ``on_epoch``, every rank returns the same history.
    ``loss``, ``optimizer`` and ``resume``: see the module docstring.
    """
    cfg = config or TrainConfig()
    if val is not None and cfg.keep == "best" and val.info.get("role") == "test":
        raise ConfigError(
            f"fit: keep='best' would choose the epoch on the test split ({val.split_label}): model "
            "selection on test data. Pass a validation split (one of the dataset's, or "
            "skelrobust.data.splits.carve_validation(train)), or keep='last'")
    if train.num_classes != classifier.num_classes:
        raise ConfigError(f"fit: train set has {train.num_classes} classes, the classifier "
                          f"{classifier.num_classes}")
    env = distributed_env()
    if resume and (out_dir is None or env is not None):
        raise ConfigError("fit: resume=True needs out_dir (where the run saved its state) and "
                          "a single process (resuming under DDP is not supported)")
    if env is not None and cfg.batch_size % env[1]:
        raise ConfigError(f"fit: batch_size {cfg.batch_size} (the global batch) must be a "
                          f"multiple of the {env[1]} distributed processes")
    ddp = _setup_distributed()
    try:
        return _fit(classifier, train, val, cfg, out_dir, on_epoch, ddp,
                    loss or cross_entropy_loss(cfg.label_smoothing), optimizer, resume)
    finally:
        if ddp is not None and ddp.owned and dist.is_initialized():
            dist.destroy_process_group()


def _fit(classifier: Classifier, train: SkeletonDataset, val: SkeletonDataset | None,
         cfg: TrainConfig, out_dir: str | os.PathLike[str] | None,
         on_epoch: Callable[[dict[str, Any]], None] | None, ddp: _Dist | None,
         objective: LossFn, optimizer: OptimizerFn | None, resume: bool) -> TrainResult:
    main = ddp is None or ddp.main
    if cfg.num_threads:
        torch.set_num_threads(cfg.num_threads)
    if ddp is None:
        seed_everything(cfg.seed)
        rng = np.random.default_rng(cfg.seed)
    else:  # same data order on every rank (sampler), own dropout/augmentation draws
        seed_everything(cfg.seed + ddp.rank)
        rng = np.random.default_rng([cfg.seed, ddp.rank])
    gen = torch.Generator().manual_seed(cfg.seed)
    out = Path(out_dir) if out_dir is not None and main else None
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)

    x_all, y_all = train.tensors()
    n = len(train)
    sampler: DistributedSampler[int] | None = None
    if ddp is None:
        net: torch.nn.Module = classifier
        batch = cfg.batch_size
        steps_per_epoch = max(n // batch, 1)  # drop the last partial batch (BatchNorm)
    else:
        net = DistributedDataParallel(classifier)  # broadcasts rank 0's weights and buffers
        batch = cfg.batch_size // ddp.world_size
        sampler = DistributedSampler(range(n), num_replicas=ddp.world_size, rank=ddp.rank,
                                     shuffle=True, seed=cfg.seed, drop_last=True)
        steps_per_epoch = max(len(sampler) // batch, 1)
    world = 1 if ddp is None else ddp.world_size
    params = [p for p in classifier.parameters() if p.requires_grad]
    if not params:
        raise ConfigError("fit: the classifier has no trainable parameters")
    opt = (optimizer or _optimizer)(params, cfg)
    result = TrainResult(world_size=world)
    best_state: dict[str, torch.Tensor] | None = None
    best_score = -math.inf
    t_start = time.perf_counter()
    train_seconds = 0.0
    step = 0
    first = 1
    if resume and out is not None and (out / RESUME_NAME).is_file():
        state = _load_resume(out, classifier, opt, gen, objective)
        rng.bit_generator.state = state["numpy_rng"]
        step, first = int(state["step"]), int(state["epoch"]) + 1
        best_score, result.best_epoch = float(state["best_score"]), int(state["best_epoch"])
        result.best, result.history = dict(state["best"]), list(state["history"])
        train_seconds, result.resumed_from = float(state["train_seconds"]), first - 1
        best_state = state["best_state"]
        if main:
            log.info("resuming %s after epoch %d of %d", out, first - 1, cfg.epochs)
    for epoch in range(first, cfg.epochs + 1):
        net.train()
        if sampler is None:
            perm = torch.randperm(n, generator=gen)[: steps_per_epoch * batch]
        else:
            sampler.set_epoch(epoch)
            perm = torch.tensor(list(sampler), dtype=torch.long)[: steps_per_epoch * batch]
        tot_loss, tot_correct, seen = 0.0, 0, 0
        t0 = time.perf_counter()
        bar = progress_bar(perm.split(batch), desc=f"epoch {epoch}/{cfg.epochs}",
                           enabled=cfg.progress and main, unit="batch")
        for idx in bar:
            xb, yb = x_all[idx], y_all[idx]
            if cfg.augment_yaw_deg or cfg.augment_scale:
                xb = torch.from_numpy(random_rotate_scale(
                    xb.numpy(), rng, max_yaw_deg=cfg.augment_yaw_deg,
                    scale_range=cfg.augment_scale))
            lr = learning_rate(cfg, step, steps_per_epoch)
            for group in opt.param_groups:
                group["lr"] = lr
            loss, logits = objective(net, xb, yb)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            if cfg.grad_clip is not None:
                torch.nn.utils.clip_grad_norm_(classifier.parameters(), cfg.grad_clip)
            opt.step()
            step += 1
            value = float(loss.detach())
            tot_loss += value * len(yb)
            tot_correct += int((logits.argmax(1) == yb).sum())
            seen += len(yb)
            bar.set_postfix(loss=f"{tot_loss / seen:.3f}", acc=f"{100 * tot_correct / seen:.1f}")
            if not math.isfinite(value):
                raise ConfigError(f"fit: the training loss became {value} at epoch {epoch} "
                                  "(lower the learning rate, or clip gradients)")
        if ddp is not None:  # train metrics over every rank's shard
            totals = torch.tensor([tot_loss, tot_correct, seen], dtype=torch.float64)
            dist.all_reduce(totals)
            tot_loss, tot_correct, seen = float(totals[0]), int(totals[1]), int(totals[2])
        if hasattr(objective, "end_epoch"):  # e.g. BEAT keeps a posterior sample
            objective.end_epoch(classifier, epoch)
        train_seconds += time.perf_counter() - t0
        record: dict[str, Any] = {
            "epoch": epoch, "lr": lr, "loss": tot_loss / max(seen, 1),
            "train_top1": 100.0 * tot_correct / max(seen, 1),
            "seconds": time.perf_counter() - t0,
        }
        if val is not None and main:
            ev = evaluate(classifier, val, cfg.eval_batch_size)
            record.update(val_top1=ev.top1, val_top5=ev.top5, val_loss=ev.loss)
        if ddp is not None:  # rank 0's record (held-out metrics) on every rank
            record = _broadcast(record)
        score = (float(epoch) if cfg.keep == "last"
                 else record.get("val_top1", record["train_top1"]))
        if score > best_score:
            best_score, result.best_epoch = score, epoch
            result.best = dict(record)
            best_state = {k: v.detach().clone() for k, v in classifier.state_dict().items()}
            if out is not None:
                classifier.info["metrics"] = result.best
                classifier.save(out / "classifier.safetensors")
        result.history.append(record)
        if main:
            log.info("%s", epoch_line(record, cfg.epochs))
        if out is not None:
            classifier.info["metrics"] = record
            classifier.save(out / "last.safetensors")
            write_json(out / "history.json", {"config": asdict(cfg), "history": result.history,
                                               "best_epoch": result.best_epoch,
                                               **({"world_size": world} if ddp else {})})
        if out is not None and ddp is None:  # resuming is single-process only
            _save_resume(out, classifier.state_dict(), opt, gen, rng, objective, {
                "epoch": epoch, "step": step, "best_score": best_score,
                "best_epoch": result.best_epoch, "best": result.best,
                "history": result.history, "train_seconds": train_seconds})
        if on_epoch is not None and main:
            on_epoch(record)
    if best_state is not None:
        classifier.load_state_dict(best_state)
    if ddp is not None:  # BatchNorm buffers drift per rank: everyone ends with rank 0's
        for tensor in classifier.state_dict().values():
            dist.broadcast(tensor, src=0)
    classifier.info["metrics"] = result.best
    classifier.eval()
    result.seconds = time.perf_counter() - t_start
    result.train_seconds = train_seconds
    result.samples_per_second = steps_per_epoch * batch * world * cfg.epochs / max(
        train_seconds, 1e-9)
    return result


def epoch_line(record: dict[str, Any], epochs: int) -> str:
    """One readable line per epoch: ``epoch 3/50: loss 0.412, train top-1 88.1 %, ...``."""
    parts = [f"loss {record['loss']:.4f}", f"train top-1 {record['train_top1']:.1f} %"]
    if "val_top1" in record:
        parts += [f"val top-1 {record['val_top1']:.1f} %", f"val loss {record['val_loss']:.4f}"]
    parts += [f"lr {record['lr']:.3g}", f"{record['seconds']:.1f} s"]
    return f"epoch {record['epoch']}/{epochs}: " + ", ".join(parts)


def _save_resume(out: Path, model_state: dict[str, torch.Tensor], opt: torch.optim.Optimizer,
                 gen: torch.Generator, rng: np.random.Generator, objective: LossFn,
                 values: dict[str, Any]) -> None:
    """The state :func:`fit` needs to continue after this epoch (module docstring), the
    weights included: one file, written atomically, so a kill at any moment leaves either
    this epoch's state or the previous one's, never a mix."""
    loss_state = objective.state_dict() if hasattr(objective, "state_dict") else {}
    state = {**values, "model": model_state, "optimizer": opt.state_dict(),
             "generator": gen.get_state(),
             "torch_rng": torch.get_rng_state(),
             "numpy_rng": json.dumps(rng.bit_generator.state), "loss": loss_state,
             "history": json.dumps(values["history"], default=str),
             "best": json.dumps(values["best"], default=str)}
    buffer = io.BytesIO()
    torch.save(state, buffer)
    atomic_write(out / RESUME_NAME, buffer.getvalue(), durable=False)


def _load_resume(out: Path, classifier: Classifier, opt: torch.optim.Optimizer,
                 gen: torch.Generator, objective: LossFn) -> dict[str, Any]:
    """Restore the classifier, optimiser, generators and loss state saved after an epoch."""
    path = out / RESUME_NAME
    try:
        state = torch.load(path, weights_only=True)
        classifier.load_state_dict(state["model"] if "model" in state  # older files: beside
                                   else load_file(str(out / "last.safetensors")))
        opt.load_state_dict(state["optimizer"])
    except (OSError, RuntimeError, KeyError, ValueError) as err:
        raise ConfigError(f"{path}: cannot resume from it ({err}); delete it to start "
                          "afresh") from None
    gen.set_state(state["generator"])
    torch.set_rng_state(state["torch_rng"])
    if state.get("loss") and hasattr(objective, "load_state_dict"):
        objective.load_state_dict(state["loss"])
    best_file = out / "classifier.safetensors"
    state["best_state"] = load_file(str(best_file)) if best_file.is_file() else None
    state["numpy_rng"] = json.loads(state["numpy_rng"])
    state["history"] = json.loads(state["history"])
    state["best"] = json.loads(state["best"])
    return state


