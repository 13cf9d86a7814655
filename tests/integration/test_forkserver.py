"""Warm job processes: jobs forked from a fork server are as isolated as spawned ones.

Every test runs real experiments whose jobs are real forks of a real ``partita._forkserver``
process; each job reports, from inside, how it was started (its command line names the
fork server, or ``partita.run`` when it was spawned) and what it sees.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import textwrap
import time
from pathlib import Path
from typing import Any

import pytest
from xputil import Script, job_dirs

from partita import LocalLauncher
from partita.errors import LauncherOptionError
from partita.workspace import JobPaths, read_job_environment

#: The tasks live in a module (on the jobs' PYTHONPATH) so the server imports them.
TASKS = """
import json, os, signal, sys, threading, time
from typing import Optional
from pathlib import Path
from partita import Task, Param

STATE = {"mutated": False}


def report(extra=None):
    cmdline = Path("/proc/self/cmdline").read_bytes().split(b"\\0")
    info = {
        "pid": os.getpid(), "ppid": os.getppid(), "sid": os.getsid(0), "pgid": os.getpgrp(),
        "forked": b"partita._forkserver" in cmdline
        or Path("/proc/self/comm").read_text().strip() == "partita-fork",
        "cwd": os.getcwd(),
        "leaked_env": os.environ.get("LEAKED"), "attempt": os.environ.get("PARTITA_ATTEMPT"),
        "state": STATE, "leaked_module": "fs_leaked" in sys.modules,
        "threads": len(os.listdir("/proc/self/task")), "path0": sys.path[0],
        "sigchld": str(signal.getsignal(signal.SIGCHLD)),
        "sighup": str(signal.getsignal(signal.SIGHUP)),
        "wakeup": signal.set_wakeup_fd(-1),
        "sigterm": str(signal.getsignal(signal.SIGTERM)),
    }
    info.update(extra or {})
    Path("where.json").write_text(json.dumps(info))
    log = os.environ.get("RUN_LOG")
    if log:
        with open(log, "a") as file:
            file.write(f"{os.getcwd()}\\n")


class Where(Task, id="fs.where"):
    n: Param[int] = 0

    def execute(self):
        report()


class Spawned(Task, id="fs.spawned"):
    isolation = "spawn"

    def execute(self):
        report()


class Harm(Task, id="fs.harm"):
    how: Param[str]

    def execute(self):
        report()
        if self.how == "segfault":
            os.kill(os.getpid(), signal.SIGSEGV)
        elif self.how == "exit":
            os._exit(3)
        elif self.how == "thread":
            threading.Thread(target=time.sleep, args=(600,)).start()  # not a daemon
        elif self.how == "chdir":
            os.chdir("/")
        elif self.how == "env":
            os.environ["LEAKED"] = "1"
        elif self.how == "global":
            STATE["mutated"] = True
            sys.modules["fs_leaked"] = sys
        elif self.how == "memory":
            data = bytearray(4 * 1024 ** 3)
            print(len(data))
        elif self.how == "sleep":
            time.sleep(600)


def started_ticks():  # when this process started: clock ticks since boot (stat field 22)
    return int(Path("/proc/self/stat").read_text().rsplit(")", 1)[1].split()[19])


class Link(Task, id="fs.link"):
    n: Param[int]
    previous: Param[Optional["Link"]] = None

    def execute(self):
        report({"started_ticks": started_ticks()})
        time.sleep(0.3)


class Tail(Task, id="fs.tail"):
    previous: Param[Link]

    def execute(self):
        report({"started_ticks": started_ticks()})


class Block(Task, id="fs.block"):
    n: Param[int]
    fail: Param[bool] = False

    def execute(self):
        report()
        Path(os.environ["MEET"], f"started-{self.n}").write_text(str(os.getppid()))
        release = Path(os.environ["MEET"], "release")
        deadline = time.monotonic() + 60
        while not release.exists():
            assert time.monotonic() < deadline, "never released"
            time.sleep(0.02)
        if self.fail:
            raise RuntimeError("failed after the server died")


class After(Task, id="fs.after"):
    n: Param[int]
    block: Param[Block]

    def execute(self):
        report()


def _pipes():  # this process's descriptors above 2 that are pipes
    import stat

    found = []
    for name in os.listdir("/proc/self/fd"):
        try:
            if int(name) > 2 and stat.S_ISFIFO(os.fstat(int(name)).st_mode):
                found.append(int(name))
        except OSError:
            pass
    return found


