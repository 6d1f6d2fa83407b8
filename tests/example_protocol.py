"""A protocol defined outside the package (the worked example of CONTRIBUTING.md, kept true by
tests/test_protocols.py): the toy CLIP trained on toy-b2n with 2 shots, evaluated on the toy world's two shifted
datasets, with the published cross-dataset settings."""

from vlprompt.protocols import TRANSFER, Protocol

TOY_TRANSFER = Protocol(
    name="toy-transfer",
    folder="toy-transfer",  # its own run folder (a protocol sharing another's runs names that one's folder)
    title="toy transfer",
    subsample="all",
    datasets=("toy-b2n",),
    targets=("toy-xd", "toy-shift"),
    shots=(2,),
    layout=TRANSFER,  # the table: the source row, every target, their average
    toy_datasets=("toy-b2n",),
    toy_targets=("toy-xd",),
    preset="xd",  # its training runs use each method's cross-dataset preset
)
