"""Compose a run config: schema defaults -> base -> agent=<a> -> env=<e> -> experiment=<x> -> CLI.

CLI overrides use Hydra's grammar (`key=value`, `+key=value`, `~key`), parsed by Hydra's own
override parser. Every problem becomes one `ConfigError` line naming the key.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from dreamlab.config.schema import AGENTS, AgentConfig, Config, DreamerConfig, ModelFreeConfig
from dreamlab.config.values import ATARI_PREFIX, REMOTE, parse_bytes

PRESETS = Path(__file__).parent / "presets"
GROUPS = ("agent", "env", "experiment")
FREE_TEXT_KEYS = ("run.hypothesis", "run.expect")  # taken verbatim, whatever characters they hold
DEFAULT_CHOICES = {"agent": "iqn", "env": "cartpole", "experiment": None}


class ConfigError(ValueError):
    """A config problem, stated in one line that names the key."""


def preset_names(group: str) -> list[str]:
    return sorted(p.stem for p in (PRESETS / group).glob("*.yaml"))


def _load_yaml(path: Path) -> DictConfig:
    try:
        cfg = OmegaConf.load(path)
    except Exception as exc:  # yaml syntax errors
        raise ConfigError(f"cannot read {path}: {str(exc).splitlines()[0]}") from None
    if not isinstance(cfg, DictConfig):
        raise ConfigError(f"{path}: expected a mapping at the top level")
    return cfg


def _load_preset(group: str, name: str | None) -> DictConfig:
    """The preset `group/name.yaml`; `name` is None when the command line sets the group to null."""
    path = PRESETS / group / f"{name}.yaml"
    if name is None or not path.exists():
        raise ConfigError(f"unknown {group}={name!r}; choose one of: {', '.join(preset_names(group))}")
    return _load_yaml(path)


def _parse(overrides: list[str]) -> list[Any]:
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.errors import OverrideParseException

    parser = OverridesParser.create()
    parsed = []
    for text in overrides:
        key, _, raw = text.partition("=")
        if not key.strip("+~"):
            raise ConfigError(f"cannot parse override {text!r}: no key before '='")
        if key in FREE_TEXT_KEYS:
            text = f"{key}={_quote(raw)}"
        try:
            (override,) = parser.parse_overrides([text])
        except OverrideParseException as exc:
            raise ConfigError(f"cannot parse override {text!r}: {str(exc).splitlines()[0]}") from None
        if override.is_sweep_override():
            raise ConfigError(f"{override.key_or_group}: several values given; use `dreamlab sweep` for that")
        parsed.append(override)
    return parsed


def _quote(raw: str) -> str:
    """Quote free text for Hydra's grammar unless the user quoted it already."""
    if len(raw) >= 2 and raw[0] == raw[-1] and raw[0] in "'\"":
        return raw
    return "'" + raw.replace("'", "\\'") + "'"


def _error(exc: OmegaConfBaseException) -> ConfigError:
    key = getattr(exc, "full_key", None) or "?"
    message = str(getattr(exc, "msg", exc)).splitlines()[0]
    if "not in" in message or "Missing key" in message:
        return ConfigError(f"unknown config key {key!r}")
    return ConfigError(f"{key}: {message}")


def compose(overrides: list[str], base: DictConfig | None = None) -> DictConfig:
    """Resolve presets and overrides into a typed DictConfig; raise ConfigError on any problem.

    With `base` (a saved run's config.yaml, for resume), presets are skipped and only the
    overrides are applied on top of it.
    """
    parsed = _parse(overrides)
    choices = dict(DEFAULT_CHOICES)
    cli_choices = {o.key_or_group: o.value() for o in parsed if o.key_or_group in GROUPS}
    if base is not None and cli_choices:
        raise ConfigError(f"cannot change {', '.join(cli_choices)} of a resumed run")
    experiment = None
    if cli_choices.get("experiment"):
        experiment = _load_preset("experiment", cli_choices["experiment"])
        defaults = experiment.pop("defaults", None)
        if defaults is not None:
            if not isinstance(defaults, DictConfig):
                raise ConfigError(f"experiment={cli_choices['experiment']}: `defaults` must map groups to presets")
            choices.update({str(group): name for group, name in defaults.items()})
    choices.update(cli_choices)
    agent_name = base.agent.name if base is not None else choices["agent"]
    if agent_name not in AGENTS:
        raise ConfigError(f"unknown agent={agent_name!r}; choose one of: {', '.join(sorted(AGENTS))}")
    try:
        cfg = OmegaConf.structured(Config(agent=AGENTS[agent_name]()))
        if base is not None:
            cfg.merge_with(base)
        else:
            cfg.merge_with(_load_yaml(PRESETS / "base.yaml"))
            cfg.merge_with(_load_preset("agent", agent_name))
            env_preset = _load_preset("env", choices["env"])
            cfg.merge_with(env_preset)
            if experiment is not None:
                cfg.merge_with(experiment)
        for override in parsed:
            if override.key_or_group not in GROUPS:
                _apply(cfg, override)
        size = cfg.agent.get("size")
        if size is not None and base is None:  # a size preset, then the CLI again so its fields win
            cfg.merge_with(_load_preset("size", size))
            for override in parsed:  # sets only: entries added or deleted (+k, ~k) are in place already
                if override.key_or_group not in GROUPS and not (override.is_add() or override.is_delete()):
                    _apply(cfg, override)
        if base is None:
            _default_threshold(cfg, env_preset, experiment, parsed)
    except OmegaConfBaseException as exc:
        raise _error(exc) from None
    validate(cfg)
    return cfg


