"""skelrobust: adversarial robustness of skeleton-based human action recognition."""

from skelrobust.errors import SkelRobustError
from skelrobust.skeleton import Skeleton, get_skeleton, list_skeletons

__version__ = "0.1.0"

__all__ = ["SkelRobustError", "Skeleton", "__version__", "get_skeleton", "list_skeletons"]
