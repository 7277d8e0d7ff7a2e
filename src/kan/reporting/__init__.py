"""Reports from the aggregate tables: figures (``figures``), Markdown/CSV tables (``tables``)
and the comparison with the paper's numbers (``compare``, ``reference``)."""

from kan.reporting.runs import load_histories, load_runs, usable_runs

__all__ = ["load_histories", "load_runs", "usable_runs"]
