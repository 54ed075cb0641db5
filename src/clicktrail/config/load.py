"""Read the registry file once and turn every problem into a message naming the key."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from clicktrail.config.registry import Registry

_ENV_REF = re.compile(r"\$\{([A-Z_][A-Z0-9_]*)(?::-([^}]*))?\}")


class ConfigError(Exception):
    """The configuration cannot be used; the message says which key and why."""


def _expand_env(value: Any, path: str) -> Any:
    """Replace ``${NAME}`` / ``${NAME:-default}`` in strings so secrets stay out of the file."""
    if isinstance(value, dict):
        return {k: _expand_env(v, f"{path}.{k}" if path else str(k)) for k, v in value.items()}
    if isinstance(value, list):
        return [_expand_env(v, f"{path}[{i}]") for i, v in enumerate(value)]
    if isinstance(value, str):

        def substitute(match: re.Match[str]) -> str:
            name, default = match.group(1), match.group(2)
            if name in os.environ:
                return os.environ[name]
            if f"{name}_FILE" in os.environ:
                return _read_secret_file(name, os.environ[f"{name}_FILE"], path)
            if default is not None:
                return default
            raise ConfigError(f"{path}: environment variable {name} (or {name}_FILE) is not set")

        return _ENV_REF.sub(substitute, value)
    return value


def _read_secret_file(name: str, file: str, path: str) -> str:
    """``$NAME_FILE``: the Docker/Kubernetes secrets convention, a file holding the value.
    Editors and ``echo`` end it with a newline that is no part of the secret."""
    try:
        text = Path(file).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        reason = getattr(error, "strerror", None) or "not UTF-8 text"
        raise ConfigError(f"{path}: cannot read {name}_FILE {file}: {reason}") from None
    return text.removesuffix("\r\n") if text.endswith("\r\n") else text.removesuffix("\n")


def env_references(data: Any, path: str = "") -> dict[str, str]:
    """The first ``${NAME}`` each key's value names, by dotted key, so a message about a
    key can say which variable to set."""
    found: dict[str, str] = {}
    if isinstance(data, dict):
        for k, v in data.items():
            found.update(env_references(v, f"{path}.{k}" if path else str(k)))
    elif isinstance(data, list):
        for i, v in enumerate(data):
            found.update(env_references(v, f"{path}[{i}]"))
    elif isinstance(data, str) and (match := _ENV_REF.search(data)):
        found[path] = match.group(1)
    return found


def format_validation_error(error: ValidationError) -> str:
    """One line per problem: ``dotted.key: message``."""
    lines = []
    for item in error.errors():
        key = ".".join(str(part) for part in item["loc"])
        message = item["msg"].removeprefix("Value error, ")
        lines.append(f"{key}: {message}" if key else message)
    return "\n".join(lines)


def parse_registry(data: Any) -> Registry:
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError("the configuration must be a mapping of sections (advertisers, ...)")
    try:
        return Registry.model_validate(_expand_env(data, ""))
    except ValidationError as error:
        raise ConfigError(format_validation_error(error)) from None


def _read_yaml(source: Path) -> Any:
    try:
        text = source.read_text(encoding="utf-8")
    except OSError as error:
        raise ConfigError(f"cannot read config {source}: {error.strerror}") from None
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(error, "problem", None) or "invalid YAML"
        raise ConfigError(f"{source}{where}: {problem}") from None


def load_registry(path: str | Path | None) -> Registry:
    """Load and validate the YAML registry; ``None`` gives the defaults (no business set up)."""
    if path is None:
        return Registry()
    source = Path(path)
    data = _read_yaml(source)
    try:
        return parse_registry(data)
    except ConfigError as error:
        raise ConfigError(f"{source}:\n{error}") from None


def load_env_references(path: str | Path | None) -> dict[str, str]:
    """``env_references`` of a registry file (none for no file)."""
    return {} if path is None else env_references(_read_yaml(Path(path)))
