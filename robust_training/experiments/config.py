"""Experiment configs: typed nested sections, presets as data files, one precedence rule.

An experiment's settings are a tree of small dataclasses, one per part of the
experiment (``data``, ``generator``, ``counterfactuals`` or ``interventions``,
``classifier``, ``evaluation``), under a top-level config that holds what every part
shares (the seed, the precision). Each section checks itself once, in ``validate``;
the top level checks what ties sections together. Nothing downstream checks again.

Presets are YAML files shipped in ``presets/<experiment>/``. A preset may name another
with ``extends:``; its own keys then go on top of that one's. A user copies a preset
(``causalkit reproduce ... --print-config > mine.yaml``), edits it and runs it back
(``--config mine.yaml``). Settings resolve by one rule, lowest first::

    preset (and what it extends)  <  --config FILE  <  flags

A layer sets a key by its nested path (``classifier: {lr: 0.001}``) or, for flags, by
the experiment's flat option name (``lr=0.001``; see each experiment's ``FLAGS``).
YAML has ``null``, so a layer can also unset an optional setting.

>>> from robust_training.experiments.cgn_mnist import CGNMnistConfig
>>> cfg = CGNMnistConfig.resolve("colored-quick", flags={"seed": 3})
>>> cfg.seed, cfg.data.variant, cfg.classifier.steps
(3, 'colored', 300)
"""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar, TypeVar

from causalkit.errors import CausalKitError

__all__ = ["Section", "ExperimentConfig", "PRESETS", "preset_names", "load_layer",
           "merge", "merged", "dump_yaml", "from_dict", "to_dict"]

#: the folder of the shipped presets, one subfolder per experiment
PRESETS = Path(__file__).with_name("presets")

T = TypeVar("T", bound="Section")
_UNSET = object()


class Section:
    """A part of an experiment's config: a dataclass whose ``validate`` checks it."""

    def validate(self) -> None:  # pragma: no cover - sections override what they check
        """Raise :class:`CausalKitError` naming the setting and the fix."""


def _coerce(value: Any, hint: Any, where: str) -> Any:
    """``value`` as the field type ``hint`` wants it (YAML gives lists and ints)."""
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        inner = [a for a in args if a is not type(None)]
        return _coerce(value, inner[0], where) if len(inner) == 1 else value
    if isinstance(hint, type) and issubclass(hint, Section):
        return from_dict(hint, value, where=f"{where}.")
    if origin is tuple:
        if not isinstance(value, (list, tuple)):
            raise CausalKitError(f"{where} must be a list, got {value!r}")
        return tuple(value)
    if origin is dict or hint is dict:
        if not isinstance(value, Mapping):
            raise CausalKitError(f"{where} must be a mapping, got {value!r}")
        return dict(value)
    if hint is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if hint in (int, float, str, bool) and not isinstance(value, hint) or (
            hint is int and isinstance(value, bool)):
        raise CausalKitError(f"{where} must be {hint.__name__}, got {value!r}")
    return value


def from_dict(cls: type[T], data: Mapping[str, Any] | None, *, where: str = "") -> T:
    """Build the section ``cls`` from a nested mapping; unknown keys are refused."""
    data = dict(data or {})
    hints = typing.get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls)]
    unknown = sorted(set(data) - set(names))
    if unknown:
        raise CausalKitError(f"unknown setting(s) {[f'{where}{k}' for k in unknown]}; "
                             f"{where.rstrip('.') or 'the config'} takes {names}")
    kw = {k: _coerce(v, hints[k], f"{where}{k}") for k, v in data.items()}
    return cls(**kw)


