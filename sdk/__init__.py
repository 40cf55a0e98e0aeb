"""SSEAUN Exchange SDK: the protocol core and the tools around it.

Everything public is re-exported here; ``sseaun.sdk.core`` holds the IO-free protocol core.
"""

from .core import *  # noqa: F403
from .core import __all__ as _core_all

__all__ = list(_core_all)
