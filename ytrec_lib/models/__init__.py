"""Models: pure functions of arrays and configs (item2vec, candidate, ranking, sampling, baselines)."""
