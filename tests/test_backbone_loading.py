"""--backbone / --pretrained resolution: local files of every kind, pickle safety, offline tags."""

import collections
import time

import pytest
import torch

from vlprompt.backbones import load_backbone
from vlprompt.backbones.loading import build_model, load_clip
from vlprompt.errors import VLPromptError

# build_model_from_openai_state_dict infers heads as width // 64, so the OpenAI-style model is 64 wide
OPENAI_STYLE = {
    "embed_dim": 32,
    "quick_gelu": True,
    "vision_cfg": {"image_size": 32, "layers": 2, "width": 64, "patch_size": 8, "head_width": 64},
    "text_cfg": {"context_length": 77, "vocab_size": 49408, "width": 64, "heads": 1, "layers": 2},
}


def _same_weights(a, b):
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


def test_config_json_and_safetensors(tiny_vit_files):
    cfg, weights = tiny_vit_files
    model, spec = load_clip(str(cfg), str(weights))
    assert spec.pretrained == str(weights) and not model.training
    assert not any(p.requires_grad for p in model.parameters())


def test_pt_state_dict_and_directory(tmp_path, tiny_vit_files):
    cfg, weights = tiny_vit_files
    ref, _ = load_clip(str(cfg), str(weights))
    sd = {"state_dict": {"module." + k: v for k, v in ref.state_dict().items()}}
    torch.save(sd, tmp_path / "model.pt")
    got, _ = load_clip(str(cfg), str(tmp_path / "model.pt"))
    assert _same_weights(ref, got)
    folder = tmp_path / "dir"
    folder.mkdir()
    torch.save(ref.state_dict(), folder / "open_clip_pytorch_model.bin")
    assert _same_weights(ref, load_clip(str(cfg), str(folder))[0])


class Evil(collections.OrderedDict):
    """A pickled object of a non-allowlisted class: weights_only loading must refuse it."""


def test_pickle_needing_full_unpickling_is_refused(tmp_path, tiny_vit_files):
    cfg, weights = tiny_vit_files
    ref, _ = load_clip(str(cfg), str(weights))
    path = tmp_path / "legacy.pth"
    torch.save(Evil(ref.state_dict()), path)
    with pytest.raises(VLPromptError, match="--trust-pickle"):
        load_clip(str(cfg), str(path))
    got, _ = load_clip(str(cfg), str(path), trust_pickle=True)
    assert _same_weights(ref, got)


def test_openai_jit_archive(tmp_path):
    torch.manual_seed(3)
    ref = build_model(OPENAI_STYLE).eval()
    for p in ref.parameters():  # OpenAI archives are stored partly in fp16: make the round trip lossless
        p.data = p.data.half().float()
    archive = tmp_path / "ViT-tiny.pt"
    image = torch.randn(1, 3, 32, 32)
    torch.jit.trace_module(ref, {"encode_image": (image,)}).save(str(archive))
    model, _ = load_clip("ViT-B-16", str(archive))
    assert (model.encode_image(image) - ref.encode_image(image)).abs().max() < 1e-5
    ids = torch.tensor([[49406, 320, 1125, 49407] + [0] * 73])
    assert (model.encode_text(ids) - ref.encode_text(ids)).abs().max() < 1e-5


def test_weights_for_other_architecture_fail_clearly(tmp_path, tiny_vit_files, tiny_rn_files):
    cfg, _ = tiny_vit_files
    _, rn_weights = tiny_rn_files
    with pytest.raises(VLPromptError, match="do not fit --backbone"):
        load_clip(str(cfg), str(rn_weights))


def test_tag_fails_fast_offline():
    start = time.monotonic()
    with pytest.raises(VLPromptError, match="'openai'.*--pretrained /path"):
        load_clip("ViT-B-16", "openai")
    assert time.monotonic() - start < 10


def test_tag_fails_fast_when_host_unreachable(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "0")

    def refuse(*args, **kwargs):
        raise OSError("network is unreachable")

    monkeypatch.setattr("socket.create_connection", refuse)
    with pytest.raises(VLPromptError, match="unreachable"):
        load_clip("RN50", "openai")


@pytest.mark.parametrize(
    "backbone, pretrained, message",
    [
        ("ViT-Q-99", "none", "unknown --backbone 'ViT-Q-99'"),
        ("missing/cfg.json", "none", "backbone config file not found"),
        ("ViT-B-16", "no-such-tag", "known tags for ViT-B-16"),
        ("ViT-B-16", "/nope/w.safetensors", "--pretrained file not found"),
    ],
)
def test_bad_backbone_arguments(backbone, pretrained, message):
    with pytest.raises(VLPromptError, match=message):
        load_clip(backbone, pretrained)


def test_random_named_model_and_tokenizer():
    model = load_backbone("RN50", "none", device="cpu")
    assert model.text_width == 512 and model.embed_dim == 1024 and "vision_prompts" not in model.capabilities("vision")
    ids = model.tokenize(["X X X X dog."])
    assert ids[0, :7].tolist() == [49406, 343, 343, 343, 343, 1929, 269]
