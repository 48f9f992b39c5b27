"""Training of the fingerprint encoder: augmentation (:mod:`~chadml.training.augment`), the training set and
its batches (:mod:`~chadml.training.sampler`), NT-Xent training (:mod:`~chadml.training.train`) and fragment
retrieval, its measure (:mod:`~chadml.training.retrieval`).

Example
-------
>>> from chadml.training import TrainConfig, train
>>> TrainConfig().batch_size
32
"""
from .augment import Augment
from .retrieval import fragment_retrieval, pearson_matrix, rank_metrics
from .sampler import FragmentBank, GroupBatchSampler, crop_window, select_split
from .train import *  # noqa: F401,F403
from .train import __all__ as _train_all

__all__ = list(_train_all) + ["Augment", "rank_metrics", "pearson_matrix", "crop_window", "select_split"]
