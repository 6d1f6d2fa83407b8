"""Name -> component registries.

Every prompt learner and add-on is registered with **one call** that binds its name, its config dataclass and
its implementing class. A component has two halves:

* its *declaration* — the config dataclass, whose class attributes also carry the published settings
  (``presets``, ``dataset_rules``) and, for add-ons, the add-ons it ``implies``. Declarations import neither torch
  nor open_clip, so resolving a configuration, ``vlprompt presets``, ``vlprompt list`` and every error found
  before model work take a fraction of a second;
* its *implementation* — the ``nn.Module`` subclass, imported only when a model is built.

Each built-in component is a package (``vlprompt/methods/coop/``, ``vlprompt/addons/dept/``;
:mod:`vlprompt.components`) whose ``config.py`` registers its declaration and names the implementation as
``"module:Class"``, imported on first :meth:`Registry.get`::

    @LEARNERS.register("coop", implementation="vlprompt.methods.coop.model:CoOp")
    @dataclass
    class CoOpConfig(LearnerConfig): ...

A component defined in one module (a plugin; ``tests/example_addon.py``) registers its class directly; the config
is then given as the second argument (in the style of peft's ``register_peft_method``)::

    @ADDONS.register("prompt_l2", PromptL2Config)
    class PromptL2(AddOn): ...

Either way the implementing class gets ``name`` / ``config_class`` set on it — for a declared component as soon
as its class is created (:meth:`Registry.bind`, called by the base classes), however its module was imported. A
registry imports the modules that declare its built-ins (``builtins``, and the ``config`` module of every
subpackage of ``packages``) on first use, so merely importing this module loads nothing. Unknown names raise a
one-line :class:`~vlprompt.errors.VLPromptError` listing the valid choices.
"""

from __future__ import annotations

import importlib
import pkgutil
from typing import Callable, Dict, Generic, Iterator, Optional, Sequence, TypeVar

from vlprompt.errors import VLPromptError

T = TypeVar("T")


def load_object(path: str):
    """The object a ``"module:attr"`` path names, its module imported now."""
    module, _, attr = path.partition(":")
    return getattr(importlib.import_module(module), attr)


class Registry(Generic[T]):
    """Maps names to objects (and, for components, to their config classes); ``kind`` and ``flag`` name them in
    error messages; ``builtins`` are modules whose import registers built-in entries; ``packages`` hold one
    subpackage per built-in entry, whose ``config`` module registers it."""

    def __init__(self, kind: str, flag: str, builtins: Sequence[str] = (), packages: Sequence[str] = ()):
        self.kind = kind
        self.flag = flag
        self._builtins = tuple(builtins)
        self._packages = tuple(packages)
        self._loaded = not (self._builtins or self._packages)
        self._items: Dict[str, Optional[T]] = {}
        self._configs: Dict[str, type] = {}
        self._lazy: Dict[str, str] = {}

    def _load(self) -> None:
        if not self._loaded:
            self._loaded = True
            for module in self._builtins:
                importlib.import_module(module)
            for package in self._packages:
                for info in pkgutil.iter_modules(importlib.import_module(package).__path__):
                    if info.ispkg:
                        importlib.import_module(f"{package}.{info.name}.config")

    def register(
        self, name: str, config_class: Optional[type] = None, *, implementation: Optional[str] = None
    ) -> Callable[[T], T]:
        """Decorator. Without ``implementation``: register the decorated object (a class gets ``name`` and
        ``config_class`` set). With ``implementation="module:Class"``: register the decorated *config class*; the
        implementing class is imported on first :meth:`get`."""

        def deco(obj: T) -> T:
            if name in self._items:
                raise ValueError(f"{self.kind} {name!r} is registered twice")
            if implementation is not None:
                self._configs[name] = obj  # type: ignore[assignment]
                self._lazy[name] = implementation
                self._items[name] = None
                return obj
            if config_class is not None:
                self._configs[name] = config_class
            self._items[name] = self._bind(name, obj)
            return obj

        return deco

    def _bind(self, name: str, obj: T) -> T:
        if isinstance(obj, type):
            obj.name = name
            if name in self._configs:
                obj.config_class = self._configs[name]
        return obj

    def bind(self, cls: type) -> None:
        """Bind ``cls`` to the declaration that names it as its implementation, if any (called when an
        implementing class is created, so it knows its name even when its module is imported directly)."""
        self._load()
        where = f"{cls.__module__}:{cls.__qualname__}"
        for name, path in self._lazy.items():
            if path == where:
                self._items[name] = self._bind(name, cls)

    def _unknown(self, name: str) -> VLPromptError:
        return VLPromptError(f"unknown {self.kind} {name!r} for {self.flag}; choose one of: {', '.join(self.names())}")

    def get(self, name: str) -> T:
        """The registered object (for a declared component: its implementing class, imported now)."""
        self._load()
        if name not in self._items:
            raise self._unknown(name)
        obj = self._items[name]
        if obj is None:
            obj = self._items[name] = self._bind(name, load_object(self._lazy[name]))
        return obj

    def config(self, name: str) -> type:
        """The config class of component ``name``, without importing its implementation."""
        self._load()
        if name not in self._items:
            raise self._unknown(name)
        if name not in self._configs:
            raise ValueError(f"{self.kind} {name!r} was registered without a config class")
        return self._configs[name]

    def names(self) -> list:
        self._load()
        return sorted(self._items)

    def __contains__(self, name: str) -> bool:
        self._load()
        return name in self._items

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())


#: prompt learners (base methods): ``coop``, ``cocoop``, ``ivlp``, ``vpt``, ``lpt``, ``maple``, ``zeroshot``
LEARNERS: Registry = Registry("method", "--method", packages=("vlprompt.methods",))
#: add-ons stacked on a learner: ``kg``, ``src``, ``gpa``, ``nemesis``, ``restore``, ``dept``
ADDONS: Registry = Registry("add-on", "--method (after '+')", packages=("vlprompt.addons",))


def declared(attribute: str) -> list:
    """The own value of ``attribute`` (a fact of :class:`vlprompt.components.Declaration`) of every registered
    config class that sets it — learners, then add-ons, in name order, each class once (a subclass's config does
    not repeat its parent's facts)."""
    values, seen = [], set()
    for registry in (LEARNERS, ADDONS):
        for name in registry.names():
            cls = registry._configs.get(name)
            if cls is not None and cls not in seen and attribute in vars(cls):
                seen.add(cls)
                values.append(vars(cls)[attribute])
    return values
