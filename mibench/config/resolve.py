"""From a grid file to validated plugin configs, collecting every problem on the way."""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from mibench.config.errors import ConfigError, Path_, Problem, describe, pydantic_problems
from mibench.config.grid import MAX_CELLS, Grid, PluginEntry, _name_to_entry
from mibench.config.yamlfile import LineMap, load_yaml
from mibench.config.plugin_config import PluginConfig, name_differences
from mibench.config.seeds import shadow_seed
from mibench.config.shapes import data_shape, forward_flops
from mibench.registry.table import PluginInfo, Registry, UnknownPlugin
from mibench.sdk import ReferenceNeeds

SECTIONS = {"datasets": "dataset", "architectures": "architecture", "defenses": "defense", "attacks": "attack"}


@dataclass
class ResolvedGrid:
    """A grid whose every plugin name is registered and every params block is valid."""

    grid: Grid
    datasets: list[PluginConfig]
    architectures: list[PluginConfig]
    defenses: list[PluginConfig]
    attacks: list[PluginConfig]
    shadow_defense: PluginConfig | None  # None: adaptive (each target's own defense)
    source: str = "<grid>"
    plain_defense: PluginConfig | None = None  # shadow.plain, for attacks whose shadows train plainly
    warnings: list[str] = field(default_factory=list)  # what stops ``mibench run`` (missing data, no CUDA device)
    protocol: Any = None  # the grid's protocol strategy (mibench.engine.protocols.base.Protocol), from the registry
    advice: list[str] = field(default_factory=list)  # warnings that do not stop a run (a figure that is not resolvable)


def _param_problems(
    exc: ValidationError, entry_path: Path_, info: PluginInfo, combo: dict[str, Any], sweep: dict[str, list]
) -> list[Problem]:
    problems = []
    fields = ", ".join(info.cls.Params.model_fields) or "no params"
    for err in exc.errors():
        loc = err["loc"]
        key = loc[0] if loc else None
        if key in combo:
            path: Path_ = (*entry_path, "sweep", key, sweep[key].index(combo[key]), *loc[1:])
        else:
            path = (*entry_path, "params", *loc)
        if err["type"] == "extra_forbidden":
            message = f"unknown param of {info.kind} {info.name!r}; it takes: {fields}"
        else:
            message = describe(err)
        problems.append(Problem(path, message))
    return problems


def _expand(
    entry: PluginEntry, entry_path: Path_, info: PluginInfo, problems: list[Problem]
) -> list[PluginConfig]:
    """Every sweep combination of one grid entry, validated by the plugin's Params."""
    params_model = info.cls.Params
    unknown = [k for k in entry.sweep if k not in params_model.model_fields]
    for key in unknown:
        fields = ", ".join(params_model.model_fields) or "no params"
        problems.append(Problem((*entry_path, "sweep", key), f"unknown param of {info.kind} {info.name!r}; it takes: {fields}"))
    for key in entry.sweep:
        if key in entry.params:
            problems.append(Problem((*entry_path, "sweep", key), "is both in params and in sweep"))
    if unknown:
        return []
    keys = list(entry.sweep)
    configs: list[PluginConfig] = []
    seen_errors: set[tuple] = set()
    for values in itertools.product(*(entry.sweep[k] for k in keys)) if keys else [()]:
        combo = dict(zip(keys, values))
        try:
            params = params_model.model_validate({**entry.params, **combo})
        except ValidationError as exc:
            for p in _param_problems(exc, entry_path, info, combo, entry.sweep):
                if (p.path, p.message) not in seen_errors:
                    seen_errors.add((p.path, p.message))
                    problems.append(p)
            continue
        configs.append(PluginConfig(info, params, tuple(keys), entry_path[-1]))
    return configs


def _resolve_section(
    raw: Any, section: str, registry: Registry, problems: list[Problem]
) -> list[PluginConfig]:
    """Resolve each well-formed entry of one plugin section (malformed ones are the schema's problem)."""
    kind = SECTIONS[section]
    configs: list[PluginConfig] = []
    seen: dict[str, int] = {}
    for i, item in enumerate(raw if isinstance(raw, list) else []):
        entry_path: Path_ = (section, i)
        try:
            entry = PluginEntry.model_validate(_name_to_entry(item))
        except ValidationError:
            continue
        try:
            info = registry.get(kind, entry.name)
        except UnknownPlugin as exc:
            problems.append(Problem((*entry_path, "name") if isinstance(item, dict) else entry_path, str(exc)))
            continue
        for config in _expand(entry, entry_path, info, problems):
            key = config._spec_text()
            if key in seen:
                problems.append(Problem(entry_path, f"repeats {section}[{seen[key]}] ({config.label})"))
                continue
            seen[key] = i
            configs.append(config)
    return name_differences(configs)


