"""A simulated user-generated-content (UGC) video platform with known ground truth.

The world has three parts, all drawn once for a seed and vectorised with NumPy:

* **Catalogue** -- creators upload continuously (a back catalogue before day 0, then new videos
  every day); each video has a topic (topics grouped into categories), a creator, an upload time,
  a duration, a language, title tokens from its topic's vocabulary, an intrinsic ``quality``, a
  ``clickbait`` appeal and a hidden popularity ("buzz"). Series creators upload numbered episodes.
* **Users** -- region, age, gender, language, a heavy-tailed activity level, and interests over
  topics whose prior depends on region, age and gender, plus the user's own taste.
* **Behaviour** -- day by day, each user has sessions: a *home* feed built by a biased logging
  policy (global popularity, popularity in the user's language, a weak earlier personaliser, and
  "up next" for series), or a *search* (tokens from the intent topic; results from that topic).
  Each shown video is examined with a position-dependent probability and clicked by the true
  click model (interest, quality, clickbait, freshness, momentum of the last watch, language,
  duration); a click is a watch whose length follows the true watch model (interest, quality and
  momentum, *not* clickbait).

The loop runs over days, then over each user's session rank within the day, then over slate
positions; every step is vectorised over all users in it (no Python loop per event).

:class:`Truth` computes the true next-watch distribution of any user at any time from the same
functions the simulator samples from.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from .cache import cache_key
from .presets import SimConfig

GENERATOR_VERSION = 1
SECONDS_PER_DAY = 86400.0
SLOT_SECONDS = 10.0          # time between consecutive impressions of a session
P_SEARCH_MOMENTUM = 0.5      # a search continues the last watched topic (times the momentum decay)

__all__ = ["GENERATOR_VERSION", "World", "Truth", "SimOutput", "build_world", "simulate", "world_key"]


# --------------------------------------------------------------------------------------------
# the static world
# --------------------------------------------------------------------------------------------
@dataclass
class World:
    """Every hidden and visible parameter of the world (arrays indexed by video / user / topic id)."""

    cfg: SimConfig
    topic_category: np.ndarray      # (n_topics,) int16
    # videos, in upload order: video id = row
    v_creator: np.ndarray           # (V,) int32
    v_topic: np.ndarray             # (V,) int16
    v_upload: np.ndarray            # (V,) float64, days
    v_duration: np.ndarray          # (V,) float32, seconds
    v_language: np.ndarray          # (V,) int16
    v_quality: np.ndarray           # (V,) float32
    v_clickbait: np.ndarray         # (V,) float32
    v_buzz: np.ndarray              # (V,) float32, log-scale popularity the platform sees
    v_series: np.ndarray            # (V,) int32, -1 when not part of a series
    v_episode: np.ndarray           # (V,) int16, -1 when not part of a series
    v_next_episode: np.ndarray      # (V,) int64, the next episode's video id or -1
    title_offsets: np.ndarray       # (V + 1,) int64
    title_tokens: np.ndarray        # (sum of title lengths,) int32
    # users
    u_region: np.ndarray            # (U,) int16
    u_age: np.ndarray               # (U,) float32, years
    u_gender: np.ndarray            # (U,) int8
    u_language: np.ndarray          # (U,) int16
    u_activity: np.ndarray          # (U,) float32, mean 1
    interest: np.ndarray            # (U, n_topics) float32, rows sum to 1
    personaliser: np.ndarray        # (U, n_topics) float32, the logging policy's guess of interest
    n_tokens: int
    drift: np.ndarray | None = None  # (U, n_topics) float32 logit drift over the log; (0, T): none

    @property
    def n_videos(self) -> int:
        return int(self.v_topic.shape[0])

    @property
    def n_users(self) -> int:
        return int(self.u_region.shape[0])

    @property
    def log_interest_c(self) -> np.ndarray:
        """``log(n_topics * interest)``: 0 for a topic of average interest. (U, n_topics) float32."""
        if not hasattr(self, "_lic"):
            self._lic = np.log(np.maximum(self.interest, 1e-12) * self.cfg.n_topics).astype(np.float32)
        return self._lic

    @property
    def has_drift(self) -> bool:
        return self.drift is not None and self.drift.shape[0] > 0

    def phase(self, day: np.ndarray) -> np.ndarray:
        """Where ``day`` lies in the log for the interest drift: -0.5 (day 0) .. +0.5 (last day)."""
        d = np.clip(np.floor(day), 0, self.cfg.n_days - 1)
        return (d + 0.5) / self.cfg.n_days - 0.5

    def interest_logits(self, u: np.ndarray, day: np.ndarray) -> np.ndarray:
        """Unnormalised log-interest of users ``u`` (n,) on days ``day`` (n,) (drift included). (n, T)."""
        base = np.log(np.maximum(self.interest[u], 1e-12))
        if not self.has_drift:
            return base
        return base + self.drift[u] * self.phase(day)[:, None]

    def interests_at(self, u: np.ndarray, day: np.ndarray) -> np.ndarray:
        """Interests of users ``u`` (n,) on days ``day`` (n,), rows sum to 1. (n, T) float32."""
        return _softmax_rows(self.interest_logits(u, day)).astype(np.float32)

    def _lse(self, day: int) -> np.ndarray:
        """log-sum-exp of every user's drifted log-interest on ``day``. (U,) float64, cached per day."""
        cache = self.__dict__.setdefault("_lse_cache", {})
        if day not in cache:
            x = self.interest_logits(np.arange(self.n_users), np.full(self.n_users, day))
            m = x.max(axis=1)
            cache[day] = m + np.log(np.exp(x - m[:, None]).sum(axis=1))
        return cache[day]

    def interest_term(self, u: np.ndarray, topic: np.ndarray, t: np.ndarray) -> np.ndarray:
        """``log(n_topics * interest)`` of users for topics at times (broadcasting, like click_logit)."""
        if not self.has_drift:
            return self.log_interest_c[u, topic]
        u_b, topic_b, t_b = np.broadcast_arrays(u, topic, t)
        day = np.clip(np.floor(t_b), 0, self.cfg.n_days - 1).astype(np.int64)
        lse = np.empty(u_b.shape)
        for d in np.unique(day):
            m = day == d
            lse[m] = self._lse(int(d))[u_b[m]]
        base = np.log(np.maximum(self.interest[u_b, topic_b], 1e-12))
        val = base + self.drift[u_b, topic_b] * self.phase(day) - lse + np.log(self.cfg.n_topics)
        return val.astype(np.float32)

    @property
    def static_click_logit(self) -> np.ndarray:
        """The user-independent part of the click logit. (V,) float32."""
        if not hasattr(self, "_scl"):
            c = self.cfg
            z = (c.c0 + c.w_quality * self.v_quality + c.w_clickbait * self.v_clickbait
                 - c.w_duration * np.log(self.v_duration / 300.0))
            self._scl = z.astype(np.float32)
        return self._scl

    def arrays(self) -> dict[str, np.ndarray]:
        """All arrays by name (for the cache)."""
        return {k: v for k, v in self.__dict__.items() if isinstance(v, np.ndarray) and not k.startswith("_")}

    def __post_init__(self) -> None:
        if self.drift is None:
            self.drift = np.zeros((0, self.interest.shape[1]), np.float32)


