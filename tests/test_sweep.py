"""`vlprompt sweep` on the offline toy world: jobs, dry run, resume, failures, launchers, recipes."""

import io
import json

import pytest

from vlprompt.cli import main
from vlprompt.results.render import render, tables
from vlprompt.results.summaries import summaries
from vlprompt.sweep import build_spec, plan, states
from vlprompt.sweep.layout import RunKey
from vlprompt.sweep.progress import Progress

# tiny, fast settings: 1 epoch, one batch size for every method
FAST = ["--set", "train.epochs=1", "--set", "train.batch_size=32"]
B2N = ["sweep", "--protocol", "b2n", "--datasets", "toy", *FAST]


@pytest.fixture(scope="module")
def toy_cache(tmp_path_factory):
    """A private $VLPROMPT_CACHE for this module (toy datasets and features are generated once)."""
    mp = pytest.MonkeyPatch()
    mp.setenv("VLPROMPT_CACHE", str(tmp_path_factory.mktemp("cache")))
    yield
    mp.undo()


@pytest.fixture(scope="module")
def b2n_sweep(toy_cache, tmp_path_factory):
    """zero-shot CLIP and CoOp, base-to-new on toy-b2n, seeds 1 and 2, run in this process."""
    root = tmp_path_factory.mktemp("b2n")
    assert main([*B2N, "--methods", "zeroshot", "coop", "--seeds", "1", "2", "--root", str(root)]) == 0
    return root


def mtimes(root):
    return {p.relative_to(root).as_posix(): p.stat().st_mtime_ns for p in root.rglob("results.json")}


def accuracies(root, method=None):
    return {
        p.parent.relative_to(root).as_posix(): json.loads(p.read_text())["accuracy"]
        for p in root.rglob("results.json")
        if method is None or f"/{method}/" in p.as_posix()
    }


def test_plan_layout_dependencies_and_presets(tmp_path):
    spec = build_spec(tmp_path, protocol="b2n", methods=["zeroshot", "CoOp + DePT"], datasets=["toy"], seeds=[1])
    jobs = plan(spec)
    assert [j.key.relpath for j in jobs] == [
        "b2n/zeroshot/toy-b2n/shots16/seed1/train",
        "b2n/zeroshot/toy-b2n/shots16/seed1/eval-new",
        "b2n/coop_dept/toy-b2n/shots16/seed1/train",
        "b2n/coop_dept/toy-b2n/shots16/seed1/eval-new",
    ]
    zs_train, zs_new, train, new = jobs
    assert zs_train.argv[:1] == ("zeroshot",) and "base" in zs_train.argv and zs_new.deps == ()
    assert train.argv[:3] == ("train", "--method", "coop+dept") and train.argv[-2:] == ("--protocol", "b2n")
    assert new.argv[:3] == ("eval", "--run", str(train.path)) and new.deps == (train.key,)
    assert new.argv[new.argv.index("--subsample") + 1] == "new"
    assert states(jobs) == {zs_train.key: "pending", zs_new.key: "pending", train.key: "pending", new.key: "blocked"}
    # xd and dg share the source runs; only the evaluation targets differ
    xd = plan(build_spec(tmp_path, protocol="xd", methods=["maple"], datasets=["toy"], targets=["toy"], seeds=[1]))
    dg = plan(build_spec(tmp_path, protocol="dg", methods=["maple"], datasets=["toy"], targets=["toy"], seeds=[1]))
    assert xd[0] == dg[0] and xd[0].key.relpath == "xd/maple/toy-b2n/shots16/seed1/train"
    assert xd[0].argv[-2:] == ("--protocol", "xd") and "all" in xd[0].argv
    assert [j.key.kind for j in xd[1:] + dg[1:]] == ["eval-toy-xd", "eval-toy-shift"]
    # few-shot: every K for trained methods, zero-shot CLIP once (0 shots)
    fs = plan(build_spec(tmp_path, protocol="fewshot", methods=["zeroshot", "coop"], datasets=["toy"], seeds=[1]))
    assert [j.key.shots for j in fs] == [0, 1, 2, 4, 8, 16]


