"""Victims outside PyTorch: a :class:`~skelrobust.classifier.Classifier` as an ONNX file, and
ONNX files run by onnxruntime (the ``onnx`` extra: ``pip install 'skelrobust[onnx]'``).

- :func:`export_onnx` writes one self-contained ``.onnx`` file: the normalisation is
  inside (it is part of :meth:`Classifier.forward`), so the file maps motion
  ``"motion"`` ``(N, 3, T, V, M)`` float32 **in metres** to ``"logits"`` ``(N, K)``, with a
  dynamic batch axis and fixed ``T``, ``V``, ``M``. The skelrobust header (layout, class
  names, model, frames and bodies, preprocessing, the data it was trained on) is stored as
  JSON under the ``"skelrobust"`` key of the model's ``metadata_props``. Before the file is
  written, the exported graph is run by onnxruntime on random motion (full, padded and
  one-body clips, batched and alone) and compared with the classifier; a graph that
  disagrees is refused (nothing is written), so a model whose forward pass depends on its
  input in ways the exporter cannot capture never reaches a user as a silently wrong file.
- :class:`OnnxModel` runs such a file (or any ONNX classifier with one
  ``(N, 3, T, V, M)`` input and ``(N, K)`` output): ``model(x) -> logits``, with the layout
  and class names of its metadata.
  :meth:`skelrobust.attacks.oracle.QueryOracle.from_onnx` makes it a black-box victim.

Exporters (``exporter=``): ``"dynamo"`` (``torch.onnx.export(..., dynamo=True)``, the
``torch.export`` path; needs ``onnxscript``), ``"legacy"`` (the TorchScript tracer, which
torch deprecates), or ``"auto"`` (the default): dynamo, then legacy when dynamo fails or
disagrees.
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import os
import time
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from skelrobust.classifier import json_default as classifier_json
from skelrobust.errors import CheckpointError, ConfigError, ShapeError

__all__ = ["EXPORTERS", "INPUT_NAME", "METADATA_KEY", "OUTPUT_NAME", "ExportReport",
           "OnnxModel", "export_onnx"]

INPUT_NAME, OUTPUT_NAME = "motion", "logits"
METADATA_KEY = "skelrobust"
EXPORTERS = ("auto", "dynamo", "legacy")
FORMAT_VERSION = 1
DEFAULT_OPSET = 18
INSTALL_HINT = "pip install 'skelrobust[onnx]'"

log = logging.getLogger("skelrobust")


def _require(module: str, what: str) -> Any:
    """Import an optional dependency of the ``onnx`` extra, or say how to install it."""
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError:
        raise ConfigError(f"{what} needs the {module} package: {INSTALL_HINT}") from None


@dataclass
class ExportReport:
    """What :func:`export_onnx` wrote and how well the file agrees with the classifier."""

    path: str
    exporter: str  # the exporter that produced the file ("dynamo" or "legacy")
    opset: int
    input_shape: tuple[Any, ...]  # ("N", 3, T, V, M)
    num_classes: int
    layout: str
    model: str
    max_abs_diff: float  # max |logit(ONNX) − logit(classifier)| over the check clips
    tolerance: float  # the most it may be (relative tolerance × the logits' scale)
    labels_agree: int  # check clips on which both give the same top-1 class
    check_clips: int
    bytes: int
    seconds: float
    fallback: str | None = None  # why an earlier exporter was not used (``exporter="auto"``)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


# ---------------------------------------------------------------------- export
def export_onnx(classifier: Any, path: str | os.PathLike[str], frames: int | None = None,
                bodies: int | None = None, opset: int = DEFAULT_OPSET, *,
                exporter: str = "auto", check_clips: int = 8, tolerance: float = 1e-3,
                seed: int = 0) -> ExportReport:
    """Write ``classifier`` (normalisation included) to the ONNX file ``path`` (module doc).

    ``frames``: ``T`` of the input (default: the frames the classifier was trained on,
    ``classifier.preprocess["num_frames"]``); ``bodies``: ``M`` (default: the model's
    ``num_bodies``). The file is written (atomically) only when onnxruntime's logits
    on ``check_clips`` random clips are within ``tolerance × max(1, max |logit|)`` of
    the classifier's; otherwise :class:`~skelrobust.errors.CheckpointError` and
    nothing is written. Returns an :class:`ExportReport`.
    """
    from skelrobust.classifier import Classifier

    if not isinstance(classifier, Classifier):
        raise ConfigError(f"export_onnx: expected a Classifier, got {type(classifier).__name__}")
    random = [getattr(c, "defense", "") for c in _stack(classifier)
              if getattr(c, "stochastic", False)]
    if random:
        what = random[0] or type(classifier).__name__
        raise ConfigError(f"export_onnx: the classifier is stochastic ({what}: one random "
                          "draw per call); an ONNX file would bake in or drop that randomness, "
                          "so it is not exported (export the classifier under it instead)")
    if exporter not in EXPORTERS:
        raise ConfigError(f"export_onnx: exporter must be one of {EXPORTERS}, got {exporter!r}")
    if check_clips < 2:
        raise ConfigError(f"export_onnx: check_clips must be >= 2, got {check_clips}")
    if not tolerance > 0:
        raise ConfigError(f"export_onnx: tolerance must be > 0, got {tolerance}")
    onnx = _require("onnx", "ONNX export")
    _require("onnxruntime", "ONNX export (the agreement check)")
    target = Path(path)
    if target.is_dir():
        raise ConfigError(f"{target}: is a folder; expected an .onnx file name")
    t, m = _export_dims(classifier, frames, bodies)
    v = classifier.skeleton.num_joints
    header = _header(classifier, t, m, opset)
    model = " on ".join([d["defense"] for d in header.get("defenses", [])]
                        + [header["model"]["name"]])  # e.g. "beat on stgcn"
    t0 = time.perf_counter()
    candidates = ["dynamo", "legacy"] if exporter == "auto" else [exporter]
    failures: list[str] = []
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(target.name + ".tmp")
    for kind in candidates:
        try:
            proto = _export_proto(onnx, classifier, kind, (t, v, m), opset)
        except Exception as err:  # the exporter's own failure, whatever it is
            failures.append(f"{kind} exporter failed: {_reason(err)}")
            continue
        del proto.metadata_props[:]  # the exporter's own bookkeeping keys are not ours
        entry = proto.metadata_props.add()
        entry.key, entry.value = METADATA_KEY, json.dumps({**header, "exporter": kind})
        proto.doc_string = (f"skelrobust {model} classifier: motion (N, 3, "
                            f"{t}, {v}, {m}) in metres -> logits (N, {classifier.num_classes})")
        try:
            onnx.save_model(proto, str(tmp))
            diff, limit, agree = _agreement(classifier, tmp, (t, v, m), check_clips, seed,
                                             tolerance)
        except Exception as err:  # onnxruntime cannot run what the exporter wrote
            tmp.unlink(missing_ok=True)
            failures.append(f"onnxruntime cannot run the {kind} exporter's graph: "
                            f"{_reason(err)}")
            continue
        if diff <= limit:
            os.replace(tmp, target)
            report = ExportReport(
                path=str(target), exporter=kind, opset=opset, input_shape=("N", 3, t, v, m),
                num_classes=classifier.num_classes, layout=classifier.skeleton.name,
                model=model, max_abs_diff=diff, tolerance=limit,
                labels_agree=agree, check_clips=check_clips, bytes=target.stat().st_size,
                seconds=time.perf_counter() - t0, fallback="; ".join(failures) or None)
            log.debug("exported %s with %s: max |Δlogit| %.3g", target, kind, diff)
            return report
        tmp.unlink(missing_ok=True)
        failures.append(f"{kind} exporter's graph disagrees with the classifier (max |Δlogit| "
                        f"{diff:.3g} > {limit:.3g}, labels agree on {agree} of {check_clips} "
                        "random clips)")
    raise CheckpointError(f"{target}: cannot export {model!r} to ONNX; not "
                          f"written: {'; '.join(failures)}")


def _export_dims(classifier: Any, frames: int | None, bodies: int | None) -> tuple[int, int]:
    if frames is None:
        frames = (classifier.preprocess or {}).get("num_frames")
        if frames is None:
            raise ConfigError("export: the classifier does not record the frames per clip it "
                              "was trained on; pass frames (--frames T)")
    if bodies is None:
        bodies = (getattr(classifier.model, "config", None) or {}).get("num_bodies")
        if bodies is None:
            raise ConfigError("export: the classifier does not record how many bodies it "
                              "takes; pass bodies")
    for name, value, lo in (("frames", frames, 2), ("bodies", bodies, 1)):
        if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < lo:
            raise ConfigError(f"export: {name} must be an integer >= {lo}, got {value!r}")
    return int(frames), int(bodies)


def _header(classifier: Any, frames: int, bodies: int, opset: int) -> dict[str, Any]:
    """The skelrobust header an ONNX file carries (JSON-safe)."""
    from skelrobust import __version__

    *defended, root = _stack(classifier)  # a defense: the model of the undefended classifier
    try:  # what a classifier file records of its model
        config = root.header()["model"]
    except CheckpointError:  # a model with no config to rebuild it from: its class name
        config = {"name": type(root.model).__name__}
    config = json.loads(json.dumps(config, default=_json))
    defenses = [{"defense": c.defense, "args": c.args} for c in defended]  # outermost first
    info = classifier.info or {}
    data = info.get("data") or ({"name": info["train_data"]["name"]}
                                if (info.get("train_data") or {}).get("name") else None)
    preprocess = {**(classifier.preprocess or {}), "num_frames": frames}
    return json.loads(json.dumps({
        "format": FORMAT_VERSION, "skelrobust": __version__, "model": config,
        "layout": classifier.skeleton.name, "class_names": list(classifier.class_names),
        "frames": frames, "bodies": bodies, "joints": classifier.skeleton.num_joints,
        "input": INPUT_NAME, "output": OUTPUT_NAME, "units": "metres",
        "preprocess": preprocess, "data": data, "test": info.get("test"), "opset": opset,
        "torch": torch.__version__, **({"defenses": defenses} if defenses else {})},
        default=_json))


def _stack(classifier: Any) -> list[Any]:
    """``classifier``, then the base of each defense under it, down to the undefended one."""
    from skelrobust.defenses.base import defense_stack

    return defense_stack(classifier)


def _json(obj: Any) -> Any:
    """The classifier header's JSON conversion; anything else as its ``repr``."""
    try:
        return classifier_json(obj)
    except TypeError:
        return repr(obj)


