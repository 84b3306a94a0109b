"""Settings of the simulated UGC world (:class:`SimConfig`) and the named presets.

A preset is a set of sizes (users, videos, days); the behavioural constants are shared, so
the effects the notebooks teach are the same at every size. ``style="studio"`` turns the same
generator into a studio-style catalogue (few producers, strong head) for the head-effect
comparison of notebook 01.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

PRESET_SIZES: dict[str, dict[str, int | float]] = {
    # unit tests: generates in well under two seconds
    "tiny": dict(n_users=300, n_videos=600, n_creators=80, n_topics=12, n_categories=4, n_days=14,
                 n_regions=6, n_languages=3),
    # the default of `make run` and `make test`: the smallest world where every lesson of the paper holds
    # over 3 seeds (each notebook a few minutes on 2 cores)
    "ci": dict(n_users=2000, n_videos=3000, n_creators=400, n_topics=40, n_categories=8, n_days=40),
    # a bigger world for a classroom machine (`make run PRESET=small`)
    "small": dict(n_users=20000, n_videos=50000, n_creators=6000, n_topics=100, n_categories=12,
                  n_days=60),
    # classroom machines and the million-item scale studies
    "large": dict(n_users=60000, n_videos=1_000_000, n_creators=120_000, n_topics=400, n_categories=20,
                  n_days=30, sessions_per_day=0.5),
}

STYLES = ("ugc", "studio")

# Every preset's world carries the mechanisms the paper's lessons need, at strengths notebook 01 measures
# (SimConfig's defaults: freshness 3, interests progressing round the topic ring in a direction set by
# gender). PLAIN_WORLD is the same world with those three switches at their mild values -- fresh videos
# only slightly favoured, interests standing still -- the reference notebook 01 sets each strength beside.
# MECHANISM_OFF names, for each lesson's ablation, the overrides that switch off every property of the
# world the lesson's effect can come from (the rest unchanged):
# * freshness (Fig. 4): a video's age plays no part in clicks;
# * sequences (§3.4): no order in time at all -- no drift round the topic ring, no series or up-next, no
#   momentum from the last watch, no freshness (the next watch is newer than the history). Measured at ci
#   over 3 seeds, switching any one of these off leaves next-watch labels ahead of held-out ones;
# * interactions (Fig. 6): the two products of inputs a ReLU tower can learn and a linear model of them
#   cannot -- history x gender (the drift's direction) and example age x upload time (freshness: whether
#   a video is wanted depends on when the example happened). Measured the same way, switching only the
#   gender product off leaves depth 3 ahead of depth 0.
PLAIN_WORLD: dict[str, float | bool] = dict(freshness=1.0, interest_progression=0.0,
                                            progression_by_gender=False)
MECHANISM_OFF: dict[str, dict[str, float | bool]] = {
    "freshness": dict(freshness=0.0),
    "sequences": dict(interest_progression=0.0, progression_by_gender=False, w_series=0.0, p_up_next=0.0,
                      w_topic_momentum=0.0, w_creator_momentum=0.0, freshness=0.0),
    "interactions": dict(progression_by_gender=False, freshness=0.0),
}


@dataclass(frozen=True)
class SimConfig:
    """Every setting of the simulator. Sizes are per preset; the rest are the world's constants.

    Times are in days. Weights (``w_*``) are on the logit scale of the click model, ``f_*`` on the
    logit of the watched fraction of a video.
    """

    # ---- sizes ----
    n_users: int = 3000
    n_videos: int = 6000            # catalogue at the end of the log (back catalogue + new uploads)
    n_creators: int = 800
    n_topics: int = 40
    n_categories: int = 8
    n_regions: int = 12
    n_languages: int = 4
    n_days: int = 40                # length of the log
    # ---- catalogue ----
    back_catalogue_frac: float = 0.5    # share of videos uploaded before day 0
    back_catalogue_days: float = 180.0
    creator_fame_sd: float = 0.5        # log-scale spread of creator fame
    creator_rate_sd: float = 1.0        # log-scale spread of creators' upload rates
    buzz_sd: float = 0.5                # video-level log-scale spread of popularity around fame
    quality_sd: float = 1.0
    p_main_topic: float = 0.8           # a creator's video is in its main topic, else same category
    series_creator_frac: float = 0.3    # creators that upload numbered series
    mean_series_len: float = 5.0
    tokens_per_topic: int = 12
    tokens_per_category: int = 8
    n_general_tokens: int = 20
    # ---- users ----
    activity_sd: float = 1.0            # log-normal activity level (mean 1)
    demo_sd: float = 1.5                # strength of demographics (region, age, gender) on interests
    personal_sd: float = 1.3            # strength of the user's own taste on interests
    interest_temp: float = 1.4          # interests = softmax(temp * affinity)
    interest_drift: float = 0.0         # interests drift: affinity += drift * N(0, 1) * (phase of the log)
    # interests progress along the topic ring over the log: a user's interest in topic j moves towards
    # what they felt for topic j - 1 (a shared direction of time, an asymmetric sequence); 0: none, as in
    # PLAIN_WORLD
    interest_progression: float = 4.0
    # the progression runs one way round the ring for gender 1 (towards topic j - 1) and the other way for
    # gender 0 (towards j + 1), so the next topic is a product of the history and the gender; False: one way
    progression_by_gender: bool = True
    # share of the demographic effect on interests that depends on gender x (region, age) jointly, so
    # no sum of a region, an age and a gender term expresses it; 0: additive (as before)
    demo_interaction: float = 0.0
    # ---- sessions ----
    sessions_per_day: float = 0.3       # mean sessions a day for a user of activity 1
    max_sessions_per_day: int = 6
    p_search: float = 0.25              # share of sessions that are searches
    feed_size: int = 8                  # home-feed impressions per session
    search_results: int = 8             # results shown per search
    # ---- logging policy (home feed) ----
    # home-feed slot sources: global popular, popular in the user's language, weak personaliser
    policy_mix: tuple[float, float, float] = (0.45, 0.2, 0.35)
    pop_decay_days: float = 3.0         # popularity the platform sees decays as (1 + age / tau) ** -gamma
    pop_decay_power: float = 0.8
    personaliser_noise: float = 1.0     # the weak earlier personaliser's error on interests
    p_up_next: float = 0.6              # slot 0 continues the last watched series, when there is one
    search_pop_power: float = 0.5       # search results within the intent topic ~ popularity ** power
    # ---- true click model ----
    c0: float = -1.4
    w_interest: float = 0.8             # times log(n_topics * interest)
    w_quality: float = 0.5
    w_clickbait: float = 1.0
    w_fresh: float = 1.0                # times exp(-age / fresh_days)
    fresh_days: float = 5.0
    # scales w_fresh and pop_decay_power; 0: a video's age plays no part; 1: mild (PLAIN_WORLD)
    freshness: float = 3.0
    w_topic_momentum: float = 1.5       # same topic as the last watch (decays with time since it)
    w_creator_momentum: float = 0.5
    w_series: float = 3.5               # the next episode of the last watched video
    momentum_days: float = 1.0
    w_language: float = 1.5             # penalty when the video's language is not the user's
    w_duration: float = 0.5             # short videos get more clicks: - w * log(duration / 300 s)
    w_search_intent: float = 1.0        # a searching user clicks more readily
    rewatch_factor: float = 0.0         # click probability multiplier for an already watched video
    position_decay: float = 0.7         # examination probability (1 + position) ** -decay (home)
    search_position_decay: float = 1.0
    # ---- true watch model (fraction of the duration watched) ----
    f0: float = -0.2
    f_interest: float = 0.5
    f_quality: float = 0.8
    f_clickbait: float = -0.8           # clickbait lowers satisfaction
    f_momentum: float = 0.3
    watch_concentration: float = 4.0    # Beta(k m, k (1 - m)) around the mean fraction m
    style: str = "ugc"
    extra: dict = field(default_factory=dict, compare=False, repr=False)

    def __post_init__(self) -> None:
        validate(self)

    def replace(self, **changes) -> SimConfig:
        """A copy with some settings changed (validated again)."""
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict:
        """JSON-able settings (for the cache manifest)."""
        d = dataclasses.asdict(self)
        d.pop("extra")
        d["policy_mix"] = list(d["policy_mix"])
        return d


_POSITIVE_INTS = ("n_users", "n_videos", "n_creators", "n_topics", "n_categories", "n_regions",
                  "n_languages", "n_days", "max_sessions_per_day", "feed_size", "search_results",
                  "tokens_per_topic", "tokens_per_category", "n_general_tokens")
_FRACTIONS = ("back_catalogue_frac", "p_main_topic", "series_creator_frac", "p_search", "p_up_next",
              "rewatch_factor")
_POSITIVE_FLOATS = ("back_catalogue_days", "sessions_per_day", "pop_decay_days", "fresh_days",
                    "momentum_days", "interest_temp", "watch_concentration", "mean_series_len")


def validate(cfg: SimConfig) -> None:
    """Raise ``ValueError`` with a one-line message for any impossible or inconsistent setting."""
    for name in _POSITIVE_INTS:
        v = getattr(cfg, name)
        if not isinstance(v, int) or isinstance(v, bool) or v <= 0:
            raise ValueError(f"SimConfig.{name} must be a positive integer, got {v!r}")
    for name in _FRACTIONS:
        v = getattr(cfg, name)
        if not 0.0 <= v <= 1.0:
            raise ValueError(f"SimConfig.{name} must be in [0, 1], got {v!r}")
    for name in _POSITIVE_FLOATS:
        v = getattr(cfg, name)
        if not v > 0:
            raise ValueError(f"SimConfig.{name} must be > 0, got {v!r}")
    if cfg.n_topics > cfg.n_videos:
        raise ValueError(f"more topics ({cfg.n_topics}) than videos ({cfg.n_videos}): "
                         "lower n_topics or raise n_videos")
    if cfg.n_categories > cfg.n_topics:
        raise ValueError(f"more categories ({cfg.n_categories}) than topics ({cfg.n_topics}): "
                         "lower n_categories")
    if cfg.n_creators > cfg.n_videos:
        raise ValueError(f"more creators ({cfg.n_creators}) than videos ({cfg.n_videos}): "
                         "lower n_creators")
    if cfg.n_languages > cfg.n_regions:
        raise ValueError(f"more languages ({cfg.n_languages}) than regions ({cfg.n_regions}): "
                         "every language needs a region")
    mix = cfg.policy_mix
    if len(mix) != 3 or min(mix) < 0 or abs(sum(mix) - 1.0) > 1e-6:
        raise ValueError(f"SimConfig.policy_mix must be three non-negative weights summing to 1, got {mix!r}")
    for name in ("interest_drift", "interest_progression", "freshness"):
        if not getattr(cfg, name) >= 0:
            raise ValueError(f"SimConfig.{name} must be >= 0, got {getattr(cfg, name)!r}")
    if not isinstance(cfg.progression_by_gender, bool):
        raise ValueError(f"SimConfig.progression_by_gender must be True or False, got {cfg.progression_by_gender!r}")
    if cfg.progression_by_gender and cfg.interest_progression == 0:
        raise ValueError("SimConfig.progression_by_gender needs interest_progression > 0 (it sets the "
                         "direction of a progression that is off); set interest_progression, e.g. 2.0")
    if not 0.0 <= cfg.demo_interaction <= 1.0:
        raise ValueError(f"SimConfig.demo_interaction must be in [0, 1], got {cfg.demo_interaction!r}")
    if cfg.style not in STYLES:
        raise ValueError(f"SimConfig.style must be one of {STYLES}, got {cfg.style!r}")


def studio_overrides(cfg: SimConfig) -> dict:
    """Settings that turn a UGC world into a studio-style one: few producers, strong head."""
    return dict(
        n_creators=max(1, min(cfg.n_videos, cfg.n_creators // 25)),
        creator_fame_sd=1.2,
        creator_rate_sd=0.3,
        buzz_sd=1.3,
        quality_sd=1.5,
        back_catalogue_frac=0.8,
        style="studio",
    )


def known_presets() -> list[str]:
    """Names of the simulator presets, smallest first."""
    return list(PRESET_SIZES)


def preset_config(name: str, style: str = "ugc", **overrides) -> SimConfig:
    """The :class:`SimConfig` of a named preset, in ``style`` ``"ugc"`` or ``"studio"``."""
    if name not in PRESET_SIZES:
        raise ValueError(f"unknown preset {name!r}; known presets: {', '.join(known_presets())}")
    if style not in STYLES:
        raise ValueError(f"unknown style {style!r}; use one of {', '.join(STYLES)}")
    cfg = SimConfig(**{**PRESET_SIZES[name], **overrides})
    if style == "studio":
        cfg = cfg.replace(**studio_overrides(cfg))
    return cfg
