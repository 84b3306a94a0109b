"""``python -m ytrec_lib COMMAND``: run the notebooks, read their results, generate data, benchmark.

Commands:
  run-notebooks   execute notebooks in order at a preset, publish them and an HTML report in build/
  results         print every recorded result (``--json`` for one JSON object)
  update-readme   write the recorded results into README.md's results section
  strip-notebooks remove outputs and execution counts from notebooks/ (what gets committed)
  generate        generate (or load from the cache) a preset's dataset and print its table sizes
  bench-ann       the approximate-nearest-neighbour benchmark (see ytrec_lib.studies.ann_bench)
  evaluate        baselines and models on the standard split: recall@10/50/100, NDCG@10 (± SE)
  train-speed     the candidate model's training speed against the machine's GEMM rate
  train-candidate train (or load) the pipeline's candidate model, on one process or N with DDP
  lessons         one of the paper's lessons (depth, fresh, labels, baselines) over seeds in a world
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from pathlib import Path
from typing import Any

from ytrec_lib import report
from ytrec_lib.course import DEFAULT_PRESET


def _run_notebooks(args: argparse.Namespace) -> int:
    from ytrec_lib.course import runner

    return runner.run_notebooks(args.preset, args.only, args.param,
                                Path(args.build) if args.build else None, html=not args.no_html,
                                jobs=args.jobs)


def _results(args: argparse.Namespace) -> int:
    results = report.load_all()
    if args.json:
        print(json.dumps(results, indent=2, sort_keys=True))
        return 0
    if not results:
        print(f"No results in {report.results_dir()}; run `make run` or `make test` first.")
    for stem, values in results.items():
        print(stem)
        for key, value in values.items():
            print(f"  {key:40s} {json.dumps(value)[:100]}")
    return 0


def _update_readme(args: argparse.Namespace) -> int:
    """Write the recorded results into README.md; refuse (README untouched) when there are none or
    when the preset they were recorded at cannot be told or is not one preset."""
    from ytrec_lib import course
    from ytrec_lib.course import html_report

    folder = (Path(args.results) if args.results else report.results_dir()).resolve()
    readme = report.REPO_ROOT / "README.md"
    if not folder.is_dir():
        print(f"error: no results folder {folder}; run the notebooks first (`make run`, or `make test` "
              "for build/test/results) or pass --results FOLDER; README.md left unchanged", file=sys.stderr)
        return 1
    stems = [c.stem for c in course.CHAPTERS]
    results = {stem: values for stem, values in report.load_all(folder).items() if values and stem in stems}
    if not results:
        print(f"error: {folder} holds no recorded results of the course's notebooks; run the notebooks "
              "first or pass --results FOLDER; README.md left unchanged", file=sys.stderr)
        return 1
    try:
        preset = html_report.results_preset(folder, list(results), args.preset)
    except ValueError as err:
        print(f"error: {err}; README.md left unchanged", file=sys.stderr)
        return 1
    section = html_report.results_markdown(results, preset, stems)
    changed = html_report.update_readme(readme, section)
    print(f"README.md {'updated' if changed else 'already up to date'} from {folder} "
          f"({len(results)} notebooks, {preset} preset)")
    return 0


def _strip(args: argparse.Namespace) -> int:
    from ytrec_lib.course import notebooks

    changed = notebooks.strip_all()
    print(f"stripped {len(changed)} notebook(s)" + (": " + ", ".join(changed) if changed else ""))
    return 0


def _generate(args: argparse.Namespace) -> int:
    from ytrec_lib.data import datasets

    ds = datasets.load(args.preset, seed=args.seed)
    for name in ("users", "videos", "impressions", "searches"):
        table = getattr(ds, name)
        print(f"{name:12s} {0 if table is None else len(table):>12,d} rows")
    return 0


def _download(args: argparse.Namespace) -> int:
    from ytrec_lib.data import download

    try:
        folder = download.download(args.name, args.data_dir, url=args.url, archive=args.archive,
                                   timeout=args.timeout, force=args.force)
    except download.DownloadError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    print(f"{args.name}: files in {folder}; run notebooks on it with --preset {args.name}")
    return 0


def _evaluate(args: argparse.Namespace) -> int:
    from ytrec_lib.studies import evaluation

    models = evaluation.parse_models(args.models)
    params = evaluation.parse_params(args.param)
    result = evaluation.evaluate(args.preset, models, args.seeds, params, progress=not args.json)
    print(json.dumps(result, sort_keys=True) if args.json else evaluation.format_table(result))
    return 0


def _train_speed(args: argparse.Namespace) -> int:
    from ytrec_lib.studies import train_speed

    overrides = {k: v for k, v in (("loss", args.loss), ("batch_size", args.batch_size),
                                   ("max_train_examples", args.max_train)) if v is not None}
    result = train_speed.train_speed(args.preset, args.seed, epochs=args.epochs, threads=args.threads,
                                     progress=not args.json, **overrides)
    print(json.dumps(result, sort_keys=True) if args.json else train_speed.format_report(result))
    return 0


TORCHRUN_FORM = ("torchrun --nnodes M --nproc-per-node N --node-rank I --rdzv-backend c10d "
                 "--rdzv-endpoint HOST:29400 --rdzv-id JOB -m ytrec_lib train-candidate --preset NAME")
"""The several-machines form of ``train-candidate`` (the same line on each of the M machines; HOST is
one of them, reachable from all; I is the machine's number, 0..M-1)."""


def _train_candidate(args: argparse.Namespace) -> int:
    from ytrec_lib import distributed as D
    from ytrec_lib import pipeline
    from ytrec_lib.course.runner import RunError, parse_param

    try:
        overrides = dict(parse_param(p) for p in args.param or ())
    except RunError as err:
        raise ValueError(str(err)) from None
    if args.nproc < 1:
        raise ValueError(f"--nproc must be >= 1, got {args.nproc}")
    try:
        if D.launched_by_torchrun():  # one rank of a torchrun job
            world = D.init_from_env(args.timeout)
            try:
                summary = D.train_candidate(world, args.preset, args.seed, overrides)
            finally:
                D.leave_group()
            if not world.writes:
                return 0
        elif args.nproc == 1:  # the one-process trainer, in this process
            run = pipeline.candidate_model(args.preset, args.seed, progress=not args.json, **overrides)
            summary = D.run_summary(run, 1)
        else:
            pipeline.dataset(args.preset, args.seed, progress=not args.json)  # once, before the ranks start
            summary = D.launch(D.train_candidate, args.nproc, args.preset, args.seed, overrides,
                               timeout_s=args.timeout, threads=args.threads)
    except D.DistributedJobFailed as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps(summary, sort_keys=True))
        return 0
    how = "loaded from the cache" if summary["from_cache"] else f"trained in {summary['train_seconds']:.1f} s"
    print(f"candidate model ({args.preset}, seed {args.seed}, {summary['processes']} process(es)): {how}, "
          f"{summary['epochs']} epochs, best validation recall@100 {summary['best_val_recall']:.4f}; "
          f"checkpoint {summary['path']}")
    return 0