class Heavy(Task, id="fs.heavy"):
    name: Param[str]

    def execute(self):
        global BALLAST
        BALLAST = b"\\x01" * (1 << 30)  # a gigabyte written: tearing it down takes a while
        report()
        Path(os.environ["MEET"], f"{self.name}.pid").write_text(str(os.getpid()))


class HeavyOnGpu(Heavy, id="fs.heavygpu"):
    resources = {"gpus": 1}


class Lighter(Task, id="fs.lighter"):
    previous: Param[Heavy]

    def execute(self):
        pid = Path(os.environ["MEET"], f"{self.previous.name}.pid").read_text()
        report({"previous": self.previous.name, "previous_there": Path(f"/proc/{pid}").exists()})


class Liar(Task, id="fs.liar"):
    def execute(self):
        for fd in _pipes():  # says, through any pipe it has, that it ended with 0
            try:
                os.write(fd, b"0\\n")
            except OSError:
                pass
        time.sleep(0.5)
        Path(os.environ["MEET"], "liar-finished").touch()
        report()


KEPT = []


class Reopen(Task, id="fs.reopen"):
    def execute(self):
        for fd in _pipes():
            os.close(fd)
        for n in range(16):  # one of them may get the number of a closed pipe
            KEPT.append(open(Path(os.environ["MEET"], f"kept-{n}"), "w"))
        report()


class Believer(Task, id="fs.believer"):
    liar: Param[Liar]
    reopen: Param[Reopen]

    def execute(self):
        report({"liar_finished": Path(os.environ["MEET"], "liar-finished").exists()})
