"""Fields of the configuration sections: :func:`setting` (a dataclass field with help text, an optional literal
``none`` and a numeric range) and :func:`check_bounds`, the one range check of every numeric setting — the
building blocks of :mod:`vlprompt.config` and of every component's config, kept below both."""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any, Dict, Optional

from vlprompt.errors import VLPromptError


@dataclass(frozen=True)
class Bounds:
    """The range of a numeric setting: ``low`` (excluded when ``open_low``) to ``high``; every value must also be
    finite."""

    low: Optional[float] = None
    high: Optional[float] = None
    open_low: bool = False

    def holds(self, value: float) -> bool:
        if not math.isfinite(value):
            return False
        above = self.low is None or (value > self.low if self.open_low else value >= self.low)
        return above and (self.high is None or value <= self.high)

    def __str__(self) -> str:
        if self.low is not None and self.high is not None:
            return f"in {self.low:g}..{self.high:g}"
        if self.low is not None:
            return f"{'>' if self.open_low else '>='} {self.low:g}"
        return f"<= {self.high:g}" if self.high is not None else "a finite number"


#: the usual ranges of :func:`setting`'s ``bounds``
FINITE, AT_LEAST_0, AT_LEAST_1 = Bounds(), Bounds(0), Bounds(1)
POSITIVE, UNIT = Bounds(0, open_low=True), Bounds(0, 1)


def setting(
    default: Any = None, help: str = "", literal_none: bool = False, bounds: Optional[Bounds] = None, **kw
) -> Any:
    """A dataclass field with ``help`` metadata (shown by ``vlprompt presets``). ``literal_none``: the string
    ``none`` is a value of this field (``--pretrained none`` = random weights), not "unset". ``bounds``: the range
    of a numeric value (:func:`check_bounds`)."""
    metadata = {"help": help, "literal_none": literal_none, "bounds": bounds}
    if "default_factory" in kw:
        return field(metadata=metadata, **kw)
    return field(default=default, metadata=metadata, **kw)


def check_bounds(cls, values: Dict[str, Any], section: str) -> None:
    """A one-line error naming ``--set section.key`` for the first numeric value of ``values`` (fields of section
    dataclass ``cls``) that is non-finite or outside its field's ``bounds``; the example is the field's default."""
    for f in dataclasses.fields(cls):
        bounds, value = f.metadata.get("bounds"), values.get(f.name)
        if bounds is None or not isinstance(value, (int, float)) or isinstance(value, bool) or bounds.holds(value):
            continue
        key = f"{section}.{f.name}"
        fix = f"(e.g. --set {key}={f.default})" if isinstance(f.default, (int, float)) else f"(fix --set {key})"
        raise VLPromptError(f"{key} must be {bounds}, got {value} {fix}")