def _softmax_rows(x: np.ndarray) -> np.ndarray:
    x = x - x.max(axis=1, keepdims=True)
    e = np.exp(x)
    return e / e.sum(axis=1, keepdims=True)


def _zipf_probs(n: int, s: float) -> np.ndarray:
    p = 1.0 / np.arange(1, n + 1) ** s
    return p / p.sum()


def _sample_tokens(rng: np.random.Generator, cfg: SimConfig, topic_category: np.ndarray,
                   topics: np.ndarray, lengths: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Token ids for texts about ``topics`` (m,): topic words, category words and general words.

    Returns ``(offsets (m + 1,) int64, tokens (sum(lengths),) int32)``.
    """
    offsets = np.zeros(len(topics) + 1, dtype=np.int64)
    np.cumsum(lengths, out=offsets[1:])
    owner = np.repeat(np.arange(len(topics)), lengths)
    kind = rng.choice(3, size=owner.shape[0], p=[0.65, 0.25, 0.10])
    tpt, tpc = cfg.tokens_per_topic, cfg.tokens_per_category
    n_topic_tok = cfg.n_topics * tpt
    n_cat_tok = cfg.n_categories * tpc
    topic_word = rng.choice(tpt, size=owner.shape[0], p=_zipf_probs(tpt, 0.9))
    cat_word = rng.choice(tpc, size=owner.shape[0], p=_zipf_probs(tpc, 0.9))
    gen_word = rng.choice(cfg.n_general_tokens, size=owner.shape[0], p=_zipf_probs(cfg.n_general_tokens, 1.0))
    t = topics[owner].astype(np.int64)
    tok = np.where(kind == 0, t * tpt + topic_word,
                   np.where(kind == 1, n_topic_tok + topic_category[t].astype(np.int64) * tpc + cat_word,
                            n_topic_tok + n_cat_tok + gen_word))
    return offsets, tok.astype(np.int32)


def build_world(cfg: SimConfig, rng: np.random.Generator) -> World:
    """Draw the catalogue, the users and their interests for ``cfg``."""
    T, C, U, V = cfg.n_topics, cfg.n_creators, cfg.n_users, cfg.n_videos
    topic_category = ((np.arange(T) * cfg.n_categories) // T).astype(np.int16)
    region_lang = np.arange(cfg.n_regions) % cfg.n_languages
    region_p = _zipf_probs(cfg.n_regions, 0.8)
    topic_base = rng.normal(0.0, 0.6, T)                        # some topics are more popular everywhere
    topic_age_centre = rng.uniform(16.0, 50.0, T)
    topic_gender = rng.normal(0.0, 1.0, T)
    region_topic = rng.normal(0.0, 1.0, (cfg.n_regions, T))

    # ---- creators ----
    c_region = rng.choice(cfg.n_regions, size=C, p=region_p)
    c_language = np.where(rng.random(C) < 0.9, region_lang[c_region], rng.integers(0, cfg.n_languages, C))
    c_topic = rng.choice(T, size=C, p=_softmax_rows(topic_base[None, :])[0])
    c_fame = rng.normal(0.0, cfg.creator_fame_sd, C)
    c_rate = rng.lognormal(0.0, cfg.creator_rate_sd, C)
    c_series = rng.random(C) < cfg.series_creator_frac
    c_series_len = 2 + rng.poisson(max(cfg.mean_series_len - 2.0, 0.0), C)

    # ---- videos (sorted by upload time, so a video id is its upload rank) ----
    n_back = int(round(cfg.back_catalogue_frac * V))
    upload = np.sort(np.concatenate([-cfg.back_catalogue_days * rng.random(n_back),
                                     cfg.n_days * rng.random(V - n_back)]))
    creator = rng.choice(C, size=V, p=c_rate / c_rate.sum())
    same_cat = rng.random(V) < cfg.p_main_topic
    # a video off the creator's main topic stays in the same category
    cat = topic_category[c_topic[creator]].astype(np.int64)
    cat_start = np.searchsorted(topic_category, cat, side="left")
    cat_size = np.searchsorted(topic_category, cat, side="right") - cat_start
    other = cat_start + (rng.random(V) * cat_size).astype(np.int64)
    topic = np.where(same_cat, c_topic[creator], other).astype(np.int64)

    # series: consecutive uploads of a series creator, chunked into series of fixed length
    order = np.lexsort((np.arange(V), creator))                  # by creator, then upload order
    cr_sorted = creator[order]
    first = np.r_[True, cr_sorted[1:] != cr_sorted[:-1]]
    start_idx = np.maximum.accumulate(np.where(first, np.arange(V), 0))
    rank = np.arange(V) - start_idx                              # rank of the video within its creator
    slen = c_series_len[cr_sorted]
    chunk = rank // slen
    is_series = c_series[cr_sorted]
    key = cr_sorted.astype(np.int64) * (V + 1) + chunk
    _, series_sorted = np.unique(np.where(is_series, key, -1), return_inverse=True)
    series_sorted = np.where(is_series, series_sorted - (~is_series).any(), -1)
    episode_sorted = np.where(is_series, rank % slen, -1)
    series = np.empty(V, np.int64)
    series[order] = series_sorted
    episode = np.empty(V, np.int64)
    episode[order] = episode_sorted
    nxt_sorted = np.full(V, -1, np.int64)
    same_next = np.r_[(series_sorted[1:] == series_sorted[:-1]) & (series_sorted[1:] >= 0), False]
    nxt_sorted[same_next] = order[np.nonzero(same_next)[0] + 1]
    next_episode = np.empty(V, np.int64)
    next_episode[order] = nxt_sorted
    # every episode of a series shares the topic of its first episode
    first_ep = np.full(series.max() + 2, -1, np.int64)
    is_first = (episode == 0) & (series >= 0)
    first_ep[series[is_first]] = np.nonzero(is_first)[0]
    topic = np.where(series >= 0, topic[first_ep[series]], topic)

    cat_median = np.exp(rng.uniform(np.log(90.0), np.log(1200.0), cfg.n_categories))
    duration = np.clip(cat_median[topic_category[topic]] * rng.lognormal(0.0, 0.6, V), 15.0, 7200.0)
    quality = rng.normal(0.0, cfg.quality_sd, V)
    clickbait = -0.3 * quality / cfg.quality_sd + np.sqrt(1 - 0.09) * rng.normal(0.0, 1.0, V)
    buzz = c_fame[creator] + cfg.buzz_sd * (0.5 * quality / cfg.quality_sd + 0.87 * rng.normal(0.0, 1.0, V))
    title_offsets, title_tokens = _sample_tokens(rng, cfg, topic_category, topic, rng.integers(4, 9, V))

    # ---- users ----
    u_region = rng.choice(cfg.n_regions, size=U, p=region_p)
    u_language = np.where(rng.random(U) < 0.85, region_lang[u_region], rng.integers(0, cfg.n_languages, U))
    u_age = np.clip(13.0 + rng.gamma(2.2, 9.0, U), 13.0, 80.0)
    u_gender = rng.integers(0, 2, U)
    u_activity = rng.lognormal(-0.5 * cfg.activity_sd**2, cfg.activity_sd, U)
    age_term = 2.0 * np.exp(-0.5 * ((u_age[:, None] - topic_age_centre[None, :]) / 10.0) ** 2) - 1.0
    demo = (0.7 * region_topic[u_region] + 0.8 * age_term
            + 0.5 * topic_gender[None, :] * (2 * u_gender[:, None] - 1)) / np.sqrt(0.49 + 0.64 * 0.5 + 0.25)
    if cfg.demo_interaction > 0:   # its own generator: the rest of the world is drawn as without it
        demo = _interacting_demo(cfg, _side_rng(rng, 1), demo, u_region, age_term, u_gender)
    personal = rng.normal(0.0, 1.0, (U, T))
    affinity = topic_base[None, :] + cfg.demo_sd * demo + cfg.personal_sd * personal
    interest = _softmax_rows(cfg.interest_temp * affinity)
    guess = (topic_base[None, :] + cfg.demo_sd * demo + 0.3 * cfg.personal_sd * personal
             + cfg.personaliser_noise * rng.normal(0.0, 1.0, (U, T)))
    personaliser = _softmax_rows(cfg.interest_temp * guess)
    if cfg.interest_drift > 0:     # drawn last, so worlds without drift are unchanged by it
        drift = cfg.interest_temp * cfg.interest_drift * rng.normal(0.0, 1.0, (U, T))
    else:
        drift = np.zeros((0, T))
    if cfg.interest_progression > 0:
        drift = (drift if drift.size else 0.0) + progression_drift(cfg, interest, u_gender)

    n_tokens = T * cfg.tokens_per_topic + cfg.n_categories * cfg.tokens_per_category + cfg.n_general_tokens
    return World(
        cfg=cfg, topic_category=topic_category,
        v_creator=creator.astype(np.int32), v_topic=topic.astype(np.int16),
        v_upload=upload.astype(np.float64),
        v_duration=duration.astype(np.float32), v_language=c_language[creator].astype(np.int16),
        v_quality=quality.astype(np.float32), v_clickbait=clickbait.astype(np.float32),
        v_buzz=buzz.astype(np.float32), v_series=series.astype(np.int32), v_episode=episode.astype(np.int16),
        v_next_episode=next_episode, title_offsets=title_offsets, title_tokens=title_tokens,
        u_region=u_region.astype(np.int16), u_age=u_age.astype(np.float32), u_gender=u_gender.astype(np.int8),
        u_language=u_language.astype(np.int16), u_activity=u_activity.astype(np.float32),
        interest=interest.astype(np.float32), personaliser=personaliser.astype(np.float32), n_tokens=n_tokens,
        drift=drift.astype(np.float32),
    )


def _side_rng(rng: np.random.Generator, salt: int) -> np.random.Generator:
    """A generator derived from ``rng``'s seed and ``salt`` that leaves ``rng`` untouched, so a switch
    drawing from it changes nothing else in the world."""
    seq = rng.bit_generator.seed_seq
    return np.random.default_rng(np.random.SeedSequence(seq.entropy, spawn_key=(*seq.spawn_key, 1000 + salt)))


def _interacting_demo(cfg: SimConfig, rng: np.random.Generator, demo: np.ndarray, u_region: np.ndarray,
                      age_term: np.ndarray, u_gender: np.ndarray) -> np.ndarray:
    """Mix ``cfg.demo_interaction`` of a gender x (region, age) effect into the additive ``demo``
    (U, T): fresh region and age-centre tables whose sign flips with gender. Both parts have unit
    variance per entry, so the mix keeps the strength of demographics. (U, T) float64."""
    T = demo.shape[1]
    region_topic = rng.normal(0.0, 1.0, (cfg.n_regions, T))
    shift = rng.permutation(T)                       # the other gender's age bumps sit on other topics
    age_flip = age_term - age_term[:, shift]         # young men like what young women avoid, and back
    sign = (2.0 * u_gender[:, None] - 1.0)
    inter = sign * (0.7 * region_topic[u_region] + 0.8 * age_flip / np.sqrt(2.0)) / np.sqrt(0.49 + 0.64 * 0.5)
    x = cfg.demo_interaction
    return (1.0 - x) * demo + x * inter


def progression_drift(cfg: SimConfig, interest: np.ndarray, gender: np.ndarray | None = None) -> np.ndarray:
    """The drift of :attr:`SimConfig.interest_progression` (U, T): over the log each user's log-interest
    in topic ``j`` moves towards their starting log-interest in topic ``j - 1`` (topics on a ring), by
    ``interest_progression`` times the gap between the two from the first to the last day. With
    ``progression_by_gender`` users of ``gender`` (U,) 0 move the other way, towards topic ``j + 1``."""
    log_i = np.log(np.maximum(interest, 1e-12))                             # (U, T)
    source = np.roll(log_i, 1, axis=1)                                      # (U, T) log-interest in j - 1
    if cfg.progression_by_gender:
        if gender is None:
            raise ValueError("progression_drift: progression_by_gender needs the users' gender (U,)")
        source = np.where(np.asarray(gender)[:, None] == 1, source, np.roll(log_i, -1, axis=1))
    return cfg.interest_progression * (source - log_i)


# --------------------------------------------------------------------------------------------
# the true models (shared by the simulator and by Truth, so they cannot drift apart)
# --------------------------------------------------------------------------------------------
def _momentum(w: World, v: np.ndarray, t: np.ndarray, last_v: np.ndarray, last_t: np.ndarray
              ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Decay, same-topic, same-creator and next-episode indicators against the last watch (broadcast)."""
    has = last_v >= 0
    lv = np.where(has, last_v, 0)
    decay = np.where(has, np.exp(-np.maximum(t - last_t, 0.0) / w.cfg.momentum_days), 0.0)
    same_topic = w.v_topic[v] == w.v_topic[lv]
    same_creator = w.v_creator[v] == w.v_creator[lv]
    next_ep = (w.v_next_episode[lv] == v) & has
    return decay, same_topic, same_creator, next_ep


def click_logit(w: World, u: np.ndarray, v: np.ndarray, t: np.ndarray, last_v: np.ndarray,
                last_t: np.ndarray, search: bool | np.ndarray = False) -> np.ndarray:
    """The true click logit of user ``u`` for video ``v`` at time ``t`` once the video is examined.

    All arguments broadcast against each other: ``(n,)`` with ``(n,)``, or ``(n, 1)`` with ``(1, V)``.
    ``last_v`` / ``last_t`` are the last watch before ``t`` (-1 / any when none). float32.
    """
    c = w.cfg
    decay, same_topic, same_creator, next_ep = _momentum(w, v, t, last_v, last_t)
    age = np.maximum(t - w.v_upload[v], 0.0)
    z = (w.static_click_logit[v] + c.w_interest * w.interest_term(u, w.v_topic[v], t)
         + c.freshness * c.w_fresh * np.exp(-age / c.fresh_days)
         - c.w_language * (w.u_language[u] != w.v_language[v])
         + decay * (c.w_topic_momentum * same_topic + c.w_creator_momentum * same_creator
                    + c.w_series * next_ep)
         + c.w_search_intent * np.asarray(search, dtype=np.float32))
    return z.astype(np.float32)


def watch_fraction_mean(w: World, u: np.ndarray, v: np.ndarray, t: np.ndarray, last_v: np.ndarray,
                        last_t: np.ndarray) -> np.ndarray:
    """The true mean fraction of the video watched once clicked (broadcasts like :func:`click_logit`)."""
    c = w.cfg
    decay, same_topic, _, next_ep = _momentum(w, v, t, last_v, last_t)
    z = (c.f0 + c.f_interest * w.interest_term(u, w.v_topic[v], t) + c.f_quality * w.v_quality[v]
         + c.f_clickbait * w.v_clickbait[v] + c.f_momentum * decay * (same_topic | next_ep))
    return (1.0 / (1.0 + np.exp(-z))).astype(np.float32)


def examination(cfg: SimConfig, positions: np.ndarray, search: bool | np.ndarray = False) -> np.ndarray:
    """Probability that a user looks at the slot ``positions`` (0 = top). float32."""
    decay = np.where(search, cfg.search_position_decay, cfg.position_decay)
    return ((1.0 + np.asarray(positions, np.float64)) ** -decay).astype(np.float32)


def popularity(w: World, day: int) -> np.ndarray:
    """The popularity the platform sees on ``day``: buzz decayed with age; 0 if not uploaded yet. (V,)."""
    c = w.cfg
    age = day - w.v_upload
    decay = (1.0 + np.maximum(age, 0.0) / c.pop_decay_days) ** -(c.freshness * c.pop_decay_power)
    pop = np.exp(w.v_buzz.astype(np.float64)) * decay
    return np.where(age > 0, pop, 0.0)


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


# --------------------------------------------------------------------------------------------
# sampling helpers
# --------------------------------------------------------------------------------------------
class GroupSampler:
    """Draw videos within a group (language, topic, ...) with probability proportional to a weight."""

    def __init__(self, groups: np.ndarray, n_groups: int, weights: np.ndarray) -> None:
        self.order = np.argsort(groups, kind="stable")
        self.cum = np.cumsum(weights[self.order])
        counts = np.bincount(groups, minlength=n_groups)
        self.ends = np.cumsum(counts)
        self.starts = self.ends - counts
        cum0 = np.r_[0.0, self.cum]
        self.before = cum0[self.starts]
        self.mass = cum0[self.ends] - self.before

    def sample(self, g: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """One video per entry of ``g`` (m,) int; -1 where the group has no weight. (m,) int64."""
        x = self.before[g] + rng.random(g.shape[0]) * self.mass[g]
        idx = np.searchsorted(self.cum, x, side="right")
        idx = np.clip(idx, self.starts[g], np.maximum(self.ends[g] - 1, 0))
        out = self.order[np.minimum(idx, self.order.shape[0] - 1)].astype(np.int64)
        return np.where(self.mass[g] > 0, out, -1)


def sample_rows(cdf: np.ndarray, rows: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """One category per row of the row-wise CDF ``cdf[rows]`` (n, k) -> (n,) int64."""
    c = cdf[rows]
    return np.minimum((c < rng.random(rows.shape[0])[:, None] * c[:, -1:]).sum(axis=1), c.shape[1] - 1)


def first_unique(mat: np.ndarray, k: int) -> np.ndarray:
    """Per row, the first ``k`` distinct non-negative entries of ``mat`` (n, m), padded with -1. (n, k)."""
    n = mat.shape[0]
    order = np.argsort(mat, axis=1, kind="stable")
    s = np.take_along_axis(mat, order, axis=1)
    dup_sorted = np.zeros_like(s, dtype=bool)
    dup_sorted[:, 1:] = s[:, 1:] == s[:, :-1]
    dup = np.empty_like(dup_sorted)
    np.put_along_axis(dup, order, dup_sorted, axis=1)
    valid = (mat >= 0) & ~dup
    rank = np.cumsum(valid, axis=1) - 1
    keep = valid & (rank < k)
    out = np.full((n, k), -1, dtype=np.int64)
    r, _ = np.nonzero(keep)
    out[r, rank[keep]] = mat[keep]
    return out


def _isin_sorted(keys: np.ndarray, sorted_keys: np.ndarray) -> np.ndarray:
    if sorted_keys.size == 0:
        return np.zeros(keys.shape, dtype=bool)
    i = np.minimum(np.searchsorted(sorted_keys, keys), sorted_keys.size - 1)
    return sorted_keys[i] == keys


# --------------------------------------------------------------------------------------------
# the behaviour log
# --------------------------------------------------------------------------------------------
@dataclass
class _DayPolicy:
    pop: np.ndarray
    global_: GroupSampler
    language: GroupSampler
    topic: GroupSampler
    search: GroupSampler


def _day_policy(w: World, day: int) -> _DayPolicy:
    pop = popularity(w, day)
    V = w.n_videos
    return _DayPolicy(
        pop=pop,
        global_=GroupSampler(np.zeros(V, np.int64), 1, pop),
        language=GroupSampler(w.v_language.astype(np.int64), w.cfg.n_languages, pop),
        topic=GroupSampler(w.v_topic.astype(np.int64), w.cfg.n_topics, pop),
        search=GroupSampler(w.v_topic.astype(np.int64), w.cfg.n_topics, pop ** w.cfg.search_pop_power),
    )


class _Log:
    """Growing lists of per-step arrays, concatenated once at the end."""

    def __init__(self) -> None:
        self.parts: dict[str, list[np.ndarray]] = {}

    def add(self, **cols: np.ndarray) -> None:
        for k, v in cols.items():
            self.parts.setdefault(k, []).append(v)

    def get(self, name: str, dtype) -> np.ndarray:
        p = self.parts.get(name, [])
        return np.concatenate(p).astype(dtype) if p else np.zeros(0, dtype)


class _State:
    """Each user's last watch and the set of (user, video) pairs watched so far."""

    def __init__(self, n_users: int, n_videos: int) -> None:
        self.last_v = np.full(n_users, -1, np.int64)
        self.last_t = np.zeros(n_users, np.float64)
        self.n_videos = n_videos
        self.watched = np.zeros(0, np.int64)     # sorted keys user * n_videos + video
        self._new: list[np.ndarray] = []

    def has_watched(self, u: np.ndarray, v: np.ndarray) -> np.ndarray:
        return _isin_sorted(u * self.n_videos + v, self.watched)

    def watch(self, u: np.ndarray, v: np.ndarray, t: np.ndarray) -> None:
        self.last_v[u] = v
        self.last_t[u] = t
        self._new.append(u * self.n_videos + v)

    def commit(self) -> None:
        if self._new:
            self.watched = np.sort(np.concatenate([self.watched, *self._new]), kind="stable")
            self._new = []


def _home_slates(w: World, pol: _DayPolicy, users: np.ndarray, state: _State, day: int,
                 rng: np.random.Generator, pers_cdf: np.ndarray) -> np.ndarray:
    """Home-feed slates of the logging policy, (n, feed_size) int64 video ids (-1 = empty slot)."""
    c = w.cfg
    n, k = users.shape[0], c.feed_size
    m = k + 4
    comp = rng.choice(3, size=(n, m), p=np.asarray(c.policy_mix))
    flat_u = np.repeat(users, m)
    flat_c = comp.ravel()
    draws = pol.global_.sample(np.zeros(n * m, np.int64), rng)
    is_lang = flat_c == 1
    draws[is_lang] = pol.language.sample(w.u_language[flat_u[is_lang]].astype(np.int64), rng)
    is_pers = flat_c == 2
    topics = sample_rows(pers_cdf, flat_u[is_pers], rng)
    draws[is_pers] = pol.topic.sample(topics, rng)
    draws = np.where(draws >= 0, draws, pol.global_.sample(np.zeros(n * m, np.int64), rng))
    draws = draws.reshape(n, m)
    # up next: the next episode of the last watched video, when it is out and not watched yet
    lv = state.last_v[users]
    nxt = np.where(lv >= 0, w.v_next_episode[np.maximum(lv, 0)], -1)
    ok = (nxt >= 0) & (w.v_upload[np.maximum(nxt, 0)] < day) & (rng.random(n) < c.p_up_next)
    ok &= ~state.has_watched(users, np.maximum(nxt, 0))
    up = np.where(ok, nxt, -1)
    return first_unique(np.concatenate([up[:, None], draws], axis=1), k)


def _search_slates(w: World, pol: _DayPolicy, users: np.ndarray, t: np.ndarray, state: _State,
                   rng: np.random.Generator, interest_cdf: np.ndarray
                   ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Intent topics (n,), query tokens (offsets, tokens) and result slates (n, search_results)."""
    c = w.cfg
    n = users.shape[0]
    topic = sample_rows(interest_cdf, users, rng)
    lv = state.last_v[users]
    decay = np.where(lv >= 0, np.exp(-np.maximum(t - state.last_t[users], 0.0) / c.momentum_days), 0.0)
    cont = rng.random(n) < P_SEARCH_MOMENTUM * decay
    topic = np.where(cont, w.v_topic[np.maximum(lv, 0)], topic).astype(np.int64)
    lengths = rng.choice([1, 2, 3], size=n, p=[0.45, 0.35, 0.2])
    offsets, tokens = _sample_tokens(rng, c, w.topic_category, topic, lengths)
    m = c.search_results + 4
    draws = pol.search.sample(np.repeat(topic, m), rng).reshape(n, m)
    return topic, (offsets, tokens), first_unique(draws, c.search_results)


def _session_clicks(w: World, users: np.ndarray, t0: np.ndarray, slates: np.ndarray, search: bool,
                    state: _State, rng: np.random.Generator, log: _Log, session_ids: np.ndarray) -> None:
    """Walk down the slates: examine, click, watch; update each user's last watch; log impressions."""
    c = w.cfg
    for k in range(slates.shape[1]):
        v = slates[:, k]
        rows = np.nonzero(v >= 0)[0]
        if rows.size == 0:
            continue
        u, vv = users[rows], v[rows]
        t = t0[rows] + k * SLOT_SECONDS / SECONDS_PER_DAY
        lv, lt = state.last_v[u], state.last_t[u]
        p = examination(c, np.full(rows.size, k), search) * _sigmoid(click_logit(w, u, vv, t, lv, lt, search))
        p = np.where(state.has_watched(u, vv), p * c.rewatch_factor, p)
        clicked = rng.random(rows.size) < p
        mean = watch_fraction_mean(w, u, vv, t, lv, lt).astype(np.float64)
        kappa = c.watch_concentration
        frac = rng.beta(np.maximum(kappa * mean, 1e-3), np.maximum(kappa * (1 - mean), 1e-3))
        wt = np.where(clicked, frac * w.v_duration[vv], 0.0)
        log.add(user=u, video=vv, time=t, session=session_ids[rows], position=np.full(rows.size, k),
                search=np.full(rows.size, search), clicked=clicked, watch_time=wt)
        cu = np.nonzero(clicked)[0]
        state.watch(u[cu], vv[cu], t[cu])


@dataclass
class SimOutput:
    """What :func:`simulate` returns: the four tables, the world and the metadata."""

    users: pd.DataFrame
    videos: pd.DataFrame
    impressions: pd.DataFrame
    searches: pd.DataFrame
    world: World
    meta: dict


def _cdf(p: np.ndarray) -> np.ndarray:
    return np.cumsum(p.astype(np.float64), axis=1)


def simulate(cfg: SimConfig, seed: int = 0, *, name: str = "custom", progress: bool = True) -> SimOutput:
    """Generate the world and its behaviour log for ``cfg`` and ``seed`` (deterministic)."""
    from ytrec_lib.progress import tqdm

    if not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    ss = np.random.SeedSequence([int(seed), GENERATOR_VERSION, 0 if cfg.style == "ugc" else 1])
    rng_world, rng_log = (np.random.default_rng(s) for s in ss.spawn(2))
    w = build_world(cfg, rng_world)
    state = _State(w.n_users, w.n_videos)
    log, qlog = _Log(), _Log()
    pers_cdf, int_cdf = _cdf(w.personaliser), _cdf(w.interest)
    next_session = 0
    days = tqdm(range(cfg.n_days), desc=f"simulating {name} ({cfg.style})", disable=not progress, leave=False)
    for day in days:
        pol = _day_policy(w, day)
        if w.has_drift:
            int_cdf = _cdf(w.interests_at(np.arange(w.n_users), np.full(w.n_users, day)))
        lam = cfg.sessions_per_day * w.u_activity * (1.0 + 0.15 * np.sin(2 * np.pi * day / 7.0))
        n_sess = np.minimum(rng_log.poisson(lam), cfg.max_sessions_per_day)
        starts = np.sort(rng_log.random((w.n_users, int(n_sess.max(initial=0)))) * 0.95, axis=1)
        for r in range(int(n_sess.max(initial=0))):
            users = np.nonzero(n_sess > r)[0]
            t0 = day + starts[users, r] + r * 0.002
            sid = next_session + np.arange(users.size, dtype=np.int64)
            next_session += users.size
            is_search = rng_log.random(users.size) < cfg.p_search
            hu, hs = users[~is_search], sid[~is_search]
            slates = _home_slates(w, pol, hu, state, day, rng_log, pers_cdf)
            _session_clicks(w, hu, t0[~is_search], slates, False, state, rng_log, log, hs)
            su, ss_id, st = users[is_search], sid[is_search], t0[is_search]
            _, (offs, toks), slates = _search_slates(w, pol, su, st, state, rng_log, int_cdf)
            qlog.add(user=su, time=st, session=ss_id, n_tok=np.diff(offs), tokens=toks)
            _session_clicks(w, su, st, slates, True, state, rng_log, log, ss_id)
            state.commit()
    return _assemble(w, log, qlog, name, seed)


def _assemble(w: World, log: _Log, qlog: _Log, name: str, seed: int) -> SimOutput:
    cfg = w.cfg
    imp = pd.DataFrame({
        "user_id": log.get("user", np.int64), "video_id": log.get("video", np.int64),
        "time": log.get("time", np.float64), "session_id": log.get("session", np.int64),
        "position": log.get("position", np.int16),
        "source": pd.Categorical.from_codes(log.get("search", np.int8), categories=["home", "search"]),
        "clicked": log.get("clicked", bool), "watch_time": log.get("watch_time", np.float32),
    })
    # session ids in order of session start
    sess_start = imp.groupby("session_id", sort=True)["time"].min()
    q_sessions = qlog.get("session", np.int64)
    q_times = qlog.get("time", np.float64)
    all_sess = np.r_[sess_start.index.to_numpy(), q_sessions]
    all_start = np.r_[sess_start.to_numpy(), q_times]
    uniq, first = np.unique(all_sess, return_index=True)
    new_id = np.empty(uniq.size, np.int64)
    new_id[np.lexsort((uniq, all_start[first]))] = np.arange(uniq.size)
    imp["session_id"] = new_id[np.searchsorted(uniq, imp["session_id"].to_numpy())]
    imp = imp.sort_values(["time", "session_id", "position"], kind="stable").reset_index(drop=True)

    n_tok = qlog.get("n_tok", np.int64)
    offs = np.r_[0, np.cumsum(n_tok)]
    toks = qlog.get("tokens", np.int32)
    searches = pd.DataFrame({"user_id": qlog.get("user", np.int64), "time": q_times,
                             "session_id": new_id[np.searchsorted(uniq, q_sessions)],
                             "tokens": split_ragged(offs, toks)})
    searches = searches.sort_values(["time", "session_id"], kind="stable").reset_index(drop=True)

    users = pd.DataFrame({"user_id": np.arange(w.n_users, dtype=np.int64), "region": w.u_region,
                          "age": w.u_age, "gender": w.u_gender, "language": w.u_language,
                          "activity": w.u_activity})
    videos = pd.DataFrame({
        "video_id": np.arange(w.n_videos, dtype=np.int64), "creator_id": w.v_creator, "topic": w.v_topic,
        "category": w.topic_category[w.v_topic], "upload_time": w.v_upload, "duration": w.v_duration,
        "language": w.v_language, "quality": w.v_quality, "clickbait": w.v_clickbait,
        "series_id": w.v_series, "episode": w.v_episode,
        "title_tokens": split_ragged(w.title_offsets, w.title_tokens),
    })
    meta = dict(name=name, seed=int(seed), style=cfg.style, n_users=w.n_users, n_videos=w.n_videos,
                n_topics=cfg.n_topics, n_categories=cfg.n_categories, n_regions=cfg.n_regions,
                n_languages=cfg.n_languages, n_tokens=w.n_tokens, n_creators=cfg.n_creators,
                t_end=float(cfg.n_days), generator_version=GENERATOR_VERSION, world_key=world_key(cfg),
                has_impressions=True, has_searches=True, has_truth=True)
    return SimOutput(users=users, videos=videos, impressions=imp, searches=searches, world=w, meta=meta)


KEY_OPTIONAL: dict[str, float | bool] = {"freshness": 1.0, "interest_progression": 0.0, "demo_interaction": 0.0,
                                         "progression_by_gender": False}
"""Settings added after world keys were in use: left out of :func:`world_key` at these values (their plain
values, ``presets.PLAIN_WORLD``'s, which leave the world as it was), so a world that was cached before
the settings existed keeps its key."""


def world_key(cfg: SimConfig) -> str:
    """12 hex digits naming every setting of the world (``meta["world_key"]``): models trained on a
    dataset key their caches by it, so a changed setting never reloads a model of the old world."""
    d = cfg.to_dict()
    for name, default in KEY_OPTIONAL.items():
        if d[name] == default:
            del d[name]
    return cache_key(d)


def split_ragged(offsets: np.ndarray, values: np.ndarray) -> np.ndarray:
    """An object array of ``len(offsets) - 1`` views into ``values``."""
    out = np.empty(len(offsets) - 1, dtype=object)
    out[:] = np.split(values, offsets[1:-1])
    return out


# --------------------------------------------------------------------------------------------
# ground truth
# --------------------------------------------------------------------------------------------
class Truth:
    """The simulator's ground truth: true interests, click and watch models, next-watch distribution.

    ``watch_users``, ``watch_videos``, ``watch_times`` (m,) are the log's watches (clicked impressions);
    they give each user's state (last watch, watched set) at any time.
    """

    def __init__(self, world: World, watch_users: np.ndarray, watch_videos: np.ndarray,
                 watch_times: np.ndarray) -> None:
        self.world = world
        self.cfg = world.cfg
        order = np.lexsort((watch_times, watch_users))
        self._wu = np.asarray(watch_users, np.int64)[order]
        self._wv = np.asarray(watch_videos, np.int64)[order]
        self._wt = np.asarray(watch_times, np.float64)[order]
        self._start = np.searchsorted(self._wu, np.arange(world.n_users + 1))
        self._times_u = np.unique(self._wt)
        self._m = np.int64(self._times_u.size + 1)
        self._keys = self._wu * self._m + np.searchsorted(self._times_u, self._wt)

    @property
    def user_interests(self) -> np.ndarray:
        """True interests over topics (mid-log if they drift), (n_users, n_topics) float32, rows sum to 1."""
        return self.world.interest

    def interests_at(self, user_ids, times) -> np.ndarray:
        """True interests of each user at each time, (n, n_topics) float32 (differs only with drift)."""
        u, t = self._check(user_ids, times)
        return self.world.interests_at(u, t)

    @property
    def n_videos(self) -> int:
        return self.world.n_videos

    def _check(self, user_ids, times, video_ids=None):
        u = np.asarray(user_ids, dtype=np.int64).reshape(-1)
        t = np.asarray(times, dtype=np.float64).reshape(-1)
        if u.shape != t.shape:
            raise ValueError(f"user_ids and times must have the same length, got {u.size} and {t.size}")
        if u.size and (u.min() < 0 or u.max() >= self.world.n_users):
            raise KeyError(f"user ids must be in [0, {self.world.n_users}); got {u.min()}..{u.max()}")
        if not np.all(np.isfinite(t)):
            raise ValueError("times must be finite (days since the start of the log)")
        if video_ids is not None:
            v = np.asarray(video_ids, dtype=np.int64).reshape(-1)
            if v.shape != u.shape:
                raise ValueError(f"video_ids must have one entry per user id: {v.size} != {u.size}")
            if v.size and (v.min() < 0 or v.max() >= self.world.n_videos):
                raise KeyError(f"video ids must be in [0, {self.world.n_videos}); got {v.min()}..{v.max()}")
            return u, t, v
        return u, t

    def n_watches_before(self, user_ids: np.ndarray, times: np.ndarray) -> np.ndarray:
        """How many watches each user made strictly before each time. (n,) int64."""
        u, t = self._check(user_ids, times)
        # exact: compare ranks among the distinct watch times, keyed by user (no float offsets)
        lo = self._start[u]
        q = u * self._m + np.searchsorted(self._times_u, t, side="left")
        return np.searchsorted(self._keys, q, side="left") - lo

    def last_watch(self, user_ids: np.ndarray, times: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The last watch strictly before each time: ``(video (n,) int64 or -1, time (n,) float64)``."""
        u, t = self._check(user_ids, times)
        k = self.n_watches_before(u, t)
        idx = self._start[u] + k - 1
        has = k > 0
        idx = np.where(has, idx, 0)
        if self._wv.size == 0:
            return np.full(u.size, -1, np.int64), np.zeros(u.size)
        return np.where(has, self._wv[idx], -1), np.where(has, self._wt[idx], 0.0)

    def click_probability(self, user_ids, video_ids, times, positions=None,
                          source: str = "home") -> np.ndarray:
        """True probability of a click on an impression. ``positions=None``: the video is examined."""
        u, t, v = self._check(user_ids, times, video_ids)
        search = source == "search"
        lv, lt = self.last_watch(u, t)
        p = _sigmoid(click_logit(self.world, u, v, t, lv, lt, search))
        if positions is not None:
            p = p * examination(self.cfg, np.asarray(positions).reshape(-1), search)
        watched = self._watched_mask_pairs(u, t, v)
        return np.where(watched, p * self.cfg.rewatch_factor, p).astype(np.float32)

    def expected_watch_time(self, user_ids, video_ids, times, positions=None,
                            source: str = "home") -> np.ndarray:
        """True expected watch time (s) of an impression = P(click) * duration * mean fraction. (n,) float32.

        ``positions=None`` means the video is examined (no position bias).
        """
        u, t, v = self._check(user_ids, times, video_ids)
        lv, lt = self.last_watch(u, t)
        p = self.click_probability(u, v, t, positions, source)
        frac = watch_fraction_mean(self.world, u, v, t, lv, lt)
        return (p * frac * self.world.v_duration[v]).astype(np.float32)

    def _watched_mask_pairs(self, u: np.ndarray, t: np.ndarray, v: np.ndarray) -> np.ndarray:
        k = self.n_watches_before(u, t)
        rows = np.repeat(np.arange(u.size), k)
        idx = np.repeat(self._start[u], k) + (np.arange(k.sum()) - np.repeat(np.cumsum(k) - k, k))
        hit = np.zeros(u.size, bool)
        match = self._wv[idx] == v[rows]
        hit[rows[match]] = True
        return hit

    def next_watch_probs(self, user_ids, times, *, batch_size: int | None = None) -> np.ndarray:
        """The true distribution of each user's next watch at each time, (n, n_videos) float32.

        It is the expected number of clicks on every video in the user's next session, normalised:
        home feed (logging policy x click model) and search (intent topic x results x click model)
        mixed by how often each happens, with the momentum of the last watch before ``times`` and
        already watched videos scaled by ``rewatch_factor``.
        """
        u, t = self._check(user_ids, times)
        V = self.world.n_videos
        bs = batch_size or max(1, int(2e7 // max(V, 1)))
        out = np.empty((u.size, V), np.float32)
        for s in range(0, u.size, bs):
            out[s:s + bs] = self._next_watch_block(u[s:s + bs], t[s:s + bs])
        return out

    def _next_watch_block(self, u: np.ndarray, t: np.ndarray) -> np.ndarray:
        w, c = self.world, self.cfg
        V = w.n_videos
        n = u.size
        lv, lt = self.last_watch(u, t)
        vid = np.arange(V)[None, :]
        days = np.clip(np.floor(t).astype(np.int64), 0, c.n_days - 1)
        out = np.zeros((n, V), np.float64)
        e_home = examination(c, np.arange(c.feed_size)).astype(np.float64)
        e_search = examination(c, np.arange(c.search_results), True).astype(np.float64)
        for d in np.unique(days):
            rows = np.nonzero(days == d)[0]
            pop = popularity(w, int(d))
            tu = w.v_topic.astype(np.int64)
            z_g = pop.sum()
            z_l = np.bincount(w.v_language, weights=pop, minlength=c.n_languages)
            z_t = np.bincount(tu, weights=pop, minlength=c.n_topics)
            spop = pop ** c.search_pop_power
            z_s = np.bincount(tu, weights=spop, minlength=c.n_topics)
            uu, tt = u[rows][:, None], t[rows][:, None]
            lvv, ltt = lv[rows][:, None], lt[rows][:, None]
            mix = c.policy_mix
            q = (mix[0] * pop / max(z_g, 1e-300)
                 + mix[1] * (w.u_language[uu] == w.v_language[vid])
                 * (pop / np.maximum(z_l, 1e-300)[w.v_language])
                 + mix[2] * w.personaliser[uu, tu[None, :]] * (pop / np.maximum(z_t, 1e-300)[tu]))
            z = click_logit(w, uu, vid, tt, lvv, ltt, False).astype(np.float64)
            ch, cs = _sigmoid(z), _sigmoid(z + c.w_search_intent)
            # up next: slot 0 shows the next episode with probability p_up_next when it is out
            nxt = np.where(lvv >= 0, w.v_next_episode[np.maximum(lvv, 0)], -1)
            has_next = (nxt >= 0) & (w.v_upload[np.maximum(nxt, 0)] < d)
            p_up = c.p_up_next * has_next
            home = ch * (q * (e_home.sum() - p_up * e_home[0]) + p_up * e_home[0] * (vid == nxt))
            decay = np.where(lvv >= 0, np.exp(-np.maximum(tt - ltt, 0.0) / c.momentum_days), 0.0)
            m = P_SEARCH_MOMENTUM * decay
            same = w.v_topic[np.maximum(lvv, 0)] == tu[None, :]
            interest_now = w.interests_at(u[rows], t[rows])                       # (n_d, T)
            p_topic = (1 - m) * interest_now[:, tu] + m * same
            search = cs * e_search.sum() * p_topic * (spop / np.maximum(z_s, 1e-300)[tu])
            out[rows] = (1 - c.p_search) * home + c.p_search * search
        if c.rewatch_factor < 1.0:
            k = self.n_watches_before(u, t)
            r = np.repeat(np.arange(n), k)
            idx = np.repeat(self._start[u], k) + (np.arange(k.sum()) - np.repeat(np.cumsum(k) - k, k))
            out[r, self._wv[idx]] *= c.rewatch_factor
        tot = out.sum(axis=1, keepdims=True)
        out = np.where(tot > 0, out / np.where(tot > 0, tot, 1.0), 1.0 / V)
        return out.astype(np.float32)
