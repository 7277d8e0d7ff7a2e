"""The paper's sweeps as data: sweep expansion (``sweep``), the pruned variant (``pruning``),
chunked training that writes run folders (``runner``) and how far published records are through
a profile's trainings (``progress``). Run folders and published records are formats of
:mod:`kan.records`; the workflow config and the jobs live in :mod:`kan.pipeline`."""
