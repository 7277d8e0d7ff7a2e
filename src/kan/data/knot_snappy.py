"""Knot invariants computed with SnapPy, in DeepMind's column layout (paper §4.3).

``knot_row(name)`` computes the 17 DeepMind inputs and the signature of one knot (any name
SnapPy accepts: ``4_1``, ``K13n100``, ...). ``generate_snappy_table`` runs it over many knots
in worker processes with a per-knot timeout (SnapPy's C code ignores SIGALRM, so a worker
that overruns is killed and replaced), appends results to chunk files in a work folder so
that a killed run resumes where it stopped, and records every skipped knot with a reason.

Without Sage (the default install) two columns are approximations: the torsion degrees are
4g-2 / 6g-3 from the Seifert genus of ``L.knot_floer_homology()``, and the signature is
-sign(V + V^T) of the Seifert matrix V (the latter is exact).
"""

from __future__ import annotations

import argparse
import json
import math
import multiprocessing as mp
import os
import time
from collections import deque
from collections.abc import Callable, Sequence
from fractions import Fraction
from multiprocessing.connection import Connection, wait
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

SYMMETRY_COLUMNS = {
    "0": "Symmetry_0",
    "D3": "Symmetry_D3",
    "D4": "Symmetry_D4",
    "D6": "Symmetry_D6",
    "D8": "Symmetry_D8",
    "Z/2 + Z/2": "Symmetry_Z/2 + Z/2",
}
INPUT_COLUMNS = [  # DeepMind's CSV order (alphabetical, case-insensitive)
    "chern_simons",
    "cusp_volume",
    "hyperbolic_adjoint_torsion_degree",
    "hyperbolic_torsion_degree",
    "injectivity_radius",
    "longitudinal_translation",
    "meridinal_translation_imag",
    "meridinal_translation_real",
    "short_geodesic_imag_part",
    "short_geodesic_real_part",
    *SYMMETRY_COLUMNS.values(),
    "volume",
]
INTEGER_COLUMNS = ("hyperbolic_adjoint_torsion_degree", "hyperbolic_torsion_degree")
TARGET = "signature"
TABLE_COLUMNS = ["name", *INPUT_COLUMNS, TARGET]
SKIP_COLUMNS = ["name", "reason"]
HYPERBOLIC = ("all tetrahedra positively oriented", "contains negatively oriented tetrahedra")
GEODESIC_RETRIANGULATIONS = 6  # per precision, for the Dirichlet domain
DIRICHLET_OPTIONS = [(eps, m) for eps in (1e-8, 1e-7, 1e-9, 1e-6) for m in (True, False)]


class KnotSkipped(Exception):
    """A knot that gets no row (non-hyperbolic, failed computation); message = reason."""


def have_sage() -> bool:
    """True if Sage is importable (exact torsion polynomials and ``L.signature()``)."""
    try:
        import sage.all  # noqa: F401  (deferred: Sage is optional)
    except ImportError:
        return False
    return True


def methods() -> dict[str, str]:
    """How the torsion-degree and signature columns are computed in this environment."""
    if have_sage():
        return {
            "torsion": "degree of M.hyperbolic_torsion() / M.hyperbolic_adjoint_torsion()",
            "signature": "L.signature() (Sage)",
        }
    return {
        "torsion": "approximation without Sage: 4g-2 / 6g-3, g = Seifert genus from "
        "L.knot_floer_homology()",
        "signature": "-sign(V + V^T), V = L.seifert_matrix() (exact, no Sage)",
    }


def seifert_signature(seifert: Sequence[Sequence[int]]) -> int:
    """Signature -sign(V + V^T) by exact symmetric Gaussian elimination over Q."""
    m = [[Fraction(a) + Fraction(b) for a, b in zip(row, col)] for row, col in
         zip(seifert, zip(*seifert))]  # V + V^T
    positive = negative = 0
    while m:
        pivot = next((i for i in range(len(m)) if m[i][i] != 0), None)
        if pivot is None:
            j = next((j for j in range(1, len(m)) if m[0][j] != 0), None)
            if j is None:  # zero row and column: a null direction
                m = [row[1:] for row in m[1:]]
                continue
            m[0] = [a + b for a, b in zip(m[0], m[j])]  # congruence: row/col 0 += row/col j
            for row in m:
                row[0] += row[j]
            pivot = 0
        p = m[pivot][pivot]
        positive, negative = positive + (p > 0), negative + (p < 0)
        rest = [i for i in range(len(m)) if i != pivot]
        m = [[m[i][j] - m[i][pivot] * m[pivot][j] / p for j in rest] for i in rest]
    return negative - positive


