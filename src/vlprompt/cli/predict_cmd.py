"""``vlprompt predict``: a trained run on your own images, over its classes or any label space the method supports."""

from __future__ import annotations

from vlprompt.cli.common import add_label_space_args, add_trust_pickle_arg, add_verbosity_args, positive


def add_parser(sub) -> None:
    p = sub.add_parser(
        "predict",
        help="classify your own images with a trained run",
        description="Predict the class of every image (files, or folders searched recursively) with a trained run, "
        "over the trained classes or the --classnames you give (an unseen label space: the similarity head).",
    )
    p.add_argument("--run", required=True, help="run directory written by `vlprompt train`")
    p.add_argument("images", nargs="+", metavar="IMAGE|FOLDER", help="image files and folders of images")
    add_label_space_args(p)
    p.add_argument("--topk", type=positive, default=5, help="best classes shown per image (default 5)")
    p.add_argument("--format", choices=["table", "json", "csv"], default="table", help="output on stdout")
    p.add_argument("--batch-size", type=positive, default=64)
    p.add_argument("--backbone", default=None, help="default: the run's backbone")
    p.add_argument("--pretrained", default=None, help="default: the run's weights source")
    add_trust_pickle_arg(p)
    p.add_argument("--device", default="auto", help="auto | cpu | cuda | cuda:N")
    add_verbosity_args(p)
    p.set_defaults(func=run)


def run(args) -> int:
    from vlprompt.api import load_run
    from vlprompt.errors import VLPromptError
    from vlprompt.predict import collect_images, label_space_args, predict_images, prediction_rows, render

    if args.topk < 1 or args.batch_size < 1:
        raise VLPromptError("--topk and --batch-size must be >= 1")
    images = collect_images(args.images)
    classnames, template = label_space_args(args)
    model = load_run(
        args.run, backbone=args.backbone, pretrained=args.pretrained, trust_pickle=args.trust_pickle, device=args.device
    )
    logits = predict_images(model, images, classnames, template, args.batch_size, show_progress=not args.quiet)
    names = classnames or model.classnames
    print(render(prediction_rows(images, logits, names, args.topk), args.format))
    return 0
