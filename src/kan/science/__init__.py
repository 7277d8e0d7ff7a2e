"""Science experiments of the KAN paper as library functions: PDE solving (§3.4), continual
learning (§3.5), unsupervised relation discovery (§4.2), knot theory (§4.3) and mobility edges
(§4.4). :mod:`kan.science.registry` puts them behind one contract for the pipeline
(``run(name, settings, out_dir) -> summary``)."""
