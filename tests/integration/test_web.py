"""The web monitor over HTTP and WebSocket, on work directories written by real experiments."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import textwrap
import time
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

pytest.importorskip("starlette")
with warnings.catch_warnings():  # "install httpx2 instead": httpx is what we have
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient, WebSocketDenialResponse

from partita.web import create_app, start_in_thread

pytestmark = [
    pytest.mark.filterwarnings("ignore:Using `httpx` with `starlette.testclient`"),
    pytest.mark.timeout(120),
]

TOKEN = "test-token-0123456789"

PRELUDE = """\
import sys, time
import partita
from partita import Task, Param, Meta, experiment, tag
"""

# Tasks shared by every script below (each script is its own __main__).
TASKS = """\
class Say(Task, id="web.say"):
    word: Param[str]
    def execute(self):
        print(self.word.upper())
        print("said " + self.word, file=sys.stderr)

class Concat(Task, id="web.concat"):
    strings: Param[list[Say]]
    scale: Param[float] = 1.0
    def execute(self):
        print(" ".join(s.stdout().read_text().strip() for s in self.strings))

class Noisy(Task, id="web.noisy"):
    lines: Param[int]
    def execute(self):
        for i in range(self.lines):
            print(f"line {i:05d} é€", flush=False)

class Broken(Task, id="web.broken"):
    def execute(self):
        raise ValueError("broken on purpose")

class Sleeper(Task, id="web.sleeper"):
    seconds: Param[float]
    def execute(self):
        partita.progress(0.25, "sleeping")
        print("sleeping", flush=True)
        time.sleep(self.seconds)
"""


ALPHA = """
with experiment("wd", "alpha"):
    a = Say(word="int").tag("y", 1).submit()
    b = Say(word="str").tag("y", "1").submit()
    c = Say(word="float").tag("lr", 0.1).submit()
    Concat(strings=[a, b]).tag("name", "joined").submit()
"""
BETA = """
with experiment("wd", "beta"):
    Noisy(lines=12000).submit()
"""
GAMMA = """
with experiment("wd", "gamma"):
    Broken().submit()
"""
LONG = """
with experiment("wd", "long", grace_period=2):
    Sleeper(seconds=120).submit()
"""
DELTA = """
with experiment("wd", "delta"):
    Say(word="live").tag("live", True).submit()
"""


def run_script(folder: Path, name: str, body: str, *args: str, check: bool = True) -> str:
    path = folder / f"{name}.py"
    path.write_text(PRELUDE + TASKS + textwrap.dedent(body))
    result = subprocess.run(
        [sys.executable, str(path), *args],
        cwd=folder,
        capture_output=True,
        text=True,
        timeout=120,
    )
    if check:
        assert 0 == result.returncode, result.stderr
    return result.stderr


def popen_script(folder: Path, name: str, body: str) -> subprocess.Popen[str]:
    path = folder / f"{name}.py"
    path.write_text(PRELUDE + TASKS + textwrap.dedent(body))
    return subprocess.Popen(
        [sys.executable, str(path)],
        cwd=folder,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Three experiments: alpha (tags of several types), beta (a big log), gamma (a failure)."""
    folder = tmp_path_factory.mktemp("web")
    run_script(folder, "alpha", ALPHA)
    run_script(folder, "beta", BETA)
    assert "broken" in run_script(folder, "gamma", GAMMA, check=False)
    return folder / "wd"


@pytest.fixture
def client(workdir: Path) -> Iterator[TestClient]:
    """A client that holds the token cookie (it opened the printed address)."""
    with TestClient(create_app(workdir, token=TOKEN)) as c:
        assert 200 == c.get(f"/?token={TOKEN}").status_code
        yield c


def job_id(client: TestClient, type_id: str, **tags: Any) -> str:
    jobs = client.get("/api/jobs", params={"task": type_id}).json()["jobs"]
    found = [
        j
        for j in jobs
        if j["type"] == type_id and all(j["tags"].get(k) == v for k, v in tags.items())
    ]
    assert 1 == len(found), found
    return str(found[0]["id"])


def csrf(client: TestClient) -> str:
    return str(client.get("/api/info").json()["csrf"])


