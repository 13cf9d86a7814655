"""The scheduler in-process: retries, requeues, dependencies, cancellation, tokens, followers.

Each test runs a real ``Scheduler`` on a real work directory; a ``FakeLauncher`` plays the
job processes (it takes the job lock and records outcomes like the runner does).
"""

from __future__ import annotations

import threading

from schedharness import Harness

from partita.scheduler import Token
from partita.testing import Done, ExitsEarly, Fails, FakeLauncher, Hangs, Killed, LaunchFails, Slow
from partita.workspace import FileLock, JobState, read_job, read_state


def test_done_then_reused_by_another_scheduler(harness: Harness) -> None:
    fake = FakeLauncher()
    job = harness.submit(1, fake)
    assert job.wait(5) is JobState.DONE
    assert job.paths.done.exists() and job.attempts == 1 and not job.reused
    again = harness.submit(1, fake, scheduler=harness.new_scheduler("second"))
    assert again.wait(5) is JobState.DONE
    assert again.reused and again.attempts == 0
    assert fake.attempts("schedtest.step") == 1


def test_retry_after_timeout_then_done(harness: Harness) -> None:
    fake = FakeLauncher({"schedtest.step": [Killed("timeout"), Done()]})
    job = harness.submit(1, fake, retry=1)
    assert job.wait(5) is JobState.DONE
    assert job.attempts == 2
    history = read_state(job.paths)["history"]
    assert [h["state"] for h in history] == ["running", "failed", "running", "done"]
    assert history[1]["reason"] == "timeout" and history[1]["attempt"] == 1


def test_error_is_not_retried_and_lost_is_recorded(harness: Harness) -> None:
    fake = FakeLauncher({"schedtest.step": Fails()})
    failed = harness.submit(1, fake, retry=3)
    lost = harness.submit(2, FakeLauncher(default=Killed()), retry=0)
    early = harness.submit(3, FakeLauncher(default=ExitsEarly(2)))
    assert failed.wait(5) is JobState.FAILED and failed.reason == "error"
    assert failed.attempts == 1  # an error of the task itself is not retried by default
    assert lost.wait(5) is JobState.FAILED and lost.reason == "lost"
    assert "SIGKILL" in lost.detail
    assert read_job(lost.paths).state == "failed" and read_job(lost.paths).reason == "lost"
    assert early.wait(5) is JobState.FAILED and early.reason == "lost"
    assert "exit code 2" in early.detail


def test_retries_stop_at_the_count(harness: Harness) -> None:
    fake = FakeLauncher(default=Killed("preempted"))
    job = harness.submit(1, fake, retry=2)
    assert job.wait(5) is JobState.FAILED and job.reason == "preempted"
    assert job.attempts == 3


def test_launch_failure(harness: Harness) -> None:
    job = harness.submit(1, FakeLauncher(default=LaunchFails("no such partition")))
    assert job.wait(5) is JobState.FAILED and job.reason == "launch"
    assert "no such partition" in job.detail
    assert read_job(job.paths).reason == "launch"


def test_dependency_failure_is_written_and_the_dependent_never_runs(harness: Harness) -> None:
    fake = FakeLauncher({"schedtest.step": Fails()})
    first = harness.submit(1, fake)
    fine = FakeLauncher()
    second = harness.submit(2, fine, after=[first])
    third = harness.submit(3, fine, after=[second])
    assert third.wait(5) is JobState.FAILED
    assert second.state is JobState.FAILED and second.reason == "dependency"
    assert third.reason == "dependency" and first.name in second.detail
    assert fine.launched == []
    for job in (second, third):
        info = read_job(job.paths)
        assert (info.state, info.reason) == ("failed", "dependency")


def test_requeue_when_a_queued_dependency_fails_then_succeeds(harness: Harness) -> None:
    # The first attempt fails only once the dependent has been queued behind it.
    queued = threading.Event()
    fake = FakeLauncher(
        {"schedtest.step": [Killed("node_fail", gate=queued), Done()]},
        queues_dependencies=True,
        on_launch=lambda request: queued.set() if len(fake.launched) >= 2 else None,
    )
    first = harness.submit(1, fake, retry=1)
    second = harness.submit(2, fake, after=[first])  # same launcher: queued after it
    assert second.wait(5) is JobState.DONE
    assert first.state is JobState.DONE and first.attempts == 2
    # The dependent was queued behind the failed attempt, requeued, then ran again.
    history = read_state(second.paths)["history"]
    assert [h["state"] for h in history][-2:] == ["running", "done"]
    assert any(h["state"] == "cancelled" for h in history)
    assert second.attempts == 2