def _lessons(args: argparse.Namespace) -> int:
    from ytrec_lib.studies import lessons as L

    switches = dict(L.parse_switch(s) for s in args.set)
    if args.mechanism_off:
        switches = L.mechanism_off(switches, args.mechanism_off)
    given = {"lrs": tuple(args.lrs) if args.lrs else None, "patience": args.patience, "epochs": args.epochs,
             "n_next": args.n_next, "batch_size": args.batch_size}
    protocol = L.Protocol(lr_per_seed=args.lr_per_seed, **{k: v for k, v in given.items() if v is not None})
    if args.control and args.lesson != "labels":
        raise ValueError(f"--control is the labels lesson's (held-out labels with the next-watch context "
                         f"length); drop it for --lesson {args.lesson}")
    options: dict[str, Any] = {"depths": tuple(args.depths)} if args.lesson == "depth" else {}
    if args.control:
        options["kinds"] = L.SPLIT_KINDS
    torch_threads(args.threads)
    result = L.run_lesson(args.lesson, args.preset, args.seeds, switches, protocol,
                          progress=not args.json, **options)
    result = {"lesson": args.lesson, "preset": args.preset, "switches": switches,
              "protocol": dataclasses.asdict(protocol), **result}
    if args.json:
        print(json.dumps(result, sort_keys=True))
        return 0
    for row in result["rows"]:
        print(json.dumps(row))
    s = result["summary"]
    for key in s["mean"]:
        print(f"  {key:32s} {s['mean'][key]:.5g} ± {s['se'][key]:.3g}")
    m, se = s["mean"]["effect"], s["se"]["effect"]
    print(f"effect {m:.4g} ± {se:.3g}: {L.verdict(m, se, L.NULL[args.lesson])}")
    return 0


def torch_threads(n: int) -> None:
    """Set torch's CPU threads (``n`` >= 1)."""
    import torch

    if n < 1:
        raise ValueError(f"--threads must be >= 1, got {n}")
    torch.set_num_threads(n)