@contextlib.contextmanager
def _quiet_export(classifier: Any) -> Iterator[None]:
    """Eval mode, input checks off (they are data-dependent Python), exporter chatter muted."""
    was_training = classifier.training
    stack = _stack(classifier)  # a defense's bases check their input too
    validate = [c.validate for c in stack]
    names = {"torch", *(n for n in logging.root.manager.loggerDict if n.startswith("torch."))}
    loggers = [logging.getLogger(n) for n in sorted(names)]
    levels = [lg.level for lg in loggers]
    classifier.eval()
    for c in stack:
        c.validate = False
    for lg in loggers:  # the exporters log warnings and whole graphs on failures
        lg.setLevel(logging.CRITICAL)
    try:
        with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()), \
                contextlib.redirect_stderr(io.StringIO()), torch.no_grad(), \
                _constant_counters(stack[:-1]):
            warnings.simplefilter("ignore")
            yield
    finally:
        for lg, level in zip(loggers, levels):
            lg.setLevel(level)
        for c, flag in zip(stack, validate):
            c.validate = flag
        classifier.train(was_training)


@contextlib.contextmanager
def _constant_counters(defenses: Sequence[Any]) -> Iterator[None]:
    """The defenses' own integer scalar buffers as Python ints while exporting (restored after).

    Such a buffer is a counter fixed after training (BEAT's posterior draws kept), read with
    ``int(...)`` to choose what to compute; ``torch.export`` lifts buffers to graph inputs
    and refuses to branch on one. As a constant, the branch this classifier takes is traced.
    """
    saved = [(d, dict(d._buffers)) for d in defenses]
    try:
        for d, buffers in saved:
            for name, buf in buffers.items():
                if buf is not None and buf.dim() == 0 and not buf.is_floating_point():
                    del d._buffers[name]
                    object.__setattr__(d, name, int(buf))
        yield
    finally:
        for d, buffers in saved:
            for name in buffers:
                d.__dict__.pop(name, None)
            d._buffers.clear()
            d._buffers.update(buffers)