def _sets_threshold(layer: DictConfig | None) -> bool:
    """Whether a preset layer names run.threshold (null included)."""
    run = layer.get("run") if layer is not None else None
    return isinstance(run, DictConfig) and "threshold" in run


def _default_threshold(cfg: DictConfig, env_preset: DictConfig, experiment: DictConfig | None,
                       parsed: list[Any]) -> None:
    """run.threshold follows the env unless the command line or the experiment sets it.

    An env preset's threshold holds while env.id is still the preset's id; otherwise (no preset
    value, or env.id changed on top of the preset) the env spec's `reward_threshold` is used.
    """
    if any(o.key_or_group == "run.threshold" for o in parsed) or _sets_threshold(experiment):
        return
    preset_id = OmegaConf.select(env_preset, "env.id")
    if _sets_threshold(env_preset) and preset_id in (None, cfg.env.id):
        return
    cfg.run.threshold = spec_threshold(cfg.env.id, cfg.env.max_episode_steps)


def spec_threshold(env_id: str, max_episode_steps: int | None = None) -> float | None:
    """The registered Gymnasium spec's `reward_threshold` of `env_id`, or None.

    Only the registry is read, nothing is imported for it: env.id=remote, `module:EnvId` ids and ids
    not registered in this process give None. A time limit shorter than the spec's also gives None
    (CartPole-v0 capped at 100 steps cannot reach its 195).
    """
    import gymnasium as gym

    spec = gym.registry.get(env_id) if env_id != REMOTE else None
    limit = getattr(spec, "max_episode_steps", None)
    if max_episode_steps is not None and limit is not None and max_episode_steps < limit:
        return None
    threshold = getattr(spec, "reward_threshold", None)
    return None if threshold is None else float(threshold)


def _apply(cfg: DictConfig, override: Any) -> None:
    key = override.key_or_group
    parent_key, _, leaf = key.rpartition(".")
    parent = OmegaConf.select(cfg, parent_key) if parent_key else cfg
    if not isinstance(parent, DictConfig):
        raise ConfigError(f"unknown config key {key!r}")
    is_schema_section = OmegaConf.get_type(parent) not in (dict, None)
    exists = leaf in parent
    if override.is_delete():
        if not exists:
            raise ConfigError(f"~{key}: no such key to delete")
        if is_schema_section:
            raise ConfigError(f"~{key}: schema keys cannot be deleted; set a value instead")
        del parent[leaf]
    elif override.is_add():
        if exists:
            raise ConfigError(f"+{key}: key exists already; set it with {key}=...")
        if is_schema_section:
            raise ConfigError(f"unknown config key {key!r}")
        parent[leaf] = override.value()
    else:
        if not exists:
            hint = f" (add a new entry with +{key}=...)" if not is_schema_section else ""
            raise ConfigError(f"unknown config key {key!r}{hint}")
        OmegaConf.update(cfg, key, override.value(), merge=False)


def validate(cfg: DictConfig) -> Config:
    """Check bounds declared in the schema; return the config as dataclass objects."""
    try:
        obj = OmegaConf.to_object(cfg)
    except OmegaConfBaseException as exc:
        raise _error(exc) from None
    if not isinstance(obj, Config):
        raise TypeError(f"validate() needs a config composed from the Config schema, got {type(obj).__name__}")
    _check_bounds(obj, prefix="")
    _check_combinations(obj)
    return obj


