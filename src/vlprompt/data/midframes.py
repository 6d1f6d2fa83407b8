"""UCF101's image version as CoOp uses it (``UCF-101-midframes``): the middle frame of every video, one JPEG per
video at ``<Action_Name>/<video name>.jpg``, decoded with PyAV (the optional ``video`` extra) in worker processes."""

from __future__ import annotations

from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import List, Tuple

from vlprompt.data.layout import list_folders
from vlprompt.data.sources import ucf101_folder
from vlprompt.errors import VLPromptError
from vlprompt.progress import progress

VIDEO_EXTENSIONS = (".avi", ".mp4")
#: JPEG quality of the written frames
JPEG_QUALITY = 95


def require_pyav():
    try:
        import av
    except ImportError:
        raise VLPromptError(
            "extracting UCF101's middle frames needs PyAV: pip install 'vlprompt[video]' (or pass --from a folder "
            "that already holds UCF-101-midframes/)"
        ) from None
    return av


def middle_frame(job: Tuple[str, str]) -> str:
    """Write the middle frame (index ``n // 2`` of the ``n`` decoded frames) of video ``job[0]`` to ``job[1]``."""
    video, out = job
    av = require_pyav()
    try:
        with av.open(video) as container:
            frames = list(container.decode(video=0))
        if not frames:
            raise VLPromptError(f"video {video} has no frames; re-extract UCF101")
        frames[len(frames) // 2].to_image().save(out, quality=JPEG_QUALITY)
    except (av.FFmpegError, OSError) as exc:
        raise VLPromptError(f"cannot decode video {video}: {exc}; re-extract UCF101") from None
    return out


def extract_midframes(videos_dir: Path, out_dir: Path, workers: int) -> int:
    """Middle frames of ``videos_dir/<Action>/*.avi`` into ``out_dir/<Action_Name>/*.jpg``; returns the count."""
    require_pyav()
    jobs: List[Tuple[str, str]] = []
    for action in list_folders(videos_dir):
        target = out_dir / ucf101_folder(action)
        target.mkdir(parents=True, exist_ok=True)
        for video in sorted((videos_dir / action).iterdir()):
            if video.suffix.lower() in VIDEO_EXTENSIONS:
                jobs.append((str(video), str(target / (video.stem + ".jpg"))))
    if not jobs:
        raise VLPromptError(f"{videos_dir} holds no videos (<Action>/*.avi); extract UCF101.rar there")
    bar = progress(total=len(jobs), desc="UCF101 middle frames", unit="video")
    with bar, ProcessPoolExecutor(max_workers=max(1, workers)) as pool:
        for _ in pool.map(middle_frame, jobs, chunksize=16):
            bar.update()
    return len(jobs)
