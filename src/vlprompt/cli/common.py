"""Argument groups shared by several sub-commands, the typed values they become, and the argument types that
refuse an out-of-range number while the command line is parsed."""

from __future__ import annotations

import argparse
import math
from typing import Optional

from vlprompt.config import SUBSAMPLES, DataConfig

#: the largest seed (NumPy and torch take 64-bit seeds; 2^63 - 1 keeps every consumer happy)
MAX_SEED = 2**63 - 1


def int_range(minimum: int, maximum: Optional[int] = None):
    """An argparse type: an integer in ``[minimum, maximum]``."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
        if value < minimum or (maximum is not None and value > maximum):
            bound = f"in {minimum}..{maximum}" if maximum is not None else f">= {minimum}"
            raise argparse.ArgumentTypeError(f"must be {bound}, got {value}")
        return value

    return parse


def positive_float(text: str) -> float:
    """An argparse type: a finite number > 0."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(f"must be a positive number, got {text}")
    return value


count = int_range(0)
positive = int_range(1)
seed = int_range(0, MAX_SEED)


def add_dataset_args(
    p: argparse.ArgumentParser, shots: bool = True, prompts: bool = True, dataset_required: bool = True
) -> None:
    g = p.add_argument_group("data")
    g.add_argument(
        "--dataset",
        required=dataset_required,
        help="dataset name (see `vlprompt list`): a benchmark, a toy-* set, `folder` or `split`",
    )
    g.add_argument(
        "--data-root",
        default=None,
        help="folder holding the dataset folders (benchmarks), the ImageFolder tree (`folder`) or "
        "the images the split file points into (`split`)",
    )
    g.add_argument("--split-file", default=None, help="CoOp-format split JSON (for --dataset split)")
    if shots:
        g.add_argument(
            "--shots",
            type=count,
            default=0,
            help="images per class drawn from train (0 = all; CoOp few-shot sampling)",
        )
        g.add_argument("--seed", type=seed, default=1, help="seed for few-shot sampling and training")
        g.add_argument(
            "--subsample",
            choices=SUBSAMPLES,
            default="all",
            help="label space: all classes, the base half or the new half (base-to-new protocol)",
        )
    if prompts:
        add_prompt_args(g)
    g.add_argument(
        "--skip-corrupt", action="store_true", help="skip unreadable images with a warning instead of stopping"
    )
    g.add_argument("--num-workers", type=count, default=0, help="data-loader worker processes")


def add_prompt_args(g) -> None:
    """``--template`` and ``--classnames`` (the data group of every command that reads a dataset)."""
    g.add_argument(
        "--template",
        default=None,
        help='prompt template with one {} for the class name, e.g. "a photo of a {}, a type of flower." '
        "(default: the dataset's own; used by zero-shot, KgCoOp's targets and ctx_init=template)",
    )
    g.add_argument(
        "--classnames",
        default=None,
        metavar="FILE",
        help="class names for the prompts: JSON {folder name: class name} or [names in label order], or a text "
        "file of 'folder: name' lines or of names in label order",
    )


def add_label_space_args(p: argparse.ArgumentParser) -> None:
    """The classes a trained run is asked about (``predict``, ``export``): names and the template for new ones."""
    p.add_argument(
        "--classnames",
        default=None,
        metavar="FILE|a,b,c",
        help="the classes: a class-names file (JSON or text, see `train --help`) or a comma-separated list "
        "(default: the trained classes; other classes are an unseen label space, without DePT's head)",
    )
    p.add_argument("--template", default=None, help="prompt template for the classes (default: the run's)")


def add_verbosity_args(p: argparse.ArgumentParser) -> None:
    g = p.add_mutually_exclusive_group()
    g.add_argument(
        "-q", "--quiet", action="store_true", help="no progress or informational output: only warnings and errors"
    )
    g.add_argument("-v", "--verbose", action="store_true", help="debug logging on the console")


