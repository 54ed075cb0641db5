"""A strict reader of the Prometheus text format (0.0.4), for the tests of ``/metrics``.

Every line must be a ``# HELP``, a ``# TYPE`` or a sample of the family declared last;
each family is declared once, counters end in ``_total``, histogram samples are its
``_bucket`` (with ``le``), ``_sum`` and ``_count``, and no series appears twice.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field

NAME = r"[a-zA-Z_:][a-zA-Z0-9_:]*"
LABEL = r'[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\\\|\\"|\\n)*"'
SAMPLE = re.compile(
    rf"^(?P<name>{NAME})(?:\{{(?P<labels>{LABEL}(?:,{LABEL})*)?\}})? "
    r"(?P<value>[-+]?(?:[0-9]*\.?[0-9]+(?:[eE][-+]?[0-9]+)?|Inf|NaN))$"
)
HELP = re.compile(rf"^# HELP (?P<name>{NAME}) (?P<text>\S.*)$")
TYPE = re.compile(rf"^# TYPE (?P<name>{NAME}) (?P<kind>counter|gauge|histogram|summary|untyped)$")
PAIR = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')
SUFFIXES = {"histogram": ("_bucket", "_sum", "_count"), "summary": ("", "_sum", "_count")}


@dataclass
class Family:
    name: str
    kind: str = ""
    help: str = ""
    samples: dict[tuple[str, tuple[tuple[str, str], ...]], float] = field(default_factory=dict)

    def value(self, **labels: str) -> float:
        """The sample with exactly these labels (0 when absent: a counter not yet moved)."""
        return self.samples.get((self.name, tuple(sorted(labels.items()))), 0.0)

    def by(self, *names: str) -> dict[tuple[str, ...], float]:
        """Samples of the family's own name, keyed by the values of ``names``."""
        out: dict[tuple[str, ...], float] = {}
        for (sample, labels), value in self.samples.items():
            if sample == self.name:
                found = dict(labels)
                out[tuple(found[n] for n in names)] = value
        return out


def parse(text: str) -> dict[str, Family]:
    assert text.endswith("\n"), "the exposition ends with a newline"
    families: dict[str, Family] = {}
    current: Family | None = None
    for number, line in enumerate(text.splitlines(), 1):
        where = f"line {number}: {line!r}"
        if match := HELP.match(line):
            name = match["name"]
            assert name not in families or not families[name].help, f"second HELP, {where}"
            current = families.setdefault(name, Family(name))
            current.help = match["text"]
        elif match := TYPE.match(line):
            name = match["name"]
            current = families.setdefault(name, Family(name))
            assert not current.kind, f"second TYPE, {where}"
            assert not current.samples, f"TYPE after samples, {where}"
            current.kind = match["kind"]
            if current.kind == "counter":
                assert name.endswith("_total"), f"a counter's name ends in _total, {where}"
        elif match := SAMPLE.match(line):
            assert current is not None and current.kind, f"sample before its TYPE, {where}"
            name = match["name"]
            allowed = [current.name + s for s in SUFFIXES.get(current.kind, ("",))]
            assert name in allowed, f"sample outside family {current.name}, {where}"
            labels = tuple(sorted(PAIR.findall(match["labels"] or "")))
            assert len({k for k, _ in labels}) == len(labels), f"repeated label, {where}"
            if name.endswith("_bucket") and current.kind == "histogram":
                assert "le" in dict(labels), f"bucket without le, {where}"
            key = (name, labels)
            assert key not in current.samples, f"repeated series, {where}"
            value = float(match["value"].replace("Inf", "inf").replace("NaN", "nan"))
            if current.kind == "counter":
                assert value >= 0 and not math.isnan(value), f"negative counter, {where}"
            current.samples[key] = value
        else:
            raise AssertionError(f"not a line of the text format, {where}")
    for family in families.values():
        assert family.kind and family.help, f"{family.name} lacks HELP or TYPE"
    return families
