"""Science experiments of the KAN paper as library functions: PDE solving (§3.4),
continual learning (§3.5) and unsupervised relation discovery (§4.2)."""