def add_backbone_args(p: argparse.ArgumentParser, inherit: bool = False) -> None:
    """``inherit``: the backbone defaults to the trained run's (eval, corrupt, analyze)."""
    g = p.add_argument_group("backbone")
    g.add_argument(
        "--backbone",
        default=None if inherit else "toy",
        help="default: the run's backbone"
        if inherit
        else "open_clip model name (e.g. ViT-B-16, RN50; ViT-B-16-quickgelu for OpenAI weights from a local "
        "file), a path to an open_clip model-config JSON, or `toy` (the embedded offline model; default)",
    )
    g.add_argument(
        "--pretrained",
        default=None,
        help="default: the run's weights source"
        if inherit
        else "open_clip pretrained tag (e.g. openai; needs network once), a local weights file "
        "(.safetensors, .pt/.bin state dict, OpenAI JIT archive) or a local directory; `none` = random init",
    )
    add_trust_pickle_arg(g)
    act = g.add_mutually_exclusive_group()
    act.add_argument(
        "--quick-gelu",
        dest="quick_gelu",
        action="store_true",
        default=None,
        help="build the MLPs with QuickGELU, x*sigmoid(1.702x), as OpenAI's CLIP (default: decided from the "
        "weights: OpenAI JIT archives and state dicts, *-quickgelu names, open_clip_config.json, tags)",
    )
    act.add_argument(
        "--no-quick-gelu",
        dest="quick_gelu",
        action="store_false",
        help="build the MLPs with GELU whatever the weights suggest",
    )
    g.add_argument("--device", default="auto", help="auto | cpu | cuda | cuda:N")


def add_trust_pickle_arg(g) -> None:
    """``--trust-pickle``: every command that loads backbone weights takes it (the refusal's hint names it)."""
    g.add_argument(
        "--trust-pickle",
        action="store_true",
        help="allow fully unpickling a weights file that weights_only loading refuses "
        "(only for files you trust: unpickling can run arbitrary code)",
    )


def add_run_args(p: argparse.ArgumentParser, batch_default=None, precision_default="auto") -> None:
    g = p.add_argument_group("run")
    g.add_argument("--out", required=True, help="run directory (created; an interrupted run there is resumed)")
    g.add_argument(
        "--batch-size",
        type=positive,
        default=batch_default,
        help="batch size (default: the method preset; zeroshot: 100)",
    )
    g.add_argument(
        "--precision",
        default=precision_default,
        help="auto (fp32 on CPU, bf16 autocast on CUDA) | fp32 | bf16 | amp | fp16 (the references' "
        "pure half mode, for parity)",
    )
    g.add_argument(
        "--no-feature-cache",
        action="store_true",
        help="always run the image tower on the images during training and testing "
        "(by default frozen image features are cached when the image tower carries no prompts)",
    )


def data_config(args: argparse.Namespace) -> DataConfig:
    return DataConfig(
        dataset=args.dataset,
        data_root=args.data_root,
        split_file=args.split_file,
        shots=getattr(args, "shots", 0),
        seed=getattr(args, "seed", 1),
        subsample=getattr(args, "subsample", "all"),
        skip_corrupt=args.skip_corrupt,
        num_workers=args.num_workers,
        template=getattr(args, "template", None),
        templates_file=getattr(args, "templates_file", None),
        classnames_file=getattr(args, "classnames", None),
    )


def data_options(args: argparse.Namespace) -> dict:
    """The data fields of :func:`vlprompt.config.make_config` from the data flags."""
    data = data_config(args)
    return {k: getattr(data, k) for k in ("data_root", "split_file", "shots", "seed", "subsample", "skip_corrupt",
                                          "num_workers", "template", "templates_file", "classnames_file")}  # fmt: skip


def backbone_options(args: argparse.Namespace) -> dict:
    """The backbone options of :func:`vlprompt.config.make_config` / :func:`vlprompt.api.evaluate`."""
    return {k: getattr(args, k, None) for k in ("backbone", "pretrained", "trust_pickle", "device", "quick_gelu")}