# --- access ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "path",
    [
        "/",
        "/experiments",
        "/jobs/abc",
        "/experiments/alpha/x",
        "/static/app.js",
        "/static/index.html",
        "/api/info",
        "/api/jobs",
        "/api/experiments",
        "/api/jobs/abc/log",
        "/nothing-here",
    ],
)
def test_everything_needs_the_token(workdir: Path, path: str) -> None:
    """Pages, static files and the API answer 401 without the token, or with a wrong one."""
    with TestClient(create_app(workdir, token=TOKEN)) as c:
        assert 401 == c.get(path).status_code
        assert 401 == c.get(path, params={"token": "wrong"}).status_code
        c.cookies.set(c.app.state.monitor.cookie, "wrong")  # type: ignore[attr-defined]
        assert 401 == c.get(path).status_code
        assert 401 == c.post("/api/jobs/abc/kill").status_code


def test_websocket_needs_the_token(workdir: Path) -> None:
    """The WebSocket handshake is refused with 401 without the token."""
    with TestClient(create_app(workdir, token=TOKEN)) as c:
        with pytest.raises(WebSocketDenialResponse) as refused, c.websocket_connect("/ws"):
            pass
        assert 401 == refused.value.status_code
        with (
            pytest.raises(WebSocketDenialResponse) as refused,
            c.websocket_connect("/ws?token=wrong"),
        ):
            pass
        assert 401 == refused.value.status_code
        with c.websocket_connect(f"/ws?token={TOKEN}") as ws:
            assert "snapshot" == ws.receive_json()["type"]


def test_websocket_refuses_other_origins(client: TestClient) -> None:
    """A page of another origin cannot open the feed, even with the cookie."""
    evil = {"origin": "http://evil.example"}
    with (
        pytest.raises(WebSocketDenialResponse) as refused,
        client.websocket_connect("/ws", headers=evil),
    ):
        pass
    assert 403 == refused.value.status_code
    with client.websocket_connect("/ws", headers={"origin": "http://testserver"}) as ws:
        assert "snapshot" == ws.receive_json()["type"]


def test_token_in_the_address_sets_a_strict_cookie(workdir: Path) -> None:
    """Opening ?token= sets an HttpOnly, SameSite=Strict cookie and drops the token."""
    with TestClient(create_app(workdir, token=TOKEN)) as c:
        first = c.get(f"/?token={TOKEN}&state=done", follow_redirects=False)
        assert 303 == first.status_code
        assert "/?state=done" == first.headers["location"]
        cookie = first.headers["set-cookie"]
        assert cookie.startswith(f"{c.app.state.monitor.cookie}={TOKEN};")  # type: ignore[attr-defined]
        assert "HttpOnly" in cookie
        assert "samesite=strict" in cookie.lower()
        sneaky = c.get(f"http://testserver//evil.example/x?token={TOKEN}", follow_redirects=False)
        assert "/evil.example/x" == sneaky.headers["location"]  # stays on this server
        page = c.get("/")  # the cookie alone is enough now
        assert 200 == page.status_code
        assert "text/html" in page.headers["content-type"]
        assert "/static/app.js" in page.text
        assert 200 == c.get("/api/jobs").status_code
        assert 200 == c.get("/static/app.js").status_code
        # The API accepts the token in the query too (for scripts), without redirecting.
        fresh = TestClient(c.app)
        assert 200 == fresh.get(f"/api/info?token={TOKEN}").status_code


def test_pages_carry_security_headers(client: TestClient) -> None:
    """A strict CSP (no inline script, nothing from elsewhere), no framing, no caching."""
    response = client.get("/")
    csp = response.headers["content-security-policy"]
    assert "default-src 'self'" in csp
    assert "script-src 'self'" in csp
    assert "frame-ancestors 'none'" in csp
    assert "nosniff" == response.headers["x-content-type-options"]
    assert "no-referrer" == response.headers["referrer-policy"]
    assert "<script>" not in response.text
    for name in ("app.js", "style.css", "index.html", "theme.js"):
        text = client.get(f"/static/{name}").text
        assert not re.search(r"https?://(?!127\.0\.0\.1|www\.w3\.org/2000/svg)", text), name


