"""Configuration: the business registry, read and validated in one place."""

from clicktrail.config.load import (
    ConfigError,
    format_validation_error,
    load_registry,
    parse_registry,
)
from clicktrail.config.registry import Registry

__all__ = ["ConfigError", "Registry", "format_validation_error", "load_registry", "parse_registry"]
