"""SlurmOptions: names, normalisation, sbatch arguments, merging and scaling."""

from __future__ import annotations

import dataclasses
from datetime import timedelta

import pytest

from partita.errors import LauncherError, LauncherOptionError
from partita.launchers.slurm._options import SlurmOptions, format_mem, format_time


def test_no_options_give_no_arguments() -> None:
    """Empty options pass nothing to sbatch, so the cluster's defaults apply."""
    assert SlurmOptions().to_sbatch_args() == []
    assert SlurmOptions.from_kwargs().as_kwargs() == {}


def test_every_option_becomes_one_argument_in_field_order() -> None:
    """Each typed option becomes one --name=value argument, extra options come last."""
    options = SlurmOptions.from_kwargs(
        partition="gpu",
        time="1-02:03:04",
        mem="16G",
        cpus_per_task=4,
        gpus="a100:2",
        gpus_per_node=1,
        gres="gpu:1,shard:2",
        nodes="1-4",
        ntasks=2,
        ntasks_per_node=1,
        account="proj",
        qos="high",
        constraint="intel&avx2",
        exclude="node[1-3]",
        nodelist="node7",
        signal="B:USR1@120",
        requeue=True,
        extra=["--exclusive", "--mail-type=END"],
    )
    assert options.to_sbatch_args() == [
        "--partition=gpu",
        "--time=1-02:03:04",
        "--mem=16G",
        "--cpus-per-task=4",
        "--gpus=a100:2",
        "--gpus-per-node=1",
        "--gres=gpu:1,shard:2",
        "--nodes=1-4",
        "--ntasks=2",
        "--ntasks-per-node=1",
        "--account=proj",
        "--qos=high",
        "--constraint=intel&avx2",
        "--exclude=node[1-3]",
        "--nodelist=node7",
        "--signal=B:USR1@120",
        "--requeue",
        "--exclusive",
        "--mail-type=END",
    ]
    assert SlurmOptions.from_kwargs(requeue=False).to_sbatch_args() == ["--no-requeue"]


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        (90, timedelta(minutes=90)),
        ("90", timedelta(minutes=90)),
        ("30:15", timedelta(minutes=30, seconds=15)),
        ("02:00:00", timedelta(hours=2)),
        ("2-12", timedelta(days=2, hours=12)),
        ("2-12:30", timedelta(days=2, hours=12, minutes=30)),
        ("1-00:00:01", timedelta(days=1, seconds=1)),
        (timedelta(hours=1, microseconds=1), timedelta(hours=1, seconds=1)),
    ],
)
def test_time_forms(given: object, expected: timedelta) -> None:
    """Slurm's time forms, minutes and timedeltas all give the same kind of value."""
    assert SlurmOptions.from_kwargs(time=given).time == expected


@pytest.mark.parametrize(
    ("limit", "text"),
    [
        (timedelta(minutes=5), "00:05:00"),
        (timedelta(hours=25, seconds=3), "1-01:00:03"),
        (timedelta(days=3), "3-00:00:00"),
    ],
)
def test_time_is_written_as_slurm_reads_it(limit: timedelta, text: str) -> None:
    """Limits under a day are HH:MM:SS, longer ones D-HH:MM:SS."""
    assert format_time(limit) == text
    assert SlurmOptions(time=limit).to_sbatch_args() == [f"--time={text}"]


@pytest.mark.parametrize(
    ("given", "mib", "text"),
    [
        (512, 512, "512M"),
        ("512M", 512, "512M"),
        ("16G", 16384, "16G"),
        ("16gb", 16384, "16G"),
        ("1.5G", 1536, "1536M"),
        ("2T", 2 * 1024 * 1024, "2T"),
        ("100K", 1, "1M"),
        (" 3 GiB ", 3072, "3G"),
    ],
)
def test_mem_forms(given: object, mib: int, text: str) -> None:
    """Memory is stored in MiB and written in the largest whole unit."""
    options = SlurmOptions.from_kwargs(mem=given)
    assert options.mem == mib
    assert format_mem(mib) == text
    assert options.to_sbatch_args() == [f"--mem={text}"]


def test_equal_requests_are_equal_options() -> None:
    """Two spellings of the same request compare and hash equal."""
    a = SlurmOptions.from_kwargs(time="60", mem="1G", cpus_per_task="2")
    b = SlurmOptions.from_kwargs(time=timedelta(hours=1), mem=1024, cpus_per_task=2)
    assert a == b
    assert hash(a) == hash(b)


def test_unknown_name_lists_valid_names_and_a_guess() -> None:
    """A misspelt option name is refused with every valid name and a did-you-mean."""
    with pytest.raises(LauncherOptionError) as caught:
        SlurmOptions.from_kwargs(partion="gpu")
    message = str(caught.value)
    assert "unknown Slurm option 'partion'" in message
    assert "did you mean 'partition'?" in message
    for name in SlurmOptions.names():
        assert name in message


@pytest.mark.parametrize(("name", "guess"), [("memory", "mem"), ("cpus", "cpus_per_task")])
def test_common_other_names_are_guessed(name: str, guess: str) -> None:
    """Names from other tools point to ours."""
    with pytest.raises(LauncherOptionError, match=f"did you mean '{guess}'"):
        SlurmOptions.from_kwargs(**{name: 1})


def test_dashed_names_are_accepted() -> None:
    """sbatch's dashed spelling of a name is the same option."""
    assert SlurmOptions.from_kwargs(**{"cpus-per-task": 3}).cpus_per_task == 3


