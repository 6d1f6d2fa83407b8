"""A tiny name -> object registry used for datasets, backbones, methods and add-ons."""

from __future__ import annotations

from typing import Callable, Dict, Generic, Iterator, TypeVar

from vlprompt.errors import VLPromptError

T = TypeVar("T")


class Registry(Generic[T]):
    """Maps names to objects; unknown names raise a one-line error listing the valid choices."""

    def __init__(self, kind: str, flag: str):
        self.kind = kind
        self.flag = flag
        self._items: Dict[str, T] = {}

    def register(self, name: str) -> Callable[[T], T]:
        def deco(obj: T) -> T:
            if name in self._items:
                raise ValueError(f"{self.kind} {name!r} is registered twice")
            self._items[name] = obj
            return obj

        return deco

    def get(self, name: str) -> T:
        try:
            return self._items[name]
        except KeyError:
            raise VLPromptError(
                f"unknown {self.kind} {name!r} for {self.flag}; choose one of: {', '.join(self.names())}"
            ) from None

    def names(self) -> list:
        return sorted(self._items)

    def __contains__(self, name: str) -> bool:
        return name in self._items

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())
