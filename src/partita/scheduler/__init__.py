"""The scheduler: dependency graph, job states, retries, tokens and the event stream."""

from partita.scheduler._environment import environment_for_jobs
from partita.scheduler._job import Job, JobEvent, Retry, Submission
from partita.scheduler._scheduler import Scheduler

__all__ = ["Job", "JobEvent", "Retry", "Scheduler", "Submission", "Token", "environment_for_jobs"]


def __getattr__(name: str) -> object:
    if name == "Token":
        from partita.scheduler._tokens import Token

        return Token
    raise AttributeError(name)
