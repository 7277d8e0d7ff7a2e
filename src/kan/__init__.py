"""kan: a fast Kolmogorov-Arnold Network library and the shared KAN/MLP trainer."""

from kan.layers import KANLayer
from kan.models import KAN, MLP, load_model

__version__ = "0.1.0"
__all__ = ["KAN", "KANLayer", "MLP", "load_model", "__version__"]
