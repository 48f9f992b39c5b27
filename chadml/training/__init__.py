"""Training of the fingerprint encoder: augmentation, the group sampler, NT-Xent training."""
from .train import *  # noqa: F401,F403
