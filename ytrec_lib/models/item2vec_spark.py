"""Item2vec on Spark MLlib (``pyspark.ml.feature.Word2Vec``), beside the torch SGNS and gensim.

An optional extra (``pip install -e .[scale]``): pyspark and a Java 17 runtime. Without them
:func:`spark_unavailable_reason` says why in one line and the notebooks print "Skipped: <reason>".

- :func:`spark_unavailable_reason`: None when pyspark imports and ``java`` runs, else a one-line reason.
- :func:`spark_session`: the process's one SparkSession (starting the JVM costs seconds), quiet logs.
- :func:`train_spark_item2vec`: an id-indexed (n_items, dim) table from Spark's Word2Vec, and its timing.
- :func:`train_gensim_item2vec`: the same signature and stats for gensim (skip-gram, negative sampling).
- :func:`engines_by_sequence_count`: words/second of Spark and of gensim on growing prefixes of a corpus.

What Spark's Word2Vec is, next to ours and gensim's: skip-gram with **hierarchical softmax** (no
negative sampling, so no noise exponent) and no frequent-item subsampling; the learning rate decays
linearly as in word2vec. With ``partitions > 1`` each partition trains its own copy of the vectors
on its share of the sentences in every iteration and the copies are averaged (parallel, but not the
same as sequential SGD). The corpus is filtered exactly as :func:`ytrec_lib.models.item2vec.encode_corpus`
does (min_count, then sequences of fewer than two items dropped), so all engines see the same words.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import tempfile
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ytrec_lib.models import item2vec as iv
from ytrec_lib.progress import tqdm

INSTALL_HINT = "pip install -e .[scale]"

_SESSION: Any = None  # the process's one SparkSession (pyspark.sql.SparkSession), made by spark_session
_SESSION_LOCK = threading.Lock()

# log4j2 settings for the driver JVM: errors only, so that no WARN lines reach a notebook's stderr (Spark's
# own loggers set apart too: else Spark, seeing a Python shell, prints "Setting default log level to WARN")
_LOG4J2 = """rootLogger.level = error
logger.spark.name = org.apache.spark
logger.spark.level = error
rootLogger.appenderRef.stderr.ref = console
appender.console.type = Console
appender.console.name = console
appender.console.target = SYSTEM_ERR
appender.console.layout.type = PatternLayout
appender.console.layout.pattern = %d{HH:mm:ss} %p %c{1}: %m%n
"""


# ----------------------------------------------------------------------------------------------
# availability and the session


def java_executable() -> str | None:
    """The ``java`` Spark's launcher would run: ``$JAVA_HOME/bin/java`` when JAVA_HOME is set, else
    the first ``java`` on PATH; None when there is none."""
    home = os.environ.get("JAVA_HOME")
    if home:
        candidate = Path(home) / "bin" / "java"
        return str(candidate) if candidate.is_file() and os.access(candidate, os.X_OK) else None
    return shutil.which("java")


def spark_unavailable_reason() -> str | None:
    """None when pyspark imports and ``java -version`` runs; otherwise a one-line reason with the fix."""
    if importlib.util.find_spec("pyspark") is None:
        return f"pyspark is not installed ({INSTALL_HINT})"
    java = java_executable()
    if java is None:
        where = f"JAVA_HOME={os.environ['JAVA_HOME']} has no bin/java" if os.environ.get("JAVA_HOME") \
            else "no java on PATH"
        return f"Spark needs Java 17 and {where} (install one: openjdk-17-jre-headless, or set JAVA_HOME)"
    try:
        done = subprocess.run([java, "-version"], capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired) as err:
        return f"Spark needs Java 17 but {java} -version did not run ({type(err).__name__}: {err})"
    if done.returncode != 0:
        first = (done.stderr or done.stdout or "").strip().splitlines()[:1]
        return f"Spark needs Java 17 but {java} -version exited with {done.returncode} ({' '.join(first)})"
    return None


def spark_session(master: str = "local[*]") -> tuple[Any, float]:
    """The process's SparkSession on ``master`` and the seconds it took to get it (0.0 when reused).

    One session per process: the first call starts the JVM (seconds), later calls reuse it. The web UI
    and the console progress bar are off and the driver logs errors only. Asking for another master
    than the running session's raises ValueError (restart the kernel or process to change it).
    RuntimeError when Spark cannot run here (the reason of :func:`spark_unavailable_reason`).
    """
    global _SESSION
    with _SESSION_LOCK:
        if _SESSION is not None and _SESSION.sparkContext._jsc is not None:
            running = _SESSION.sparkContext.master
            if running != master:
                raise ValueError(f"a SparkSession on {running!r} is already running in this process; one "
                                 f"session per process: restart the kernel to use master={master!r}")
            return _SESSION, 0.0
        reason = spark_unavailable_reason()
        if reason is not None:
            raise RuntimeError(f"Spark cannot run here: {reason}")
        from pyspark.sql import SparkSession

        log_config = Path(tempfile.gettempdir()) / "ytrec-spark-log4j2.properties"
        if not log_config.exists() or log_config.read_text() != _LOG4J2:
            tmp = log_config.with_suffix(f".{os.getpid()}.tmp")
            tmp.write_text(_LOG4J2)
            tmp.replace(log_config)  # atomic: a JVM never reads a half-written file
        t0 = time.perf_counter()
        _SESSION = (SparkSession.builder.master(master).appName("ytrec-item2vec")
                    .config("spark.ui.enabled", "false")
                    .config("spark.ui.showConsoleProgress", "false")
                    .config("spark.driver.extraJavaOptions", f"-Dlog4j2.configurationFile=file:{log_config}")
                    .getOrCreate())
        _SESSION.sparkContext.setLogLevel("ERROR")
        return _SESSION, time.perf_counter() - t0


# ----------------------------------------------------------------------------------------------
# training


def _check_settings(n_items: int, dim: int, window: int, epochs: int, min_count: int) -> None:
    """ValueError with the fix for a setting no engine can train with."""
    checks = [(n_items >= 1, f"n_items must be >= 1, got {n_items}"),
              (dim >= 1, f"dim must be >= 1, got {dim}"),
              (window >= 1, f"window must be >= 1 (Spark has no whole-session form), got {window}"),
              (epochs >= 1, f"epochs must be >= 1, got {epochs}"),
              (min_count >= 1, f"min_count must be >= 1, got {min_count}")]
    for ok, message in checks:
        if not ok:
            raise ValueError(message)


def _corpus_words(sequences: Sequence[np.ndarray], n_items: int, min_count: int) -> tuple[iv.Corpus, list]:
    """The filtered corpus (as :func:`item2vec.encode_corpus`) and its sentences as lists of id strings."""
    corpus = iv.encode_corpus(sequences, min_count)
    ids = corpus.id_map.ids  # (n,) int64 sorted
    if ids[0] < 0 or ids[-1] >= n_items:
        raise ValueError(f"item ids run from {ids[0]} to {ids[-1]}, outside 0..{n_items - 1}: pass n_items "
                         "greater than the largest id")
    words = ids.astype(str)[corpus.tokens]  # (N,) str
    sentences = [s.tolist() for s in np.split(words, np.cumsum(corpus.lengths)[:-1])]
    return corpus, sentences


def _watch_jobs(context: Any, group: str, bar: tqdm, stop: threading.Event) -> None:
    """Advance ``bar`` to the number of finished Spark jobs of ``group`` until ``stop`` is set."""
    tracker = context.statusTracker()
    while not stop.wait(0.5):
        infos = [tracker.getJobInfo(j) for j in tracker.getJobIdsForGroup(group)]
        finished = sum(1 for info in infos if info is not None and info.status == "SUCCEEDED")
        bar.update(finished - bar.n)


def train_spark_item2vec(sequences: Sequence[np.ndarray], n_items: int, dim: int, window: int, epochs: int,
                         min_count: int = 1, seed: int = 0, master: str = "local[*]", lr: float = 0.025,
                         partitions: int = 1, progress: bool = True) -> tuple[np.ndarray, dict[str, float]]:
    """Spark MLlib's Word2Vec on ``sequences`` (1-D integer id arrays): an id-indexed table and timings.

    Returns ``vectors`` (n_items, dim) float32, row i the vector of item id i; **rows of items Spark
    never saw are zeros** (ids absent from the sequences, seen fewer than ``min_count`` times, or only
    in one-item sequences). ``stats``: ``seconds`` (the ``fit`` alone: Spark's vocabulary pass and its
    ``epochs`` iterations), ``words_per_s`` (corpus words x epochs / seconds, gensim's unit),
    ``startup_s`` (starting the JVM and session; 0.0 when this process's session was reused),
    ``load_s`` (the sentences into a cached DataFrame), ``words``, ``vocabulary``, ``partitions``.

    ``lr`` is Spark's ``stepSize`` (start of the linear decay); ``partitions`` is Spark's
    ``numPartitions`` (its parallelism: 1 trains sequentially, more averages per-partition copies).
    ``master``: "local[*]" (every core of this machine) or a cluster's "spark://host:7077"; the
    process keeps one session, so the first call's master holds (see :func:`spark_session`).
    Determinism: with ``partitions=1`` and a fixed ``seed`` the vectors are identical run to run (a
    unit test checks this). With ``partitions > 1`` they are not: three runs at the ci preset with 4
    partitions, 2 epochs and one seed differed by up to 0.1 in a coordinate (Spark merges the
    partitions' updates in no fixed order, the likely cause).
    RuntimeError when Spark cannot run here (see :func:`spark_unavailable_reason`).
    """
    _check_settings(n_items, dim, window, epochs, min_count)
    if partitions < 1:
        raise ValueError(f"partitions must be >= 1, got {partitions}")
    corpus, sentences = _corpus_words(sequences, n_items, min_count)
    spark, startup_s = spark_session(master)
    from pyspark.ml.feature import Word2Vec

    t0 = time.perf_counter()
    frame = spark.createDataFrame([(s,) for s in sentences], "seq array<string>").cache()
    frame.count()  # materialise the cache, so that the fit below times training only
    load_s = time.perf_counter() - t0
    estimator = Word2Vec(vectorSize=dim, windowSize=window, maxIter=epochs, minCount=1, seed=seed,
                         stepSize=lr, numPartitions=partitions, inputCol="seq", outputCol="vector",
                         maxSentenceLength=max(int(corpus.lengths.max()), 1))
    context, group = spark.sparkContext, f"ytrec-word2vec-{time.monotonic_ns()}"
    context.setJobGroup(group, "item2vec on Spark MLlib")
    stop = threading.Event()
    with tqdm(desc="Spark Word2Vec (jobs done)", unit="job", disable=not progress) as bar:
        watcher = threading.Thread(target=_watch_jobs, args=(context, group, bar, stop), daemon=True)
        watcher.start()
        try:
            t0 = time.perf_counter()
            fitted = estimator.fit(frame)
            seconds = time.perf_counter() - t0
        finally:
            stop.set()
            watcher.join()
            context.setLocalProperty("spark.jobGroup.id", None)
            frame.unpersist()  # the fitted model holds its vectors; the cached sentences can go
    rows = fitted.getVectors().collect()  # [(word, DenseVector)] one per vocabulary item
    vectors = np.zeros((n_items, dim), np.float32)
    ids = np.array([int(r["word"]) for r in rows], np.int64)  # (V,)
    found = np.array([r["vector"].toArray() for r in rows], np.float32).reshape(len(rows), dim)  # (V, d)
    vectors[ids] = found
    words = int(corpus.lengths.sum()) * epochs
    return vectors, {"seconds": seconds, "words_per_s": words / seconds, "startup_s": startup_s,
                     "load_s": load_s, "words": float(words), "vocabulary": float(len(rows)),
                     "partitions": float(partitions)}


def train_gensim_item2vec(sequences: Sequence[np.ndarray], n_items: int, dim: int, window: int, epochs: int,
                          min_count: int = 1, seed: int = 0, workers: int = 2,
                          **settings: Any) -> tuple[np.ndarray, dict[str, float]]:
    """gensim's Word2Vec (skip-gram, negative sampling) with :func:`train_spark_item2vec`'s signature.

    Returns ``vectors`` (n_items, dim) float32 indexed by id (zero rows for ids gensim never saw) and
    ``stats``: ``seconds`` (``train`` alone), ``words_per_s``, ``words``, ``vocabulary``, ``workers``.
    ``settings``: any other :class:`ytrec_lib.models.item2vec.SGNSConfig` field (``lr``, ``negatives``...).
    Deterministic for a seed only with ``workers=1`` (gensim's threads share the vectors).
    """
    _check_settings(n_items, dim, window, epochs, min_count)
    config = iv.SGNSConfig(dim=dim, window=window, epochs=epochs, min_count=min_count, seed=seed, **settings)
    emb = iv.train_gensim(sequences, config, workers=workers)
    if emb.ids[0] < 0 or emb.ids[-1] >= n_items:
        raise ValueError(f"item ids run from {emb.ids[0]} to {emb.ids[-1]}, outside 0..{n_items - 1}: pass "
                         "n_items greater than the largest id")
    vectors = np.zeros((n_items, dim), np.float32)
    vectors[emb.ids] = emb.vectors  # (V, d) into (n_items, d)
    return vectors, {"seconds": emb.seconds, "words_per_s": emb.words_per_second,
                     "words": float(emb.extra["words"]), "vocabulary": float(len(emb.ids)),
                     "workers": float(workers)}


# ----------------------------------------------------------------------------------------------
# scaling


def engines_by_sequence_count(sequences: Sequence[np.ndarray], n_items: int, counts: Sequence[int], dim: int,
                              window: int, epochs: int, seed: int = 0, master: str = "local[*]",
                              partitions: int = 1, workers: int = 2,
                              progress: bool = True) -> list[dict[str, float]]:
    """Words/second of Spark and of gensim on the first ``count`` sequences, for each of ``counts``.

    Both engines train on the same prefix with the same ``dim``, ``window``, ``epochs`` and ``seed``
    (their own defaults otherwise), one after the other. One dict per count, in the order given:
    ``sequences``, ``words`` (corpus words x epochs), ``spark_words_per_s``, ``spark_seconds``,
    ``gensim_words_per_s``, ``gensim_seconds``, ``spark_startup_s`` (non-zero only where this call
    started the JVM). ValueError for a count outside 1..len(sequences).
    """
    bad = [c for c in counts if not 1 <= int(c) <= len(sequences)]
    if bad or not counts:
        raise ValueError(f"counts must be a non-empty list of sequence counts in 1..{len(sequences)}, got "
                         f"{list(counts)}")
    rows = []
    for count in tqdm(counts, desc="Spark and gensim by sequence count", disable=not progress):
        subset = list(sequences[:int(count)])
        _, spark = train_spark_item2vec(subset, n_items, dim, window, epochs, seed=seed, master=master,
                                        partitions=partitions, progress=False)
        _, gensim = train_gensim_item2vec(subset, n_items, dim, window, epochs, seed=seed, workers=workers)
        rows.append({"sequences": float(count), "words": spark["words"],
                     "spark_words_per_s": spark["words_per_s"], "spark_seconds": spark["seconds"],
                     "gensim_words_per_s": gensim["words_per_s"], "gensim_seconds": gensim["seconds"],
                     "spark_startup_s": spark["startup_s"]})
    return rows