def _example(classifier: Any, n: int, dims: tuple[int, int, int], seed: int) -> torch.Tensor:
    """Motion distributed like the classifier's training data: ``mean + std·N(0, 1)``."""
    t, v, m = dims
    g = torch.Generator().manual_seed(seed)
    mean, std = classifier.mean.detach().cpu(), classifier.std.detach().cpu()
    return (mean + std * torch.randn((n, 3, t, v, m), generator=g)).float()


def _export_proto(onnx: Any, classifier: Any, kind: str, dims: tuple[int, int, int],
                  opset: int) -> Any:
    device = classifier.mean.device
    x = _example(classifier, 2, dims, seed=12345).to(device)
    with _quiet_export(classifier):
        if kind == "dynamo":
            _require("onnxscript", "the dynamo ONNX exporter")
            batch = torch.export.Dim("batch", min=1, max=1 << 24)
            program = torch.onnx.export(
                classifier, (x,), None, input_names=[INPUT_NAME], output_names=[OUTPUT_NAME],
                dynamic_shapes=({0: batch},), dynamo=True, opset_version=opset,
                external_data=False, verbose=False)
            return program.model_proto
        buf = io.BytesIO()
        torch.onnx.export(classifier, (x,), buf, input_names=[INPUT_NAME],
                          output_names=[OUTPUT_NAME], opset_version=opset, dynamo=False,
                          dynamic_axes={INPUT_NAME: {0: "N"}, OUTPUT_NAME: {0: "N"}})
        return onnx.load_model_from_string(buf.getvalue())


