"""The GPU suite's dry run (benchmarks/gpu_suite.py): on a CPU-only machine it lists every step it would run and
writes the report in its documented format, with every step planned; a real run without a GPU refuses in one line."""

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "benchmarks"))

import gpu_suite  # noqa: E402


def test_dry_run_lists_every_step_and_writes_the_report(tmp_path):
    report = tmp_path / "plan.md"
    assert gpu_suite.main(["--dry-run", "--report", str(report)]) == 0
    text = report.read_text().splitlines()
    assert text[0] == "# vlprompt GPU suite (dry run)" and text[2].startswith("Machine: ")
    header = text.index("| step | command | status | seconds |")
    rows = text[header + 2 : header + 2 + len(gpu_suite.STEPS)]
    assert rows == [f"| {s.name} | `{s.command()}` | planned | 0 |" for s in gpu_suite.STEPS]
    scripts = [s.args[0] for s in gpu_suite.STEPS if s.args[0] != "-m"]
    assert {Path(s).name for s in scripts} >= {"bench_prompted.py", "bench_text.py", "bench_families.py"}
    assert all((REPO / s).is_file() and "--device" in (REPO / s).read_text() for s in scripts)
    assert any(s.args[-1] == "tests/test_gpu.py" for s in gpu_suite.STEPS)


def test_dry_run_through_the_shell_script_prints_the_commands(tmp_path):
    done = subprocess.run(
        [str(REPO / "benchmarks" / "gpu_suite.sh"), "--dry-run", "--report", str(tmp_path / "r.md")],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    lines = [line for line in done.stdout.splitlines() if line.startswith("would run: ")]
    assert len(lines) == len(gpu_suite.STEPS)
    assert lines[0].startswith("would run: python -m pytest -q -m gpu tests/test_gpu.py")


def test_a_real_run_without_a_gpu_refuses_in_one_line(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(gpu_suite, "visible_gpus", lambda: 0)
    assert gpu_suite.main(["--report", str(tmp_path / "r.md")]) == 2
    err = capsys.readouterr().err.strip()
    assert err == "gpu_suite: no CUDA device visible; use --dry-run to list the steps"
    assert not (tmp_path / "r.md").exists()


def test_skipped_steps_name_the_reason():
    ddp = next(s for s in gpu_suite.STEPS if s.min_gpus == 2)
    assert gpu_suite.skip_reason(ddp, 1) == "needs 2 GPUs, 1 visible"
    assert gpu_suite.skip_reason(ddp, 2) is None