def test_recipes_leave_settings_to_the_presets_and_sets_reach_every_training_run(tmp_path):
    spec = build_spec(tmp_path, recipe="restore-b2n", datasets=["dtd", "caltech101"], seeds=[1])
    dtd, caltech = (j for j in plan(spec) if j.key.kind == "train")
    at = dtd.argv.index("--backbone")
    assert dtd.argv[at : at + 4] == ("--backbone", "ViT-B-16", "--pretrained", "openai")
    assert "--set" not in dtd.argv and dtd.argv[-2:] == ("--protocol", "b2n")  # DTD's ratios: a dataset rule
    spec = build_spec(tmp_path, protocol="b2n", methods=["coop", "kgcoop"], datasets=["dtd"], seeds=[1], sets=["x.y=1"])
    coop, kgcoop = (j for j in plan(spec) if j.key.kind == "train")
    assert coop.argv[-2:] == ("--set", "x.y=1") and kgcoop.argv[-2:] == ("--set", "x.y=1")


def test_user_errors_are_one_line(tmp_path, capsys):
    assert main(["sweep", "--methods", "coop", "--root", str(tmp_path)]) == 2
    assert "--protocol is required" in capsys.readouterr().err
    assert main(["sweep", "--protocol", "b2n", "--methods", "nope", "--root", str(tmp_path), "--dry-run"]) == 2
    assert "unknown" in capsys.readouterr().err
    assert main(["sweep", "--recipe", "nope", "--root", str(tmp_path)]) == 2
    assert "vlprompt list recipes" in capsys.readouterr().err


def test_recipes_listed_and_dry_run(tmp_path, capsys):
    assert main(["list", "recipes"]) == 0
    out = capsys.readouterr().out
    for name in ("coop-fewshot", "cocoop-b2n", "dept-b2n", "nemesis-fewshot", "restore-b2n", "maple-xd"):
        assert name in out
    assert "DePT (Zhang et al., CVPR 2024)" in out
    assert (
        main(
            ["sweep", "--recipe", "dept-b2n", "--datasets", "dtd", "--seeds", "1", "--root", str(tmp_path), "--dry-run"]
        )
        == 0
    )
    out = capsys.readouterr().out
    assert "8 jobs: 0 done, 0 resume, 4 pending, 4 blocked" in out
    assert "--method kgcoop+dept" in out and "--pretrained openai" in out and "--protocol b2n" in out
    assert not (tmp_path / "b2n").exists()  # a dry run creates nothing


def test_b2n_sweep_table_and_idempotent_rerun(b2n_sweep, capsys):
    assert len(accuracies(b2n_sweep)) == 8
    before = mtimes(b2n_sweep)
    capsys.readouterr()
    assert main([*B2N, "--methods", "zeroshot", "coop", "--seeds", "1", "2", "--root", str(b2n_sweep)]) == 0
    assert "8 already done, 0 ran" in capsys.readouterr().err
    assert mtimes(b2n_sweep) == before
    assert main(["table", str(b2n_sweep)]) == 0
    out = capsys.readouterr().out
    assert "base-to-new: coop (toy, 16 shots, seeds 1 2)" in out and "| zeroshot " in out
    assert (b2n_sweep / "b2n" / "coop" / "summary.csv").exists()
    log = (b2n_sweep / ".sweep/logs/b2n/coop/toy-b2n/shots16/seed1/train.log").read_text()
    assert log.startswith("==== vlprompt sweep job") and "* accuracy:" in log