def knot_row(name: str) -> dict[str, Any]:
    """The DeepMind columns and the signature of knot ``name``; KnotSkipped if impossible."""
    import snappy  # deferred: only the table builder needs SnapPy, slow to import

    manifold = snappy.Manifold(name)
    if manifold.num_cusps() != 1:
        raise KnotSkipped(f"not a knot ({manifold.num_cusps()} cusps)")
    solution = manifold.solution_type()
    if solution not in HYPERBOLIC:
        raise KnotSkipped(f"not hyperbolic ({solution})")
    link = manifold.link()  # same chirality as the manifold
    hood = manifold.cusp_neighborhood()
    hood.set_displacement(hood.stopping_displacement(0), 0)  # maximal cusp
    mu, lam = (complex(x) for x in hood.translations(0))
    geodesic = short_geodesic(manifold)
    row: dict[str, Any] = {
        "name": name,
        "chern_simons": float(manifold.chern_simons()),
        "cusp_volume": lam.real * mu.imag,
        "injectivity_radius": min(geodesic.real / 2, math.asinh(abs(mu) / 2)),
        "longitudinal_translation": lam.real,
        "meridinal_translation_imag": mu.imag,
        "meridinal_translation_real": mu.real,
        "short_geodesic_imag_part": geodesic.imag,
        "short_geodesic_real_part": geodesic.real,
        "volume": float(manifold.volume()),
    }
    row.update(symmetry_flags(manifold))
    row.update(torsion_degrees(manifold, link))
    row[TARGET] = link_signature(link)
    return {column: row[column] for column in TABLE_COLUMNS}


def symmetry_flags(manifold: Any) -> dict[str, float]:
    """One-hot of the symmetry group over DeepMind's six groups (other/failed: zeros)."""
    try:
        group = str(manifold.symmetry_group())
    except (ValueError, RuntimeError):
        group = "?"
    return {col: float(group == key) for key, col in SYMMETRY_COLUMNS.items()}


def short_geodesic(manifold: Any) -> complex:
    """Complex length of the first entry of the length spectrum.

    SnapPy's Dirichlet-domain construction fails often, depending on the triangulation and
    its vertex epsilon, so double precision is tried over a few epsilons and random
    re-triangulations (cheap) before quad-double (``ManifoldHP``, much slower);
    KnotSkipped if all fail.
    """
    import snappy  # deferred: only the table builder needs SnapPy, slow to import

    for candidate in (manifold.copy(), snappy.ManifoldHP(manifold)):
        for _ in range(GEODESIC_RETRIANGULATIONS):
            for epsilon, maximize in DIRICHLET_OPTIONS:
                try:
                    domain = candidate.dirichlet_domain(
                        vertex_epsilon=epsilon, maximize_injectivity_radius=maximize
                    )
                except RuntimeError:
                    continue
                cutoff = 1.0
                while cutoff <= 8.0:
                    spectrum = domain.length_spectrum_dicts(cutoff)
                    if spectrum:
                        return complex(spectrum[0]["length"])
                    cutoff *= 2
            candidate.randomize()
    raise KnotSkipped("short geodesic failed (no Dirichlet domain)")


def torsion_degrees(manifold: Any, link: Any) -> dict[str, int]:
    """Degrees of the hyperbolic (adjoint) torsion; genus approximation without Sage."""
    if have_sage():
        return {
            "hyperbolic_torsion_degree": _degree_or_zero(manifold.hyperbolic_torsion),
            "hyperbolic_adjoint_torsion_degree": _degree_or_zero(
                manifold.hyperbolic_adjoint_torsion
            ),
        }
    genus = int(link.knot_floer_homology()["seifert_genus"])
    return {
        "hyperbolic_torsion_degree": 4 * genus - 2,
        "hyperbolic_adjoint_torsion_degree": 6 * genus - 3,
    }