def resolve(data: Any, registry: Registry, lines: LineMap | None = None, source: str = "<grid>") -> ResolvedGrid:
    """Validate a loaded grid document against the schema and the registered plugins.

    Every problem is collected (schema and plugins alike) before one ConfigError is raised.
    """
    lines = lines or LineMap({})
    if not isinstance(data, dict):
        raise ConfigError(source, [Problem((), "a grid file must be a mapping of keys (name, datasets, ...)", 1)])
    problems: list[Problem] = []
    grid: Grid | None = None
    try:
        grid = Grid.model_validate(data)
    except ValidationError as exc:
        problems.extend(pydantic_problems(exc, (), lines, Grid))

    resolved = {section: _resolve_section(data.get(section), section, registry, problems) for section in SECTIONS}

    shadow_defense = None
    shadow_training = (data.get("shadow") or {}).get("training", "adaptive") if isinstance(data.get("shadow"), dict) else "adaptive"
    if isinstance(shadow_training, str) and shadow_training not in {"adaptive", ""}:
        try:
            info = registry.get("defense", shadow_training)
            shadow_defense = PluginConfig(info, info.cls.Params())
        except UnknownPlugin as exc:
            problems.append(Problem(("shadow", "training"), f"must be 'adaptive' or a defense name: {exc}"))

    plain_defense = None
    if grid is not None and any(needs_of(a).training == "plain" for a in resolved["attacks"]):
        try:
            info = registry.get("defense", grid.shadow.plain)
            plain_defense = PluginConfig(info, info.cls.Params())
        except UnknownPlugin as exc:
            problems.append(Problem(("shadow", "plain"), f"must name a defense for plainly trained shadows: {exc}"))

    protocol = None
    protocol_warnings: list[str] = []
    if grid is not None:
        canaries = _resolve_canaries(grid, registry, problems)
        try:
            strategy = registry.protocol(grid.protocol)
        except UnknownPlugin as exc:
            problems.append(Problem(("protocol",), str(exc)))
        else:
            problems.extend(strategy.check(grid, resolved["attacks"]))
            protocol = strategy.from_grid(grid)
            if grid.pool.canaries is not None and not strategy.accepts_canaries:
                problems.append(Problem(("pool", "canaries"), f"canaries need protocol: pool (protocol {grid.protocol!r} "
                                        "has no sample set in which every sample is IN for half of the models)"))
            elif canaries is not None:
                protocol = protocol.with_canaries(canaries, grid)
                more, protocol_warnings = protocol.check_datasets(resolved["datasets"])
                problems.extend(more)
        problems.extend(_cross_checks(grid, resolved, shadow_defense))
    if problems or grid is None:
        located = [Problem(p.path, p.message, p.line or lines.line(p.path)) for p in problems]
        raise ConfigError(source, sorted(located, key=lambda p: (p.line or 0)))

    warnings = _device_warnings(grid.device)
    for ds in resolved["datasets"]:
        message = ds.create().missing_data()
        if message:
            warnings.append(f"dataset {ds.label}: {message}")
    return ResolvedGrid(grid, resolved["datasets"], resolved["architectures"], resolved["defenses"],
                        resolved["attacks"], shadow_defense, source, plain_defense=plain_defense, warnings=warnings,
                        protocol=protocol, advice=protocol_warnings)


def _resolve_canaries(grid: Grid, registry: Registry, problems: list[Problem]) -> PluginConfig | None:
    """The grid's ``pool.canaries`` as a validated canary config (None: no canaries, or a problem recorded)."""
    entry = grid.pool.canaries
    if entry is None:
        return None
    path: Path_ = ("pool", "canaries")
    try:
        info = registry.get("canary", entry.name)
    except UnknownPlugin as exc:
        problems.append(Problem((*path, "name"), str(exc)))
        return None
    configs = _expand(PluginEntry(name=entry.name, params=entry.params), path, info, problems)
    return configs[0] if configs else None