def test_random_token_by_default(workdir: Path) -> None:
    """Without a token argument, each app draws its own long random token."""
    first, second = create_app(workdir), create_app(workdir)
    tokens = {first.state.monitor.token, second.state.monitor.token}
    assert 2 == len(tokens)
    assert all(len(t) >= 30 for t in tokens)


# --- API ---------------------------------------------------------------------------------------


def test_jobs_api_lists_every_job_with_counts(client: TestClient) -> None:
    """Jobs come with their state, tags (as typed text), progress and experiments."""
    data = client.get("/api/jobs").json()
    assert 6 == data["total"]
    assert {"done": 5, "failed": 1} == data["counts"]
    by_type: dict[str, list[dict[str, Any]]] = {}
    for job in data["jobs"]:
        by_type.setdefault(job["type"], []).append(job)
    assert 3 == len(by_type["web.say"])
    (concat,) = by_type["web.concat"]
    assert "joined" == concat["tags"]["name"]
    assert ["alpha"] == concat["experiments"]
    assert 2 == len(concat["depends"])
    assert 1.0 == concat["progress"]
    (broken,) = by_type["web.broken"]
    assert "failed" == broken["state"]
    assert "error" == broken["reason"]
    tags = {json.dumps(j["tags"], sort_keys=True) for j in by_type["web.say"]}
    assert {'{"lr": "0.1"}', '{"y": "\\"1\\""}', '{"y": "1"}'} == tags


def test_jobs_api_filters(client: TestClient) -> None:
    """Filters by state, task, experiment and typed tags, like the command line."""

    def ids(**params: Any) -> set[str]:
        response = client.get("/api/jobs", params=params)
        assert 200 == response.status_code, response.text
        return {
            j["type"] + ":" + json.dumps(j["tags"], sort_keys=True) for j in response.json()["jobs"]
        }

    assert {"web.broken:{}"} == ids(state="failed")
    assert 5 == len(ids(state="done"))
    assert 6 == len(ids(state="done,failed"))
    assert 6 == len(ids(state=["done", "failed"]))
    assert set() == ids(state="running")
    assert 3 == len(ids(task="web.say"))
    assert 6 == len(ids(task="web."))  # say ×3, concat, noisy, broken
    assert {"web.noisy:{}"} == ids(experiment="beta")
    assert 4 == len(ids(experiment="alpha"))
    assert {'web.say:{"y": "1"}'} == ids(tag="y=1")
    # (Concat carries the tags of its dependencies: the last one, y="1", wins.)
    assert {'web.say:{"y": "\\"1\\""}', 'web.concat:{"name": "joined", "y": "\\"1\\""}'} == ids(
        tag='y="1"'
    )
    assert {'web.say:{"y": "1"}'} == ids(tag="y=1.0")  # numbers match by value, as in the CLI
    assert {'web.say:{"lr": "0.1"}'} == ids(tag="lr=0.1")
    assert {'web.concat:{"name": "joined", "y": "\\"1\\""}'} == ids(tag="name=joined")
    assert set() == ids(tag="y=1", state="failed")
    assert set() == ids(tag=["y=1", "lr=0.1"])
    # Counts ignore the state filter (they label the state buttons).
    data = client.get("/api/jobs", params={"task": "web.say", "state": "failed"}).json()
    assert ([], {"done": 3}) == (data["jobs"], data["counts"])
    bad = client.get("/api/jobs", params={"tag": "nonsense"})
    assert 400 == bad.status_code
    assert "name=value" in bad.json()["error"]
    assert 400 == client.get("/api/jobs", params={"since": "yesterday"}).status_code


