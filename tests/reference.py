"""Plain numpy references of every chadsp kernel: slow, short, and obviously right.

Every fast kernel is tested against the function of the same name here (stumpy's ``naive.py`` model).
Sections follow DESIGN.md section 2.
"""
from __future__ import annotations

import numpy as np

# ============================== silence ==============================


# ============================== end silence ==============================



# ============================== correlation ==============================


# ============================== end correlation ==============================



# ============================== dtw ==============================


# ============================== end dtw ==============================
