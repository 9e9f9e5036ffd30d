"""edgebench: how AI models really behave on edge hardware."""

from __future__ import annotations

__version__ = "0.1.0"