def test_experiments_and_runs_api(client: TestClient) -> None:
    """Experiments list their runs; a run lists its jobs and the edges between them."""
    experiments = client.get("/api/experiments").json()["experiments"]
    assert {"alpha", "beta", "gamma"} == {e["name"] for e in experiments}
    alpha = next(e for e in experiments if e["name"] == "alpha")
    assert {"done": 4} == alpha["states"]
    (run,) = alpha["runs"]
    assert "done" == run["status"]
    assert 4 == run["jobs"]
    gamma = next(e for e in experiments if e["name"] == "gamma")
    assert "failed" == gamma["latest"]["status"]
    detail = client.get(f"/api/experiments/alpha/runs/{run['run']}").json()
    assert 4 == len(detail["jobs"]) == detail["submitted"]
    assert "alpha.py" in " ".join(detail["argv"])
    concat = next(j for j in detail["jobs"] if j["type"] == "web.concat")
    assert sorted(concat["depends"]) == sorted(e[0] for e in detail["edges"])
    assert all(e[1] == concat["id"] for e in detail["edges"])
    assert [] == detail["external"]
    assert 404 == client.get("/api/experiments/alpha/runs/nope").status_code
    assert 404 == client.get("/api/experiments/..%2f..%2fetc/runs/x").status_code
    assert 404 == client.get("/api/experiments/.hidden/runs/x").status_code


def test_job_detail_api(client: TestClient, workdir: Path) -> None:
    """Params from params.json (jobs referenced by link), history, dependencies, paths."""
    concat = job_id(client, "web.concat")
    detail = client.get(f"/api/jobs/{concat}").json()
    assert "done" == detail["state"]
    params = detail["params"]
    assert "web.concat" == params["type"]
    assert {"$float": "1.0"} == params["fields"]["scale"]  # 1.0, not 1
    refs = params["fields"]["strings"]
    assert 2 == len(refs)
    assert {"web.say"} == {r["$job"]["type"] for r in refs}
    assert sorted(r["$job"]["id"] for r in refs) == sorted(detail["depends"])
    assert ["running", "done"] == [h["state"] for h in detail["history"]]
    assert 0 == detail["exit_code"]
    assert {"web.say"} == {d["type"] for d in detail["dependencies"]}
    assert {"done"} == {d["state"] for d in detail["dependencies"]}
    folder = Path(detail["paths"]["folder"])
    assert folder == workdir / "jobs" / "web.concat" / concat
    assert {"stdout": len("INT STR\n"), "stderr": 0} == detail["logs"]
    say = detail["dependencies"][0]["id"]
    assert [concat] == [d["id"] for d in client.get(f"/api/jobs/{say}").json()["dependents"]]
    # A unique prefix works too; an ambiguous or unknown one is 404.
    assert concat == client.get(f"/api/jobs/{concat[:10]}").json()["id"]
    assert 404 == client.get("/api/jobs/ffffffffffff").status_code
    broken = client.get(f"/api/jobs/{job_id(client, 'web.broken')}").json()
    assert "failed" == broken["state"]
    assert "error" == broken["reason"]


SHARED = """
class Fit(Task, id="web.fit", shared={"ckpt": ("epochs",)}):
    data: Param[Say]
    epochs: Param[int]
    def execute(self):
        with self.shared("ckpt") as folder:
            (folder / "epoch").write_text(str(self.epochs))

with experiment("wd", "fits"):
    data = Say(word="input").submit(transient=True)
    Fit(data=data, epochs=1).submit()
"""


def test_transient_jobs_and_shared_folders_in_the_api(tmp_path: Path) -> None:
    """Summaries say which job is transient; a job's detail lists its shared folders,
    showing only entries of shared.json that name a shared folder."""
    run_script(tmp_path, "fits", SHARED)
    workdir = tmp_path / "wd"
    with TestClient(create_app(workdir, token=TOKEN)) as c:
        assert 200 == c.get(f"/?token={TOKEN}").status_code
        jobs = {j["type"]: j for j in c.get("/api/jobs").json()["jobs"]}
        assert {"web.say": True, "web.fit": False} == {t: j["transient"] for t, j in jobs.items()}
        fit = jobs["web.fit"]["id"]
        (shared,) = c.get(f"/api/jobs/{fit}").json()["shared"]
        folder = Path(shared["path"])
        assert folder.parent == workdir / "shared" / "web.fit" / "ckpt"
        assert "1" == (folder / "epoch").read_text()
        assert {"name": f"web.fit/ckpt/{folder.name[:12]}", "group": "ckpt", "exists": True} == {
            k: v for k, v in shared.items() if k != "path"
        }
        assert [] == c.get(f"/api/jobs/{jobs['web.say']['id']}").json()["shared"]
        record = workdir / "jobs" / "web.fit" / fit / "shared.json"
        good = json.loads(record.read_text())
        record.write_text(json.dumps([*good, "../../../etc", "shared/web.fit/ckpt/../../x"]))
        assert [shared["path"]] == [s["path"] for s in c.get(f"/api/jobs/{fit}").json()["shared"]]
        record.write_text("{broken")
        assert c.get(f"/api/jobs/{fit}").json()["shared"] is None