def test_option_errors_are_launcher_errors_and_value_errors() -> None:
    """LauncherOptionError can be caught as a LauncherError or a ValueError."""
    with pytest.raises(LauncherError):
        SlurmOptions.from_kwargs(mem="lots")
    with pytest.raises(ValueError):
        SlurmOptions.from_kwargs(mem="lots")


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("time", "2:00:00:00"),
        ("time", "soon"),
        ("time", 0),
        ("time", -5),
        ("time", True),
        ("time", "infinite"),
        ("mem", "0G"),
        ("mem", "16X"),
        ("mem", -1),
        ("mem", 1.5),
        ("cpus_per_task", 0),
        ("cpus_per_task", True),
        ("cpus_per_task", "four"),
        ("ntasks", 2.0),
        ("gpus", "a100"),
        ("gpus", 0),
        ("nodes", "4-2"),
        ("nodes", "0"),
        ("partition", ""),
        ("partition", "two words"),
        ("account", "a\nb"),
        ("qos", 3),
        ("signal", "USR1 @90"),
        ("requeue", "yes"),
        ("extra", ["exclusive"]),
        ("extra", ["--comment=a\nb"]),
        ("extra", 5),
    ],
)
def test_invalid_values_are_refused(name: str, value: object) -> None:
    """Every invalid value is refused at construction, naming the option and the expectation."""
    with pytest.raises(LauncherOptionError, match=f"invalid Slurm option {name}="):
        SlurmOptions.from_kwargs(**{name: value})


@pytest.mark.parametrize("raw", ["--output=x", "-o", "--job-name=x", "--array=1-3", "--wrap=true"])
def test_extra_cannot_take_what_partita_sets(raw: str) -> None:
    """Options partita sets itself cannot be given as extra."""
    with pytest.raises(LauncherOptionError, match="cannot be used"):
        SlurmOptions.from_kwargs(extra=[raw])


@pytest.mark.parametrize(
    ("raw", "field_name"),
    [("--mem=4G", "mem"), ("-t", "time"), ("-c4", "cpus_per_task"), ("--no-requeue", "requeue")],
)
def test_extra_cannot_duplicate_a_typed_option(raw: str, field_name: str) -> None:
    """An extra option with a typed field points to the field."""
    with pytest.raises(LauncherOptionError, match=f"typed option '{field_name}'"):
        SlurmOptions.from_kwargs(extra=[raw])


def test_extra_accepts_one_string_and_keeps_similar_names() -> None:
    """One string is one option; --mem-per-cpu is not mistaken for --mem."""
    assert SlurmOptions.from_kwargs(extra="--exclusive").extra == ("--exclusive",)
    options = SlurmOptions.from_kwargs(extra=("--mem-per-cpu=2G", "--gpus-per-task=1"))
    assert options.to_sbatch_args() == ["--mem-per-cpu=2G", "--gpus-per-task=1"]


def test_direct_construction_is_validated_too() -> None:
    """The dataclass constructor normalises and checks like from_kwargs."""
    assert SlurmOptions(cpus_per_task="2").cpus_per_task == 2  # type: ignore[arg-type]
    with pytest.raises(LauncherOptionError):
        SlurmOptions(mem=0)


def test_options_are_frozen() -> None:
    """Options cannot change after construction."""
    options = SlurmOptions.from_kwargs(mem="1G")
    with pytest.raises(dataclasses.FrozenInstanceError):
        options.mem = 2048  # type: ignore[misc]


def test_merged_replaces_unsets_and_checks() -> None:
    """merged() returns a new object with options replaced, None unsetting one."""
    base = SlurmOptions.from_kwargs(partition="cpu", mem="4G", extra=["--exclusive"])
    merged = base.merged(mem="8G", partition=None, time=10)
    assert merged.as_kwargs() == {
        "mem": 8192,
        "time": timedelta(minutes=10),
        "extra": ("--exclusive",),
    }
    assert base.mem == 4096
    assert SlurmOptions.from_kwargs(**merged.as_kwargs()) == merged
    with pytest.raises(LauncherOptionError, match="did you mean 'mem'"):
        base.merged(mme="1G")


def test_scale_time_rounds_up_to_minutes() -> None:
    """scale_time multiplies the limit and rounds up to whole minutes."""
    options = SlurmOptions.from_kwargs(time="01:00:00", mem="1G")
    longer = options.scale_time(1.5)
    assert longer.time == timedelta(minutes=90)
    assert longer.mem == options.mem
    assert SlurmOptions.from_kwargs(time="00:00:50").scale_time(1.1).time == timedelta(minutes=1)
    assert options.time == timedelta(hours=1)


def test_scale_mem_rounds_up_to_mib() -> None:
    """scale_mem multiplies memory and rounds up to whole MiB."""
    options = SlurmOptions.from_kwargs(mem="1G")
    assert options.scale_mem(2).to_sbatch_args() == ["--mem=2G"]
    assert SlurmOptions.from_kwargs(mem=3).scale_mem(1.5).mem == 5


def test_scaling_unset_values_uses_the_default_or_nothing() -> None:
    """Without a value, scaling uses the given default, or leaves the options unchanged."""
    options = SlurmOptions.from_kwargs(partition="cpu")
    assert options.scale_time(2) is options
    assert options.scale_mem(2) is options
    assert options.scale_time(2, default=timedelta(hours=1)).time == timedelta(hours=2)
    assert options.scale_mem(2, default="4G").mem == 8192


@pytest.mark.parametrize("factor", [0, -1, True, "2"])
def test_scaling_needs_a_positive_factor(factor: object) -> None:
    """A factor that is not a positive number is refused."""
    options = SlurmOptions.from_kwargs(time=10, mem=10)
    with pytest.raises(LauncherOptionError, match="positive number"):
        options.scale_time(factor)  # type: ignore[arg-type]
    with pytest.raises(LauncherOptionError, match="positive number"):
        options.scale_mem(factor)  # type: ignore[arg-type]