def _degree_or_zero(torsion: Callable[[], Any]) -> int:
    try:
        return int(torsion().degree())
    except (ValueError, RuntimeError, ArithmeticError):
        return 0  # DeepMind's convention for a failed computation


def link_signature(link: Any) -> int:
    """Knot signature: ``L.signature()`` with Sage, else from the Seifert matrix."""
    if have_sage():
        return int(link.signature())
    return seifert_signature([[int(x) for x in row] for row in link.seifert_matrix()])


def ht_knot_names(
    n_knots: int, seed: int, min_crossings: int = 3, max_crossings: int = 14
) -> list[str]:
    """``n_knots`` distinct names drawn uniformly (seeded) from the Hoste-Thistlethwaite
    knot table ``HTLinkExteriors(num_cusps=1)`` restricted to a crossing range.

    The draw is a prefix of one seeded permutation, so a larger ``n_knots`` extends the
    list of a smaller one (and a work folder can be grown).
    """
    import snappy  # deferred: only the table builder needs SnapPy, slow to import

    tables = [
        snappy.HTLinkExteriors(num_cusps=1, crossings=c)
        for c in range(min_crossings, max_crossings + 1)
    ]
    sizes = np.array([len(t) for t in tables])
    if n_knots > sizes.sum():
        raise ValueError(f"only {sizes.sum()} knots have {min_crossings}-{max_crossings} crossings")
    picks = np.random.default_rng(seed).permutation(sizes.sum())[:n_knots]
    offsets = np.concatenate([[0], np.cumsum(sizes)])
    names = []
    for pick in picks:
        table = int(np.searchsorted(offsets, pick, side="right")) - 1
        names.append(tables[table][int(pick - offsets[table])].name())
    return names


# ---- worker pool with per-knot timeouts ------------------------------------------------

KnotTask = Callable[[str], dict[str, Any]]  # what a worker computes for one knot name


def _worker_main(conn: Connection, task: KnotTask) -> None:
    import snappy  # noqa: F401  (imported before "ready" so it does not eat the timeout)

    conn.send(("ready", "", None))
    while (name := conn.recv()) is not None:
        try:
            conn.send(("row", name, task(name)))
        except KnotSkipped as skipped:
            conn.send(("skip", name, str(skipped)))
        except Exception as error:  # noqa: BLE001  (any SnapPy failure is a skip reason)
            conn.send(("skip", name, f"error: {type(error).__name__}: {error}"))


class _Slot:
    """One worker process, the knot it is working on and that knot's deadline."""

    def __init__(self, ctx: Any, task: KnotTask) -> None:
        self.task = task
        self.conn, child = ctx.Pipe()
        self.proc = ctx.Process(target=_worker_main, args=(child, task), daemon=True)
        self.proc.start()
        child.close()
        self.ready = False
        self.name: str | None = None
        self.deadline = math.inf

    def assign(self, name: str, timeout_s: float) -> None:
        self.conn.send(name)
        self.name, self.deadline = name, time.monotonic() + timeout_s

    def stop(self, kill: bool) -> None:
        if kill:
            self.proc.kill()
        else:
            self.conn.send(None)
        self.proc.join()
        self.conn.close()


def run_pool(
    names: Sequence[str],
    workers: int,
    timeout_s: float,
    on_result: Callable[[str, str, Any], None],
    task: KnotTask = knot_row,
) -> None:
    """Compute ``knot_row`` for every name in ``workers`` processes.

    ``on_result(kind, name, payload)`` is called in the parent with kind "row" (payload:
    the row dict) or "skip" (payload: the reason). A knot still running ``timeout_s``
    seconds after it was handed out is recorded as a timeout; its worker is killed and
    replaced. ``task`` is the per-knot function (module-level: it is pickled to workers).
    """
    if not names:
        return
    ctx = _context()
    pending = deque(names)
    slots = [_Slot(ctx, task) for _ in range(max(1, min(workers, len(pending))))]
    try:
        while pending or any(s.name is not None for s in slots):
            for slot in slots:
                if slot.ready and slot.name is None and pending:
                    slot.assign(pending.popleft(), timeout_s)
            soonest = min(s.deadline for s in slots)
            wait_s = None if soonest == math.inf else max(0.0, soonest - time.monotonic())
            ready = wait([s.conn for s in slots], timeout=wait_s)
            for index, slot in enumerate(slots):
                if slot.conn in ready:
                    slots[index] = _receive(ctx, slot, on_result)
                elif slot.name is not None and time.monotonic() >= slot.deadline:
                    on_result("skip", slot.name, f"timeout after {timeout_s:g} s")
                    slot.stop(kill=True)
                    slots[index] = _Slot(ctx, task)
    finally:
        for slot in slots:
            slot.stop(kill=slot.name is not None or not slot.proc.is_alive())


