"""The course map: which notebook teaches what, from which paper section, with which module.

Notebook 00 and the README render these tables; a test checks that the map and the notebooks on
disk agree.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

PRESET_ENV = "YTREC_PRESET"
"""The environment variable that sets the default preset of every notebook (``make lab PRESET=ci``)."""
DEFAULT_PRESET = "ci"
"""The preset a notebook runs at when neither the runner nor ``$YTREC_PRESET`` says otherwise."""


def default_preset() -> str:
    """The ``PRESET`` default of every notebook's parameters cell: ``$YTREC_PRESET``, else ``"ci"``.

    The runner's (papermill's) injected parameters come after the parameters cell, so they still
    win. Raises ``ValueError``, in one line naming the known presets, for a name no loader knows.
    """
    name = os.environ.get(PRESET_ENV, "").strip() or DEFAULT_PRESET
    from ytrec_lib.data.datasets import known_presets  # the data layer only when asked

    known = known_presets()
    if name not in known:
        raise ValueError(f"{PRESET_ENV}={name!r} is not a known preset; choose from: {', '.join(known)}")
    return name


@dataclass(frozen=True)
class Chapter:
    """One notebook of the collection."""

    stem: str
    title: str
    paper_section: str
    modules: str
    lecture_point: str


CHAPTERS: tuple[Chapter, ...] = (
    Chapter("00_overview", "Overview: the two-stage funnel, the map, the glossary",
            "§2 System overview", "course, report, pipeline", "two stages: candidates then ranking"),
    Chapter("01_ugc_data", "The simulated UGC platform and its long tail",
            "§1 Introduction, §3.4 label and context selection",
            "data.simulator, data.datasets, data.describe, data.splits, metrics, models.baselines",
            "user-generated content: huge, long-tailed, weak head"),
    Chapter("02_item2vec", "Item2vec: pretrained video and search-token embeddings",
            "§3.1 (embeddings of watches and searches)", "models.item2vec",
            "pretrained embeddings of watched videos and search tokens"),
    Chapter("03_candidate_generation", "The softmax candidate-generation model",
            "§3 Candidate generation (3.1–3.5)",
            "features, models.candidate, train, pipeline, studies.lessons",
            "concat features -> 3 ReLU layers -> softmax over all videos"),
    Chapter("03b_paper_lessons", "The paper's lessons I, measured honestly: depth (Figure 6)",
            "§3.5 (Fig. 6)", "studies.lessons, data.presets, data.describe",
            "depth helps where the world has interactions: three seeds, checked by ablation"),
    Chapter("03c_fresh_and_labels",
            "The paper's lessons II: example age (Figure 4) and next-watch labels (§3.4)",
            "§3.3 (Fig. 4), §3.4", "studies.lessons, features",
            "example age follows fresh videos; next-watch labels beat held-out ones; ablations"),
    Chapter("04_video_embeddings", "Video embeddings from the m x n softmax matrix; the embedding store",
            "§3.2 Model architecture (serving), Figure 3",
            "models.candidate, models.embeddings, serving.store",
            "softmax columns are video vectors; last ReLU layer is the user vector"),
    Chapter("05_ann_serving", "Serving by nearest-neighbour search: Faiss, kd-tree, LSH",
            "§3.2 (approximate nearest-neighbour serving)", "serving.retrieval, studies.ann_bench",
            "Faiss answers in milliseconds; kd-tree is too slow; LSH"),
    Chapter("06_negative_sampling", "Negative sampling for retrieval and for ranking",
            "§3.1 Efficient extreme multiclass (sampled softmax)",
            "studies.negatives, models.sampling, train",
            "retrieval wants global negatives, ranking wants exposed-not-clicked"),
    Chapter("07_ranking", "The ranking model: weighted logistic regression on watch time",
            "§4 Ranking (4.1–4.3), Table 1", "models.ranking, features",
            "rank hundreds of candidates precisely"),
    Chapter("08_two_stage_system", "The two-stage system end to end, with an explorer",
            "§2, §3.2, §4", "serving.system, pipeline, widgets",
            "millions -> hundreds -> dozens in milliseconds"),
    Chapter("09_scale_out", "Past one machine: data-parallel training, Spark item2vec, sharded serving",
            "§1 (scale), §3 (users and videos), §3.2 (serving)",
            "distributed, studies.scale_out, studies.allreduce, models.item2vec_spark",
            "the cluster: how training time and serving memory grow with YouTube's scale"),
)

# English term, Chinese term as the course uses it, one-line meaning.
GLOSSARY: tuple[tuple[str, str, str], ...] = (
    ("candidate generation (retrieval)", "召回", "stage 1: pick hundreds of videos out of millions, fast"),
    ("ranking", "排序", "stage 2: score the hundreds of candidates precisely, keep dozens"),
    ("funnel", "漏斗", "the shape of the two stages: millions -> hundreds -> dozens"),
    ("user-generated content (UGC)", "用户生成内容", "videos uploaded by users, not studios"),
    ("long tail", "长尾", "most videos get few views; the head is a small share of items"),
    ("head / tail items", "头部 / 长尾物品", "the most / least popular videos"),
    ("embedding", "嵌入 / Embedding 向量", "a dense vector that represents an id"),
    ("item2vec", "Item2vec", "word2vec's skip-gram applied to sequences of items"),
    ("skip-gram", "跳字模型", "predict the context items from the centre item"),
    ("negative sampling", "负采样", "train against a few sampled negatives instead of all classes"),
    ("exposed but not clicked", "曝光未点击", "shown to the user who did not click it: ranking's negatives"),
    ("global negatives", "全局负样本", "any video the user did not watch: retrieval's negatives"),
    ("softmax", "Softmax 多分类", "a probability over every video: which one is watched next"),
    ("sampled softmax", "采样 Softmax", "softmax trained with sampled negative classes"),
    ("logQ correction", "logQ 校正", "subtract the log sampling probability from a sampled logit"),
    ("user embedding", "用户 Embedding", "the last ReLU layer's output for a user"),
    ("video embedding", "视频 Embedding", "a column of the m x n softmax weight matrix"),
    ("feature store / embedding store", "特征数据库", "where serving reads stored embeddings"),
    ("nearest-neighbour search", "最近邻搜索", "find the vectors with the largest inner product"),
    ("approximate nearest neighbour (ANN)", "近似最近邻", "fast search that may miss a few true neighbours"),
    ("locality-sensitive hashing (LSH)", "局部敏感哈希", "hash similar vectors into the same buckets"),
    ("kd-tree", "KD 树", "a space-partitioning tree; fast at low dimension, slow at high"),
    ("example age", "样本年龄 (Example Age)", "how old a training example is; removes the bias to the past"),
    ("continuous feature transform", "连续特征变换", "x, x^2, sqrt(x) of a normalised continuous value"),
    ("weighted logistic regression", "加权逻辑回归", "positives weighted by watch time; odds ~ watch time"),
    ("expected watch time", "期望观看时长", "what the ranking model orders by"),
    ("click-through rate (CTR)", "点击率", "clicks / impressions"),
    ("cold start", "冷启动", "a new user or video with no history"),
    ("recall@K", "召回率", "share of the true next watches found in the top K"),
    ("offline / online", "离线 / 在线", "training on logs versus serving live requests"),
)