"""


def where(folder: Path) -> dict[str, Any]:
    """What the job in ``folder`` reported about itself."""
    info: dict[str, Any] = json.loads((folder / "where.json").read_text())
    return info


def only(workdir: Path, type_id: str) -> Path:
    (folder,) = job_dirs(workdir, type_id)
    return folder


def by_param(workdir: Path, type_id: str, name: str) -> dict[Any, Path]:
    """Job folders of one type, by the value of one parameter (read from params.json)."""
    found = {}
    for folder in job_dirs(workdir, type_id):
        document = json.loads((folder / "params.json").read_text())
        found[document["objects"][document["root"]]["fields"].get(name)] = folder
    return found


def xp_with_tasks(script: Any, body: str, tasks: str = TASKS) -> Script:
    xp: Script = script(body)
    (xp.folder / "fsmod.py").write_text(textwrap.dedent(tasks))
    return xp


def wait_for(condition: Any, what: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out: {what}"
        time.sleep(0.02)


def test_jobs_are_forked_and_isolated_from_each_other(script: Any) -> None:
    """Crashes, exits, leaked threads, chdir, env and global changes reach no later job."""
    xp = xp_with_tasks(
        script,
        """
        from partita import LocalLauncher
        from fsmod import Where, Harm
        with experiment("wd", "iso", launcher=LocalLauncher(1)) as xp:
            Where(n=0).submit()
            xp.wait()
            for how in ("segfault", "exit", "thread", "chdir", "env", "global", "memory",
                        "sleep"):
                resources = {"memory": {"mem": "400M"}, "sleep": {"time": "2s"}}.get(how)
                Harm(how=how).submit(resources=resources)
                xp.wait()
            Where(n=1).submit()
        """,
    )
    result = xp.run()
    assert 1 == result.returncode, result.stderr  # some harms fail, by design
    wd = xp.folder / "wd"
    wheres = by_param(wd, "fs.where", "n")
    before, after = where(wheres[0]), where(wheres[1])
    harms = by_param(wd, "fs.harm", "how")
    infos = {how: where(folder) for how, folder in harms.items()}
    for info in [before, after, *infos.values()]:
        assert info["forked"], info
        assert info["pid"] == info["sid"] == info["pgid"]  # its own session and group
        assert info["threads"] == 1  # the server had no thread to pass on
        # Not the server's dispositions: those of a fresh interpreter.
        assert info["sigchld"] == info["sighup"] == str(signal.SIG_DFL)
        assert -1 == info["wakeup"]
        assert "_on_signal" in info["sigterm"]  # the runner's own handler, set afresh
    # One server forked them all: none of the harms brought it down.
    assert {before["ppid"]} == {after["ppid"]} | {info["ppid"] for info in infos.values()}
    # The later job sees none of what the earlier ones changed.
    assert str(wheres[1]) == after["cwd"] == after["path0"]
    assert after["leaked_env"] is None
    assert after["state"] == {"mutated": False}
    assert not after["leaked_module"]

    def marker(how: str) -> dict[str, Any]:
        folder = harms[how]
        final = "done" if (folder / "done").exists() else "failed"
        return {"final": final, **json.loads((folder / final).read_text())}

    assert {"thread", "chdir", "env", "global"} == {
        h for h in harms if marker(h)["final"] == "done"
    }
    assert "lost" == marker("segfault")["reason"] and "SIGSEGV" in marker("segfault")["detail"]
    assert "lost" == marker("exit")["reason"] and "exit code 3" in marker("exit")["detail"]
    assert "memory" == marker("memory")["reason"]
    assert "timeout" == marker("sleep")["reason"]
    assert "MemoryError" in (harms["memory"] / "stderr").read_text()
    # The thread the "thread" job left did not keep its process alive.
    assert not Path(f"/proc/{infos['thread']['pid']}").exists() or (
        Path(f"/proc/{infos['thread']['pid']}/stat").read_text().split(") ")[1][0] == "Z"
    )


def test_server_killed_mid_experiment(script: Any, tmp_path: Path) -> None:
    """Running jobs end and are recorded as they ended; later jobs run from a new server."""
    meet = tmp_path / "meet"
    meet.mkdir()
    log = tmp_path / "runs.log"
    xp = xp_with_tasks(
        script,
        """
        from partita import LocalLauncher
        from fsmod import After, Block
        with experiment("wd", "kill", launcher=LocalLauncher(2)):
            first = Block(n=0).submit()
            Block(n=1, fail=True).submit()
            for n in range(4):  # they start once the server was killed
                After(n=n, block=first).submit()
        """,
    )
    process = xp.popen(env={"MEET": str(meet), "RUN_LOG": str(log)})
    try:
        wait_for(lambda: {"started-0", "started-1"} <= {p.name for p in meet.iterdir()}, "blocks")
        servers = {(meet / f"started-{n}").read_text() for n in (0, 1)}
        assert 1 == len(servers)
        server = int(servers.pop())
        jobs = {where(f)["pid"] for f in job_dirs(xp.folder / "wd", "fs.block")}
        # The spare it forked for the next job, waiting (idle once both blocks started).
        wait_for(lambda: _children(server) - jobs, "a spare child")
        (spare,) = _children(server) - jobs
        os.kill(server, signal.SIGKILL)
        wait_for(lambda: not Path(f"/proc/{server}").exists() or _zombie(server), "server gone")
        # It sees the end of its input and exits: it runs nothing and is not left behind.
        wait_for(lambda: not Path(f"/proc/{spare}").exists() or _zombie(spare), "spare gone")
        (meet / "release").touch()
        _, err = process.communicate(timeout=120)
    finally:
        if process.poll() is None:
            process.kill()
    assert 1 == process.returncode, err
    wd = xp.folder / "wd"
    blocks = by_param(wd, "fs.block", "n")
    assert (blocks[0] / "done").exists() and not (blocks[0] / "failed").exists()
    assert (blocks[1] / "failed").exists() and not (blocks[1] / "done").exists()
    assert "error" == json.loads((blocks[1] / "failed").read_text())["reason"]
    later = job_dirs(wd, "fs.after")
    assert 4 == len(later)
    for folder in later:
        assert (folder / "done").exists(), folder
        info = where(folder)
        assert info["ppid"] != server  # a new server, or spawned
    assert any(where(f)["forked"] for f in later)  # a new server took over
    runs = log.read_text().splitlines()
    assert sorted(runs) == sorted(str(f) for f in [*blocks.values(), *later])  # exactly once


def _children(parent: int) -> set[int]:
    """The live processes whose parent is ``parent``."""
    found = set()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if fields[0] != "Z" and int(fields[1]) == parent:
            found.add(int(entry.name))
    return found


def _zombie(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(") ")[1][0] == "Z"
    except OSError:
        return True


def test_module_edited_on_disk_is_imported_again(script: Any) -> None:
    """A module changed during an experiment: the next job runs the new code (a new server)."""
    tasks = (
        TASKS
        + """