def to_dict(obj: Any) -> Any:
    """A section tree as plain nested dicts and lists (YAML- and JSON-ready)."""
    if dataclasses.is_dataclass(obj):
        return {f.name: to_dict(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, (list, tuple)):
        return [to_dict(v) for v in obj]
    if isinstance(obj, Mapping):
        return {k: to_dict(v) for k, v in obj.items()}
    return obj


def merge(base: Mapping[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
    """``over`` on top of ``base``, mapping by mapping (a list replaces a list)."""
    out = dict(base)
    for k, v in over.items():
        out[k] = merge(out[k], v) if isinstance(v, Mapping) and isinstance(
            out.get(k), Mapping) else v
    return out


def load_layer(path: str | Path) -> dict[str, Any]:
    """Read one YAML layer; a bad file is one clear error."""
    import yaml

    p = Path(path)
    if not p.is_file():
        raise CausalKitError(f"no config file {p}; pass an existing YAML file (print one "
                             "with --print-config)")
    try:
        data = yaml.safe_load(p.read_text())
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        at = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise CausalKitError(f"{p} is not valid YAML{at}; fix the file") from None
    if data is None:
        return {}
    if not isinstance(data, Mapping):
        raise CausalKitError(f"{p} must hold a mapping of settings, got "
                             f"{type(data).__name__}")
    return dict(data)


def dump_yaml(data: Mapping[str, Any]) -> str:
    """YAML text of a nested mapping, in its own key order."""
    import yaml

    return yaml.safe_dump(dict(data), sort_keys=False, default_flow_style=False)


def preset_names(experiment: str) -> list[str]:
    """The presets shipped for ``experiment`` (file stems; ``_``-prefixed ones are bases)."""
    folder = PRESETS / experiment
    return sorted(p.stem for p in folder.glob("*.yaml") if not p.stem.startswith("_"))


def merged(layers: list[dict[str, Any]]) -> dict[str, Any]:
    """The layers merged, lowest first; keys starting with ``_`` (a layer's marks, such
    as ``_user``) are left out."""
    out: dict[str, Any] = {}
    for layer in layers:
        out = merge(out, {k: v for k, v in layer.items() if not k.startswith("_")})
    return out


def _with_extends(experiment: str, layer: dict[str, Any], seen: tuple[str, ...]
                  ) -> list[dict[str, Any]]:
    parent = layer.pop("extends", None)
    if parent is None:
        return [layer]
    if parent in seen:
        raise CausalKitError(f"presets extend each other in a circle: {[*seen, parent]}")
    path = PRESETS / experiment / f"{parent}.yaml"
    if not path.is_file():
        raise CausalKitError(f"unknown preset {parent!r} for {experiment}; choose one of "
                             f"{preset_names(experiment)}")
    return _with_extends(experiment, load_layer(path), (*seen, parent)) + [layer]


@dataclasses.dataclass
class ExperimentConfig(Section):
    """Base of an experiment's top-level config.

    Subclasses set :attr:`EXPERIMENT` (the presets' folder) and :attr:`FLAGS` (flat
    option name -> nested path), declare their sections as fields and may refine
    :meth:`_layers` (e.g. a setting that brings its own fragment of settings).
    """

    EXPERIMENT: ClassVar[str] = ""
    FLAGS: ClassVar[dict[str, str]] = {}

    @classmethod
    def flags_to_nested(cls, flags: Mapping[str, Any]) -> dict[str, Any]:
        """Flat option names (or dotted paths) as a nested layer."""
        out: dict[str, Any] = {}
        for name, value in flags.items():
            path = cls.FLAGS.get(name, name)
            if "." not in path and path not in {f.name for f in dataclasses.fields(cls)}:
                raise CausalKitError(f"unknown option {name!r}; options are "
                                     f"{sorted(cls.FLAGS)} or nested paths such as "
                                     "'classifier.lr'")
            keys = path.split(".")
            node = {keys[-1]: dict(value) if isinstance(value, Mapping) else value}
            for k in reversed(keys[:-1]):
                node = {k: node}
            out = merge(out, node)
        return out

    @classmethod
    def _layers(cls, layers: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return layers

    @classmethod
    def resolve(cls: type[T], preset: str | None = None, *, file: str | Path | None = None,
                flags: Mapping[str, Any] | None = None, validate: bool = True) -> T:
        """The config of ``preset`` under ``file`` under ``flags``, validated (unless
        ``validate`` is false: reading a preset's settings back needs no generator).

        ``file`` may itself ``extends:`` a preset, and then ``preset`` may be None.
        """
        layers: list[dict[str, Any]] = []
        if preset is not None:  # a layer that only names the preset
            layers += _with_extends(cls.EXPERIMENT, {"extends": preset}, ())
        if file is not None:
            layers += _with_extends(cls.EXPERIMENT, load_layer(file), ())
            layers[-1]["_user"] = True  # the file's own keys, not what it extends
        if flags:
            layers.append({"_user": True} | cls.flags_to_nested(flags))
        config = from_dict(cls, merged(cls._layers(layers)))
        if validate:
            config.validate()
        return config

    def flat(self) -> dict[str, Any]:
        """The settings under their flat option names (:attr:`FLAGS`); a path that the
        config does not hold (a key of a free mapping left unset) is left out."""
        nested = self.to_dict()
        out: dict[str, Any] = {}
        for name, path in self.FLAGS.items():
            node: Any = nested
            for key in path.split("."):
                node = node.get(key, _UNSET) if isinstance(node, Mapping) else _UNSET
            if node is not _UNSET:
                out[name] = node
        return out

    def to_dict(self) -> dict[str, Any]:
        """The resolved settings, nested (what ``--print-config`` writes)."""
        return to_dict(self)

    def to_yaml(self) -> str:
        """The resolved settings as a YAML file a user can edit and run back."""
        return dump_yaml(self.to_dict())

    def validate(self) -> None:
        """Check every section, then what ties them together (:meth:`check`)."""
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if isinstance(value, Section):
                value.validate()
        self.check()

    def check(self) -> None:
        """Rules across sections; subclasses override."""
