"""Past one machine: the costs that decide how the recommender scales out, measured, and a model of a cluster.

Three measurements and one projection, for notebook 09:

* :func:`measure_allreduce` (from :mod:`ytrec_lib.studies.allreduce`) — the time of a real
  ``torch.distributed`` all-reduce (gloo backend) between local processes for a few tensor sizes, and the
  straight line ``seconds = latency + bytes * seconds_per_byte`` through them;
* :func:`faiss_memory` — the bytes a Faiss index holds per vector (the marginal cost between two catalogue
  sizes) and its fixed part, from real indexes; :func:`catalogue_limit` turns them into the catalogue size at
  which one index no longer fits a machine's memory (:func:`machine_ram_bytes`: this one's);
* :func:`shards_vs_single` — a real ``faiss.IndexShards`` over two shards against one index of the same
  vectors: the same ids and scores;
* :func:`cluster_hours` — synchronous data-parallel training of a YouTube-sized candidate model on K
  machines (dense gradients all-reduced, embedding rows through parameter servers), from the FLOP rate
  measured for this run's trainer and the measured all-reduce line; every assumption is a field of
  :class:`ClusterAssumptions` and :func:`describe_assumptions` prints them.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass
from typing import Any

import faiss
import numpy as np

from ytrec_lib.threads import limit_threads

# ----------------------------------------------------------------------------- Faiss memory
FACTORIES: dict[str, str] = {"flat": "Flat", "ivf": "IVF64,Flat", "hnsw": "HNSW32", "ivfpq": "IVF64,PQ32x8"}
"""The Faiss index of each kind :func:`faiss_memory` measures, as ``faiss.index_factory`` strings: exact
scan, inverted lists of full vectors, an HNSW graph of degree 32, inverted lists of 32-byte PQ codes."""


def _short_training(index: faiss.Index, niter: int) -> None:
    """Make the k-means of ``index``'s coarse quantiser and PQ codebooks run ``niter`` iterations, accept
    few points per centroid, and skip polysemous training (memory does not depend on how well they fit)."""
    ivf = faiss.try_extract_index_ivf(index)
    owner = faiss.downcast_index(ivf) if ivf is not None else index  # IndexIVFPQ, not the IndexIVF base
    cps = [getattr(owner, "cp", None), getattr(getattr(owner, "pq", None), "cp", None)]
    for cp in (c for c in cps if c is not None):
        cp.niter, cp.min_points_per_centroid = niter, 1
    if hasattr(owner, "do_polysemous_training"):
        owner.do_polysemous_training = False  # a code-permutation search of minutes; the bytes are the same


def faiss_memory(dim: int, sizes: tuple[int, int] = (5_000, 10_000), factories: dict[str, str] | None = None,
                 n_train: int = 4_096, seed: int = 0, threads: int = 1) -> dict[str, dict[str, float]]:
    """Serialized bytes of real Faiss indexes (``factories``: kind -> ``faiss.index_factory`` string,
    default :data:`FACTORIES`; inner-product metric) over random float32 vectors (N, ``dim``), measured
    after adding the first ``sizes[0]`` vectors and again after adding the rest up to ``sizes[1]``.

    Indexes that need training are trained once on ``n_train`` other vectors, with 4 k-means iterations
    (the bytes do not depend on the fit); HNSW is built with ``efConstruction`` 40; ``threads``: Faiss's
    OpenMP threads.
    Returns ``{kind: {"bytes_per_vector", "fixed_bytes", "raw_bytes_per_vector"}}``: the marginal bytes
    per added vector, what remains at N = 0 (quantiser, codebooks), and the float32 vector (4 * dim).
    """
    n1, n2 = sorted(int(s) for s in sizes)
    if n1 < 1 or n1 == n2 or n_train < 1 or dim < 1:
        raise ValueError(f"faiss_memory: need two different positive catalogue sizes, n_train >= 1 and "
                         f"dim >= 1; got sizes {sizes}, n_train {n_train}, dim {dim}")
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n2, dim), dtype=np.float32)  # (n2, d) float32, the catalogue
    train = rng.standard_normal((n_train, dim), dtype=np.float32)  # (n_train, d) float32
    out = {}
    with limit_threads(threads):
        for kind, spec in (factories or FACTORIES).items():
            try:
                index = faiss.index_factory(dim, spec, faiss.METRIC_INNER_PRODUCT)
            except RuntimeError as err:
                raise ValueError(f"faiss_memory: {kind}: faiss.index_factory cannot build {spec!r} at "
                                 f"d = {dim} ({str(err).strip().splitlines()[-1]})") from err
            if hasattr(index, "hnsw"):
                index.hnsw.efConstruction = 40
            if not index.is_trained:
                _short_training(index, niter=4)
                index.train(train)
            index.add(x[:n1])
            mem1 = faiss.serialize_index(index).nbytes
            index.add(x[n1:])
            per_vector = (faiss.serialize_index(index).nbytes - mem1) / (n2 - n1)
            out[kind] = {"bytes_per_vector": float(per_vector), "raw_bytes_per_vector": 4.0 * dim,
                         "fixed_bytes": max(mem1 - n1 * per_vector, 0.0)}
    return out


def machine_ram_bytes() -> int:
    """This machine's physical memory in bytes (``os.sysconf``); RuntimeError where it cannot be read."""
    try:
        return int(os.sysconf("SC_PHYS_PAGES")) * int(os.sysconf("SC_PAGE_SIZE"))
    except (ValueError, OSError, AttributeError) as err:
        raise RuntimeError(f"machine_ram_bytes: cannot read the physical memory size ({err}); pass the RAM "
                           "in bytes yourself") from err


