"""Checks the remote side before anything launches: sent as a script to the interpreter.

Run as ``PYTHON - ARGS_JSON`` with this file's text on standard input, so that it works
even where partita is not installed; it prints one JSON report and never raises. It uses
the standard library only and must stay valid for old Python 3 versions too (it reports
them instead of failing on syntax).
"""

import json
import os
import sys


def main() -> None:
    args = json.loads(sys.argv[1])
    report: dict = {"python": list(sys.version_info[:3]), "executable": sys.executable}
    try:
        from partita import _version

        report["partita"] = _version.__version__
        report["partita_file"] = os.path.dirname(_version.__file__)
        try:
            from partita.ssh import _remote

            report["protocol"] = _remote.PROTOCOL
        except Exception as exc:
            report["protocol_error"] = f"{type(exc).__name__}: {exc}"
    except Exception as exc:
        report["partita_error"] = f"{type(exc).__name__}: {exc}"
    workdir = args["workdir"]
    try:
        if not os.path.isdir(workdir):
            os.makedirs(workdir)
        probe = os.path.join(workdir, f".partita-probe-{os.getpid()}")
        with open(probe, "wb") as handle:
            handle.write(b"x" * 4096)
            handle.flush()
            os.fsync(handle.fileno())
        os.remove(probe)
    except OSError as exc:
        report["workdir_error"] = [exc.errno, exc.strerror, getattr(exc, "filename", None)]
        try:
            os.remove(probe)
        except Exception:
            pass
    if "workdir_error" not in report and "partita" in report:
        try:
            from partita.workspace import Workspace

            Workspace(workdir)
        except Exception as exc:
            report["workspace_error"] = str(exc)
    try:
        stat = os.statvfs(workdir)
        report["free"] = stat.f_bavail * stat.f_frsize
    except OSError:
        pass
    present: list = []
    for relative in args["present"]:
        if os.path.exists(os.path.join(workdir, relative)):
            present.append(relative)
    report["present"] = present
    for relative in args["paths"]:
        folder = os.path.join(workdir, relative)
        if os.path.isdir(folder):
            sys.path.insert(0, folder)
    missing: dict = {}
    if args["modules"]:
        import importlib.util

        for name in args["modules"]:
            try:
                if importlib.util.find_spec(name) is None:
                    missing[name] = "not found"
            except Exception as exc:
                missing[name] = f"{type(exc).__name__}: {exc}"
    report["missing_modules"] = missing
    sys.stdout.write(json.dumps(report) + "\n")


if __name__ == "__main__":
    main()
