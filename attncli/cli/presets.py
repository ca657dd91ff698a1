"""A style preset: figure options in a TOML file, so every slide of a lecture matches.

``--style FILE`` names the file; without it, ``attncli.toml`` in the working folder is
read when there is one. Keys are the figure options' names (``theme``, ``dpi``,
``font-size`` or ``font_size``, ``figsize = [8, 6]`` …), at the top level or in a
``[figures]`` table. An option given on the command line wins over the preset.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Optional

from attncli.errors import AttnError

DEFAULT_FILE = "attncli.toml"

# option (as the command names its parameter) → the types a preset may give it
KEYS: dict[str, tuple[type, ...]] = {
    "image_format": (str,),
    "dpi": (int,),
    "cmap": (str,),
    "theme": (str,),
    "transparent": (bool,),
    "annotate": (bool,),
    "grid": (bool,),
    "transpose": (bool,),
    "figsize": (str, list),
    "title": (str,),
    "font_size": (int, float),
    "font": (str,),
    "vmin": (int, float),
    "vmax": (int, float, str),
    "shared_scale": (bool,),
}


def read(path: Optional[Path]) -> tuple[dict[str, Any], Optional[Path]]:
    """The preset's options (by parameter name) and the file they came from."""
    import tomllib

    source = path if path is not None else Path(DEFAULT_FILE)
    if path is None and not source.is_file():
        return {}, None
    try:
        data = tomllib.loads(source.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise AttnError(f"--style: no such file {str(source)!r}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise AttnError(f"--style: cannot read {str(source)!r}: {exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise AttnError(f"{source}: not valid TOML ({exc})") from None
    if isinstance(data.get("figures"), dict):
        data = {**{k: v for k, v in data.items() if k != "figures"}, **data["figures"]}
    return _checked(data, source), source


def _checked(data: dict[str, Any], source: Path) -> dict[str, Any]:
    out = {}
    for key, value in data.items():
        name = key.replace("-", "_")
        if name not in KEYS:
            known = ", ".join(sorted(k.replace("_", "-") for k in KEYS))
            raise AttnError(f"{source}: unknown key {key!r} (figure options: {known})")
        if not isinstance(value, KEYS[name]) or (isinstance(value, bool) and bool not in KEYS[name]):
            raise AttnError(f"{source}: {key} = {value!r} is not a {' or '.join(t.__name__ for t in KEYS[name])}")
        if name == "figsize" and isinstance(value, list):
            value = ",".join(str(x) for x in value)
        if name == "vmax" and not isinstance(value, str):
            value = str(value)
        out[name] = value
    return out


def apply(ctx: Any, options: dict[str, Any], style_file: Optional[Path]) -> dict[str, Any]:
    """``options`` with each one the command line left at its default taken from the
    preset (only the options this command has)."""
    preset, _ = read(style_file)
    merged = dict(options)
    for name, value in preset.items():
        source = ctx.get_parameter_source(name)
        if name in merged and (source is None or source.name == "DEFAULT"):  # Typer vendors its own click
            merged[name] = value
    return merged
