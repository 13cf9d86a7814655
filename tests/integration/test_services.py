"""Services of an experiment: started with it, listed by ``partita status``, stopped with it.

Real experiment scripts start a small ``http.server`` on a free port of 127.0.0.1 as a
service; the test talks to it while the experiment runs, and checks that it is gone
afterwards, however the experiment ended (done, Ctrl-C, SIGKILL, a failed start).
"""

from __future__ import annotations

import json
import signal
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from xputil import NEEDS_CHROMIUM, Script, browser_page, monitor, wait_for

from partita.cli import cli
from partita.workspace import is_alive

BODY = """
class Wait(Task, id="svc.wait"):
    n: Param[int]
    def execute(self):
        release = Path(os.environ["RELEASE"])
        deadline = time.time() + 60
        while not release.exists() and time.time() < deadline:
            time.sleep(0.02)

(Path(".") / "site").mkdir(exist_ok=True)
(Path(".") / "site" / "hello.txt").write_text("hello from the service")
SERVE = [sys.executable, "-m", "http.server", "{port}", "--bind", "{host}", "--directory", "site"]
if os.environ.get("IN_SHELL"):  # the server is the child of a shell: a grandchild of partita's
    import shlex
    SERVE = ["sh", "-c", shlex.join(SERVE) + " & wait"]
with experiment("wd", "svc") as xp:
    service = xp.add_service(partita.CommandService(SERVE, name="files"))
    Path("service.json").write_text(json.dumps({"url": service.url, "pid": service.pid}))
    Wait(n=1).submit()
"""


def _get(url: str) -> str:
    with urllib.request.urlopen(url, timeout=5) as reply:
        return str(reply.read().decode())


def _refused(url: str) -> bool:
    try:
        _get(url)
    except (urllib.error.URLError, ConnectionError, OSError):
        return True
    return False


