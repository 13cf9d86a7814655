"""Batch scripts and sbatch command lines: golden references, hostile paths, run by sh."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from partita.errors import LauncherError, LauncherOptionError
from partita.launchers.slurm._options import SlurmOptions
from partita.launchers.slurm._script import batch_script, output_pattern, sbatch_argv

GOLDEN = Path(__file__).resolve().parent.parent / "golden" / "slurm"

HOSTILE = '/work dir/it\'s "x" $HOME `id` 50%\n#SBATCH --mem=1T\nend'
HOSTILE_VALUE = "a 'b' \"c\" $(id) `id` \\ ; \n#SBATCH --time=1\n"


def check_golden(name: str, text: str) -> None:
    """Compare with tests/unit/golden/slurm/NAME.txt; write it first if it is missing."""
    path = GOLDEN / f"{name}.txt"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(text.encode())
        pytest.fail(f"reference written, check it and rerun: {path}")
    assert text == path.read_bytes().decode()


def sbatch_directives(script: str) -> list[str]:
    """The #SBATCH lines sbatch would read: those before the first command line."""
    found = []
    for line in script.splitlines()[1:]:
        if line.startswith("#SBATCH"):
            found.append(line)
        elif line.strip() and not line.startswith("#"):
            break
    return found


def test_golden_one_job() -> None:
    """The script of one job with plain paths."""
    check_golden(
        "one_job",
        batch_script(
            python="/opt/venv/bin/python",
            workdir="/home/me/project",
            env={"PYTHONPATH": "/home/me/project/src", "OMP_NUM_THREADS": "4"},
            jobdir="/home/me/wd/jobs/pkg.Train/0123abcd",
            attempt=1,
        ),
    )


def test_golden_one_job_hostile() -> None:
    """The script of one job whose paths and values hold every shell-special character."""
    check_golden(
        "one_job_hostile",
        batch_script(
            python=f"{HOSTILE}/bin/python",
            workdir=HOSTILE,
            env={"PARTITA_VALUE": HOSTILE_VALUE},
            jobdir=f"{HOSTILE}/jobs/t/id",
            attempt=3,
        ),
    )


def test_golden_array_hostile() -> None:
    """The script of an array element over a manifest in a hostile directory."""
    check_golden(
        "array_hostile",
        batch_script(
            python="/opt/venv/bin/python",
            workdir=HOSTILE,
            env={"PARTITA_VALUE": HOSTILE_VALUE},
            manifest=f"{HOSTILE}/manifest.json",
        ),
    )


def test_golden_sbatch_argv() -> None:
    """The sbatch command line with every option, one JSON string per line."""
    argv = sbatch_argv(
        SlurmOptions.from_kwargs(
            partition="gpu", time="02:00:00", mem="16G", cpus_per_task=4, extra=["--exclusive"]
        ),
        job_name="partita:pkg.Train/0123abcd",
        output=output_pattern(HOSTILE, "slurm-%A_%a.out"),
        error=output_pattern(HOSTILE, "slurm-%A_%a.err"),
        array="0-199%50",
        dependency=["17", 18, "19_3"],
    )
    check_golden("sbatch_argv", "".join(json.dumps(arg) + "\n" for arg in argv))


@pytest.mark.parametrize("kind", ["job", "array"])
def test_hostile_text_cannot_add_sbatch_directives(kind: str) -> None:
    """A newline followed by #SBATCH in a path or value never reaches sbatch's option scan."""
    script = batch_script(
        python=HOSTILE + "/python",
        workdir=HOSTILE,
        env={"V": HOSTILE_VALUE},
        jobdir=HOSTILE if kind == "job" else None,
        manifest=HOSTILE if kind == "array" else None,
    )
    assert "#SBATCH" in script
    assert sbatch_directives(script) == []
    assert script.startswith("#!/bin/sh\n")


def fake_python(folder: Path) -> Path:
    """An executable that writes its argv, cwd and $V, one item per NUL-ended record."""
    fake = folder / "python"
    fake.write_text(
        "#!/bin/sh\n"
        'out="$PARTITA_TEST_OUT"\n'
        'for arg in "$@"; do printf \'%s\\0\' "$arg"; done > "$out"\n'
        'printf \'%s\\0\' "$(pwd)" "$V" >> "$out"\n'
    )
    fake.chmod(0o755)
    return fake


def run_script(script: str, tmp_path: Path, env: dict[str, str]) -> list[str]:
    path = tmp_path / "job.sh"
    path.write_text(script)
    out = tmp_path / "out.bin"
    subprocess.run(
        ["/bin/sh", str(path)],
        env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "PARTITA_TEST_OUT": str(out), **env},
        check=True,
        timeout=30,
    )
    return out.read_bytes().decode().split("\0")[:-1]


def test_sh_runs_one_job_with_exact_arguments(tmp_path: Path) -> None:
    """Run by sh, the one-job script passes the hostile paths and value unchanged."""
    hostile = tmp_path / HOSTILE.lstrip("/")
    (hostile / "jobs").mkdir(parents=True)
    python = fake_python(hostile)
    script = batch_script(
        python=python, workdir=hostile, env={"V": HOSTILE_VALUE}, jobdir=hostile / "jobs", attempt=2
    )
    assert run_script(script, tmp_path, {}) == [
        "-m",
        "partita.run",
        str(hostile / "jobs"),
        "--attempt",
        "2",
        str(hostile),
        HOSTILE_VALUE,
    ]


