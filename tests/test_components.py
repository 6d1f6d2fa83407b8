"""One package per component, its facts declared next to it (vlprompt.components): every built-in learner and add-on
is a package whose config.py declares it and whose model.py implements it; the collectors (presets, published
tables, recipes, reference trainers, aliases) see each fact once; generic code names no component."""

import ast
import importlib
import pkgutil
from pathlib import Path

import vlprompt
from vlprompt.components import Declaration, Published
from vlprompt.protocols import BENCHMARKS, DG_TARGETS, PROTOCOLS
from vlprompt.registry import ADDONS, LEARNERS, declared, load_object
from vlprompt.task.composition import aliases, parse_method

SRC = Path(vlprompt.__file__).parent
#: generic code that still names components, and why: the zero-shot pipeline and sweep jobs (zero-shot CLIP is
#: every protocol's reference row) and the reader of CLIP-LoRA's own file format (``convert --from clip-lora``)
NAMING_COMPONENTS = {
    "__init__.py": {"zeroshot"},
    "api.py": {"zeroshot"},
    "pipeline/zeroshot.py": {"zeroshot"},
    "results/summaries.py": {"zeroshot"},
    "sweep/jobs.py": {"zeroshot"},
    "convert/clip_lora.py": {"lora"},
}


def builtin_packages():
    for kind in ("methods", "addons"):
        package = importlib.import_module(f"vlprompt.{kind}")
        for info in pkgutil.iter_modules(package.__path__):
            if info.ispkg:
                yield kind, info.name


def test_every_builtin_component_is_a_package_declaring_and_implementing_it():
    seen = set()
    for registry in (LEARNERS, ADDONS):
        for name in registry.names():
            cls = registry.config(name)
            module = cls.__module__
            if not module.startswith("vlprompt."):
                continue  # the test plugins
            kind, package, leaf = module.split(".")[1:]
            assert leaf == "config" and issubclass(cls, Declaration), name
            assert registry._lazy[name].startswith(f"vlprompt.{kind}.{package}.model:"), name
            seen.add((kind, package))
    assert seen == set(builtin_packages())


def test_each_fact_is_declared_once_and_means_something():
    tables = [entry for entries in declared("published") for entry in entries]
    assert all(isinstance(t, Published) and t.source for t in tables)
    keys = [(t.protocol, t.method, t.backbone) for t in tables]
    assert len(keys) == len(set(keys))
    known_rows = {*BENCHMARKS, *DG_TARGETS, "average"}
    for t in tables:
        assert t.protocol in PROTOCOLS and parse_method(t.method)
        assert set(t.rows) <= known_rows, (t.method, set(t.rows) - known_rows)
    recipes = [r for rs in declared("recipes") for r in rs]
    assert len({r.name for r in recipes}) == len(recipes)
    for r in recipes:
        assert r.protocol in PROTOCOLS and all(parse_method(m) for m in r.methods)
    trainers = [(m, t) for table in declared("reference") for m, t in table.items()]
    assert len({m for m, _ in trainers}) == len(trainers)
    for method, trainer in trainers:
        assert parse_method(method) and trainer.rules
        assert trainer.derive is None or callable(load_object(trainer.derive))
    assert aliases() == {"kgcoop": ("coop", ("kg",)), "promptsrc": ("ivlp", ("src",)), "tcp": ("tcp", ("kg",))}


def test_a_subclass_config_does_not_repeat_its_parents_facts():
    """CoCoOp's config subclasses CoOp's, Tip-Adapter-F's Tip-Adapter's: each fact still comes once."""
    recipes = [r.name for rs in declared("recipes") for r in rs]
    assert recipes.count("coop-fewshot") == 1 and recipes.count("tip-adapter-fewshot") == 1


def test_generic_code_names_no_component():
    """Name special cases became declared attributes (DePT's optional head, its exported fused head, the aliases,
    the settings a checkpoint's shapes fix): outside the component packages, no code spells a component's name
    (the command line and the demo choose methods by name, as a user does)."""
    names = set(LEARNERS.names()) | set(ADDONS.names()) | set(aliases())
    found = {}
    for path in sorted(SRC.rglob("*.py")):
        rel = path.relative_to(SRC).as_posix()
        if rel.startswith(("methods/", "addons/", "cli/")) or rel == "demo.py":
            continue
        tree = ast.parse(path.read_text())
        spelled = {n.value for n in ast.walk(tree) if isinstance(n, ast.Constant) and n.value in names}
        if spelled - NAMING_COMPONENTS.get(rel, set()):
            found[rel] = sorted(spelled - NAMING_COMPONENTS.get(rel, set()))
    assert not found
