"""Refuse to serve with shipped or weak secrets, unless in dev mode on loopback.

The example registry starts out of the box (``make run``) because its secrets have
defaults; those defaults are public, so a service using them is open to anyone who
read the repository. ``run``, ``edge`` and ``worker`` therefore stop at start-up
when a secret is weak (``clicktrail.config.secrets``), and ``--dev`` (or
``CLICKTRAIL_DEV=1``) lets them through only where nobody else can reach them: a
loopback listen address, and for a worker a loopback broker.
"""

from __future__ import annotations

import argparse
import ipaddress
import os
import sys
from collections.abc import Iterable
from pathlib import Path

import structlog

from clicktrail.config import ConfigError, Registry
from clicktrail.config.load import load_env_references
from clicktrail.config.secrets import WeakSecret, find_weak

log = structlog.get_logger("clicktrail.security")

ENV_DEV = "CLICKTRAIL_DEV"
_TRUE = {"1", "true", "yes", "on"}


def add_dev_argument(parser: argparse.ArgumentParser, where: str = "the listen host") -> None:
    parser.add_argument(
        "--dev",
        action="store_true",
        default=os.environ.get(ENV_DEV, "").strip().lower() in _TRUE,
        help=f"dev mode: start even with the example (shipped) or weak secrets; only when "
        f"{where} is loopback (default: ${ENV_DEV}=1)",
    )


def is_loopback(host: str) -> bool:
    """127.0.0.0/8, ::1 or localhost: reachable from this machine only."""
    host = host.strip().strip("[]").lower()
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def broker_hosts(bootstrap: str) -> list[str]:
    """The hosts of ``host:port,host:port`` (``[::1]:9092`` included)."""
    hosts = []
    for server in (s.strip() for s in bootstrap.split(",")):
        host, _, port = server.rpartition(":")
        hosts.append(host if host and port.isdigit() else server)
    return hosts


def require_safe_secrets(
    registry: Registry, *, config: str | Path | None, dev: bool, hosts: Iterable[str], role: str
) -> None:
    """Return when the secrets are strong, or in dev mode on loopback (after a warning);
    raise ``ConfigError`` (one line, exit code 2) otherwise."""
    hosts = list(hosts)
    if dev and not all(is_loopback(h) for h in hosts):
        exposed = ", ".join(h for h in hosts if not is_loopback(h))
        raise ConfigError(
            f"--dev ({ENV_DEV}) is only allowed on loopback (127.0.0.1, ::1, localhost), "
            f"not on {exposed}"
        )
    weak = find_weak(registry)
    if dev:
        _warn(weak, role)
        return
    if weak:
        hints = load_env_references(config)
        problems = "; ".join(_problem(w, hints) for w in weak)
        raise ConfigError(f"{problems}; or pass --dev on loopback")


def _problem(weak: WeakSecret, hints: dict[str, str]) -> str:
    name = hints.get(weak.key)
    fix = f"set {name} (or {name}_FILE)" if name else "set it in the config"
    return f"{weak}, {fix}"


def _warn(weak: list[WeakSecret], role: str) -> None:
    keys = [w.key for w in weak]
    log.warning("security.dev_mode", role=role, weak_secrets=keys)
    listed = ", ".join(keys) if keys else "none"
    print(
        f"clicktrail: WARNING: dev mode: {role} accepts weak or shipped secrets ({listed}); "
        "reachable from this machine only, never deploy it like this",
        file=sys.stderr,
        flush=True,
    )