def _context() -> Any:
    """A forkserver that has imported this module (``kan`` imports torch, ~3-10 s) once, so
    replacing a killed worker is a cheap fork; no fork of a parent that may hold threads."""
    if "forkserver" not in mp.get_all_start_methods():
        return mp.get_context("spawn")
    ctx = mp.get_context("forkserver")
    ctx.set_forkserver_preload([__name__, "snappy"])
    return ctx


def _receive(ctx: Any, slot: _Slot, on_result: Callable[[str, str, Any], None]) -> _Slot:
    try:
        kind, name, payload = slot.conn.recv()
    except EOFError:  # the worker died (e.g. a crash inside SnapPy's C code)
        if slot.name is not None:
            on_result("skip", slot.name, f"worker died (exit code {slot.proc.exitcode})")
        slot.stop(kill=True)
        return _Slot(ctx, slot.task)
    if kind == "ready":
        slot.ready = True
    else:
        on_result(kind, name, payload)
        slot.name, slot.deadline = None, math.inf
    return slot


# ---- resumable table generation ------------------------------------------------------


def generate_snappy_table(
    work_dir: Path | str,
    names: Sequence[str],
    *,
    workers: int = 2,
    timeout_s: float = 30.0,
    chunk_size: int = 100,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Compute rows for ``names`` (resumable); return (rows, skips) in the order of names.

    Results are appended to ``work_dir`` as chunk files ``rows-NNNNN.csv`` and
    ``skips-NNNNN.csv`` (each written atomically, every ``chunk_size`` finished knots). A
    rerun computes only the knots that no chunk mentions yet. The name list may extend or
    shorten the folder's previous list (one must be a prefix of the other), so a long run
    can be grown, or cut short and finished with what is done.
    """
    work = Path(work_dir)
    work.mkdir(parents=True, exist_ok=True)
    _check_plan(work, list(names))
    rows, skips = read_chunks(work)
    done = set(rows["name"]) | set(skips["name"])
    todo = [name for name in names if name not in done]
    buffer: dict[str, list] = {"row": [], "skip": []}

    def on_result(kind: str, name: str, payload: Any) -> None:
        buffer[kind].append(payload if kind == "row" else {"name": name, "reason": payload})
        if len(buffer["row"]) + len(buffer["skip"]) >= chunk_size:
            _flush(work, buffer)

    try:
        run_pool(todo, workers, timeout_s, on_result)
    finally:
        _flush(work, buffer)
    rows, skips = read_chunks(work)
    order = {name: i for i, name in enumerate(names)}
    rows, skips = rows[rows["name"].isin(order)], skips[skips["name"].isin(order)]
    return (
        rows.sort_values("name", key=lambda s: s.map(order)).reset_index(drop=True),
        skips.sort_values("name", key=lambda s: s.map(order)).reset_index(drop=True),
    )


def _check_plan(work: Path, names: list[str]) -> None:
    plan = work / "plan.json"
    if plan.exists():
        previous = json.loads(plan.read_text(encoding="utf-8"))["names"]
        if names[: len(previous)] != previous[: len(names)]:
            raise ValueError(f"{work} holds a run for a different knot list; use a new folder")
    _atomic_write(plan, json.dumps({"names": names}) + "\n")


def _flush(work: Path, buffer: dict[str, list]) -> None:
    if not buffer["row"] and not buffer["skip"]:
        return
    index = len(list(work.glob("rows-*.csv")))
    rows = pd.DataFrame(buffer["row"], columns=TABLE_COLUMNS)
    skips = pd.DataFrame(buffer["skip"], columns=SKIP_COLUMNS)
    # skips first: a chunk counts as written once its rows file exists
    _atomic_write(work / f"skips-{index:05d}.csv", skips.to_csv(index=False))
    _atomic_write(work / f"rows-{index:05d}.csv", rows.to_csv(index=False))
    buffer["row"].clear()
    buffer["skip"].clear()


def _atomic_write(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def read_chunks(work_dir: Path | str) -> tuple[pd.DataFrame, pd.DataFrame]:
    """All complete chunks of a work folder as (rows, skips), first occurrence of a name."""
    work = Path(work_dir)
    row_files = sorted(work.glob("rows-*.csv"))
    skip_files = [f.with_name(f.name.replace("rows-", "skips-")) for f in row_files]
    rows = pd.concat(
        [pd.DataFrame(columns=TABLE_COLUMNS)] + [pd.read_csv(f) for f in row_files],
        ignore_index=True,
    ).drop_duplicates("name")
    skips = pd.concat(
        [pd.DataFrame(columns=SKIP_COLUMNS)] + [pd.read_csv(f) for f in skip_files],
        ignore_index=True,
    ).drop_duplicates("name")
    skips = skips[~skips["name"].isin(rows["name"])]
    return _typed(rows), skips.astype({"name": str, "reason": str}).reset_index(drop=True)


def _typed(rows: pd.DataFrame) -> pd.DataFrame:
    types = {c: np.float64 for c in INPUT_COLUMNS}
    types.update({c: np.int64 for c in INTEGER_COLUMNS})
    types.update({"name": str, TARGET: np.int64})
    return rows.astype(types).reset_index(drop=True)


# ---- shipped table -------------------------------------------------------------------


def write_table(
    out_dir: Path | str, rows: pd.DataFrame, skips: pd.DataFrame, meta: dict[str, Any]
) -> None:
    """Write ``knots.csv.gz`` (rows), ``skips.csv`` and ``meta.json`` to ``out_dir``."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    rows.to_csv(out / "knots.csv.gz", index=False, compression={"method": "gzip", "mtime": 0})
    skips.to_csv(out / "skips.csv", index=False)
    meta = {
        **meta,
        "n_rows": len(rows),
        "n_skipped": len(skips),
        "skip_reasons": {
            k: int(v) for k, v in skips["reason"].value_counts().sort_index().items()
        },
        "signature_counts": {
            str(k): int(v) for k, v in rows[TARGET].value_counts().sort_index().items()
        },
    }
    (out / "meta.json").write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")


def main(argv: Sequence[str] | None = None) -> None:
    """CLI: sample knots from the HT table, compute them (resumable), write the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True, help="folder for knots.csv.gz + meta.json")
    parser.add_argument("--work", required=True, help="resumable chunk folder")
    parser.add_argument("--n-knots", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--timeout", type=float, default=6.0, help="seconds per knot")
    parser.add_argument("--min-crossings", type=int, default=3)
    parser.add_argument("--max-crossings", type=int, default=12)
    parser.add_argument("--chunk-size", type=int, default=100)
    args = parser.parse_args(argv)
    import snappy  # deferred: only the table builder needs SnapPy, slow to import

    names = ht_knot_names(args.n_knots, args.seed, args.min_crossings, args.max_crossings)
    rows, skips = generate_snappy_table(
        args.work, names, workers=args.workers, timeout_s=args.timeout,
        chunk_size=args.chunk_size,
    )
    meta = {
        "source": f"snappy.HTLinkExteriors(num_cusps=1), {args.min_crossings}-"
        f"{args.max_crossings} crossings, {args.n_knots} knots drawn uniformly without "
        "replacement (ht_knot_names)",
        "seed": args.seed,
        "timeout_s": args.timeout,
        "workers": args.workers,
        "snappy_version": snappy.__version__,
        "methods": methods(),
        "command": "python -m kan.data.knot_snappy --out OUT --work WORK "
        f"--n-knots {args.n_knots} --seed {args.seed} --timeout {args.timeout:g} "
        f"--min-crossings {args.min_crossings} --max-crossings {args.max_crossings}",
    }
    write_table(args.out, rows, skips, meta)


if __name__ == "__main__":
    main()
