"""The benchmark runner: cells resumable after SIGKILL, the local, process and Ray backends
giving the same results, the cascade, failed cells recorded and retried."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import yaml

from skelrobust.bench import Store, cell_id, load_sweep, run_cell, run_sweep
from skelrobust.bench import runner as runner_module
from skelrobust.cli import main

ROOT = Path(__file__).resolve().parents[1]
TINY = ROOT / "configs" / "sweeps" / "tiny-synthetic.yaml"
#: Fields that change from run to run: wall times, dates and the machine.
TIMES = {"seconds", "started", "finished", "machine", "train_seconds"}


def without_times(value):
    if isinstance(value, dict):
        return {k: without_times(v) for k, v in value.items() if k not in TIMES}
    if isinstance(value, list):
        return [without_times(v) for v in value]
    return value


def stored(out: Path) -> dict[str, dict]:
    return {p.stem: json.loads(p.read_text()) for p in (out / "cells").glob("*.json")}


def arrays(path: Path) -> dict[str, np.ndarray]:
    with np.load(path) as z:
        return {k: z[k] for k in z.files}


def same_results(a: Path, b: Path, ids: list[str]) -> None:
    """Cells ``ids`` of stores ``a`` and ``b`` agree in everything but times and machine,
    and so do their clips."""
    ra, rb = stored(a), stored(b)
    for key in ids:
        assert without_times(ra[key]) == without_times(rb[key]), key
        art = ra[key].get("artifacts", {}).get("adversarial")
        if art:
            xa, xb = arrays(a / art), arrays(b / art)
            assert xa.keys() == xb.keys()
            assert all(np.array_equal(xa[k], xb[k]) for k in xa), key


def write_sweep(path: Path, **changes) -> Path:
    raw = yaml.safe_load(TINY.read_text())
    raw.update(changes)
    path.write_text(yaml.safe_dump(raw))
    return path


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """The tiny sweep over two seeds, run without interruption in this process."""
    folder = tmp_path_factory.mktemp("bench")
    sweep = load_sweep(write_sweep(folder / "two-seeds.yaml", seeds=[0, 1]))
    run = run_sweep(sweep, folder / "out", progress=False)
    assert run.ran == 8 and not run.failed
    return sweep, folder / "out"


def test_a_rerun_runs_nothing(reference):
    sweep, out = reference
    before = {p.name: p.stat().st_mtime_ns for p in (out / "cells").iterdir()}
    again = run_sweep(sweep, out, progress=False)
    assert (again.ran, again.skipped, len(again.results)) == (0, 8, 8)
    assert {p.name: p.stat().st_mtime_ns for p in (out / "cells").iterdir()} == before


def test_results_follow_the_schema(reference):
    sweep, out = reference
    results = stored(out)
    assert set(results) == set(sweep.ids)
    clean = results[sweep.ids[0]]
    assert clean["cell"]["attack"] == "clean" and "artifacts" not in clean["per_clip"]
    m = clean["metrics"]
    assert m["clips"] == 12 and m["robust_accuracy_pct"] == m["clean_accuracy_pct"] > 50
    smart = results[sweep.ids[1]]
    assert smart["status"] == "ok" and smart["attempts"] == 1 and smart["error"] is None
    per = smart["per_clip"]
    assert len(per["index"]) == smart["metrics"]["clean_correct"]  # the clean-correct clips
    assert smart["metrics"]["success_pct"] == pytest.approx(100 * np.mean(per["success"]))
    with np.load(out / smart["artifacts"]["adversarial"]) as z:
        from skelrobust.bench.schema import ARTIFACT_KEYS

        assert set(ARTIFACT_KEYS) <= set(z.files)
        assert z["index"].tolist() == per["index"] and str(z["layout"]) == "ntu25"
    assert smart["checkpoint"]["path"].startswith("checkpoints/")
    assert (out / smart["checkpoint"]["path"] / "classifier.safetensors").is_file()
    # one checkpoint per seed, shared by the cells of that seed
    assert len(list((out / "checkpoints").iterdir())) == 2


def test_cascade_attacks_only_the_clips_still_robust(reference):
    _, out = reference
    results = stored(out)
    by_attack = {json.dumps(r["cell"]["attack"]): r for r in results.values()
                 if r["cell"]["seed"] == 0}
    smart, pgd = by_attack['"smart"'], by_attack['"pgd"']
    cascade = by_attack['["smart", "pgd"]']
    first, second = cascade["metrics"]["stages"]
    assert first["clips"] == smart["metrics"]["clean_correct"]
    assert first["success"] >= 1 and second["success"] >= 1  # both attacks fool some clip
    assert second["clips"] == first["clips"] - first["success"]
    per = cascade["per_clip"]
    fooled_by_smart = np.array(per["fooled_by"]) == "smart"
    assert np.array_equal(fooled_by_smart, smart["per_clip"]["success"])
    # PGD never ran on the clips SMART fooled: they cost SMART's queries only
    assert np.array_equal(np.array(per["queries"])[fooled_by_smart],
                          np.array(smart["per_clip"]["queries"])[fooled_by_smart])
    robust = [np.array(r["per_clip"]["adv_pred"]) == np.array(r["per_clip"]["y"])
              for r in (smart, pgd, cascade)]
    assert np.array_equal(robust[2], robust[0] & robust[1])  # per clip, the minimum
    n = cascade["metrics"]["clips"]
    assert cascade["metrics"]["robust_accuracy_pct"] == pytest.approx(
        100 * (robust[0] & robust[1]).sum() / n)
    assert cascade["metrics"]["robust_accuracy_pct"] <= min(
        smart["metrics"]["robust_accuracy_pct"], pgd["metrics"]["robust_accuracy_pct"])
    # the worst case kept: the motion of the attack that fooled the clip
    with np.load(out / cascade["artifacts"]["adversarial"]) as zc, \
            np.load(out / smart["artifacts"]["adversarial"]) as zs:
        assert np.array_equal(zc["x_adv"][fooled_by_smart], zs["x_adv"][fooled_by_smart])


def test_sigkill_then_restart_loses_and_duplicates_nothing(reference, tmp_path):
    sweep, ref_out = reference
    out = tmp_path / "out"
    command = [sys.executable, "-m", "skelrobust", "bench", sweep.path, "--out", str(out),
               "--quiet", "--threads", "1"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while proc.poll() is None and time.monotonic() < deadline:
        if any((out / "cells").glob("*.json")):
            proc.send_signal(signal.SIGKILL)
            break
        time.sleep(0.005)
    proc.wait(timeout=30)
    done = len(list((out / "cells").glob("*.json")))
    assert proc.returncode == -signal.SIGKILL and 1 <= done < len(sweep.cells)
    finished = subprocess.run([*command, "--workers", "2", "--json"],
                              env=env, capture_output=True, text=True, timeout=300)
    assert finished.returncode == 0, finished.stderr
    summary = json.loads(finished.stdout)
    assert summary["skipped"] == done and summary["ran"] == len(sweep.cells) - done
    names = sorted(p.name for p in (out / "cells").iterdir())
    assert names == sorted(f"{i}.json" for i in sweep.ids)  # each cell once, no temp files
    assert not list((out / "artifacts").glob("*.tmp"))
    assert all(r["attempts"] == 1 and r["status"] == "ok" for r in stored(out).values())
    same_results(ref_out, out, sweep.ids)


def failing_sweep(folder: Path, retries: int) -> Path:
    return write_sweep(folder / "failing.yaml", attacks=["clean", "pgd"], retries=retries,
                       attack_options={"pgd": {"steps": 2, "norm": "l7"}})


def test_a_failed_cell_keeps_its_traceback_and_is_retried(reference, tmp_path, capsys):
    _, ref_out = reference
    out = tmp_path / "out"
    shutil.copytree(ref_out / "checkpoints", out / "checkpoints")  # no training again
    path = failing_sweep(tmp_path, retries=1)
    code = main(["bench", str(path), "--out", str(out), "--quiet"])
    captured = capsys.readouterr()
    assert code == 2 and "1 of 2 cells failed" in captured.err
    assert "synthetic/mlp clean" in captured.out  # the table of every cell, printed first
    sweep = load_sweep(path)
    clean, pgd = (stored(out)[i] for i in sweep.ids)
    assert clean["status"] == "ok"  # the failure stopped nothing else
    assert pgd["status"] == "failed" and pgd["attempts"] == 2  # its first run and one retry
    assert pgd["error"]["type"] == "ConfigError" and "l7" in pgd["error"]["message"]
    assert "Traceback" in pgd["error"]["traceback"] and "check_norm" in pgd["error"]["traceback"]
    again = run_sweep(sweep, out, progress=False)  # its retries are spent: not run again
    assert again.ran == 0 and stored(out)[sweep.ids[1]]["attempts"] == 2
    more = run_sweep(sweep, out, retries=2, progress=False)  # one more allowed
    assert more.ran == 1 and stored(out)[sweep.ids[1]]["attempts"] == 3


def test_a_cell_that_fails_once_succeeds_on_its_retry(reference, tmp_path, monkeypatch):
    from skelrobust.bench import cell as cell_module

    _, ref_out = reference
    out = tmp_path / "out"
    shutil.copytree(ref_out / "checkpoints", out / "checkpoints")
    sweep = load_sweep(write_sweep(tmp_path / "s.yaml", attacks=["clean"], retries=1))
    real, calls = cell_module.compute_cell, []

    def flaky(spec, store):
        calls.append(spec["attack"])
        if len(calls) == 1:
            raise MemoryError("a transient failure")
        return real(spec, store)

    monkeypatch.setattr(cell_module, "compute_cell", flaky)
    run = run_sweep(sweep, out, progress=False)
    result = stored(out)[sweep.ids[0]]
    assert calls == ["clean", "clean"] and result["status"] == "ok" and result["attempts"] == 2
    assert not run.failed
    ref = stored(ref_out)[sweep.ids[0]]
    assert result["metrics"] == ref["metrics"]


def test_a_cell_held_by_a_live_process_is_left_to_it(reference, tmp_path):
    sweep, _ = reference
    store = Store(tmp_path)
    store.open(sweep)
    spec = sweep.cells[0]
    with store.claim(cell_id(spec)) as mine:
        assert mine
        assert run_cell(spec, tmp_path) is None  # busy: not computed twice
    assert not store.result_path(cell_id(spec)).exists()


def test_machine_describes_the_host():
    info = runner_module.machine()
    assert info["cores"] == os.cpu_count() and info["torch"] and "gpu" in info


@pytest.mark.slow
def test_ray_backend_gives_the_local_results(reference, tmp_path):
    pytest.importorskip("ray")
    sweep, ref_out = reference
    tiny = load_sweep(TINY)  # the seed-0 cells of the reference sweep
    assert set(tiny.ids) <= set(sweep.ids)
    run = run_sweep(tiny, tmp_path / "ray", ray="local", ray_cpus=2, threads=1, progress=False)
    assert run.ran == len(tiny.cells) and not run.failed
    same_results(ref_out, tmp_path / "ray", tiny.ids)


def test_transfer_cells_craft_on_the_surrogate_and_judge_on_the_victim(reference, tmp_path):
    from skelrobust.classifier import Classifier

    _, ref_out = reference
    sweep = load_sweep(write_sweep(tmp_path / "transfer.yaml", attacks=["smart"],
                                   surrogates=[None, "mlp", "hrnn"]))
    run = run_sweep(sweep, tmp_path / "out", progress=False)
    assert run.ran == 3 and not run.failed
    results = stored(tmp_path / "out")
    by = {(r["cell"].get("surrogate") or {}).get("model"): r for r in results.values()}
    direct = by[None]
    # no surrogate: the very cell (same id, same result) as the plain sweep's SMART cell
    assert without_times(direct) == without_times(stored(ref_out)[direct["id"]])
    for name in ("mlp", "hrnn"):
        cell = by[name]
        assert cell["status"] == "ok" and set(cell["per_clip"]["queries"]) == {0}
        assert cell["checkpoint"]["surrogate"]["path"].startswith("checkpoints/")
    # crafted on an identical copy of the victim: exactly the white-box result
    assert by["mlp"]["per_clip"]["success"] == direct["per_clip"]["success"]
    # crafted elsewhere: success is the victim's answer to the stored motion
    other = by["hrnn"]
    victim = Classifier.load(tmp_path / "out" / other["checkpoint"]["path"]
                             / "classifier.safetensors").eval()
    with np.load(tmp_path / "out" / other["artifacts"]["adversarial"]) as z:
        import torch

        pred = victim(torch.from_numpy(z["x_adv"])).argmax(1).numpy()
    assert pred.tolist() == other["per_clip"]["adv_pred"]
    assert other["per_clip"]["success"] == (pred != np.array(other["per_clip"]["y"])).tolist()
    assert len(list((tmp_path / "out" / "checkpoints").iterdir())) == 2  # mlp and hrnn
