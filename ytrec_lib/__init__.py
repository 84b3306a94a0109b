"""ytrec_lib: the tested package under the ytrec notebooks (YouTube DNN recommender, RecSys 2016)."""

__version__ = "0.1.0"
