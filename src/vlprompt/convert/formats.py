"""The checkpoint formats ``vlprompt convert --from`` reads (torch-free: the command line's choices come from here)."""

DASSL, CLIP_LORA, TIP_ADAPTER = "dassl", "clip-lora", "tip-adapter"
#: format -> what it reads
FORMATS = {
    DASSL: "a Dassl checkpoint (model.pth.tar-N, its module folder or the run's output folder)",
    CLIP_LORA: "CLIP-LoRA's lora_weights.pt",
    TIP_ADAPTER: (
        "Tip-Adapter's cache folder: keys_Kshots.pt + values_Kshots.pt, and best_F_Kshots.pt for Tip-Adapter-F"
    ),
}