def _bench_ann(argv: list[str]) -> int:
    from ytrec_lib.studies import ann_bench

    return ann_bench.main(argv)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``python -m ytrec_lib``."""
    parser = argparse.ArgumentParser(prog="python -m ytrec_lib", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run-notebooks", help="execute notebooks in order and write build/")
    run.add_argument("--preset", default=DEFAULT_PRESET,
                     help=f"data preset or dataset name (default: {DEFAULT_PRESET})")
    run.add_argument("--only", action="append", metavar="NN",
                     help="run only this notebook (number like 03, or its stem); repeatable")
    run.add_argument("--param", action="append", metavar="NAME=VALUE",
                     help="set a name defined in the notebook's parameters cell; repeatable")
    run.add_argument("--build", help="output folder (default: build/, or $YTREC_BUILD_DIR)")
    run.add_argument("--no-html", action="store_true", help="skip the HTML report")
    run.add_argument("--jobs", type=int, default=1, metavar="N",
                     help="notebooks side by side, one kernel each (default 1: one after another in order; "
                          "make run uses 2); 05 runs last, alone")
    run.set_defaults(func=_run_notebooks)

    res = sub.add_parser("results", help="print every recorded result")
    res.add_argument("--json", action="store_true", help="one JSON object {notebook: {key: value}}")
    res.set_defaults(func=_results)

    readme = sub.add_parser("update-readme", help="write the recorded results into README.md")
    readme.add_argument("--results", help="results folder (default: build/results)")
    readme.add_argument("--preset", help="the preset results were recorded at, for results without a run "
                                         "record (read from the records run-notebooks writes; checked "
                                         "against them)")
    readme.set_defaults(func=_update_readme)

    strip = sub.add_parser("strip-notebooks", help="remove outputs and execution counts")
    strip.set_defaults(func=_strip)

    gen = sub.add_parser("generate", help="generate or load a preset's dataset")
    gen.add_argument("--preset", default=DEFAULT_PRESET)
    gen.add_argument("--seed", type=int, default=0)
    gen.set_defaults(func=_generate)

    from ytrec_lib.data.real import REAL_DATASETS

    dl = sub.add_parser("download", help="download a real dataset (MovieLens, KuaiRand) into data/",
                        description="Fetch a real dataset from its publisher, verify its checksum and unpack "
                                    "it into data/<name>/. Offline, put the files there by hand (the error "
                                    "message says which); see docs/real_datasets.md.")
    dl.add_argument("name", choices=list(REAL_DATASETS), help="the dataset")
    dl.add_argument("--data-dir", help="data folder (default: data/, or $YTREC_DATA_DIR)")
    dl.add_argument("--archive", help="use this local copy of the published archive instead of the network")
    dl.add_argument("--url", help="download from this URL (a mirror) instead of the publisher")
    dl.add_argument("--timeout", type=float, default=10.0, help="connection timeout in seconds (default 10)")
    dl.add_argument("--force", action="store_true", help="replace an existing data/<name>/ folder")
    dl.set_defaults(func=_download)

    ev = sub.add_parser("evaluate", help="baselines and models on the standard split (recall, NDCG)",
                        description="Train each model on the training part of the split (leave-last-out "
                                    "on real datasets, the temporal next-watch split on simulator presets), "
                                    "choose its hyperparameters on validation, rank all items for each test "
                                    "example (training items excluded) and print recall@10/50/100 and "
                                    "NDCG@10 with standard errors.")
    ev.add_argument("--preset", default="tiny", help="data preset or real dataset name (default: tiny)")
    ev.add_argument("--models", help="comma-separated: popularity,itemknn,rp3b,ease,item2vec_avg,candidate "
                                     "(default: all)")
    ev.add_argument("--seeds", type=int, default=1, help="seeds 0..N-1 (default 1)")
    ev.add_argument("--param", action="append", metavar="NAME=VALUE[,VALUE...]",
                    help="a hyperparameter grid, e.g. ease.lam=10,100 or candidate.epochs=3; repeatable")
    ev.add_argument("--json", action="store_true", help="print one JSON object (no progress bars)")
    ev.set_defaults(func=_evaluate)

    ts = sub.add_parser("train-speed", help="time the candidate model's training against the GEMM rate",
                        description="Train the default candidate model (random input tables) for whole "
                                    "epochs on a preset's next-watch examples and print examples/s, GFLOP/s "
                                    "as a fraction of a GEMM timed in the same run, and where a step's time "
                                    "goes (see ytrec_lib.studies.train_speed).")
    ts.add_argument("--preset", default=DEFAULT_PRESET, help=f"simulator preset (default: {DEFAULT_PRESET})")
    ts.add_argument("--seed", type=int, default=0)
    ts.add_argument("--epochs", type=int, default=1, help="whole epochs timed (default 1)")
    ts.add_argument("--threads", type=int, default=1, help="torch and BLAS threads (default 1)")
    ts.add_argument("--loss", choices=["full", "sampled"], help="softmax (default: the model's, sampled)")
    ts.add_argument("--batch-size", type=int, help="examples per step (default: the model's, 256)")
    ts.add_argument("--max-train", type=int, help="a seeded subset of the training examples (default: all)")
    ts.add_argument("--json", action="store_true", help="print one JSON object")
    ts.set_defaults(func=_train_speed)

    tc = sub.add_parser(
        "train-candidate", help="train (or load) the candidate model, on N processes with DDP",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Train the pipeline's candidate model of a preset (or load its cached checkpoint) with "
                    "torch.distributed DistributedDataParallel on N processes (gloo backend, CPU): each "
                    "process takes its shard of every global batch of --batch-size examples and draws its "
                    "own negatives; rank 0 writes the checkpoint. --nproc 1 is the one-process trainer.",
        epilog="Several machines: run on each machine, with torchrun in place of --nproc,\n  "
               + TORCHRUN_FORM + "\n(see README, 'Training on several processes').")
    tc.add_argument("--preset", default="ci", help="data preset or real dataset name (default: ci)")
    tc.add_argument("--seed", type=int, default=0)
    tc.add_argument("--nproc", type=int, default=1, help="processes on this machine (default 1)")
    tc.add_argument("--param", action="append", metavar="NAME=VALUE",
                    help="a CandidateConfig setting, e.g. loss=full or epochs=3; repeatable")
    tc.add_argument("--timeout", type=float, default=120.0,
                    help="seconds a process waits for the others in an all-reduce before the job fails "
                         "(default 120)")
    tc.add_argument("--threads", type=int, default=1, help="torch threads per process (default 1)")
    tc.add_argument("--json", action="store_true", help="print one JSON object")
    tc.set_defaults(func=_train_candidate)

    _add_lessons_parser(sub)
    sub.add_parser("bench-ann", help="ANN benchmark; `bench-ann --help` for its options", add_help=False)
    return parser


def _add_lessons_parser(sub: Any) -> None:
    """The ``lessons`` command's options (see :mod:`ytrec_lib.studies.lessons`)."""
    from ytrec_lib.data.presets import MECHANISM_OFF

    ls = sub.add_parser(
        "lessons", help="one of the paper's lessons over seeds in a chosen world (mean ± SE)",
        description="Train the models one of the paper's lessons compares (depth: Fig. 6, depth 3 over depth "
                    "0; fresh: Fig. 4, example age on over off; labels: §3.4, next-watch minus held-out "
                    "labels; baselines: the depth-3 model over the best tuned classical model) in the "
                    "simulated world PRESET + --set switches, for each seed: random init, full softmax, "
                    "early stopping and learning rate on validation. Prints each seed's row "
                    "and the mean ± standard error over seeds (see ytrec_lib.studies.lessons).")
    ls.add_argument("--lesson", required=True, help="depth, fresh, labels or baselines")
    ls.add_argument("--preset", default="ci", help="simulator preset (default: ci)")
    ls.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2], help="seeds (default 0 1 2)")
    ls.add_argument("--set", action="append", default=[], metavar="NAME=VALUE",
                    help="a SimConfig switch of the world, e.g. interest_progression=4; repeatable")
    ls.add_argument("--mechanism-off", metavar="NAME",
                    help=f"switch this mechanism of the world off (the ablation): {', '.join(MECHANISM_OFF)}")
    ls.add_argument("--depths", type=int, nargs="+", default=[0, 3], help="depth lesson: tower depths")
    ls.add_argument("--control", action="store_true",
                    help="labels lesson: also held-out labels with the next-watch context length "
                         "(recall_heldout_matched, effect_matched = next-watch minus it)")
    ls.add_argument("--lrs", type=float, nargs="+",
                    help="learning rates each model chooses from on validation (default 1e-2 3e-3 1e-3)")
    ls.add_argument("--lr-per-seed", action="store_true",
                    help="choose the learning rate at every seed (default: at the first, reused later)")
    ls.add_argument("--patience", type=int, help="early-stopping patience in epochs (default 8)")
    ls.add_argument("--epochs", type=int, help="epoch cap (default 40)")
    ls.add_argument("--n-next", type=int,
                    help="labels per validation/test user: their first N watches after the cutoff "
                         "(default 5)")
    ls.add_argument("--batch-size", type=int, help="examples per step (default 512)")
    ls.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    ls.add_argument("--json", action="store_true", help="print one JSON object (no progress bars)")
    ls.set_defaults(func=_lessons)


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns the exit status."""
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] == "bench-ann":
        return _bench_ann(argv[1:])
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except (ValueError, KeyError, FileNotFoundError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