def catalogue_limit(bytes_per_vector: float, fixed_bytes: float, ram_bytes: float,
                    usable_fraction: float = 0.5) -> int:
    """The largest catalogue (number of vectors) whose index fits ``usable_fraction`` of ``ram_bytes``:
    ``(ram * fraction - fixed) / bytes_per_vector`` (0 when not even the fixed part fits)."""
    if bytes_per_vector <= 0 or not 0 < usable_fraction <= 1 or ram_bytes <= 0:
        raise ValueError(f"catalogue_limit: need bytes_per_vector > 0, ram_bytes > 0 and 0 < usable_fraction "
                         f"<= 1; got {bytes_per_vector}, {ram_bytes}, {usable_fraction}")
    return max(int((ram_bytes * usable_fraction - fixed_bytes) // bytes_per_vector), 0)


def limits_table(memory: dict[str, dict[str, float]], rams: dict[str, float],
                 usable_fraction: float = 0.5) -> dict[str, dict[str, float]]:
    """Per index kind of ``memory`` (:func:`faiss_memory`'s result): its bytes per vector, its fixed MiB and,
    for each machine of ``rams`` (name -> RAM bytes), ``"max_items_<name>"``: :func:`catalogue_limit`."""
    return {kind: {"bytes_per_vector": m["bytes_per_vector"], "fixed_MiB": m["fixed_bytes"] / 2**20,
                   **{f"max_items_{name}": catalogue_limit(m["bytes_per_vector"], m["fixed_bytes"], ram,
                                                           usable_fraction) for name, ram in rams.items()}}
            for kind, m in memory.items()}


# ----------------------------------------------------------------------------- IndexShards
def _flat(x: np.ndarray) -> faiss.Index:
    index = faiss.IndexFlatIP(x.shape[1])
    index.add(x)
    return index


def shards_vs_single(vectors: np.ndarray, queries: np.ndarray, k: int = 10, n_shards: int = 2,
                     kind: str = "flat", nlist: int = 64, nprobe: int = 8, seed: int = 0) -> dict[str, Any]:
    """Search ``queries`` (q, d) float32 in one Faiss index of ``vectors`` (N, d) float32 and in a
    ``faiss.IndexShards`` of ``n_shards`` indexes, each holding a contiguous slice of the vectors
    (``successive_ids``: shard s numbers its items after those of shards before it, so the ids are the
    same as in one index), inner-product metric.

    ``kind``: "flat" (exact) or "ivf" (IVF-Flat; every shard shares the one trained coarse quantiser, so
    with the same ``nprobe`` it scans the same lists). Returns ``{"ids_equal", "max_abs_score_diff",
    "n_items", "n_shards", "shard_sizes"}``.
    """
    x = np.ascontiguousarray(vectors, dtype=np.float32)  # (N, d)
    q = np.ascontiguousarray(queries, dtype=np.float32)  # (q, d)
    if x.ndim != 2 or q.ndim != 2 or x.shape[1] != q.shape[1]:
        raise ValueError(f"shards_vs_single: need vectors (N, d) and queries (q, d), got {x.shape} and "
                         f"{q.shape}")
    if not 2 <= n_shards <= len(x) or not 1 <= k <= len(x):
        raise ValueError(f"shards_vs_single: need 2 <= n_shards <= N and 1 <= k <= N (N = {len(x)}); got "
                         f"n_shards={n_shards}, k={k}")
    d, parts = x.shape[1], np.array_split(np.arange(len(x)), n_shards)
    if kind == "flat":
        single, shard_list = _flat(x), [_flat(x[p]) for p in parts]
    elif kind == "ivf":
        quantizer = faiss.IndexFlatIP(d)
        trained = faiss.IndexIVFFlat(quantizer, d, nlist, faiss.METRIC_INNER_PRODUCT)
        trained.cp.seed = seed
        trained.train(x)
        shard_list = []
        for p in parts:
            shard = faiss.clone_index(trained)  # the same trained quantiser, no vectors yet
            shard.add(x[p])
            shard.nprobe = nprobe
            shard_list.append(shard)
        single = faiss.clone_index(trained)
        single.add(x)
        single.nprobe = nprobe
    else:
        raise ValueError(f"shards_vs_single: kind must be 'flat' or 'ivf', got {kind!r}")
    sharded = faiss.IndexShards(d, False, True)  # not threaded, successive ids
    for shard in shard_list:
        sharded.add_shard(shard)
    s1, i1 = single.search(q, k)  # (q, k), (q, k)
    s2, i2 = sharded.search(q, k)  # (q, k), (q, k)
    return {"ids_equal": bool(np.array_equal(i1, i2)), "max_abs_score_diff": float(np.abs(s1 - s2).max()),
            "n_items": len(x), "n_shards": n_shards, "shard_sizes": [len(p) for p in parts],
            "kind": kind}


# ----------------------------------------------------------------------------- the cluster model
@dataclass(frozen=True)
class ClusterAssumptions:
    """What the cluster model assumes; every field is printed by :func:`describe_assumptions`.

    Scale (the paper, §3): ``n_users`` ("hundreds of millions"), ``n_videos`` and ``n_tokens`` (§3.5:
    "1M videos and 1M search tokens"; the lecture: a few million videos), ``examples_per_user`` (training
    examples one user contributes to one epoch), ``epochs``. Model (§3.3, Figure 6's deepest tower):
    ``dim`` (256 floats per embedding), ``bag`` (up to 50 watches and 50 searches), ``side_width``
    (geography, age, gender, example age), ``tower``, ``n_negatives`` (sampled softmax, "several thousand").
    Cluster: ``batch_per_machine`` examples per machine and step, ``cores_per_machine`` (compute scales
    linearly from the one measured core: optimistic), ``link_slowdown`` (the network's seconds per byte
    over the loopback's measured here: 1 assumes a network as fast as this machine's loopback),
    ``overlap`` (fraction of the communication hidden behind compute: 0 = none).
    """

    n_users: float = 300e6
    examples_per_user: float = 50.0
    epochs: int = 1
    n_videos: float = 2e6
    n_tokens: float = 1e6
    dim: int = 256
    bag: int = 50
    side_width: int = 64
    tower: tuple[int, ...] = (1024, 512, 256)
    n_negatives: int = 5000
    batch_per_machine: int = 1024
    cores_per_machine: int = 16
    link_slowdown: float = 1.0
    overlap: float = 0.0


def model_costs(a: ClusterAssumptions) -> dict[str, float]:
    """FLOPs of one training example and the bytes one machine exchanges per step for the model of ``a``.

    FLOPs: 3 x 2 x (tower multiply-adds + (n_negatives + 1) x last width) (forward plus a backward of two
    forwards; the input bags are averaged, a few adds). ``dense_bytes``: the tower's float32 gradient (all-
    reduced). ``sparse_bytes``: the float32 embedding rows a machine's batch touches (its watch and search
    bags, the softmax rows of its positives and of the shared negatives; duplicates counted, an upper
    bound), pulled from and pushed back to the parameter servers that hold the tables.
    """
    widths = [2 * a.dim + a.side_width, *a.tower]
    tower_macs = sum(i * o for i, o in zip(widths[:-1], widths[1:], strict=True))
    tower_params = sum(i * o + o for i, o in zip(widths[:-1], widths[1:], strict=True))
    flops = 6.0 * (tower_macs + (a.n_negatives + 1) * a.tower[-1])
    rows = a.batch_per_machine * (2 * a.bag + 1) + a.n_negatives
    table_params = (a.n_videos + a.n_tokens) * a.dim + a.n_videos * a.tower[-1]
    return {"flops_per_example": flops, "dense_params": float(tower_params),
            "embedding_params": float(table_params), "dense_bytes": 4.0 * tower_params,
            "sparse_bytes": 4.0 * rows * a.dim, "n_examples": a.n_users * a.examples_per_user}


def cluster_hours(a: ClusterAssumptions, seconds_per_flop: float, latency_s: float, s_per_byte: float,
                  machines: tuple[int, ...] = (1, 4, 16, 64, 256, 1024)) -> dict[int, dict[str, float]]:
    """Projected hours of ``a.epochs`` epochs on K machines for each K in ``machines``.

    One synchronous step: every machine computes ``batch_per_machine`` examples at ``seconds_per_flop /
    cores_per_machine`` (the rate measured on one core), then communicates (:func:`model_costs`' bytes at
    ``s_per_byte * link_slowdown``, the measured two-process all-reduce line):

    * the dense gradient by a ring all-reduce: ``K - 1`` times the measured latency (the two-process
      all-reduce is 2 of the ring's ``2 (K - 1)`` hops) and ``2 (K - 1) / K`` times its bytes;
    * the embedding rows through parameter servers that hold the tables sharded over the K machines: the
      ``(K - 1) / K`` of the rows that live elsewhere are pulled and their gradients pushed (2 transfers);

    less the ``overlap`` hidden behind compute. One machine holds everything and communicates nothing.
    Steps: ``n_examples * epochs / (K * batch_per_machine)``. Returns ``{K: {"hours",
    "compute_s_per_step", "comm_s_per_step", "comm_share", "steps"}}``.
    """
    if seconds_per_flop <= 0 or latency_s < 0 or s_per_byte <= 0:
        raise ValueError(f"cluster_hours: need seconds_per_flop > 0, latency_s >= 0, s_per_byte > 0; got "
                         f"{seconds_per_flop}, {latency_s}, {s_per_byte}")
    if not machines or min(machines) < 1:
        raise ValueError(f"cluster_hours: machine counts must be >= 1, got {machines}")
    c = model_costs(a)
    compute = a.batch_per_machine * c["flops_per_example"] * seconds_per_flop / a.cores_per_machine
    per_byte = s_per_byte * a.link_slowdown
    out = {}
    for k in sorted(int(m) for m in machines):
        remote = (k - 1) / k  # share of the other machines in the ring and in the sharded tables
        comm = (k - 1) * latency_s + 2 * remote * (c["dense_bytes"] + c["sparse_bytes"]) * per_byte
        exposed = comm * (1 - a.overlap)
        steps = c["n_examples"] * a.epochs / (k * a.batch_per_machine)
        step = compute + exposed
        out[k] = {"hours": steps * step / 3600, "compute_s_per_step": compute, "comm_s_per_step": exposed,
                  "comm_share": exposed / step, "steps": steps}
    return out


def breakeven_machines(hours: dict[int, dict[str, float]]) -> int | None:
    """The fewest machines K > 1 of ``hours`` (:func:`cluster_hours`) that train faster than one machine;
    None when none does (or when K = 1 is not in ``hours``)."""
    if 1 not in hours:
        return None
    return next((k for k in sorted(hours) if k > 1 and hours[k]["hours"] < hours[1]["hours"]), None)


def describe_assumptions(a: ClusterAssumptions, measured: dict[str, float]) -> list[str]:
    """One line per assumption of ``a`` and per measured input (``measured``: name -> value), for printing."""
    lines = [f"assumed  {name} = {value}" for name, value in asdict(a).items()]
    lines += [f"measured {name} = {value:.4g}" for name, value in measured.items()]
    lines += [f"derived  {name} = {value:.4g}" for name, value in model_costs(a).items()]
    return lines


__all__ = ["FACTORIES", "ClusterAssumptions", "breakeven_machines", "catalogue_limit", "cluster_hours",
           "describe_assumptions", "faiss_memory", "limits_table", "machine_ram_bytes", "model_costs",
           "shards_vs_single"]
