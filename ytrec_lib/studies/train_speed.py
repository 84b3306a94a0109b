"""How fast the trainer trains the candidate model, against the arithmetic rate of the machine.

One measurement (:func:`train_speed`) of the default candidate model (or any
:class:`ytrec_lib.pipeline.CandidateConfig`) on a preset's next-watch training examples:

* examples per second of :func:`ytrec_lib.train.fit` over whole epochs (no validation), by the wall
  clock and by the process's CPU time (on a shared machine the wall clock also counts other jobs);
* the floating-point work of one example (:func:`flops_per_example`) and so the achieved GFLOP/s,
  as a fraction of the GEMM rate (:func:`ytrec_lib.studies.ann_bench.measure_gflops`) measured in the
  same run on the same number of threads;
* where one step's time goes (:func:`step_breakdown`): feature batch assembly, forward (the tower),
  loss (the softmax), backward, optimiser; and the validation evaluation that early stopping runs
  after each epoch (:func:`ytrec_lib.models.candidate.evaluate_recall`).

The model starts from random input tables: pretrained item2vec tables change the numbers a model
learns, not the work of a step. ``python -m ytrec_lib train-speed --preset small`` prints it.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import numpy as np
import torch

from ytrec_lib.models import candidate as C
from ytrec_lib.studies import next_watch
from ytrec_lib.studies.ann_bench import measure_gflops
from ytrec_lib.threads import limit_threads
from ytrec_lib.train import Optimizer, TrainConfig, embedding_loss, fit, make_sampler

STEP_PARTS: tuple[str, ...] = ("batch", "forward", "loss", "backward", "optimiser")
"""The parts of one training step :func:`step_breakdown` times, in order."""


def flops_per_example(model: C.CandidateModel, loss: str, n_negatives: int) -> float:
    """Floating-point operations of one training example: 2 per multiply-add of the tower's layers and
    of the softmax's logits (full: ``n_videos x m``; sampled: ``n_negatives x m``, the shared
    negatives), times 3 for forward plus backward (the backward costs about two forwards)."""
    tower = sum(layer.in_features * layer.out_features for layer in model.tower
                if isinstance(layer, torch.nn.Linear))
    n_out = model.n_videos if loss == "full" else int(n_negatives)
    return 3.0 * 2.0 * (tower + n_out * model.m)


def _clocked(fn: Callable[[], Any]) -> tuple[Any, float, float]:
    """``(fn(), wall seconds, CPU seconds of this process)``."""
    c0, t0 = time.process_time(), time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t0, time.process_time() - c0


def step_breakdown(model: C.CandidateModel, feats: Any, labels: np.ndarray, config: TrainConfig,
                   n_steps: int = 20, warmup: int = 2, clock: str = "wall") -> dict[str, float]:
    """Median milliseconds of each part of :data:`STEP_PARTS` over ``n_steps`` training steps (after
    ``warmup`` untimed ones) on shuffled batches of ``config.batch_size`` examples of ``feats``
    (``labels`` (n,) int64), with the trainer's own pieces; trains ``model`` a little (pass a copy).
    Also ``"step"``: the median of their sum. ``clock``: "wall" or "cpu" (this process's CPU time,
    which on a shared machine leaves out the time other jobs take the core)."""
    if clock not in ("wall", "cpu"):
        raise ValueError(f"step_breakdown: clock must be 'wall' or 'cpu', got {clock!r}")
    now = time.perf_counter if clock == "wall" else time.process_time
    y = torch.from_numpy(np.array(labels, dtype=np.int64))  # (n,) a writable copy
    sampler = None
    if config.loss == "sampled":
        sampler = make_sampler(model.n_videos, config.proposal,
                               np.bincount(y.numpy(), minlength=model.n_videos), config.proposal_alpha)
    opt = Optimizer(model, config.lr, sparse=config.sparse_updates, sparse_output=config.loss == "sampled")
    rng = np.random.default_rng(config.seed)
    model.train()
    times: dict[str, list[float]] = {part: [] for part in STEP_PARTS}
    for step in range(warmup + n_steps):
        idx = rng.choice(len(y), min(config.batch_size, len(y)), replace=False)
        t = [now()]
        batch = feats.batch(idx)
        t.append(now())
        u = model.user_embeddings(batch)  # (B, m)
        t.append(now())
        loss = embedding_loss(model, u, y[idx], config, sampler, rng)
        t.append(now())
        opt.zero_grad()
        loss.backward()
        t.append(now())
        opt.step()
        t.append(now())
        if step >= warmup:
            for part, a, b in zip(STEP_PARTS, t[:-1], t[1:], strict=True):
                times[part].append(1e3 * (b - a))
    out = {part: float(np.median(v)) for part, v in times.items()}
    out["step"] = float(np.median(np.sum([times[p] for p in STEP_PARTS], axis=0)))
    return out


def training_data(preset: str, seed: int = 0, config: Any = None) -> dict[str, Any]:
    """A preset's next-watch training and validation examples with a candidate model's feature spec
    (``config``: a :class:`ytrec_lib.pipeline.CandidateConfig`, default the default model) and that
    model, untrained, with random input tables: ``{"train", "train_labels", "valid", "valid_labels",
    "model", "config"}``; ``config.max_train_examples`` keeps a seeded subset, as the pipeline does."""
    from ytrec_lib import pipeline

    cfg = config or pipeline.CandidateConfig(split="next_watch")
    return {**next_watch.training_data(preset, seed, cfg), "config": cfg}


def train_speed(preset: str = "small", seed: int = 0, config: Any = None, *, epochs: int = 1,
                threads: int = 1, n_steps: int = 20, gemm_n: int = 1024, progress: bool = False,
                **overrides: Any) -> dict[str, Any]:
    """Examples/s, GFLOP/s, the fraction of the GEMM rate and the step breakdown of the candidate
    model's training on ``preset`` (see the module docstring), on ``threads`` torch/BLAS threads.

    ``config``: a :class:`ytrec_lib.pipeline.CandidateConfig` (default: the default model), with
    ``overrides`` (e.g. ``batch_size=1024``); ``epochs``: whole epochs timed; ``n_steps``: steps of
    the breakdown; ``gemm_n``: the side of the square float32 GEMM timed side by side.
    Returns a JSON-able dict; times in seconds unless the key says ms.
    """
    from ytrec_lib import pipeline

    cfg = replace(config or pipeline.CandidateConfig(split="next_watch"), **overrides)
    data = training_data(preset, seed, cfg)
    model, tcfg = data["model"], replace(cfg.train_config(seed), epochs=int(epochs), patience=int(epochs))
    flops = flops_per_example(model, cfg.loss, cfg.n_negatives)
    with limit_threads(threads):
        gemm = measure_gflops(gemm_n, threads=threads)
        gemm_cpu = measure_gflops(gemm_n, threads=threads, clock="cpu")
        parts = {clock: step_breakdown(C.CandidateModel(**_model_args(model)), data["train"],
                                       data["train_labels"], tcfg, n_steps, clock=clock)
                 for clock in ("wall", "cpu")}
        hist, wall, cpu = _clocked(lambda: fit(model, data["train"], data["train_labels"], tcfg,
                                               progress=progress))
        _, val_wall, val_cpu = _clocked(lambda: C.evaluate_recall(model, data["valid"],
                                                                   data["valid_labels"]))
        gemm_after = measure_gflops(gemm_n, threads=threads)
        gemm_cpu = max(gemm_cpu, measure_gflops(gemm_n, threads=threads, clock="cpu"))
    n = len(data["train"]) * len(hist.epochs)
    gemm_rate = max(gemm, gemm_after)
    return {"preset": preset, "threads": int(threads), "loss": cfg.loss, "n_negatives": cfg.n_negatives,
            "batch_size": cfg.batch_size, "tower": list(cfg.tower), "n_videos": model.n_videos, "m": model.m,
            "n_train": len(data["train"]), "n_valid": len(data["valid"]), "epochs": len(hist.epochs),
            "examples_per_s": n / wall, "examples_per_cpu_s": n / cpu, "epoch_s": wall / len(hist.epochs),
            "flops_per_example": flops, "gflops": flops * n / wall / 1e9, "gemm_gflops": gemm_rate,
            "fraction_of_gemm": flops * n / wall / 1e9 / gemm_rate, "step_ms": parts["wall"],
            "step_cpu_ms": parts["cpu"], "validation_s": val_wall, "validation_cpu_s": val_cpu,
            "gflops_cpu": flops * n / cpu / 1e9, "gemm_gflops_cpu": gemm_cpu,
            "fraction_of_gemm_cpu": flops * n / cpu / 1e9 / gemm_cpu}


def _model_args(model: C.CandidateModel) -> dict[str, Any]:
    """Constructor arguments of a fresh model like ``model`` (random tables, same seed)."""
    hp = dict(model.hparams)
    hp["spec"] = model.spec
    return hp


def format_report(r: dict[str, Any]) -> str:
    """The measurement of :func:`train_speed` as a few lines of text (wall clock, then CPU time)."""
    negatives = f" ({r['n_negatives']} negatives)" if r["loss"] == "sampled" else ""
    lines = [f"{r['preset']}: {r['n_train']:,} training examples, {r['n_videos']:,} videos, {r['loss']} "
             f"softmax{negatives}, batch {r['batch_size']}, tower {r['tower']}, {r['threads']} thread(s); "
             f"{r['flops_per_example'] / 1e6:.2f} MFLOP per example"]
    for clock, sfx in (("wall clock", ""), ("CPU time", "_cpu")):
        rate = r["examples_per_s"] if not sfx else r["examples_per_cpu_s"]
        parts = ", ".join(f"{p} {r['step' + sfx + '_ms'][p]:.1f}" for p in STEP_PARTS)
        lines += [f"  {clock}: {rate:,.0f} examples/s -> {r['gflops' + sfx]:.2f} GFLOP/s = "
                  f"{r['fraction_of_gemm' + sfx]:.1%} of the GEMM rate "
                  f"({r['gemm_gflops' + sfx]:.1f} GFLOP/s); "
                  f"validation {r['validation' + sfx + '_s']:.2f} s ({r['n_valid']:,} examples)",
                  f"    one step (median ms): {parts}; total {r['step' + sfx + '_ms']['step']:.1f}"]
    return "\n".join(lines)


__all__ = ["STEP_PARTS", "flops_per_example", "step_breakdown", "training_data", "train_speed",
           "format_report"]
