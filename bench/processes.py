"""The processes the bench starts: servers in their own process group, timed runs, and their memory.

Every process is started in a new session, so stopping it ends exactly the tree the bench started
(gunicorn's workers, uvicorn's, nginx's) and nothing else. Memory is the proportional set size
(PSS) summed over a server's processes: forked workers share pages, which RSS would count twice.
"""

from __future__ import annotations

import contextlib
import os
import resource
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

PAGE = os.sysconf("SC_PAGE_SIZE")
ESTABLISHED, LISTEN = "01", "0A"  # TCP states as /proc/net/tcp spells them



def ecarto() -> str:
    """The `ecarto` command of this interpreter's environment (the venv's, not whichever is on PATH)."""
    return shutil.which("ecarto", path=str(Path(sys.executable).parent)) or "ecarto"

@dataclass(frozen=True)
class Timed:
    """How a finished command went: wall time, its peak resident memory, its exit code, processor time.

    The processor time counts the children the command waited for (a seed's processes): on a machine
    shared with other work it says what the command costs better than the wall time does.
    """

    seconds: float
    max_rss_mb: float
    returncode: int
    cpu_seconds: float = 0.0


def run_timed(command: Sequence[str], *, env: Mapping[str, str], log: Path, timeout: float) -> Timed:
    """Run a command to its end, reading its own peak RSS from `wait4` (not the bench's other children)."""
    start = time.perf_counter()
    with open(log, "wb") as out:
        process = subprocess.Popen(command, env=dict(env), stdout=out, stderr=subprocess.STDOUT,
                                   start_new_session=True)
    try:
        status, usage = _wait(process.pid, start + timeout)
    except BaseException:  # interrupted: the child is in its own session, so end it here
        os.killpg(process.pid, signal.SIGKILL)
        os.wait4(process.pid, 0)
        raise
    process.returncode = os.waitstatus_to_exitcode(status)  # reaped by wait4: tell Popen
    return Timed(time.perf_counter() - start, usage.ru_maxrss / 1024, process.returncode,
                 usage.ru_utime + usage.ru_stime)


def _wait(pid: int, deadline: float) -> tuple[int, resource.struct_rusage]:
    """Reap the child, killing its group at the deadline; its wait status and resource usage."""
    while True:
        found, status, usage = os.wait4(pid, os.WNOHANG)
        if found:
            return status, usage
        if time.perf_counter() > deadline:
            os.killpg(pid, signal.SIGKILL)
            _, status, usage = os.wait4(pid, 0)
            return status, usage
        time.sleep(0.2)


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Server:
    """A server process group listening on 127.0.0.1."""

    name: str
    port: int
    process: subprocess.Popen
    log: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def memory_mb(self) -> float:
        """PSS summed over the server's process tree, in MiB."""
        return sum(_pss_kb(pid) for pid in _tree(self.process.pid)) / 1024

    def memory_by_process(self) -> list[float]:
        """PSS of each process of the server (the first is the one the bench started), in MiB."""
        return [round(_pss_kb(pid) / 1024, 1) for pid in _tree(self.process.pid)]

    def stop(self) -> None:
        """End the process group the bench started (TERM, then KILL after 10 s)."""
        if self.process.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(5)


def start_server(name: str, command: Sequence[str], *, port: int, env: Mapping[str, str], log: Path,
                 ready: str = "/", timeout: float = 90, cwd: Path | None = None) -> Server:
    """Start a server and wait until `ready` answers below 500; its output goes to `log`."""
    with open(log, "wb") as out:
        process = subprocess.Popen(command, env=dict(env), stdout=out, stderr=subprocess.STDOUT,
                                   stdin=subprocess.DEVNULL, cwd=cwd, start_new_session=True)
    server = Server(name, port, process, log)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{name} exited with {process.returncode} while starting; see {log}")
        if _answers(server.url + ready):
            return server
        time.sleep(0.3)
    server.stop()
    raise RuntimeError(f"{name} did not answer {ready} within {timeout:.0f} s; see {log}")


@contextlib.contextmanager
def repeating(every: float, action: Callable[[], None]) -> Iterator[None]:
    """Run `action` in a thread every `every` seconds while the block runs (the bench's load keeps going)."""
    stop = threading.Event()

    def loop() -> None:
        while not stop.wait(every):
            action()

    thread = threading.Thread(target=loop, daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()


@contextlib.contextmanager
def peak_memory(server: Server, every: float = 0.5) -> Iterator[list[float]]:
    """Sample the server's memory while the block runs; the list yielded ends holding the peak."""
    peak = [server.memory_mb()]

    def sample() -> None:
        peak[0] = max(peak[0], server.memory_mb())

    with repeating(every, sample):
        yield peak
    sample()


def established_sockets(pid: int, port: int, state: str = ESTABLISHED) -> int:
    """How many of a process's open files are TCP sockets of its local `port` (IPv4) in `state`."""
    rows = [line.split() for line in Path(f"/proc/{pid}/net/tcp").read_text().splitlines()[1:]]
    established = {row[9] for row in rows if row[3] == state and int(row[1].split(":")[1], 16) == port}
    inodes = {os.readlink(fd).removeprefix("socket:[").removesuffix("]")
              for fd in Path(f"/proc/{pid}/fd").iterdir() if os.readlink(fd).startswith("socket:")}
    return len(inodes & established)


def listening_processes(root: int, port: int) -> int:
    """How many processes of `root`'s tree listen on `port`: granian's workers each open a socket once booted."""
    count = 0
    for pid in _tree(root):
        with contextlib.suppress(OSError):  # a process that ended meanwhile listens no more
            count += established_sockets(pid, port, state=LISTEN) > 0
    return count


def _answers(url: str) -> bool:
    """True when the URL answers with a status below 500."""
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status < 500
    except urllib.error.HTTPError as error:
        return error.code < 500
    except (OSError, ValueError):
        return False


def _tree(root: int) -> list[int]:
    """The pid and every descendant of `root`, from the parent ids in /proc."""
    children: dict[int, list[int]] = {}
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            with contextlib.suppress(OSError, ValueError, IndexError):
                stat = Path(entry.path, "stat").read_text()
                parent = int(stat.rsplit(")", 1)[1].split()[1])
                children.setdefault(parent, []).append(int(entry.name))
    found, todo = [], [root]
    while todo:
        pid = todo.pop()
        found.append(pid)
        todo.extend(children.get(pid, []))
    return found


def _pss_kb(pid: int) -> int:
    """A process's proportional set size in KiB (its RSS when smaps_rollup is unreadable; 0 once gone)."""
    try:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                return int(line.split()[1])
    except OSError:
        pass
    try:
        return int(Path(f"/proc/{pid}/statm").read_text().split()[1]) * PAGE // 1024
    except (OSError, IndexError, ValueError):
        return 0