VERSION = 1


class Version(Task, id="fs.version"):
    n: Param[int]

    def execute(self):
        report({"version": VERSION})
"""
    )
    xp = xp_with_tasks(
        script,
        """
        from fsmod import Version
        with experiment("wd", "edit") as xp:
            Version(n=0).submit()
            xp.wait()
            module = Path("fsmod.py")
            module.write_text(module.read_text().replace("VERSION = 1", "VERSION = 22"))
            Version(n=1).submit()
        """,
        tasks,
    )
    result = xp.run()
    assert 0 == result.returncode, result.stderr
    versions = by_param(xp.folder / "wd", "fs.version", "n")
    first, second = where(versions[0]), where(versions[1])
    assert (1, 22) == (first["version"], second["version"])
    assert first["forked"] and second["forked"]
    assert first["ppid"] != second["ppid"]
    # The fingerprint, hashed once in each server, is that of the file each job ran.
    module = (xp.folder / "fsmod.py").read_bytes()
    hashes = {
        n: read_job_environment(JobPaths(folder))["code"]["file_sha256"]
        for n, folder in versions.items()
    }
    assert hashlib.sha256(module.replace(b"VERSION = 22", b"VERSION = 1")).hexdigest() == hashes[0]
    assert hashlib.sha256(module).hexdigest() == hashes[1]


def test_server_starts_when_the_experiment_is_entered(script: Any) -> None:
    """The fork server is started on entry, before any submission, and runs the first job."""
    xp = xp_with_tasks(
        script,
        """
        import json, os, time
        from fsmod import Where

        def servers():
            found = []
            for pid in os.listdir("/proc"):
                try:
                    status = Path("/proc", pid, "status").read_text()
                    cmdline = Path("/proc", pid, "cmdline").read_bytes()
                    comm = Path("/proc", pid, "comm").read_text().strip()
                except OSError:
                    continue
                ppid = [l for l in status.splitlines() if l.startswith("PPid:")]
                mine = bool(ppid) and int(ppid[0].split()[1]) == os.getpid()
                if mine and (b"partita._forkserver" in cmdline or comm == "partita-fork"):
                    found.append(int(pid))
            return found

        with experiment("wd", "warm"):
            deadline = time.monotonic() + 60
            while not servers():
                assert time.monotonic() < deadline, "no fork server before the first submission"
                time.sleep(0.02)
            Path("server.json").write_text(json.dumps(servers()))
            Where(n=1).submit()
        """,
    )
    result = xp.run()
    assert 0 == result.returncode, result.stderr
    (server,) = json.loads((xp.folder / "server.json").read_text())
    info = where(only(xp.folder / "wd", "fs.where"))
    assert info["forked"] and server == info["ppid"]


def test_threads_at_import_are_refused_and_spawned(script: Any) -> None:
    """A module that starts a thread at import is never forked from; the server restarts."""
    xp = xp_with_tasks(
        script,
        """
        from partita import LocalLauncher
        from fsmod import Where
        with experiment("wd", "threads", launcher=LocalLauncher(1)) as xp:
            Where(n=0).submit()
            xp.wait()
            from fsthreads import Threaded
            Threaded(n=0).submit()
            xp.wait()
            Where(n=1).submit()
            xp.wait()
            Threaded(n=1).submit()
            xp.wait()
            Where(n=2).submit()
        """,
    )
    (xp.folder / "fsthreads.py").write_text(
        "import threading, time\n"
        "threading.Thread(target=time.sleep, args=(600,), daemon=True).start()\n"
        "from fsmod import Task, Param, report\n"
        "class Threaded(Task, id='fs.threaded'):\n"
        "    n: Param[int]\n"
        "    def execute(self):\n"
        "        report()\n"
    )
    result = xp.run()
    assert 0 == result.returncode, result.stderr
    wd = xp.folder / "wd"
    threaded = [where(f) for f in job_dirs(wd, "fs.threaded")]
    assert 2 == len(threaded)
    assert not any(info["forked"] for info in threaded)
    wheres = by_param(wd, "fs.where", "n")
    infos = [where(wheres[n]) for n in range(3)]
    assert all(info["forked"] and info["threads"] == 1 for info in infos)
    # The server that imported the threaded module never forked again.
    assert infos[0]["ppid"] != infos[1]["ppid"]
    assert infos[1]["ppid"] == infos[2]["ppid"]  # the refusal is remembered: no restart


def test_opting_out(script: Any) -> None:
    """isolation='spawn' on a task class, on the launcher or in PARTITA_ISOLATION spawns."""
    xp = xp_with_tasks(
        script,
        """
        from partita import LocalLauncher
        from fsmod import Where, Spawned
        isolation = sys.argv[1] if len(sys.argv) > 1 else None
        with experiment("wd", "out", launcher=LocalLauncher(2, isolation=isolation)):
            Where().submit()
            Spawned().submit()
        """,
    )
    result = xp.run()
    assert 0 == result.returncode, result.stderr
    wd = xp.folder / "wd"
    assert where(only(wd, "fs.where"))["forked"]
    assert not where(only(wd, "fs.spawned"))["forked"]
    for args, env in ((["spawn"], {}), ([], {"PARTITA_ISOLATION": "spawn"})):
        shutil.rmtree(wd)
        result = xp.run(*args, env=env)
        assert 0 == result.returncode, result.stderr
        info = where(only(wd, "fs.where"))
        assert not info["forked"], (args, env)
        assert info["pid"] == info["sid"] == info["pgid"]


def test_exactly_once_with_many_forked_jobs(script: Any, tmp_path: Path) -> None:
    """Forty forked jobs run once each; running the script again runs none."""
    log = tmp_path / "runs.log"
    xp = xp_with_tasks(
        script,
        """
        from partita import LocalLauncher
        from fsmod import Where
        with experiment("wd", "many", launcher=LocalLauncher(2)):
            for n in range(40):
                Where(n=n).submit()
        """,
    )
    result = xp.run(env={"RUN_LOG": str(log)})
    assert 0 == result.returncode, result.stderr
    folders = job_dirs(xp.folder / "wd", "fs.where")
    assert 40 == len(folders)
    assert sorted(str(f) for f in folders) == sorted(log.read_text().splitlines())
    assert all(where(f)["forked"] and where(f)["attempt"] == "1" for f in folders)
    again = xp.run(env={"RUN_LOG": str(log)})
    assert 0 == again.returncode, again.stderr
    assert 40 == len(log.read_text().splitlines())


def test_the_next_job_starts_in_a_spare_forked_while_the_previous_one_ran(script: Any) -> None:
    """A job whose classes the server had ready runs in a child forked ahead (while its
    dependency ran); one with a class new to the server is forked when it is launched.
    Both are isolated as any forked job."""
    xp = xp_with_tasks(
        script,
        """
        from partita import LocalLauncher
        from fsmod import Link, Tail
        with experiment("wd", "spares", launcher=LocalLauncher(2)):
            first = Link(n=0).submit()
            second = Link(n=1, previous=first).submit()
            Tail(previous=second).submit()
        """,
    )
    result = xp.run()
    assert 0 == result.returncode, result.stderr
    wd = xp.folder / "wd"
    links = by_param(wd, "fs.link", "n")
    first, second, tail = where(links[0]), where(links[1]), where(only(wd, "fs.tail"))
    tick = os.sysconf("SC_CLK_TCK")
    # Link 1 was launched when link 0 ended (0.3 s later), in a process started meanwhile,
    # a few milliseconds after link 0's; the tail (a new class) in one started at its launch.
    assert (second["started_ticks"] - first["started_ticks"]) / tick < 0.2
    assert (tail["started_ticks"] - second["started_ticks"]) / tick >= 0.25
    for info in (first, second, tail):
        assert info["forked"] and info["ppid"] == first["ppid"]
        assert info["sid"] == info["pid"] == info["pgid"]  # its own session and group
        assert info["attempt"] == "1" and info["threads"] == 1
    assert info["cwd"] != first["cwd"] and second["cwd"] == str(links[1])


def test_isolation_option_is_checked() -> None:
    """A wrong isolation value says what is expected."""
    with pytest.raises(LauncherOptionError, match="expected 'fork' or 'spawn'"):
        LocalLauncher(1, isolation="thread")
    assert "spawned" in LocalLauncher(1, isolation="spawn").describe()


INHERIT_TASKS = """
import json, logging, os, signal, sys
from pathlib import Path
from partita import Task, Param