# --- logs --------------------------------------------------------------------------------------


def test_log_tail_and_offsets(client: TestClient) -> None:
    """A log is read from an offset; the next read continues where the last one ended."""
    say = job_id(client, "web.say", y="1")
    out = client.get(f"/api/jobs/{say}/log").json()
    assert ("INT\n", 0, 4, 4) == (out["content"], out["start"], out["offset"], out["size"])
    err = client.get(f"/api/jobs/{say}/log", params={"stream": "stderr"}).json()
    assert "said int\n" == err["content"]
    assert "NT\n" == client.get(f"/api/jobs/{say}/log", params={"offset": 1}).json()["content"]
    end = client.get(f"/api/jobs/{say}/log", params={"offset": 4}).json()
    assert ("", 4, 4) == (end["content"], end["offset"], end["size"])
    beyond = client.get(f"/api/jobs/{say}/log", params={"offset": 100}).json()
    assert beyond["reset"] and "INT\n" == beyond["content"]
    for bad in (
        {"stream": "params"},
        {"stream": "../params.json"},
        {"offset": "-1"},
        {"offset": "x"},
    ):
        assert 400 == client.get(f"/api/jobs/{say}/log", params=bad).status_code


def test_log_of_a_big_file_is_tailed_and_chunked(client: TestClient, workdir: Path) -> None:
    """Opened without an offset, a big log shows its end from a line start; UTF-8 is kept whole."""
    noisy = job_id(client, "web.noisy")
    size = (workdir / "jobs" / "web.noisy" / noisy / "stdout").stat().st_size
    tail = client.get(f"/api/jobs/{noisy}/log").json()
    assert tail["start"] > 0 and size == tail["offset"] == tail["size"]
    assert tail["content"].startswith("line ")
    assert tail["content"].endswith("line 11999 é€\n")
    assert size - tail["start"] <= 64 * 1024
    # From the start, in chunks: the concatenation is the file, whatever the chunk borders.
    offset, parts = 0, []
    while offset < size:
        chunk = client.get(f"/api/jobs/{noisy}/log", params={"offset": offset}).json()
        assert chunk["offset"] > offset
        parts.append(chunk["content"])
        offset = chunk["offset"]
    text = "".join(parts)
    assert "\ufffd" not in text
    assert text == (workdir / "jobs" / "web.noisy" / noisy / "stdout").read_text("utf-8")
    # An offset in the middle of a character: the partial character stays for later reads.
    cut = text.encode().index("€".encode()) + 1
    partial = client.get(f"/api/jobs/{noisy}/log", params={"offset": cut}).json()
    assert partial["start"] == cut


def test_log_follows_appended_output(workdir: Path, tmp_path: Path) -> None:
    """Reading from the last offset returns only what was appended since."""
    copy = tmp_path / "wd"
    shutil.copytree(workdir, copy)
    with TestClient(create_app(copy, token=TOKEN)) as c:
        c.get(f"/?token={TOKEN}")
        say = job_id(c, "web.say", lr="0.1")
        stdout = copy / "jobs" / "web.say" / say / "stdout"
        first = c.get(f"/api/jobs/{say}/log").json()
        with stdout.open("ab") as f:
            f.write("more output ✓\n".encode() + b"half: " + "é".encode()[:1])
        second = c.get(f"/api/jobs/{say}/log", params={"offset": first["offset"]}).json()
        assert "more output ✓\nhalf: " == second["content"]
        with stdout.open("ab") as f:
            f.write("é".encode()[1:] + b"\n")
        third = c.get(f"/api/jobs/{say}/log", params={"offset": second["offset"]}).json()
        assert "é\n" == third["content"]


