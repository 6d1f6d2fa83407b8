"""Run directories: a run is identified by what it computes (resolved paths and the data's fingerprint), one
process at a time, ``metrics.jsonl`` survives crashes, nothing is written before the inputs are checked, and
temporary files of killed writes are cleaned up."""

from __future__ import annotations

import errno
import json
import os
import shutil
import socket
import subprocess
import sys

import pytest

from cli_runs import train_argv
from vlprompt import fileio
from vlprompt.cli import main
from vlprompt.engine import trainer


@pytest.fixture
def bb(tiny_vit_files, tmp_path, monkeypatch):
    monkeypatch.setenv("VLPROMPT_CACHE", str(tmp_path / "cache"))
    return ["--backbone", str(tiny_vit_files[0]), "--pretrained", str(tiny_vit_files[1])]


def killed_in_epoch(monkeypatch, epoch: int) -> None:
    """Make the next training run die (KeyboardInterrupt) when it starts epoch ``epoch`` (1-based)."""
    real = trainer.run_epoch

    def dying(task, data, optimizer, cfg, seed, e, *args, **kwargs):
        if e + 1 == epoch:
            raise KeyboardInterrupt
        return real(task, data, optimizer, cfg, seed, e, *args, **kwargs)

    monkeypatch.setattr(trainer, "run_epoch", dying)


def test_identity_is_what_the_run_computes_not_how_it_was_spelled(tmp_path, bb, tiny_folder, monkeypatch, capsys):
    a, b = tmp_path / "a", tmp_path / "b"
    shutil.copytree(tiny_folder, a / "data")
    shutil.copytree(tiny_folder, b / "data")
    shutil.rmtree(b / "data" / "train" / "red_circle")  # other data under the same relative path
    out = tmp_path / "run"
    monkeypatch.chdir(a)
    assert main(train_argv(out, "data", bb)) == 0
    stamp = (out / "results.json").stat().st_mtime_ns
    capsys.readouterr()

    monkeypatch.chdir(b)
    assert main(train_argv(out, "data", bb)) == 2
    err = capsys.readouterr().err
    assert "already holds a different run (data.data_root" in err and str(b / "data") in err

    for cwd, spelling in ((a, "data/"), (a, str(a / "data")), (tmp_path, "a/data"), (tmp_path, "a/./data/")):
        monkeypatch.chdir(cwd)
        assert main(train_argv(out, spelling, bb)) == 0
        assert "run already complete" in capsys.readouterr().out
    assert (out / "results.json").stat().st_mtime_ns == stamp


def test_an_interrupted_run_refuses_data_changed_in_place(tmp_path, bb, tiny_folder, monkeypatch, capsys):
    data, out = tmp_path / "data", tmp_path / "run"
    shutil.copytree(tiny_folder, data)
    killed_in_epoch(monkeypatch, 2)
    assert main(train_argv(out, data, bb, epochs=2)) == 130
    (data / "train" / "red_circle" / "red_circle_0.png").unlink()
    capsys.readouterr()
    assert main(train_argv(out, data, bb, epochs=2)) == 2
    assert "was started on different inputs (data changed since)" in capsys.readouterr().err


def test_a_locked_run_refuses_a_second_process_and_a_stale_lock_is_taken_over(
    tmp_path, bb, tiny_folder, monkeypatch, capsys, caplog
):
    out = tmp_path / "run"
    killed_in_epoch(monkeypatch, 2)
    assert main(train_argv(out, tiny_folder, bb, epochs=2)) == 130
    monkeypatch.undo()
    monkeypatch.setenv("VLPROMPT_CACHE", str(tmp_path / "cache"))
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD_LOCK, str(out / ".lock")], stdout=subprocess.PIPE, text=True
    )  # fmt: skip
    try:
        assert holder.stdout.readline().strip() == "locked"
        before = (out / "metrics.jsonl").read_bytes()
        capsys.readouterr()
        assert main(train_argv(out, tiny_folder, bb, epochs=2)) == 2
        err = capsys.readouterr().err
        assert f"is in use by process {holder.pid} on {socket.gethostname()}" in err
        assert (out / "metrics.jsonl").read_bytes() == before and not (out / "results.json").exists()
    finally:
        holder.kill()
        holder.wait()
    # the holder died without releasing: its lock file names a dead process
    assert json.loads((out / ".lock").read_text())["pid"] == holder.pid
    with caplog.at_level("WARNING", logger="vlprompt"):
        assert main(train_argv(out, tiny_folder, bb, epochs=2)) == 0
    assert f"taking over the lock of {out} left by process {holder.pid}" in caplog.text
    assert (out / "results.json").exists()


HOLD_LOCK = """
import fcntl, json, os, socket, sys, time
fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT)
fcntl.flock(fd, fcntl.LOCK_EX)
os.ftruncate(fd, 0)
os.write(fd, json.dumps({"pid": os.getpid(), "host": socket.gethostname()}).encode())
print("locked", flush=True)
time.sleep(120)
"""