SETTING = {"value": "as imported"}


class Probe(Task, id="fs.probe"):
    n: Param[int] = 0

    def execute(self):
        fds = {}
        for name in os.listdir("/proc/self/fd"):
            try:
                fds[name] = os.readlink(f"/proc/self/fd/{name}")
            except OSError:
                pass
        logging.getLogger("fsmod").warning("written by the job %s", self.n)
        print(f"printed by the job {self.n}")
        print(f"warned by the job {self.n}", file=sys.stderr)
        Path("probe.json").write_text(json.dumps({
            "comm": Path("/proc/self/comm").read_text().strip(),
            "ppid": os.getppid(), "fds": fds, "setting": SETTING["value"],
            "usr1": str(signal.getsignal(signal.SIGUSR1)),
            "main_is_script": bool(getattr(sys.modules["__main__"], "__file__", None)),
        }))
"""


def test_the_server_is_a_fork_of_the_experiment_with_its_files_masked(script: Any) -> None:
    """Entered single-threaded, the experiment forks its server: the jobs see its modules,
    none of its open files (a log file stays untouched) nor its signal handlers."""
    xp = xp_with_tasks(
        script,
        """
        import json, logging, os, signal
        import fsmod
        from fsmod import Probe

        logging.basicConfig(filename="xp.log", level=logging.INFO)
        kept = open("kept.txt", "w")
        signal.signal(signal.SIGUSR1, lambda *a: None)  # the runner sets its own
        fsmod.SETTING["value"] = "changed by the script"
        Path("fd.json").write_text(json.dumps(kept.fileno()))
        with experiment("wd", "inherit"):
            Probe(n=1).submit()
        kept.write("the experiment's own file")
        kept.close()
        logging.getLogger("fsmod").warning("written by the experiment")
        """,
        INHERIT_TASKS,
    )
    result = xp.run()
    assert 0 == result.returncode, result.stderr
    info = json.loads((only(xp.folder / "wd", "fs.probe") / "probe.json").read_text())
    assert info["comm"] == "partita-fork" and info["ppid"] != os.getpid()
    assert info["setting"] == "changed by the script"  # the experiment's modules, as entered
    assert "lambda" not in info["usr1"]  # the script's handler is not inherited
    kept = str(json.loads((xp.folder / "fd.json").read_text()))
    assert info["fds"][kept] == os.devnull  # still open, on /dev/null: never reused
    assert not any(target.endswith(("xp.log", "kept.txt")) for target in info["fds"].values()), (
        info["fds"]
    )
    log = (xp.folder / "xp.log").read_text()
    assert "written by the experiment" in log and "written by the job" not in log
    assert (xp.folder / "kept.txt").read_text() == "the experiment's own file"
    # The job's stderr got its log line instead (the root logger's handler is a file one,
    # masked): nothing else of the experiment's leaked into its files.
    stderr = (only(xp.folder / "wd", "fs.probe") / "stderr").read_text()
    assert "written by the experiment" not in stderr


def test_a_job_prints_to_its_files_when_the_experiment_redirected_its_streams(
    script: Any,
) -> None:
    """The experiment's sys.stdout and sys.stderr are objects of its own (as under pytest,
    in a notebook, or with ``contextlib.redirect_stdout``): a job forked from it still
    prints to its own stdout and stderr files, and nothing reaches those objects."""
    xp = xp_with_tasks(
        script,
        """
        import contextlib, io
        from fsmod import Probe

        out, err = io.StringIO(), io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            with experiment("wd", "redirected"):
                Probe(n=7).submit()
        Path("caught.txt").write_text(out.getvalue() + err.getvalue())
        """,
        INHERIT_TASKS,
    )
    result = xp.run()
    assert 0 == result.returncode, result.stderr
    folder = only(xp.folder / "wd", "fs.probe")
    info = json.loads((folder / "probe.json").read_text())
    assert info["comm"] == "partita-fork"  # forked from the experiment's own image
    assert "printed by the job 7" == (folder / "stdout").read_text().strip()
    assert "warned by the job 7" in (folder / "stderr").read_text()
    assert "by the job" not in (xp.folder / "caught.txt").read_text()


def test_a_threaded_experiment_starts_a_fresh_server(script: Any) -> None:
    """A script with a thread of its own when it enters the experiment is not forked from:
    its jobs are forks of a fresh ``python -m partita._forkserver``."""
    xp = xp_with_tasks(
        script,
        """
        import threading
        from fsmod import Probe

        stop = threading.Event()
        threading.Thread(target=stop.wait, daemon=True).start()
        with experiment("wd", "threaded"):
            Probe(n=2).submit()
        stop.set()
        """,
        INHERIT_TASKS,
    )
    result = xp.run()
    assert 0 == result.returncode, result.stderr
    info = json.loads((only(xp.folder / "wd", "fs.probe") / "probe.json").read_text())
    assert info["comm"] != "partita-fork"
    assert info["setting"] == "as imported"  # imported afresh by the fresh server
    # The server may have exited since (gone, or a zombie whose cmdline reads empty).
    cmdline = Path(f"/proc/{info['ppid']}/cmdline")
    data = cmdline.read_bytes() if cmdline.exists() else b""
    assert data == b"" or b"partita._forkserver" in data, data


def test_a_large_experiment_starts_a_fresh_server(script: Any) -> None:
    """An experiment process above INHERIT_MAX_RSS (here lowered to 1 byte) is not forked
    from: what it loaded is not held by the server nor counted in its jobs."""
    xp = xp_with_tasks(
        script,
        """
        from partita.launchers import _forkclient
        from fsmod import Probe

        _forkclient.INHERIT_MAX_RSS = 1
        with experiment("wd", "large"):
            Probe(n=3).submit()
        """,
        INHERIT_TASKS,
    )
    result = xp.run()
    assert 0 == result.returncode, result.stderr
    info = json.loads((only(xp.folder / "wd", "fs.probe") / "probe.json").read_text())
    assert info["comm"] != "partita-fork"


def test_a_dependant_starts_while_its_dependency_still_exits(script: Any, tmp_path: Path) -> None:
    """A child tells the server when its runner has finished, before its exit (which, for a
    process holding a gigabyte, lasts a while): the dependant is launched at once; unless
    the job asked for GPUs (free only once its process is gone)."""
    meet = tmp_path / "meet"
    meet.mkdir()
    xp = xp_with_tasks(
        script,
        """
        from partita import LocalLauncher
        from fsmod import Heavy, HeavyOnGpu, Lighter
        with experiment("wd", "heavy", launcher=LocalLauncher(2)):
            Lighter(previous=Heavy(name="cpu").submit()).submit()
        with experiment("wd", "heavy-gpu", launcher=LocalLauncher(2)):
            Lighter(previous=HeavyOnGpu(name="gpu").submit()).submit()
        """,
    )
    result = xp.run(env={"MEET": str(meet)})
    assert 0 == result.returncode, result.stderr
    wd = xp.folder / "wd"
    assert (only(wd, "fs.heavy") / "done").exists()
    after = {where(f)["previous"]: where(f)["previous_there"] for f in job_dirs(wd, "fs.lighter")}
    assert {"cpu": True, "gpu": False} == after  # still exiting; gone (it held GPUs)


def test_a_job_is_believed_ended_only_once_its_outcome_is_recorded(
    script: Any, tmp_path: Path
) -> None:
    """A task that writes an exit code into every pipe it has, while it still runs, does
    not end its job early; one that closes the pipe and opens files finds nothing in them."""
    meet = tmp_path / "meet"
    meet.mkdir()
    log = tmp_path / "runs.log"
    xp = xp_with_tasks(
        script,
        """
        from partita import LocalLauncher
        from fsmod import Believer, Liar, Reopen
        with experiment("wd", "liar", launcher=LocalLauncher(2)):
            Believer(liar=Liar().submit(), reopen=Reopen().submit()).submit()
        """,
    )
    result = xp.run(env={"MEET": str(meet), "RUN_LOG": str(log)})
    assert 0 == result.returncode, result.stderr
    wd = xp.folder / "wd"
    assert where(only(wd, "fs.believer"))["liar_finished"]  # started after the liar ended
    for type_id in ("fs.liar", "fs.reopen", "fs.believer"):
        assert (only(wd, type_id) / "done").exists(), type_id
    kept = sorted(meet.glob("kept-*"))
    assert 16 == len(kept) and all("" == path.read_text() for path in kept)
    assert 3 == len(log.read_text().splitlines())  # each ran once