@pytest.mark.parametrize(
    "reference",
    [
        "..",
        "...",
        "..%2f..%2f..%2fetc%2fpasswd",
        "%2e%2e",
        "%2fetc%2fpasswd",
        "web.say",
        "web.say%2f0",
        "0%20",
        "abc%00",
        "g00d",
        "ABC%2F..",
        "~",
        "*",
        "%25",
    ],
)
def test_logs_cannot_escape_the_work_directory(client: TestClient, reference: str) -> None:
    """Only hexadecimal identifiers known to the index name a job: anything else is 404."""
    for suffix in ("/log", "/log?stream=stderr", ""):
        response = client.get(f"/api/jobs/{reference}{suffix}")
        assert response.status_code in (404, 405), (reference, suffix, response.status_code)
        assert "root:" not in response.text


def test_log_ignores_links_out_of_the_job_folder(workdir: Path, tmp_path: Path) -> None:
    """A stdout that is a symbolic link (e.g. to /etc/passwd) reads as empty."""
    copy = tmp_path / "wd"
    shutil.copytree(workdir, copy)
    secret = tmp_path / "secret.txt"
    secret.write_text("root:x:0:0 secret\n")
    with TestClient(create_app(copy, token=TOKEN)) as c:
        c.get(f"/?token={TOKEN}")
        say = job_id(c, "web.say", y="1")
        stdout = copy / "jobs" / "web.say" / say / "stdout"
        stdout.unlink()
        stdout.symlink_to(secret)
        data = c.get(f"/api/jobs/{say}/log").json()
        assert ("", False) == (data["content"], data["exists"])
        assert c.get(f"/api/jobs/{say}").json()["logs"]["stdout"] is None
        # A job folder that is a link out of jobs/ is not served either.
        outside = tmp_path / "outside"
        shutil.copytree(copy / "jobs" / "web.say" / say, outside)
        (outside / "stdout").unlink()
        (outside / "stdout").write_text("root:x:0:0 secret\n")
        fake = "f" * 64
        (copy / "jobs" / "web.say" / fake).symlink_to(outside)
        time.sleep(0.6)
        response = c.get(f"/api/jobs/{fake}/log")
        assert 404 == response.status_code, response.text
        assert "root:" not in response.text


# --- kill --------------------------------------------------------------------------------------


def test_kill_needs_post_and_csrf(client: TestClient) -> None:
    """GET is 405; POST without the CSRF header, with a wrong one or from elsewhere is 403."""
    say = job_id(client, "web.say", y="1")
    url = f"/api/jobs/{say}/kill"
    assert 405 == client.get(url).status_code
    missing = client.post(url)
    assert 403 == missing.status_code
    assert "x-partita-csrf" in missing.json()["error"].lower()
    assert 403 == client.post(url, headers={"X-Partita-CSRF": "nope"}).status_code
    token = csrf(client)
    elsewhere = {"X-Partita-CSRF": token, "Origin": "http://evil.example"}
    assert 403 == client.post(url, headers=elsewhere).status_code
    cross_site = {"X-Partita-CSRF": token, "Sec-Fetch-Site": "cross-site"}
    assert 403 == client.post(url, headers=cross_site).status_code
    done = client.post(url, headers={"X-Partita-CSRF": token, "Origin": "http://testserver"})
    assert 409 == done.status_code  # the job is done: nothing to kill
    assert "done" == done.json()["state"]
    escape = client.post("/api/jobs/..%2f../kill", headers={"X-Partita-CSRF": token})
    assert 404 == escape.status_code


def test_kill_a_running_job(tmp_path: Path) -> None:
    """A kill through the API cancels the job: state cancelled, marker written."""
    xp = popen_script(tmp_path, "long", LONG)
    try:
        deadline = time.time() + 30
        while not (tmp_path / "wd" / ".partita").exists():
            assert time.time() < deadline
            time.sleep(0.05)
        with TestClient(create_app(tmp_path / "wd", token=TOKEN)) as c:
            c.get(f"/?token={TOKEN}")
            sleeper = None
            while sleeper is None:
                assert time.time() < deadline, "the job never ran"
                jobs = c.get("/api/jobs", params={"state": "running"}).json()["jobs"]
                sleeper = jobs[0] if jobs and jobs[0]["progress"] is not None else None
                time.sleep(0.1)
            assert 0.25 == sleeper["progress"]
            assert "sleeping" == sleeper["message"]
            response = c.post(
                f"/api/jobs/{sleeper['id']}/kill", headers={"X-Partita-CSRF": csrf(c)}
            )
            assert 200 == response.status_code, response.text
            assert "cancelled" == response.json()["state"]
            folder = tmp_path / "wd" / "jobs" / "web.sleeper" / sleeper["id"]
            assert (folder / "cancelled").exists()
            assert "cancelled" == c.get(f"/api/jobs/{sleeper['id']}").json()["state"]
        assert xp.wait(30) != 0  # its job was cancelled: the experiment says so
    finally:
        if xp.poll() is None:
            xp.kill()
            xp.wait()


