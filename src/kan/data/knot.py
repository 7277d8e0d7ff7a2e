"""Knot signature from 17 hyperbolic invariants (paper §4.3, DeepMind's Davies et al. 2021).

Two tasks, both classification of the (even) signature:

- ``deepmind``: DeepMind's CSV layout, read from a user-supplied path (a folder with
  ``train.csv``/``test.csv``, kept as the split, or one CSV, split at random), or from the
  folder the workflow downloads DeepMind's full table into (:mod:`kan.data.knot_download`;
  when the download failed: ``offline_path``, else the shipped SnapPy table, named in meta).
- ``snappy``: the table computed with SnapPy by ``kan.data.knot_snappy`` (shipped in
  ``datasets/knot/``), split by knot, optionally with the mirror image of every knot added.

Frames hold an id column (``row`` / ``name``), the 17 inputs, ``signature``,
``signature_class`` (the training target: index into ``meta["classes"]``, the even
signatures from the smallest to the largest seen) and ``split``: the last ``meta
["validation"]["n_rows"]`` rows of train have split "val" (for DeepMind-style early
stopping), the others "train"; test rows have "test".

Duplicate policy (``dedup``, default on): drop every train row that exactly equals a test
row, then every train-part row that exactly equals a validation row (DeepMind sampled
diagrams with replacement, so the same (knot, chirality) appears in several splits);
duplicates inside a split stay. ``dedup: false`` keeps the paper's undeduplicated setup.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from kan.data.io import GeneratedData
from kan.data.knot_download import DOWNLOAD_DIR, is_download, verified_table
from kan.data.knot_snappy import INPUT_COLUMNS, TARGET
from kan.data.knot_table import read_knot_csv
from kan.data.spec import lookup_task, make_rng, merge_spec
from kan.files import sha256_file

log = logging.getLogger(__name__)
FAMILY = "knot"
REPO_ROOT = Path(__file__).resolve().parents[3]
CLASS_COLUMN = "signature_class"
MIRROR_NEGATED = (  # invariants that change sign under mirroring (orientation reversal)
    "chern_simons", "meridinal_translation_real", "short_geodesic_imag_part", TARGET,
)


@dataclass(frozen=True)
class Task:
    """A knot data source: its id column, defaults and a description for meta."""

    id_column: str
    defaults: Mapping[str, Any]
    description: str


TASKS: dict[str, Task] = {
    "deepmind": Task(
        "row",
        {"path": "../shared/data/knot_deepmind_subset", "offline_path": "../shared/data/knot_deepmind_subset",
         "dedup": True, "val_fraction": 0.125, "test_fraction": 0.25},
        "DeepMind knot invariants (Davies et al. 2021, CC BY 4.0) read from 'path': a folder "
        "with train.csv/test.csv (kept as the split) or one CSV (split at random, "
        "test_fraction), or the download folder of DeepMind's full table (falling back to "
        "'offline_path', else the SnapPy table, when the download failed); first unnamed column = "
        "row index in DeepMind's full file",
    ),
    "snappy": Task(
        "name",
        {"path": "datasets/knot/knots.csv.gz", "dedup": True, "mirror": True,
         "val_fraction": 0.125, "test_fraction": 0.25},
        "invariants of Hoste-Thistlethwaite knots computed with SnapPy "
        "(kan.data.knot_snappy; see datasets/knot/README.md), split by knot "
        "(test_fraction); with 'mirror' every knot also enters as its mirror image",
    ),
}


def resolve(path: str) -> Path:
    """A spec path: absolute; the download folder (``DOWNLOAD_DIR``), relative to the working
    directory the workflow writes its data in; any other, relative to the repository root."""
    if Path(path).is_absolute():
        return Path(path)
    return (Path.cwd() if path == DOWNLOAD_DIR else REPO_ROOT).joinpath(path).resolve()


def available_task(name: str, path: str | None, fallback: str | None) -> str:
    """The knot task to generate: ``name``, or ``fallback`` when ``name`` is ``deepmind`` and
    its data (``path``; None: the task's default) are missing. None: never fall back."""
    if name != "deepmind" or fallback is None:
        return name
    found = resolve(path or TASKS[name].defaults["path"])
    if found.exists():
        return name
    log.warning("DeepMind knot data not found at %s; using the %s table instead", found, fallback)
    return fallback


def drop_matches(frame: pd.DataFrame, reference: pd.DataFrame) -> pd.DataFrame:
    """Rows of ``frame`` whose inputs and signature equal no row of ``reference``."""
    key = [*INPUT_COLUMNS, TARGET]
    seen = set(reference[key].itertuples(index=False, name=None))
    keep = [row not in seen for row in frame[key].itertuples(index=False, name=None)]
    return frame[np.array(keep, dtype=bool)]


def mirrored(frame: pd.DataFrame) -> pd.DataFrame:
    """The mirror images of the knots in ``frame`` (ids get the suffix ``*``)."""
    out = frame.copy()
    for column in MIRROR_NEGATED:
        out[column] = -out[column]
    out["name"] = out["name"] + "*"
    return out


def generate(name: str, spec: dict | None, seed: int) -> GeneratedData:
    """Load task ``name``, split it (train/val/test) and attach the class mapping."""
    task = lookup_task(TASKS, name, family=FAMILY)
    where = f"{FAMILY}/{name}"
    spec = merge_spec(task.defaults, spec, where=where)
    for key in ("val_fraction", "test_fraction"):
        if not 0.0 <= spec[key] < 1.0:
            raise ValueError(f"'{key}' in spec for {where} must be in [0, 1), got {spec[key]}")
    rng = make_rng(seed)
    path = resolve(spec["path"])
    if name == "deepmind":
        train, test, files, source = _deepmind_source(path, spec, rng)
    else:
        train, test, files = _snappy_splits(path, spec, rng)
        source = ("SnapPy-computed table of small (<= 12 crossing) knots instead of DeepMind's random diagrams; "
                  "torsion degrees approximated without Sage (see table meta)")
    counts = {"train_rows_read": len(train), "test_rows": len(test)}
    if spec["dedup"]:
        train = drop_matches(train, test)
        counts["dropped_train_equal_to_test"] = counts["train_rows_read"] - len(train)
    order = rng.permutation(len(train))
    n_val = int(round(spec["val_fraction"] * len(train)))
    fit, val = train.iloc[order[: len(train) - n_val]], train.iloc[order[len(train) - n_val :]]
    if spec["dedup"]:
        kept = drop_matches(fit, val)
        counts["dropped_train_equal_to_val"] = len(fit) - len(kept)
        fit = kept
    train = pd.concat([fit.assign(split="train"), val.assign(split="val")], ignore_index=True)
    test = test.reset_index(drop=True).assign(split="test")
    classes = _classes(pd.concat([train[TARGET], test[TARGET]]))
    train, test = (_with_class(f, classes) for f in (train, test))
    return GeneratedData(train, test, _meta(name, task, spec, seed, train, test, classes,
                                            files, counts, path, source))


def _deepmind_source(
    path: Path, spec: Mapping[str, Any], rng: np.random.Generator
) -> tuple[pd.DataFrame, pd.DataFrame, list[dict[str, str]], str]:
    """Train and test rows, file records and where the rows came from (for meta's deviations):
    a download folder's table, its offline fallbacks, or a user-supplied folder or CSV."""
    if not is_download(path):
        train, test, files = _deepmind_splits(path, spec, rng)
        subset = "knot_deepmind_subset" in str(path)
        return train, test, files, ("the 15k-row public subset, not DeepMind's full 243.7k-row file" if subset
                                    else "user-supplied DeepMind-format CSV")
    table, record = verified_table(path)
    if table is not None:
        train, test, files = _deepmind_splits(table, spec, rng)
        return train, test, files, f"DeepMind's full table, downloaded from {record['url']} ({record['rows']} rows)"
    why = f"offline fallback: DeepMind's table could not be downloaded from {record['url']} ({record['reason']})"
    local = resolve(spec["offline_path"])
    if local.exists():
        train, test, files = _deepmind_splits(local, spec, rng)
        return train, test, files, f"{why}; read {spec['offline_path']} instead"
    snappy = TASKS["snappy"].defaults
    train, test, files = _snappy_splits(resolve(snappy["path"]), {**snappy, **spec, "mirror": snappy["mirror"]}, rng)
    train, test = (f.rename(columns={"name": "row"}) for f in (train, test))
    return train, test, files, (f"{why}; no table at {spec['offline_path']} either, so the shipped SnapPy table "
                                "(small knots, not DeepMind's data)")


def _deepmind_splits(
    path: Path, spec: Mapping[str, Any], rng: np.random.Generator
) -> tuple[pd.DataFrame, pd.DataFrame, list[dict[str, str]]]:
    if path.is_dir():
        files = [path / "train.csv", path / "test.csv"]
        train, test = (read_knot_csv(f, "row") for f in files)
    elif path.is_file():
        files = [path]
        frame = read_knot_csv(path, "row")
        order = rng.permutation(len(frame))
        n_test = int(round(spec["test_fraction"] * len(frame)))
        train, test = frame.iloc[np.sort(order[n_test:])], frame.iloc[np.sort(order[:n_test])]
    else:
        raise ValueError(f"knot/deepmind: no CSV folder or file at {path} (spec key 'path')")
    return train, test, [_file_info(f) for f in files]


def _snappy_splits(
    path: Path, spec: Mapping[str, Any], rng: np.random.Generator
) -> tuple[pd.DataFrame, pd.DataFrame, list[dict[str, str]]]:
    if not path.is_file():
        raise ValueError(f"knot/snappy: no table at {path} (spec key 'path')")
    frame = read_knot_csv(path, "name")
    names = frame["name"].unique()
    test_names = set(rng.permutation(names)[: int(round(spec["test_fraction"] * len(names)))])
    in_test = frame["name"].isin(test_names).to_numpy()
    train, test = frame[~in_test], frame[in_test]
    if spec["mirror"]:
        train, test = (pd.concat([f, mirrored(f)], ignore_index=True) for f in (train, test))
    return train, test, [_file_info(path)]


def _file_info(path: Path) -> dict[str, str]:
    return {"file": path.name, "sha256": sha256_file(path)}


def _classes(signatures: pd.Series) -> list[int]:
    return list(range(int(signatures.min()), int(signatures.max()) + 1, 2))


def _with_class(frame: pd.DataFrame, classes: list[int]) -> pd.DataFrame:
    return frame.assign(**{CLASS_COLUMN: (frame[TARGET] - classes[0]) // 2})


def _meta(
    name: str, task: Task, spec: dict[str, Any], seed: int, train: pd.DataFrame,
    test: pd.DataFrame, classes: list[int], files: list[dict[str, str]],
    counts: dict[str, int], path: Path, source: str,
) -> dict[str, Any]:
    both = pd.concat([train, test])
    meta: dict[str, Any] = {
        "family": FAMILY,
        "name": name,
        "generator": task.description,
        "inputs": list(INPUT_COLUMNS),
        "targets": [CLASS_COLUMN],
        "task": "classification",
        "n_classes": len(classes),
        "classes": classes,
        "class_of_signature": f"{CLASS_COLUMN} = (signature - {classes[0]}) / 2",
        "ranges": {c: [float(both[c].min()), float(both[c].max())] for c in INPUT_COLUMNS},
        "n_train": len(train),
        "n_test": len(test),
        "seed": seed,
        "spec": spec,
        "files": files,
        "dedup": {
            "enabled": spec["dedup"],
            "policy": "drop train rows equal (17 inputs + signature) to a test row, then "
            "train-part rows equal to a validation row; duplicates within a split are kept"
            if spec["dedup"] else "none (paper setup: duplicates cross the splits)",
            **counts,
        },
        "validation": {
            "n_rows": int((train["split"] == "val").sum()),
            "rows": "train rows with split == 'val' (the last ones); fit on split == 'train'",
        },
        "deviations": [
            "target column is signature_class (index into classes), signature kept as a column",
            source,
        ],
    }
    if name == "snappy":
        table_meta = path.parent / "meta.json"
        if table_meta.is_file():
            meta["table"] = json.loads(table_meta.read_text(encoding="utf-8"))
    return meta