def test_interrupted_sweep_resumes_only_missing_jobs(toy_cache, tmp_path, monkeypatch, capsys):
    import vlprompt.sweep.executors as executors

    real, calls = executors.run_in_process, []

    def interrupt_second(argv, log_path, command):  # Ctrl-C during the second job
        calls.append(argv)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real(argv, log_path, command)

    monkeypatch.setattr(executors, "run_in_process", interrupt_second)
    cmd = ["sweep", "--protocol", "fewshot", "--datasets", "toy", "--methods", "coop", "--shots", "1", "2", *FAST]
    cmd += ["--seeds", "1", "--root", str(tmp_path)]
    assert main(cmd) == 130
    assert "re-run the same command to resume" in capsys.readouterr().err
    first = mtimes(tmp_path)
    assert list(first) == ["fewshot/coop/toy-b2n/shots1/seed1/train/results.json"]
    monkeypatch.setattr(executors, "run_in_process", real)
    assert main(cmd) == 0
    assert "1 already done, 1 ran" in capsys.readouterr().err
    after = mtimes(tmp_path)
    assert len(after) == 2 and all(after[k] == v for k, v in first.items())
    assert main(["table", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "few-shot: coop (toy, seeds 1)" in out and "| 1 shot " in out and "| 2 shots " in out


def test_failing_job_is_reported_and_others_finish(toy_cache, tmp_path, capsys, monkeypatch):
    from vlprompt.errors import VLPromptError
    from vlprompt.pipeline import training

    cmd = ["sweep", "--protocol", "b2n", "--datasets", "toy", "--methods", "zeroshot", "coop", "--seeds", "1"]
    # a bad setting is refused once, before any job starts
    assert main([*cmd, "--set", "coop.n_ctx=many", "--root", str(tmp_path)]) == 2
    assert capsys.readouterr().err == "error: coop.n_ctx=many: expected an int\n" and not any(tmp_path.iterdir())

    def broken(*args, **kwargs):
        raise VLPromptError("the training job broke")

    monkeypatch.setattr(training, "_train", broken)
    assert main([*cmd, "--root", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert "2 ran, 1 failed, 1 blocked" in err
    assert "FAILED (exit 2): b2n/coop/toy-b2n/shots16/seed1/train" in err
    assert "| error: the training job broke" in err  # the tail of the job's log
    monkeypatch.undo()
    assert "blocked (their training run failed): b2n/coop/toy-b2n/shots16/seed1/eval-new" in err
    zeroshot = "b2n/zeroshot/toy-b2n/shots16/seed1"
    assert set(accuracies(tmp_path)) == {f"{zeroshot}/train", f"{zeroshot}/eval-new"}
    assert main([*cmd, "--root", str(tmp_path), "--dry-run"]) == 0
    assert "pending  b2n/coop/toy-b2n/shots16/seed1/train" in capsys.readouterr().out  # nothing was written


@pytest.mark.slow  # four fresh Python + torch worker processes
def test_parallel_workers_give_the_same_table(b2n_sweep, tmp_path):
    root = tmp_path / "jobs2"
    assert main([*B2N, "--methods", "coop", "--seeds", "1", "2", "--root", str(root), "--jobs", "2"]) == 0
    assert accuracies(root) == accuracies(b2n_sweep, "coop")
    same = [render(tables([s for s in summaries(r) if s.method == "coop"])) for r in (b2n_sweep, root)]
    assert same[0] == same[1]


@pytest.mark.slow  # four submitit tasks, each a fresh Python + torch process
def test_slurm_launcher_via_submitit_local_executor(b2n_sweep, tmp_path):
    pytest.importorskip("submitit")
    root = tmp_path / "slurm"
    cmd = [*B2N, "--methods", "coop", "--seeds", "1", "2", "--root", str(root)]
    assert main([*cmd, "--launcher", "slurm", "--slurm-cluster", "local", "--slurm-time", "10"]) == 0
    assert accuracies(root) == accuracies(b2n_sweep, "coop")
    assert (root / ".sweep" / "submitit").is_dir()
    assert "b2n" in {s.protocol for s in summaries(root)}  # the bookkeeping folder is not a run


def test_local_launcher_places_one_job_per_device(tmp_path, capsys):
    from pathlib import Path

    import vlprompt
    from vlprompt.sweep.executors import LocalLauncher, child_env

    assert LocalLauncher(main).workers == 1 and LocalLauncher(main, jobs=3).workers == 3
    assert LocalLauncher(main, devices=("0", "1", "2")).workers == 3  # one worker per GPU, as DePT's parallel_runner
    env = child_env("2")
    assert env["CUDA_VISIBLE_DEVICES"] == "2"
    assert env["PYTHONPATH"].split(":")[0] == str(Path(vlprompt.__file__).resolve().parents[1])  # this checkout
    cmd = ["sweep", "--protocol", "b2n", "--methods", "coop", "--datasets", "toy", "--root", str(tmp_path)]
    assert main([*cmd, "--launcher", "slurm", "--devices", "0,1"]) == 2
    assert "--jobs and --devices are for --launcher local" in capsys.readouterr().err


def test_slurm_time_and_requeue_with_same_arguments():
    submitit = pytest.importorskip("submitit")
    from vlprompt.errors import VLPromptError
    from vlprompt.sweep.slurm import parse_minutes
    from vlprompt.sweep.slurm_job import SweepJob

    assert [parse_minutes(t) for t in ("240", "04:00:00", "30:30", "1-02:30", "1-00:00:01")] == [
        240,
        240,
        31,
        1590,
        1441,
    ]
    with pytest.raises(VLPromptError, match="--slurm-time '4h'"):
        parse_minutes("4h")
    delayed = SweepJob(main).checkpoint(["train", "--out", "run"], "run/job.log")  # what submitit requeues
    assert isinstance(delayed, submitit.helpers.DelayedSubmission)
    assert (
        isinstance(delayed.function, SweepJob)
        and delayed.function.command is main
        and delayed.args == (["train", "--out", "run"], "run/job.log")
    )


def test_slurm_without_submitit_names_the_extra(tmp_path, monkeypatch, capsys):
    import sys

    monkeypatch.setitem(sys.modules, "submitit", None)
    cmd = ["sweep", "--protocol", "b2n", "--methods", "coop", "--datasets", "toy", "--root", str(tmp_path)]
    assert main([*cmd, "--launcher", "slurm"]) == 2
    assert "pip install 'vlprompt[slurm]'" in capsys.readouterr().err


def test_progress_lines_and_tty_refresh(tmp_path):
    (job,) = plan(build_spec(tmp_path, protocol="fewshot", methods=["coop"], datasets=["toy"], seeds=[1], shots=[1]))
    stream = io.StringIO()
    progress = Progress(3, done_before=1, stream=stream)
    progress.expect([job, job])
    progress.started(job)
    progress.finished(job, True, 30.0)
    lines = stream.getvalue().splitlines()
    assert lines == [
        "[sweep] 1/3 done, 1 running, 0 failed, ETA ? | start fewshot/coop/toy-b2n/shots1/seed1/train",
        "[sweep] 2/3 done, 0 running, 0 failed, ETA 30s | done fewshot/coop/toy-b2n/shots1/seed1/train (30s)",
    ]

    class Tty(io.StringIO):
        def isatty(self):
            return True

    tty = Tty()
    Progress(2, stream=tty).started(job)
    assert tty.getvalue().startswith("\r\033[Kstart fewshot/coop") and tty.getvalue().endswith("ETA ?")
    assert RunKey("fewshot", "coop", "toy-b2n", 1, 1, "train") == job.key


def test_method_folders_map_back_to_the_method_with_underscored_names():
    """Sweep folders join a method's components with ``_``; names holding ``_`` themselves (the baselines) come
    back whole, so their table rows carry the method's own name."""
    from vlprompt.sweep.layout import method_folder, method_from_folder

    for method in ["coop", "coop+dept", "clip_adapter", "clip_adapter+dept", "tip_adapter_f", "linear_probe",
                   "maple+dept+restore", "coop+prograd", "kgcoop+nemesis"]:  # fmt: skip
        assert method_from_folder(method_folder(method)) == method
    assert method_from_folder("mine_addon") == "mine+addon"  # unregistered names: split at every _