def test_metrics_are_repaired_on_resume_and_stale_temporary_files_removed(tmp_path, bb, tiny_folder, monkeypatch):
    out = tmp_path / "run"
    killed_in_epoch(monkeypatch, 2)
    assert main(train_argv(out, tiny_folder, bb, epochs=2)) == 130
    monkeypatch.undo()
    monkeypatch.setenv("VLPROMPT_CACHE", str(tmp_path / "cache"))
    metrics = out / "metrics.jsonl"
    first = metrics.read_text().splitlines()
    assert [json.loads(line)["epoch"] for line in first] == [1]
    # a kill during the checkpoint save duplicated the epoch line; a full disk cut the next one
    metrics.write_text("\n".join([*first, *first]) + '\n{"ce": ')
    stale = [out / "checkpoints" / ".last.pt.tmp-99999", out / ".weights.safetensors.tmp-99999"]
    for path in stale:
        path.write_bytes(b"partial")

    assert main(train_argv(out, tiny_folder, bb, epochs=2)) == 0
    records = [json.loads(line) for line in metrics.read_text().splitlines()]  # every line parses
    assert [r.get("epoch") for r in records] == [1, 2, None] and records[-1]["final"]
    assert records[0] == json.loads(first[0])
    assert not any(path.exists() for path in stale)


def test_a_short_append_is_undone(tmp_path, monkeypatch):
    path = tmp_path / "metrics.jsonl"
    fileio.append_jsonl(path, {"epoch": 1})
    before = path.read_bytes()
    real = os.write
    monkeypatch.setattr(fileio.os, "write", lambda fd, data: real(fd, data[:5]))
    with pytest.raises(fileio.WriteError, match="metrics.jsonl: No space left on device; .* is unchanged"):
        fileio.append_jsonl(path, {"epoch": 2, "loss": 0.5})
    monkeypatch.undo()
    assert path.read_bytes() == before


def test_a_failed_atomic_write_keeps_the_previous_file(tmp_path, monkeypatch):
    path = tmp_path / "results.json"
    fileio.write_json(path, {"accuracy": 1.0})
    before = path.read_bytes()

    def full(tmp):
        tmp.write_bytes(b"{")
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    with pytest.raises(fileio.WriteError, match="results.json is unchanged; free some space"):
        fileio.atomic_write(path, full)
    assert path.read_bytes() == before and sorted(p.name for p in tmp_path.iterdir()) == ["results.json"]


def test_nothing_is_written_before_the_inputs_are_checked(tmp_path, bb, tiny_folder, capsys):
    out = tmp_path / "run"
    assert main(train_argv(out, tiny_folder, bb, "--set", "coop.init_std=0")) == 2
    assert "coop.init_std must be > 0" in capsys.readouterr().err and not out.exists()
    rows = {"train": [], "val": [], "test": []}
    for split in ("train", "test"):
        for label, name in enumerate(("red_circle", "green_square")):
            rows[split] += [[f"{split}/{name}/{name}_{i}.png", label, name] for i in range(3)]
    rows["test"][-1][0] = "test/green_square/gone.png"
    split_file = tmp_path / "split.json"
    split_file.write_text(json.dumps(rows))
    args = train_argv(out, tiny_folder, bb)
    args[args.index("folder")] = "split"
    assert main([*args, "--split-file", str(split_file)]) == 2
    assert "1 listed images are missing (e.g. " in capsys.readouterr().err and not out.exists()


def test_the_temporary_folder_of_a_killed_toy_generation_is_removed(tmp_path, monkeypatch):
    from vlprompt.toy import datasets as toy

    final = toy.toy_dataset_dir("toy-xd", tmp_path)
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    host = socket.gethostname()
    abandoned = final.parent / f".{final.name}.tmp-{host}-{dead.stdout.strip()}-abc123"
    running = final.parent / f".{final.name}.tmp-{host}-{os.getpid()}-def456"
    elsewhere = final.parent / f".{final.name}.tmp-other-host-{dead.stdout.strip()}-ghi789"
    for folder in (abandoned, running, elsewhere):
        (folder / "images").mkdir(parents=True)

    def generate(spec, out):
        (out / f"split_{spec.name}.json").write_text("{}")

    monkeypatch.setattr(toy, "_generate", generate)
    assert toy.ensure_toy_dataset("toy-xd", tmp_path) == final
    assert not abandoned.exists() and running.exists() and elsewhere.exists()


def test_a_full_disk_while_caching_features_only_costs_the_cache(tmp_path, bb, tiny_folder, monkeypatch, caplog):
    import safetensors.torch

    real = safetensors.torch.save_file
    cache = tmp_path / "cache"

    def save_file(tensors, path, *args, **kwargs):
        if str(path).startswith(str(cache)):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real(tensors, path, *args, **kwargs)

    monkeypatch.setattr(safetensors.torch, "save_file", save_file)
    out = tmp_path / "run"
    assert main(train_argv(out, tiny_folder, bb)) == 0
    assert (out / "results.json").exists()
    assert "continuing without caching" in caplog.text and "No space left on device" in caplog.text
    assert not [p for p in cache.rglob("*") if p.is_file()]
