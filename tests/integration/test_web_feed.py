"""The monitor's live feed sends only what changed, on a work directory of many jobs.

The jobs are written through the job-folder protocol (as an experiment and its job runner
write them); the monitor runs as an application with its watcher, and a WebSocket client
reads what it sends.
"""

from __future__ import annotations

import shutil
import time
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("starlette")
with warnings.catch_warnings():  # "install httpx2 instead": httpx is what we have
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient

from xputil import monitor

from jobfolders import begin, finish, ident, make_job
from partita.workspace import JobPaths, JobState, Workspace

pytestmark = [
    pytest.mark.filterwarnings("ignore:Using `httpx` with `starlette.testclient`"),
    pytest.mark.timeout(120),
]

TOKEN = "feed-token-0123456789"
TYPE = "feed.task"
OTHER = "feed.other"
N = 400


@pytest.fixture
def workspace(tmp_path: Path) -> Workspace:
    ws = Workspace(tmp_path / "wd")
    for i in range(N):
        make_job(ws, OTHER if i % 10 == 0 else TYPE, i, JobState.DONE)
    return ws


@pytest.fixture
def client(workspace: Workspace) -> Iterator[TestClient]:
    with monitor(workspace.root, token=TOKEN) as c:
        yield c


def job(workspace: Workspace, i: int) -> JobPaths:
    return workspace.job(OTHER if i % 10 == 0 else TYPE, ident(i))


def test_one_change_among_many_jobs_sends_that_job_only(
    client: TestClient, workspace: Workspace
) -> None:
    state = client.app.state.monitor  # type: ignore[attr-defined]
    with client.websocket_connect("/ws") as ws:
        snapshot = ws.receive_json()
        assert ("snapshot", N) == (snapshot["type"], len(snapshot["jobs"]))
        paths = job(workspace, 7)
        attempt = begin(paths)
        update = ws.receive_json()
        assert "update" == update["type"]
        assert snapshot["version"] == update["since"]
        assert [(ident(7), "running")] == [(j["id"], j["state"]) for j in update["changed"]]
        assert [] == update["removed"]
        assert "runs" not in update
        assert 1 == state.read  # that job alone was read again, not the N others
        finish(paths, JobState.FAILED, attempt)
        update2 = ws.receive_json()
        assert update["version"] == update2["since"]
        assert [(ident(7), "failed")] == [(j["id"], j["state"]) for j in update2["changed"]]
        # A folder removed by hand: the job goes, alone.
        shutil.rmtree(job(workspace, 8).root)
        update3 = ws.receive_json()
        assert ([], [ident(8)]) == (update3["changed"], update3["removed"])
        assert N - 1 == len(state.jobs)


def test_a_filtered_feed_sends_only_matching_changes(
    client: TestClient, workspace: Workspace
) -> None:
    with client.websocket_connect("/ws") as ws:
        ws.receive_json()
        ws.send_json({"type": "filter", "seq": 1, "task": OTHER})
        snapshot = ws.receive_json()
        assert ("snapshot", 1) == (snapshot["type"], snapshot["seq"])
        assert N // 10 == len(snapshot["jobs"])
        begin(job(workspace, 3))  # another type: nothing to send for it
        begin(job(workspace, 20))
        update = ws.receive_json()
        assert ("update", 1) == (update["type"], update["seq"])
        assert [ident(20)] == [j["id"] for j in update["changed"]]
        assert [] == update["removed"]


def test_a_reconnecting_client_gets_what_it_missed(
    client: TestClient, workspace: Workspace
) -> None:
    """With the epoch and version it had, a client gets an update, not the whole snapshot."""
    with client.websocket_connect("/ws") as ws:
        had = ws.receive_json()
    state = client.app.state.monitor  # type: ignore[attr-defined]
    finish(job(workspace, 11), JobState.FAILED, begin(job(workspace, 11)))
    # Not connected: nothing refreshes the monitor but requests (at most twice a second).
    deadline = time.monotonic() + 30
    while state.version == had["version"]:
        assert time.monotonic() < deadline
        client.get("/api/jobs")
    resume = {"type": "filter", "seq": 0, "epoch": had["epoch"], "version": had["version"]}
    with client.websocket_connect("/ws") as ws:
        ws.send_json(resume)
        message = first_of_seq(ws, 0, after_snapshot=True)
        assert "update" == message["type"]
        assert had["version"] == message["since"]
        assert [ident(11)] == [j["id"] for j in message["changed"]]
        # Another monitor's epoch, or a version the log does not reach: a snapshot.
        ws.send_json({**resume, "seq": 1, "epoch": "another"})
        assert ("snapshot", N) == pick(ws, 1)
        ws.send_json({**resume, "seq": 2, "version": state.version + 5})
        assert ("snapshot", N) == pick(ws, 2)
        # A client that lost track asks for a snapshot.
        ws.send_json({"type": "resync"})
        assert ("snapshot", N) == pick(ws, 2)


def test_a_client_further_behind_than_the_change_log_gets_a_snapshot(
    client: TestClient, workspace: Workspace
) -> None:
    state = client.app.state.monitor  # type: ignore[attr-defined]
    with client.websocket_connect("/ws") as ws:
        had = ws.receive_json()
        for i in (31, 32, 33):
            begin(job(workspace, i))
            while True:  # one version per change
                message = ws.receive_json()
                if ident(i) in {j["id"] for j in message["changed"]}:
                    break
    assert state.changes_since(had["version"]) is not None
    while state._log[0][0] <= had["version"] + 1:  # as if CHANGE_LOG refreshes happened since
        state._log.popleft()
    assert state.changes_since(had["version"]) is None
    with client.websocket_connect("/ws") as ws:
        ws.send_json({"type": "filter", "seq": 0, "epoch": had["epoch"], "version": had["version"]})
        message = first_of_seq(ws, 0, after_snapshot=False)
        assert ("snapshot", N) == (message["type"], len(message["jobs"]))
        running = {j["id"] for j in message["jobs"] if j["state"] == "running"}
        assert {ident(31), ident(32), ident(33)} == running


def first_of_seq(ws: Any, seq: int, *, after_snapshot: bool) -> dict[str, Any]:
    """The first message answering the filter message numbered ``seq``.

    With ``after_snapshot`` (the client's first message on a new connection, answered by
    an update), one snapshot the server sent before reading it is skipped: the server waits
    FIRST_MESSAGE_WAIT for it, which a very slow machine could exceed.
    """
    while True:
        message: dict[str, Any] = ws.receive_json()
        if after_snapshot and message["type"] == "snapshot":
            after_snapshot = False
            continue
        if message.get("seq") == seq:
            return message


def pick(ws: Any, seq: int) -> tuple[str, int]:
    message = first_of_seq(ws, seq, after_snapshot=False)
    return message["type"], len(message.get("jobs", []))
