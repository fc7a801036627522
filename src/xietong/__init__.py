"""Xietong (协同): a regional collaborative care platform."""

__version__ = "0.1.0"
