"""What the add-ons' declarations share (torch-free): the base config class."""

from __future__ import annotations

from dataclasses import dataclass

from vlprompt.components import Declaration


@dataclass
class AddOnConfig(Declaration):
    """Fields shared by all add-ons; subclasses add their own. Besides the facts of
    :class:`~vlprompt.components.Declaration`: ``implies`` — add-ons it brings along (``src`` implies ``gpa``)."""

    implies = ()  # type: Tuple[str, ...]