# --- live feed ---------------------------------------------------------------------------------


def test_websocket_pushes_changes(workdir: Path, tmp_path: Path) -> None:
    """While connected, a new experiment's jobs arrive as updates, up to their final state."""
    copy = tmp_path / "wd"
    shutil.copytree(workdir, copy)
    with TestClient(create_app(copy, token=TOKEN)) as c:
        c.get(f"/?token={TOKEN}")
        with c.websocket_connect("/ws") as ws:
            snapshot = ws.receive_json()
            assert "snapshot" == snapshot["type"]
            assert 6 == len(snapshot["jobs"])
            assert {"alpha", "beta", "gamma"} == {r["experiment"] for r in snapshot["runs"]}
            # Garbage is ignored; a bad tag is reported.
            ws.send_bytes(b"\x00\x01")
            ws.send_text("not json")
            ws.send_json({"type": "filter", "seq": 7, "tags": ["nonsense"]})
            assert "error" == ws.receive_json()["type"]
            again = ws.receive_json()
            assert (7, 6) == (again["seq"], len(again["jobs"]))
            # A filter: only matching jobs, in a new snapshot tagged with the filter's number.
            ws.send_json({"type": "filter", "seq": 1, "task": "web.say", "tags": ["y=1"]})
            filtered = ws.receive_json()
            assert ("snapshot", 1) == (filtered["type"], filtered["seq"])
            assert [{"y": "1"}] == [j["tags"] for j in filtered["jobs"]]
            ws.send_json({"type": "filter", "seq": 2})
            assert 6 == len(ws.receive_json()["jobs"])
            # Now an experiment runs next to the monitor.
            run_script(tmp_path, "delta", DELTA)
            states: list[str] = []
            runs_seen = False
            deadline = time.time() + 30
            while "done" not in states:
                assert time.time() < deadline, states
                message = ws.receive_json()
                assert "update" == message["type"]
                assert 2 == message["seq"]
                runs_seen = runs_seen or "delta" in {
                    r["experiment"] for r in message.get("runs", [])
                }
                states += [
                    j["state"] for j in message["changed"] if j["tags"].get("live") == "true"
                ]
            assert runs_seen
            assert not message["removed"]


def test_websocket_sends_nothing_when_nothing_changes(client: TestClient) -> None:
    """After the snapshot, a quiet work directory produces no messages."""
    state = client.app.state.monitor  # type: ignore[attr-defined]
    with client.websocket_connect("/ws") as ws:
        ws.receive_json()
        version = state.version
        time.sleep(1.6)  # three refreshes
        assert version == state.version


# --- serving -----------------------------------------------------------------------------------