def test_sh_runs_array_element_with_its_index(tmp_path: Path) -> None:
    """Run by sh, the array script passes the manifest and SLURM_ARRAY_TASK_ID."""
    hostile = tmp_path / HOSTILE.lstrip("/")
    hostile.mkdir(parents=True)
    python = fake_python(hostile)
    manifest = hostile / "manifest.json"
    script = batch_script(python=python, workdir=hostile, env={"V": "v"}, manifest=manifest)
    args = run_script(script, tmp_path, {"SLURM_ARRAY_TASK_ID": "7"})
    assert args == [
        "-m",
        "partita.run",
        "--manifest",
        str(manifest),
        "--index",
        "7",
        str(hostile),
        "v",
    ]


def test_array_script_refuses_to_run_without_an_index(tmp_path: Path) -> None:
    """The array script stops with a clear message when submitted without --array."""
    script = batch_script(python="/bin/false", workdir=tmp_path, manifest=tmp_path / "m.json")
    path = tmp_path / "job.sh"
    path.write_text(script)
    done = subprocess.run(
        ["/bin/sh", str(path)], capture_output=True, text=True, env={}, check=False
    )
    assert done.returncode != 0
    assert "sbatch --array" in done.stderr


def test_script_stops_when_workdir_is_missing(tmp_path: Path) -> None:
    """A missing working directory stops the script before the runner starts."""
    script = batch_script(python="/bin/true", workdir=tmp_path / "gone", jobdir=tmp_path)
    path = tmp_path / "job.sh"
    path.write_text(script)
    done = subprocess.run(["/bin/sh", str(path)], capture_output=True, env={}, check=False)
    assert done.returncode == 125


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({}, "exactly one of jobdir"),
        ({"jobdir": "/j", "manifest": "/m"}, "exactly one of jobdir"),
        ({"jobdir": "/j", "attempt": 0}, "attempt must be"),
        ({"jobdir": "/j", "env": {"1BAD": "x"}}, "not a valid environment variable"),
        ({"jobdir": "/j", "env": {"A-B": "x"}}, "not a valid environment variable"),
        ({"jobdir": "/j", "python": "/dir/py thon"}, "contains whitespace"),
    ],
)
def test_batch_script_misuse(kwargs: dict[str, object], message: str) -> None:
    """Wrong arguments raise a LauncherError that says what is wrong."""
    arguments: dict[str, object] = {"python": "/usr/bin/python3", "workdir": "/w", **kwargs}
    with pytest.raises(LauncherError, match=message):
        batch_script(**arguments)  # type: ignore[arg-type]


def test_output_pattern_escapes_percent_and_refuses_backslash() -> None:
    """Percent signs in the directory are doubled; backslashes are refused."""
    assert output_pattern("/a 50%/b", "slurm-%j.out") == "/a 50%%/b/slurm-%j.out"
    assert output_pattern("/", "x") == "/x"
    assert output_pattern(Path("/w/"), "%A_%a.err") == "/w/%A_%a.err"
    with pytest.raises(LauncherError, match="removes backslashes"):
        output_pattern("/a\\b", "x")


def test_sbatch_argv_minimal() -> None:
    """Without array or dependencies, sbatch gets only the name, the outputs and the options."""
    argv = sbatch_argv(SlurmOptions(), job_name="n", output="/o", error="/e", parsable=False)
    assert argv == ["sbatch", "--job-name=n", "--output=/o", "--error=/e"]
    argv = sbatch_argv(SlurmOptions(), job_name="n", output="/o", error="/e", dependency=[])
    assert argv == ["sbatch", "--parsable", "--job-name=n", "--output=/o", "--error=/e"]


def test_sbatch_argv_dependency_without_kill() -> None:
    """kill_on_invalid_dep=False leaves a failed dependency's job pending, as sbatch does."""
    argv = sbatch_argv(
        SlurmOptions(),
        job_name="n",
        output="/o",
        error="/e",
        dependency=[5],
        kill_on_invalid_dep=False,
    )
    assert argv[-1] == "--dependency=afterok:5"


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"job_name": ""}, "invalid Slurm job name"),
        ({"job_name": "a\nb"}, "invalid Slurm job name"),
        ({"output": "/a\\b"}, "invalid Slurm output path"),
        ({"error": ""}, "invalid Slurm error path"),
        ({"array": "0-9%"}, "invalid Slurm array"),
        ({"array": "a-b"}, "invalid Slurm array"),
        ({"dependency": ["12; rm"]}, "invalid Slurm job id"),
        ({"dependency": ["afterok:1"]}, "invalid Slurm job id"),
    ],
)
def test_sbatch_argv_refuses_bad_values(kwargs: dict[str, object], message: str) -> None:
    """Bad names, paths, array specs and job ids raise LauncherOptionError."""
    arguments: dict[str, object] = {"job_name": "n", "output": "/o", "error": "/e", **kwargs}
    with pytest.raises(LauncherOptionError, match=message):
        sbatch_argv(SlurmOptions(), **arguments)  # type: ignore[arg-type]


@pytest.mark.parametrize("spec", ["0", "0-199", "0-199%50", "1,3,5-7", "0-15:4", "1-3,8%2"])
def test_sbatch_argv_accepts_array_specs(spec: str) -> None:
    """sbatch's array forms are accepted as given."""
    argv = sbatch_argv(SlurmOptions(), job_name="n", output="/o", error="/e", array=spec)
    assert f"--array={spec}" in argv