def _cross_checks(
    grid: Grid, resolved: dict[str, list[PluginConfig]], shadow_defense: PluginConfig | None = None
) -> list[Problem]:
    """Problems that involve more than one part of the grid."""
    problems: list[Problem] = []
    black_box = [d.label for d in resolved["defenses"] if not d.info.cls.white_box]
    # White-box attacks query the shadows too (their thresholds are calibrated there).
    black_box_shadows = []
    if shadow_defense is not None and not shadow_defense.info.cls.white_box:
        black_box_shadows = [f"{shadow_defense.label} (shadow.training)"]
    for i, entry in enumerate(grid.attacks):
        white = [a for a in resolved["attacks"] if a.name == entry.name and a.info.cls.needs_white_box]
        blocked = black_box + (black_box_shadows if any(needs_of(a).uses_references for a in white) else [])
        if white and blocked:
            problems.append(Problem(("attacks", i), f"attack {entry.name!r} needs white-box access, "
                                    f"but these defenses release black-box models only: {', '.join(blocked)}"))
    cells = 1
    for section in ("datasets", "architectures", "defenses"):
        cells *= max(len(resolved[section]), 1)
    cells *= len(grid.seeds)
    if cells > MAX_CELLS:
        problems.append(Problem(("seeds",), f"the grid has {cells:,} cells (datasets x architectures x defense "
                                            f"configs x seeds); at most {MAX_CELLS:,} are allowed"))
    problems.extend(_shadow_seed_checks(grid))
    problems.extend(_training_checks(grid, resolved))
    problems.extend(_shape_checks(resolved))
    return problems


def needs_of(attack: PluginConfig) -> ReferenceNeeds:
    """What an attack config needs of shadow models (its plugin's ``needs(params)``)."""
    return attack.info.cls.needs(attack.params)


def _shadow_seed_checks(grid: Grid) -> list[Problem]:
    """Every (target seed, shadow i) must give its own shadow seed: two targets never share a shadow by chance."""
    seen: dict[int, tuple[int, int]] = {}
    for seed in grid.seeds:
        for i in range(grid.shadow.count):
            derived = shadow_seed(seed, i)
            if derived in seen and seen[derived] != (seed, i):
                other, j = seen[derived]
                return [Problem(("seeds",), f"seeds {other} and {seed} give shadow {j} and shadow {i} the same "
                                            "derived seed; replace one of them")]
            seen[derived] = (seed, i)
    return []


def _training_checks(grid: Grid, resolved: dict[str, list[PluginConfig]]) -> list[Problem]:
    """Overrides name architectures of the grid; each defense config suits each training run."""
    problems = []
    names = sorted({a.name for a in resolved["architectures"]})
    for key in grid.training.overrides:
        if key not in names:
            problems.append(Problem(("training", "overrides", key),
                                    f"not an architecture of this grid; architectures: {', '.join(names)}"))
    seen = set()
    for defense in resolved["defenses"]:
        for arch in resolved["architectures"]:
            message = defense.create().check_training(grid.training.for_architecture(arch.name).epochs)
            if message and (defense.position, message) not in seen:
                seen.add((defense.position, message))
                problems.append(Problem(("defenses", defense.position), f"{defense.label}: {message}"))
    return problems


def _shape_checks(resolved: dict[str, list[PluginConfig]]) -> list[Problem]:
    """Every architecture builds, and runs a forward pass, for every dataset's input (on the meta device)."""
    problems = []
    for dataset in resolved["datasets"]:
        try:
            shape = data_shape(dataset)
        except Exception as exc:  # noqa: BLE001 - a dataset that cannot say its shape is the grid's problem
            problems.append(Problem(("datasets", dataset.position), f"{dataset.label}: {' '.join(str(exc).split())}"))
            continue
        if shape is None:
            continue
        for arch in resolved["architectures"]:
            try:
                forward_flops(arch, shape.input_shape, shape.num_classes)
            except Exception as exc:  # noqa: BLE001 - any failure to build is the grid's problem
                c, h, w = shape.input_shape
                problems.append(Problem(("architectures", arch.position),
                                        f"{arch.label} cannot take {dataset.label} ({c}x{h}x{w} inputs, "
                                        f"{shape.num_classes} classes): {' '.join(str(exc).split())}"))
    return problems


def _device_warnings(device: str) -> list[str]:
    """A CUDA device asked for on a machine where torch sees none (an error for ``mibench run``)."""
    import torch

    if not device.startswith("cuda"):
        return []
    if not torch.cuda.is_available():
        return [f"device {device!r}: torch {torch.__version__} sees no CUDA device here"]
    index = int(device.split(":")[1]) if ":" in device else 0
    if index >= torch.cuda.device_count():
        return [f"device {device!r}: torch sees {torch.cuda.device_count()} CUDA device(s)"]
    return []


def load_grid(path: str | Path, registry: Registry, device: str | None = None) -> ResolvedGrid:
    """Load and resolve a grid file; ``device`` overrides its ``device:`` (validated the same way)."""
    data, lines = load_yaml(path)
    if device is not None and isinstance(data, dict):
        data, lines = {**data, "device": device}, lines.unlocated(("device",))
    return resolve(data, registry, lines, str(path))