def _check_combinations(cfg: Config) -> None:
    """Keys that are valid alone but not together, found here rather than after the envs are built."""
    try:
        parse_bytes(cfg.replay.max_bytes)
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    env, agent = cfg.env, cfg.agent
    for name in env.imports:  # imported by make_env (envs/imports.py), in every process that builds envs
        if not name or not all(part.isidentifier() for part in name.split(".")):
            raise ConfigError(f"env.imports: {name!r} is not a module name (e.g. ale_py, minigrid, my_envs.grid)")
    # frames come from env.pixels, a served env (it may send frames itself) or Atari's own screen
    if env.frame_stack > 1 and not (env.pixels or env.id == REMOTE or env.id.startswith(ATARI_PREFIX)):
        raise ConfigError(f"env.frame_stack={env.frame_stack}: frames are stacked only with env.pixels=true "
                          "(or an env whose observation is a frame: Atari, a served env)")
    if env.frame_stack > 1 and isinstance(agent, DreamerConfig):
        raise ConfigError(f"env.frame_stack={env.frame_stack}: DreamerV3's RSSM carries the history; use 1")
    if not env.pixels:
        return
    dreamer_cnn = isinstance(agent, DreamerConfig) or (isinstance(agent, ModelFreeConfig) and agent.cnn == "dreamer")
    if dreamer_cnn and env.image_size % 16:
        raise ConfigError(f"env.image_size={env.image_size}: the DreamerV3 CNN needs a multiple of 16 "
                          "(4 stages of 2x2 pooling)")
    if isinstance(agent, ModelFreeConfig) and agent.cnn == "nature" and env.image_size < 36:
        raise ConfigError(f"env.image_size={env.image_size}: agent.cnn=nature needs >= 36 (its convolutions "
                          "shrink 36 to 1); use agent.cnn=dreamer for small frames")


def _check_bounds(obj: Any, prefix: str) -> None:
    for f in dataclasses.fields(obj):
        value = getattr(obj, f.name)
        key = f"{prefix}{f.name}"
        if dataclasses.is_dataclass(value):
            _check_bounds(value, prefix=f"{key}.")
            continue
        for item in value if isinstance(value, list) else [value]:
            _check_value(key, item, f.metadata)


def _check_value(key: str, value: Any, meta: Mapping[str, Any]) -> None:
    if value is None:
        return
    if "choices" in meta and value not in meta["choices"]:
        raise ConfigError(f"{key}: expected one of {meta['choices']}, got {value!r}")
    if "gt" in meta and not value > meta["gt"]:
        raise ConfigError(f"{key}: expected a value > {meta['gt']}, got {value!r}")
    if "ge" in meta and not value >= meta["ge"]:
        raise ConfigError(f"{key}: expected a value >= {meta['ge']}, got {value!r}")
    if "le" in meta and not value <= meta["le"]:
        raise ConfigError(f"{key}: expected a value <= {meta['le']}, got {value!r}")


def load(overrides: list[str], base: DictConfig | None = None) -> tuple[DictConfig, Config]:
    """Compose and validate: returns (DictConfig for saving, dataclass objects for code)."""
    cfg = compose(overrides, base)
    return cfg, validate(cfg)


def format_help() -> str:
    """The text of `dreamlab train --help`: groups with their presets, then every key."""
    lines = ["Config groups (pick one each: group=name):"]
    for group in GROUPS:
        default = DEFAULT_CHOICES[group]
        lines.append(f"  {group:<11} {', '.join(preset_names(group))}   (default: {default})")
    lines.append("")
    lines.append("Keys (override with key=value; add dict entries with +key=value; remove them with ~key):")
    for agent_name, agent_cls in sorted(AGENTS.items()):
        cfg = Config(agent=agent_cls())
        lines.extend(_describe(cfg, "", only_agent=agent_name != "iqn"))
    return "\n".join(lines)


def _describe(obj: Any, prefix: str, only_agent: bool) -> list[str]:
    lines = []
    for f in dataclasses.fields(obj):
        key = f"{prefix}{f.name}"
        value = getattr(obj, f.name)
        if only_agent and not key.startswith("agent"):
            continue
        if dataclasses.is_dataclass(value):
            title = f"  [{key}" + (f"={value.name}]" if isinstance(value, AgentConfig) else "]")
            lines.append(title)
            lines.extend(_describe(value, f"{key}.", only_agent=False))
        else:
            lines.append(f"    {key:<28} {value!r:<14} {f.metadata.get('help', '')}")
    return lines
