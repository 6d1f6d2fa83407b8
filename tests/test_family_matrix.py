"""Every registered learner (and the add-on compositions of the paper methods) × every backbone family, driven by
the registries: it trains two steps and predicts, or — exactly when it puts prompts into an image tower that takes
none — it is refused before training with one line naming that tower (or, for an add-on needing the deep vision
prompts the learner then lacks, naming the missing capability) (issue 20)."""

import json

import pytest
import torch

import tiny_towers
from tiny_models import fit_on_random_features
from vlprompt import create_task
from vlprompt.backbones import load_backbone
from vlprompt.capabilities import Capability
from vlprompt.config import make_config
from vlprompt.errors import VLPromptError
from vlprompt.registry import LEARNERS
from vlprompt.task import LabelSpace, StepInfo, parse_method

SPACE = LabelSpace(
    ["red circle", "blue star", "green moon"],
    template="a photo of a {}.",
    kgcoop_template="a photo of a {}.",
    ensemble_templates=["a photo of a {}."],
)
METHODS = [*LEARNERS.names(), "kgcoop", "promptsrc", "coop+dept", "coop+nemesis", "maple+restore", "ivlp+dept"]
FAMILIES = ["clip", "clip-resnet", "eva", "siglip", "timm-cnn"]


@pytest.fixture(scope="module")
def backbones(tmp_path_factory, tiny_vit, tiny_rn):
    pytest.importorskip("transformers")
    root = tmp_path_factory.mktemp("families")
    vocab = tiny_towers.save_siglip_tokenizer(root / "tokenizer", ["red", "blue", "green", "circle", "star", "moon"])
    configs = {
        "eva": tiny_towers.TINY_EVA02,
        "siglip": tiny_towers.tiny_siglip_config(root / "tokenizer", vocab, context_length=32),
        "timm-cnn": tiny_towers.TINY_CONVNEXT,
    }
    loaded = {"clip": tiny_vit, "clip-resnet": tiny_rn}
    for name, config in configs.items():
        (root / f"{name}.json").write_text(json.dumps(config))
        loaded[name] = load_backbone(str(root / f"{name}.json"), "none", device="cpu")
    return loaded


def _puts_image_prompts(method, backbone) -> bool:
    """Whether the method's learner carries image-tower prompts on a backbone whose image tower takes them."""
    cfg = make_config(method, "toy-b2n")
    base = parse_method(method).base
    return Capability.IMAGE_PROMPTS in LEARNERS.get(base).capabilities(cfg.components[base], backbone)


def _wrapped_towers(method):
    cfg = make_config(method, "toy-b2n")
    base = parse_method(method).base
    return LEARNERS.get(base).wrapped_towers(cfg.components[base])


@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize("method", METHODS)
def test_method_on_family(method, family, backbones):
    bb = backbones[family]
    refused = _puts_image_prompts(method, backbones["clip"]) and Capability.VISION_PROMPTS not in bb.capabilities(
        "vision"
    )
    unwrappable = sorted(t for t in _wrapped_towers(method) if Capability.BLOCK_WRAPPERS not in bb.capabilities(t))
    if unwrappable:  # a learner of block wrappers on a tower whose blocks cannot take them (LoRA on a timm tower)
        with pytest.raises(VLPromptError, match=rf"the {unwrappable[-1]} tower of this backbone cannot take") as err:
            create_task(method, bb, SPACE)
        assert "\n" not in str(err.value)
        return
    if refused:
        with pytest.raises(
            VLPromptError,
            match=r"^(vision prompts need a ViT image tower; this backbone's image tower is|.* does not provide)",
        ) as err:
            create_task(method, bb, SPACE)
        assert "\n" not in str(err.value)
        return
    torch.manual_seed(0)
    task = create_task(method, bb, SPACE)
    size = bb.image_size
    images, labels = torch.randn(3, 3, size, size), torch.tensor([0, 1, 2])
    fit_on_random_features(task, bb.embed_dim, labels)
    groups = task.param_groups(0.01)
    if groups:
        opt = torch.optim.SGD([p for g in groups for p in g["params"]], lr=0.01)
        for step in range(2):
            result = task.training_step(images, labels, StepInfo(epoch=0, num_epochs=2, step=step), features=False)
            assert torch.isfinite(result.loss)
            opt.zero_grad()
            result.loss.backward()
            opt.step()
        task.on_epoch_end(0, 2)
    task.eval()
    with torch.no_grad():
        logits = task.predict(images=images)
    assert logits.shape == (3, 3) and bool(torch.isfinite(logits).all())