def _reason(err: BaseException) -> str:
    """A short, one-line reason from an exporter's (often very long) error."""
    text = str(err)
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    reason = lines[0] if lines else type(err).__name__
    if "## Exception summary" in text:
        after = text.split("## Exception summary", 1)[1]
        summary = [ln.strip() for ln in after.splitlines() if ln.strip()]
        reason = summary[0] if summary else reason
        where = [ln for ln in summary if ln.startswith('File "')]
        if where:
            reason += f" (at {where[0]})"
    reason = reason.replace("\x1b[96m", "").replace("\x1b[0m", "")
    return (reason if len(reason) <= 400 else reason[:397] + "...")


def _agreement(classifier: Any, file: Path, dims: tuple[int, int, int], clips: int,
               seed: int, tolerance: float) -> tuple[float, float, int]:
    """``(max |Δlogit|, allowed, labels that agree)`` of the ONNX file against the classifier.

    The clips are like the training data, some padded (their last frames zero) and,
    with two or more bodies, some with only the first body present; the file is run on
    all of them at once and on the first alone (the batch axis is dynamic).
    """
    t, _, m = dims
    x = _example(classifier, clips, dims, seed)
    lengths = torch.full((clips,), t)
    lengths[1::2] = torch.randint(max(1, t // 3), t, (len(lengths[1::2]),),
                                  generator=torch.Generator().manual_seed(seed + 1))
    frame_out = torch.arange(t)[None, :] >= lengths[:, None]  # (clips, T)
    x = x.masked_fill(frame_out[:, None, :, None, None], 0.0)
    if m > 1:
        x[2::3, :, :, :, 1:] = 0.0
    ref = classifier.predict_logits(x.to(classifier.mean.device)).detach().cpu().double()
    model = OnnxModel(file)
    out = torch.cat([model(x), model(x[:1]).reshape(1, -1)]).double()
    ref = torch.cat([ref, ref[:1]])
    if out.shape != ref.shape or not bool(torch.isfinite(out).all()):
        return float("inf"), 0.0, 0
    diff = float((out - ref).abs().max())
    allowed = tolerance * max(1.0, float(ref.abs().max()))
    agree = int((out[:clips].argmax(1) == ref[:clips].argmax(1)).sum())
    return diff, allowed, agree


# ---------------------------------------------------------------------- running
class OnnxModel:
    """An ONNX classifier run by onnxruntime: ``model(x)`` maps motion to logits.

    ``path``: an ONNX file with one input ``(N, 3, T, V, M)`` (float32; ``T``, ``V``,
    ``M`` fixed or dynamic) and logits ``(N, K)`` as its first output — such as
    :func:`export_onnx` writes. ``providers``: onnxruntime execution providers
    (default ``["CPUExecutionProvider"]``); onnxruntime uses as many threads as torch
    (``torch.get_num_threads()``).

    ``layout`` and ``class_names`` come from the file's skelrobust metadata (``None``
    when it has none); ``header`` is the whole metadata (``{}`` when absent).
    A motion whose ``(3, T, V, M)`` does not fit the input raises
    :class:`~skelrobust.errors.ShapeError` naming the file and both shapes; a missing,
    corrupt or non-ONNX file :class:`~skelrobust.errors.CheckpointError`.
    """

    def __init__(self, path: str | os.PathLike[str],
                 providers: Sequence[str] | None = None) -> None:
        ort = _require("onnxruntime", "running an ONNX model")
        self.path = Path(path)
        if not self.path.is_file():
            raise CheckpointError(f"{self.path}: no such ONNX file")
        available = ort.get_available_providers()
        providers = list(providers) if providers is not None else ["CPUExecutionProvider"]
        unknown = [p for p in providers if p not in available]
        if unknown or not providers:
            raise ConfigError(f"onnxruntime providers {unknown or providers} are not available "
                              f"here; available: {', '.join(available)}")
        options = ort.SessionOptions()
        options.intra_op_num_threads = torch.get_num_threads()
        options.inter_op_num_threads = 1
        options.log_severity_level = 3  # errors only: warnings would bypass --quiet
        try:
            self._session = ort.InferenceSession(str(self.path), sess_options=options,
                                                 providers=providers)
        except Exception as err:  # onnxruntime raises its own exception types
            first = (str(err).strip().splitlines() or [type(err).__name__])[0]
            raise CheckpointError(f"{self.path}: not a readable ONNX model ({first[:300]})"
                                  ) from None
        inputs, outputs = self._session.get_inputs(), self._session.get_outputs()
        if len(inputs) != 1 or len(inputs[0].shape or ()) != 5 or not outputs:
            shapes = [tuple(i.shape or ()) for i in inputs]
            raise CheckpointError(f"{self.path}: expected an ONNX classifier with one input "
                                  f"(N, 3, T, V, M) and logits (N, K); it takes {shapes}")
        self.input_name, self.output_name = inputs[0].name, outputs[0].name
        self._dtype = {"tensor(float)": np.float32, "tensor(double)": np.float64}.get(
            inputs[0].type)
        if self._dtype is None:
            raise CheckpointError(f"{self.path}: input {self.input_name!r} is {inputs[0].type};"
                                  " expected float motion (tensor(float))")
        self.input_shape: tuple[int | None, ...] = tuple(
            d if isinstance(d, int) and d > 0 else None for d in inputs[0].shape)
        if self.input_shape[1] not in (None, 3):
            raise CheckpointError(f"{self.path}: input {self.input_name!r} has shape "
                                  f"{_shape(self.input_shape)}; expected (N, 3, T, V, M)")
        out_shape = tuple(outputs[0].shape or ())
        k = out_shape[1] if len(out_shape) == 2 else None
        self.output_classes: int | None = k if isinstance(k, int) and k > 0 else None
        self.header = self._read_header()

    def _read_header(self) -> dict[str, Any]:
        meta = self._session.get_modelmeta().custom_metadata_map or {}
        if METADATA_KEY not in meta:
            return {}
        try:
            header = json.loads(meta[METADATA_KEY])
        except json.JSONDecodeError as err:
            raise CheckpointError(f"{self.path}: malformed skelrobust metadata ({err})") from None
        if not isinstance(header, dict):
            raise CheckpointError(f"{self.path}: malformed skelrobust metadata (not an object)")
        return header

    # ------------------------------------------------------------------ description
    @property
    def layout(self) -> str | None:
        """The skeleton layout name of the metadata (``None`` when absent)."""
        layout = self.header.get("layout")
        return str(layout) if layout else None

    @property
    def class_names(self) -> list[str] | None:
        """The class names of the metadata (``None`` when absent)."""
        names = self.header.get("class_names")
        return [str(c) for c in names] if isinstance(names, list) and names else None

    @property
    def frames(self) -> int | None:
        return self.input_shape[2]

    @property
    def joints(self) -> int | None:
        return self.input_shape[3]

    @property
    def bodies(self) -> int | None:
        return self.input_shape[4]

    def num_classes(self, class_names: Sequence[str] | None = None) -> int:
        """``K``: from the output shape, else from ``class_names`` (or the metadata's).

        Class names that disagree with a fixed output shape are a ``ConfigError``.
        """
        names = list(class_names) if class_names is not None else self.class_names
        k = self.output_classes
        if k is not None and names is not None and len(names) != k:
            raise ConfigError(f"{self.path}: outputs {k} classes, but {len(names)} class names "
                              "were given")
        if k is None and names is None:
            raise ConfigError(f"{self.path}: its output does not fix the number of classes and "
                              "it has no class names; pass class_names")
        return k if k is not None else len(names)  # type: ignore[arg-type]

    def __repr__(self) -> str:
        return (f"OnnxModel({str(self.path)!r}, input={_shape(self.input_shape)}, "
                f"classes={self.output_classes}, layout={self.layout!r})")

    # ------------------------------------------------------------------ running
    def check_input(self, shape: Sequence[int]) -> None:
        """:class:`ShapeError` unless motion of ``shape`` fits the model's input."""
        shape = tuple(int(s) for s in shape)
        fixed = self.input_shape[1:]
        if len(shape) != 5 or any(f is not None and f != s for f, s in zip(fixed, shape[1:])):
            raise ShapeError(f"{self.path}: the model takes motion {_shape(self.input_shape)}, "
                             f"got {shape}")

    def __call__(self, x: torch.Tensor | np.ndarray) -> torch.Tensor:
        """Logits ``(N, K)`` (float32 tensor on the CPU) of motion ``x`` ``(N, 3, T, V, M)``."""
        if isinstance(x, torch.Tensor):
            x = x.detach().cpu().numpy()
        x = np.asarray(x)
        self.check_input(x.shape)
        if len(x) == 0:
            return torch.zeros((0, self.output_classes or 0), dtype=torch.float32)
        feed = {self.input_name: np.ascontiguousarray(x, dtype=self._dtype)}
        out = self._session.run([self.output_name], feed)[0]
        return torch.from_numpy(np.asarray(out, dtype=np.float32))


def _shape(shape: Sequence[int | None]) -> str:
    names = "NCTVM"
    return "(" + ", ".join(str(d) if d is not None else names[i] for i, d in
                           enumerate(shape)) + ")"
