"""The user's own weights (``--weights FILE.npz``): W^q, W^k, W^v and optional W^o,
checked against the vectors and the settings before any attention is computed."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from attncli.core.vectors import _check_finite, read_npz, regular_file
from attncli.errors import AttnError

if TYPE_CHECKING:
    from attncli.core.settings import Settings


def _read_weights(path: Path) -> dict[str, np.ndarray]:
    """Wq, Wk, Wv (and Wo if there) of a .npz: real, finite numbers, no dimension 0."""
    if not path.exists():
        raise AttnError(f"--weights: {path}: no such file")
    regular_file(path, "--weights")
    if path.is_dir():
        raise AttnError(f"--weights: {path} is a folder; give a .npz file with Wq, Wk, Wv")
    if path.stat().st_size == 0:
        raise AttnError(f"{path}: the file is empty")
    W = read_npz(path, ("Wq", "Wk", "Wv", "Wo"))
    missing = [k for k in ("Wq", "Wk", "Wv") if k not in W]
    if missing:
        raise AttnError(f"{path}: missing array {', '.join(missing)} (it needs Wq, Wk, Wv and optionally Wo)")
    for k, a in W.items():
        if a.dtype.kind not in "fiu":
            raise AttnError(f"{path}: {k} holds {a.dtype}, not real numbers")
        if 0 in a.shape:
            raise AttnError(f"{path}: {k} has shape {a.shape}; no dimension may be 0")
        _check_finite(a, f"{path} array {k}")
    return W


def load_weights(spec: str, r: int, settings: Settings) -> dict[str, Any]:
    """The user's W^q, W^k (H×q×r or q×r), W^v (H×v×r or v×r) and optional W^o (r×H·v)."""
    path = Path(spec)
    W = _stacked(path, _read_weights(path))
    H, q, _ = W["Wq"].shape
    v = W["Wv"].shape[1]
    _check_sizes(path, W, r)
    for option, given, actual in (
        ("heads", settings.heads, H),
        ("q_dim", settings.q_dim, q),
        ("v_dim", settings.v_dim, v),
    ):
        if given is not None and given != actual:
            raise AttnError(
                f"{option} {given} clashes with {path}: it holds {actual} (Wq {W['Wq'].shape}, Wv {W['Wv'].shape})",
                setting=option,
            )
    Wo = W.get("Wo")
    if Wo is not None:
        Wo = Wo.astype(np.float64)
        if Wo.shape != (r, H * v):
            raise AttnError(f"{path}: Wo has shape {Wo.shape}, expected {(r, H * v)} (r × H·v)")
    return {"Wq": W["Wq"], "Wk": W["Wk"], "Wv": W["Wv"], "Wo": Wo}


def _stacked(path: Path, W: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Wq, Wk, Wv as H×d×r (one head may come as d×r), in float64."""
    for k in ("Wq", "Wk", "Wv"):
        if W[k].ndim == 2:
            W[k] = W[k][None]
        if W[k].ndim != 3:
            raise AttnError(f"{path}: {k} has shape {W[k].shape}; expected H×d×r or d×r")
        W[k] = W[k].astype(np.float64)
    return W


def _check_sizes(path: Path, W: dict[str, np.ndarray], r: int) -> None:
    """W^k like W^q, W^v with as many heads, and r that of the vectors."""
    H, q, rq = W["Wq"].shape
    if W["Wk"].shape != (H, q, rq):
        raise AttnError(f"{path}: Wk has shape {W['Wk'].shape}, expected {(H, q, rq)} like Wq")
    Hv, v, rv = W["Wv"].shape
    if Hv != H or rv != rq:
        raise AttnError(f"{path}: Wv has shape {W['Wv'].shape}, expected ({H}, v, {rq})")
    if rq != r:
        raise AttnError(
            f"{path}: Wq has shape {W['Wq'].shape}, whose r = {rq} does not match the vectors' r = {r}"
            f" (for random vectors, give --dim {rq})"
        )
