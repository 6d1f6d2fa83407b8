"""Composition matrix, driven by the registries: every registered learner × every registered add-on either
trains a step and round-trips save/load, or — exactly when the add-on needs a capability the learner does not
provide — fails before anything is built with one line naming it. A new learner or add-on is picked up without
editing this file (see CONTRIBUTING.md; ``tests/example_addon.py`` is registered by conftest)."""

import pytest
import torch

from tiny_models import fit_on_random_features
from vlprompt import create_task
from vlprompt.errors import VLPromptError
from vlprompt.registry import ADDONS, LEARNERS
from vlprompt.task import LabelSpace, StepInfo, parse_method

SPACE = LabelSpace(
    ["red circle", "blue star", "green moon"],
    template="a photo of a {}.",
    kgcoop_template="a photo of a {}.",
    ensemble_templates=["a photo of a {}."],
)
#: learners that are not prompt learners (nothing to train): they take part in evaluation only
NOT_TRAINABLE = {"zeroshot"}


def expected_rejection(method: str, backbone):
    """The capability an add-on lacks on this learner, derived from the components' own declarations."""
    from vlprompt.config import make_config

    cfg = make_config(method, "toy-b2n")
    comp = parse_method(method)
    if LEARNERS.get(comp.base).fitted and comp.addons:
        return "is fitted, not trained"
    provides = LEARNERS.get(comp.base).capabilities(cfg.components[comp.base], backbone)
    for name in comp.addons:
        impl = ADDONS.get(name).implementation(cfg.components[name])
        missing = sorted(impl.requirements(cfg.components[name]) - provides)
        if missing:
            return f"needs {', '.join(missing)}"
    return None


@pytest.mark.parametrize("base", LEARNERS.names())
@pytest.mark.parametrize("addon", ADDONS.names())
def test_base_times_addon(base, addon, tiny_vit):
    method = f"{base}+{addon}"
    reason = expected_rejection(method, tiny_vit)
    if reason:
        with pytest.raises(VLPromptError, match=reason):
            create_task(method, tiny_vit, SPACE)
        return
    torch.manual_seed(0)
    task = create_task(method, tiny_vit, SPACE)
    images, labels = torch.randn(3, 3, 32, 32), torch.tensor([0, 1, 2])
    fit_on_random_features(task, tiny_vit.embed_dim, labels)
    groups = task.param_groups(0.01)
    if base in NOT_TRAINABLE and not groups:
        return
    opt = torch.optim.SGD([p for g in groups for p in g["params"]], lr=0.01)
    result = task.training_step(images, labels, StepInfo(epoch=0, num_epochs=2, step=0), features=False)
    assert torch.isfinite(result.loss)
    result.loss.backward()
    opt.step()
    task.on_epoch_end(0, 2)
    state = {k: v.clone() for k, v in task.release_state_dict().items()}
    torch.manual_seed(1)
    fresh = create_task(method, tiny_vit, SPACE)
    fresh.shape_fitted_buffers(state)  # a fitted cache takes the stored size, as loading a run does
    fresh.load_state_dict(state, strict=False)
    task.eval(), fresh.eval()
    assert torch.allclose(task.predict(images=images), fresh.predict(images=images), atol=1e-6)


def test_every_pair_has_an_outcome(tiny_vit):
    """Each registered add-on is accepted by at least one learner and declares what it needs."""
    for addon in ADDONS.names():
        outcomes = [expected_rejection(f"{b}+{addon}", tiny_vit) for b in LEARNERS.names()]
        assert any(o is None for o in outcomes), f"add-on {addon!r} fits no registered learner"


@pytest.mark.parametrize("method", ["maple+dept+restore", "kgcoop+dept", "promptsrc+nemesis", "ivlp+src+dept"])
def test_stacked_compositions(method, tiny_vit):
    space = LabelSpace(["red circle", "blue star"], kgcoop_template="a photo of a {}.")
    task = create_task(method, tiny_vit, space)
    out = task(images=torch.randn(2, 3, 32, 32))
    terms = task.loss_terms(out, torch.tensor([0, 1]), StepInfo(num_epochs=2))
    assert all(torch.isfinite(v) for v in terms.values())


@pytest.mark.parametrize(
    "method, message",
    [
        ("coop+maple", "two base methods"),
        ("coop+dept+dept", "twice"),
        ("coop+", "expected a base method plus add-ons"),
        ("+nemesis", "expected a base method plus add-ons"),
        ("coop+nemesis", None),  # a bare coop+nemesis runs with documented defaults
    ],
)
def test_invalid_compositions_fail_cleanly(method, message, tiny_vit):
    if message is None:
        assert create_task(method, tiny_vit, LabelSpace(["a", "b"])).addons["nemesis"].config.weight == 1.0
        return
    with pytest.raises(VLPromptError, match=message):
        create_task(method, tiny_vit, LabelSpace(["a", "b"]))


def test_aliases_and_implied_addons_are_one_composition():
    assert parse_method("promptsrc").components == parse_method("ivlp+src").components
    assert parse_method("ivlp+src").components == ("ivlp", "src", "gpa")
    assert parse_method("ivlp+src+gpa").components == ("ivlp", "src", "gpa")
    assert parse_method("kgcoop+dept").components == ("coop", "kg", "dept")
