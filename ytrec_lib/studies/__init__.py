"""Studies: the experiment code notebooks drive (ANN benchmark, negative-sampling study, softmax step
timing)."""