def test_cancel_all_kills_running_and_cancels_dependents(harness: Harness) -> None:
    fake = FakeLauncher(default=Hangs())
    running = harness.submit(1, fake)
    dependent = harness.submit(2, FakeLauncher(), after=[running])
    harness.wait_for(lambda: running.state is JobState.RUNNING and fake.running == 1)
    harness.scheduler.cancel_all(kill_running=True)
    assert running.state is JobState.CANCELLED and dependent.state is JobState.CANCELLED
    # One vocabulary: what the experiment reports is what the folders say.
    assert read_job(running.paths).state == "cancelled"
    info = read_job(dependent.paths)
    assert (info.state, info.reason) == ("cancelled", None)
    assert not dependent.paths.failed.exists()
    counts = harness.scheduler.statistics()
    assert counts["cancelled"] == 2 and counts["failed"] == 0


def test_dependent_of_a_cancelled_job_is_cancelled_dependency(harness: Harness) -> None:
    fake = FakeLauncher(default=Hangs())
    first = harness.submit(1, fake)
    second = harness.submit(2, FakeLauncher(), after=[first])
    harness.wait_for(lambda: fake.running == 1 and first.state is JobState.RUNNING)
    # Killed from outside the experiment (like 'partita jobs kill'): the runner records it.
    first.paths.cancel_request.write_text("test\n")
    handle = read_state(first.paths)["launcher"]
    harness.scheduler._bridge.run(fake.cancel(handle, 0.0))
    assert second.wait(5) is JobState.CANCELLED
    assert second.reason == "dependency"
    info = read_job(second.paths)
    assert (info.state, info.reason) == ("cancelled", "dependency")


def test_capacity_bounds_jobs_at_once(harness: Harness) -> None:
    fake = FakeLauncher(default=Slow(0.02), capacity=2)
    jobs = [harness.submit(n, fake) for n in range(6)]
    assert all(job.wait(5) is JobState.DONE for job in jobs)
    assert fake.peak == 2


def test_tokens_bound_jobs_across_launchers(harness: Harness) -> None:
    gpu = Token("gpu", 1)
    fakes = [FakeLauncher(default=Slow(0.05)) for _ in range(3)]
    jobs = [harness.submit(n, fake, tokens={gpu: 1}) for n, fake in enumerate(fakes)]
    assert all(job.wait(5) is JobState.DONE for job in jobs)
    starts = sorted(job.started or 0 for job in jobs)
    ends = sorted(job.ended or 0 for job in jobs)
    assert max(f.peak for f in fakes) == 1
    # One unit: each job starts after the previous one ended.
    assert all(starts[i + 1] >= ends[i] - 0.01 for i in range(2))
    assert harness.scheduler._tokens.in_use(gpu) == 0


def test_second_scheduler_follows_instead_of_running_twice(harness: Harness) -> None:
    fake = FakeLauncher(default=Slow(0.15))
    first = harness.submit(1, fake)
    harness.wait_for(lambda: fake.running == 1)
    follower = harness.submit(1, fake, scheduler=harness.new_scheduler("second"))
    assert follower.wait(5) is JobState.DONE and first.wait(5) is JobState.DONE
    assert follower.elsewhere and follower.attempts == 0
    assert fake.attempts("schedtest.step") == 1


def test_a_contended_job_lock_does_not_stall_other_jobs(harness: Harness) -> None:
    """Someone holds job 0's lock when its attempt ends: the others still finish at once."""
    held = threading.Event()
    release = threading.Event()

    def grab(request: object) -> None:
        paths = request.paths  # type: ignore[attr-defined]
        if paths.identifier != target.identifier:
            return

        def hold() -> None:
            with FileLock(paths.lock):
                held.set()
                release.wait(60)

        threading.Thread(target=hold, daemon=True).start()
        held.wait(5)

    fake = FakeLauncher(default=Killed(), on_exit=grab)
    target = harness.submit(0, fake)
    others_launcher = FakeLauncher()
    harness.wait_for(held.is_set)
    others = [harness.submit(n, others_launcher) for n in range(1, 6)]
    # They end while the lock is held (it is held until release is set, below), whatever
    # the machine's speed: a scheduler stalled by the lock would time out here.
    assert all(job.wait(30) is JobState.DONE for job in others)
    assert not release.is_set()
    assert not target.state.final  # still waiting for its lock to record the outcome
    release.set()
    assert target.wait(5) is JobState.FAILED and target.reason == "lost"


def test_scripts_count_attempts_per_job(harness: Harness) -> None:
    fake = FakeLauncher({"schedtest.step": [Killed("timeout"), Done()]})
    jobs = [harness.submit(n, fake, retry=1) for n in range(3)]
    assert all(job.wait(5) is JobState.DONE for job in jobs)
    assert [job.attempts for job in jobs] == [2, 2, 2]
