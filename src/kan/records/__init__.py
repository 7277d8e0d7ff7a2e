"""The records on disk, the bottom layer beside the library: run folders (``runfiles``), their ids
(``ids``) and provenance (``provenance``), science experiment outputs (``science_outputs``), the
aggregate tables (``aggregate``), shards (``shards``), published records (``publish``) and the
Markdown cell formats they share (``markdown``). Records import nothing else of ``kan``: the
layers above (experiments, science, reporting, pipeline) write and read them through here."""