def _status(workdir: Path) -> dict[str, Any]:
    result = CliRunner().invoke(cli, ["status", str(workdir), "--json"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return dict(json.loads(result.output))


def _started(tmp_path: Path) -> dict[str, Any]:
    path = tmp_path / "service.json"
    wait_for(path.exists, what="the service to start")
    return dict(json.loads(path.read_text()))


def _monitor_services(workdir: Path) -> list[tuple[str, str, str]]:
    """The services the web monitor's run page shows."""
    with monitor(workdir) as client:
        (run,) = client.get("/api/experiments").json()["experiments"][0]["runs"]
        detail = client.get(f"/api/experiments/svc/runs/{run['run']}").json()
    return [(s["name"], s["url"], s["state"]) for s in detail["services"]]


def _gone(pid: int) -> bool:
    return is_alive({"pid": pid, "host": __import__("socket").gethostname()}) is False


def test_service_answers_while_the_experiment_runs_and_is_gone_after(
    script: Callable[..., Script], tmp_path: Path
) -> None:
    release = tmp_path / "release"
    proc = script(BODY).popen(env={"RELEASE": str(release)})
    try:
        info = _started(tmp_path)
        url = info["url"]
        assert url.startswith("http://127.0.0.1:")
        assert _get(url + "hello.txt") == "hello from the service"
        services = _status(tmp_path / "wd")["services"]
        assert [(s["name"], s["url"], s["experiment"]) for s in services] == [("files", url, "svc")]
        text = CliRunner().invoke(cli, ["status", str(tmp_path / "wd")]).output
        assert "services" in text and "files" in text and url in text
        assert _monitor_services(tmp_path / "wd") == [("files", url, "running")]
        release.write_text("")
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0, err
    assert f"service 'files': {url}" in err
    assert _refused(url)
    assert _gone(info["pid"])
    assert _status(tmp_path / "wd")["services"] == []
    assert _monitor_services(tmp_path / "wd") == [("files", url, "stopped")]
    (run,) = (tmp_path / "wd" / "experiments" / "svc" / "runs").iterdir()
    recorded = json.loads((run / "services.json").read_text())
    assert [(s["name"], s["state"]) for s in recorded] == [("files", "stopped")]


@pytest.mark.parametrize("how", [signal.SIGINT, signal.SIGKILL])
def test_service_ends_with_an_interrupted_or_killed_experiment(
    script: Callable[..., Script], tmp_path: Path, how: signal.Signals
) -> None:
    """The server runs under a shell: the whole process group goes, not only its leader."""
    proc = script(BODY).popen(env={"RELEASE": str(tmp_path / "never"), "IN_SHELL": "1"})
    try:
        info = _started(tmp_path)
        assert _get(info["url"] + "hello.txt") == "hello from the service"
        proc.send_signal(how)
        proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    wait_for(lambda: _gone(info["pid"]), timeout=30, what="the service process to end")
    assert _refused(info["url"])
    assert _status(tmp_path / "wd")["services"] == []


def test_service_that_fails_to_start_stops_the_experiment_before_any_job(
    script: Callable[..., Script], tmp_path: Path
) -> None:
    body = """
class Never(Task, id="svc.never"):
    def execute(self):
        Path("ran").write_text("")

FAIL = "import sys; print('cannot bind: port in use', file=sys.stderr); sys.exit(3)"
with experiment("wd", "broken") as xp:
    xp.add_service(partita.CommandService(
        [sys.executable, "-c", FAIL],
        name="broken", port=1,
    ))
    Never().submit()
"""
    result = script(body, name="broken").run(timeout=60)
    assert result.returncode != 0
    assert "partita: service 'broken'" in result.stderr
    assert "Traceback" not in result.stderr
    assert "exited with status 3" in result.stderr
    assert "cannot bind: port in use" in result.stderr
    assert "sys.exit(3)" in result.stderr  # the command is named
    assert not (tmp_path / "wd" / "jobs" / "svc.never").exists()


def test_bad_services_are_refused_with_what_to_do() -> None:
    from partita import CommandService, Service
    from partita.errors import ServiceError

    with pytest.raises(ServiceError, match="expected a program"):
        CommandService([])
    with pytest.raises(ServiceError, match="expected a TCP port"):
        CommandService(["x"], port=70000)
    with pytest.raises(ServiceError, match="service name"):
        Service("no spaces")
    with pytest.raises(ServiceError, match="cannot run"):
        missing = CommandService(["/nonexistent/program"], name="missing")
        missing.start()


def test_service_outside_an_experiment_is_refused(tmp_path: Path) -> None:
    import partita
    from partita.errors import ServiceError

    xp = partita.experiment(tmp_path / "wd", "early")
    with pytest.raises(ServiceError, match="inside 'with partita"):
        xp.add_service(partita.CommandService(["true"]))


@pytest.mark.browser
@pytest.mark.timeout(120)
@NEEDS_CHROMIUM
def test_monitor_run_page_links_the_service(script: Callable[..., Script], tmp_path: Path) -> None:
    """In a real browser: the run page has a link to the running service, which answers."""
    sync_api = pytest.importorskip("playwright.sync_api")
    from partita.web import start_in_thread

    release = tmp_path / "release"
    proc = script(BODY).popen(env={"RELEASE": str(release)})
    monitor = None
    errors: list[str] = []
    try:
        info = _started(tmp_path)
        (run,) = (tmp_path / "wd" / "experiments" / "svc" / "runs").iterdir()
        monitor = start_in_thread(tmp_path / "wd")
        with browser_page(errors, 30_000) as page:
            page.goto(monitor.url)
            page.goto(monitor.url.split("?")[0].rstrip("/") + f"/experiments/svc/{run.name}")
            link = page.locator("a.service-link")
            sync_api.expect(link).to_have_attribute("href", info["url"], timeout=30_000)
            sync_api.expect(page.locator("dl.kv")).to_contain_text("Service files")
        assert _get(info["url"] + "hello.txt") == "hello from the service"
        release.write_text("")
        _, err = proc.communicate(timeout=60)
        assert proc.returncode == 0, err
    finally:
        if monitor is not None:
            monitor.stop()
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert errors == []


OWN = """
import http.server, threading

class InProcess(partita.Service):
    def start(self):
        handler = http.server.SimpleHTTPRequestHandler
        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
    @property
    def url(self):
        return f"http://127.0.0.1:{self.server.server_address[1]}/"
    def stop(self):
        self.server.shutdown()
        Path("stopped").write_text("yes")

with experiment("wd", "own") as xp:
    service = xp.add_service(InProcess("inproc"))
    Path("service.json").write_text(json.dumps({"url": service.url, "pid": service.pid}))
    while not Path(os.environ["RELEASE"]).exists():
        time.sleep(0.02)
"""


@pytest.mark.parametrize("end", ["normal", "sigkill"])
def test_a_service_of_ones_own_is_listed_while_its_experiment_lives(
    script: Callable[..., Script], tmp_path: Path, end: str
) -> None:
    """A Service subclass without a process: listed while the experiment's process lives."""
    release = tmp_path / "release"
    proc = script(OWN, name="own").popen(env={"RELEASE": str(release)})
    try:
        info = _started(tmp_path)
        assert info["pid"] is None
        assert _get(info["url"]) != ""
        (listed,) = _status(tmp_path / "wd")["services"]
        assert (listed["name"], listed["url"], listed["kind"]) == (
            "inproc",
            info["url"],
            "InProcess",
        )
        if end == "normal":
            release.write_text("")
        else:
            proc.send_signal(signal.SIGKILL)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert _status(tmp_path / "wd")["services"] == []
    if end == "normal":
        assert proc.returncode == 0, err
        assert (tmp_path / "stopped").read_text() == "yes"


def test_a_port_in_use_is_refused_before_the_command_runs(tmp_path: Path) -> None:
    import socket

    from partita import CommandService
    from partita.errors import ServiceError

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        marker = tmp_path / "ran"
        service = CommandService(["touch", str(marker)], name="late", port=port)
        with pytest.raises(ServiceError, match=f"expected port {port} of 127.0.0.1 to be free"):
            service.start()
    assert not marker.exists()


FAKE_TENSORBOARD = """#!{python}
# Stands in for TensorBoard: serves its --logdir on --host/--port.
import argparse, functools, http.server
parser = argparse.ArgumentParser()
parser.add_argument("--logdir")
parser.add_argument("--host")
parser.add_argument("--port", type=int)
args = parser.parse_args()
handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=args.logdir)
http.server.ThreadingHTTPServer((args.host, args.port), handler).serve_forever()
"""


def test_tensorboard_service_runs_tensorboard_on_the_logdir(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import sys

    from partita import TensorboardService
    from partita.errors import ServiceError

    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    with pytest.raises(ServiceError, match="pip install tensorboard"):
        TensorboardService(tmp_path)
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    program = bin_dir / "tensorboard"
    program.write_text(FAKE_TENSORBOARD.format(python=sys.executable))
    program.chmod(0o755)
    monkeypatch.setenv("PATH", str(bin_dir))
    logs = tmp_path / "logs"
    logs.mkdir()
    (logs / "events.txt").write_text("an event")
    service = TensorboardService(logs, ready_timeout=60)
    service.start()
    try:
        assert service.url is not None and service.url.startswith("http://127.0.0.1:")
        assert _get(service.url + "events.txt") == "an event"
        assert service.command[1:3] == ["--logdir", str(logs)]
    finally:
        service.stop()
    assert _refused(service.url)