def test_serve_prints_its_address_and_stops_on_ctrl_c(workdir: Path) -> None:
    """`serve` listens on 127.0.0.1, a free port; prints its address and token; stops on SIGINT."""
    process = subprocess.Popen(
        [sys.executable, "-c", f"from partita.web import serve; serve({str(workdir)!r})"],
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stderr is not None
        line = process.stderr.readline()
        match = re.match(r"partita monitor: (http://127\.0\.0\.1:(\d+)/)\?token=(\S+)$", line)
        assert match, line
        base, token = match.group(1), match.group(3)
        assert 401 == httpx.get(base, timeout=10).status_code
        with httpx.Client(timeout=10) as browser:
            page = browser.get(f"{base}?token={token}", follow_redirects=True)
            assert 200 == page.status_code
            assert 200 == browser.get(f"{base}api/jobs").status_code
        process.send_signal(signal.SIGINT)
        assert 0 == process.wait(15)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def test_start_in_thread(workdir: Path) -> None:
    """A monitor in a thread: its URL works until stop()."""
    monitor = start_in_thread(workdir)
    try:
        assert monitor.url.startswith("http://127.0.0.1:")
        assert f"?token={monitor.token}" in monitor.url
        response = httpx.get(monitor.url, follow_redirects=True, timeout=10)
        assert 200 == response.status_code
        assert 401 == httpx.get(monitor.url.split("?")[0] + "api/jobs", timeout=10).status_code
    finally:
        monitor.stop()
    with pytest.raises(httpx.ConnectError):
        httpx.get(monitor.url, timeout=2)


def test_answers_and_the_feed_travel_compressed(workdir: Path) -> None:
    """JSON answers are gzipped for clients that accept it; the feed uses permessage-deflate."""
    import asyncio

    import websockets

    monitor = start_in_thread(workdir)
    try:
        base = monitor.url.split("?")[0]
        url = f"{base}api/jobs?token={monitor.token}"
        with httpx.Client(timeout=10) as http:
            zipped = http.get(url, headers={"accept-encoding": "gzip"})
            plain = http.get(url, headers={"accept-encoding": "identity"})
        assert 200 == zipped.status_code == plain.status_code
        assert zipped.headers.get("content-encoding") == "gzip"
        assert "content-encoding" not in plain.headers
        assert zipped.json() == plain.json() and len(plain.json()["jobs"]) >= 4
        # What went over the wire (httpx decodes it) is several times smaller.
        assert int(zipped.headers["content-length"]) * 3 < len(plain.content)

        async def negotiated() -> tuple[str | None, dict[str, Any]]:
            address = base.removeprefix("http://").rstrip("/")
            async with websockets.connect(
                f"ws://{address}/ws?token={monitor.token}", origin=f"http://{address}"
            ) as ws:
                await ws.send(json.dumps({"type": "filter", "seq": 1}))
                message = json.loads(await asyncio.wait_for(ws.recv(), 30))
                return ws.response.headers.get("sec-websocket-extensions"), message

        extensions, message = asyncio.run(negotiated())
        assert extensions is not None and "permessage-deflate" in extensions
        assert message["type"] == "snapshot" and len(message["jobs"]) >= 4
    finally:
        monitor.stop()


def test_missing_work_directory_is_an_error(tmp_path: Path) -> None:
    """The monitor does not create a work directory: a wrong path is a clear error."""
    from partita.errors import WorkspaceError

    with pytest.raises(WorkspaceError, match="found nothing"):
        create_app(tmp_path / "nowhere")


def test_import_without_the_web_extra_says_what_to_install() -> None:
    """Without starlette, importing partita.web names the extra to install."""
    code = textwrap.dedent("""
        import sys
        sys.modules["starlette"] = None
        try:
            import partita.web
        except ImportError as exc:
            print(exc)
        else:
            print("imported")
    """)
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, env={**os.environ}
    )
    assert "pip install 'partita[web]'" in result.stdout, result.stdout + result.stderr


def test_experiment_serves_the_monitor_while_it_runs(tmp_path: Path) -> None:
    """experiment(monitor=True) serves the monitor during the run and prints its address."""
    script = tmp_path / "mon.py"
    script.write_text(
        "import time, urllib.request, http.cookiejar, sys\n"
        "from partita import Task, experiment\n"
        "class Nap(Task, id='mon.nap'):\n"
        "    def execute(self):\n"
        "        time.sleep(0.5)\n"
        "with experiment('wd', 'mon', monitor=True) as xp:\n"
        "    Nap().submit()\n"
        "    url = xp._monitor.url\n"
        "    jar = urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar())\n"
        "    body = urllib.request.build_opener(jar).open(url).read().decode()\n"
        "    print('served', 'partita' in body.lower())\n"
    )
    result = subprocess.run(
        [sys.executable, str(script)], cwd=tmp_path, capture_output=True, text=True, timeout=60
    )
    assert 0 == result.returncode, result.stderr
    assert "partita: monitor: http://127.0.0.1:" in result.stderr
    assert "served True" in result.stdout
