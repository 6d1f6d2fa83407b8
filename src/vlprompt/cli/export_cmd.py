"""``vlprompt export``: a trained run's learned prompts as a fixed classifier for plain open_clip."""

from __future__ import annotations

from vlprompt.cli.common import add_label_space_args, add_trust_pickle_arg


def add_parser(sub) -> None:
    p = sub.add_parser(
        "export",
        help="export a fixed classifier (class embeddings, logit scale, DePT head) for plain open_clip",
        description="For methods whose image tower has no prompts and whose text does not depend on the image "
        "(coop, kgcoop, their +dept/+nemesis variants), write the normalised class embeddings, the logit scale and "
        "DePT's head (on the trained classes) to a safetensors file that classifies with open_clip alone.",
    )
    p.add_argument("--run", required=True, help="run directory written by `vlprompt train`")
    p.add_argument("--out", required=True, help="the .safetensors file to write")
    add_label_space_args(p)
    add_trust_pickle_arg(p)
    p.add_argument("--device", default="auto", help="auto | cpu | cuda | cuda:N")
    p.set_defaults(func=run)


def run(args) -> int:
    import json

    from vlprompt.export import export_classifier
    from vlprompt.predict import label_space_args

    classnames, template = label_space_args(args)
    out, meta = export_classifier(
        args.run, args.out, classnames, template, trust_pickle=args.trust_pickle, device=args.device
    )
    names = json.loads(meta["classnames"])
    print(
        f"wrote {out}: {meta['method']} classifier over {len(names)} classes ({meta['backbone']}, {meta['pretrained']})"
    )
    return 0
