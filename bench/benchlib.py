"""Helpers shared by the benchmark scripts in bench/ (imported from their directory)."""
import os, socket, sys, time

SCRIPT = os.path.basename(sys.argv[0]).removesuffix(".py")


def free_port():
    """A loopback port free at the time of asking."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_ping(port, proc, secs=20):
    """Polls PING on `port` until +PONG; exits if `proc` dies or the deadline passes."""
    deadline = time.time() + secs
    while time.time() < deadline:
        if proc.poll() is not None:
            sys.exit(f"{SCRIPT}: server on port {port} exited with {proc.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1) as s:
                s.sendall(b"PING\r\n")
                if s.recv(64).startswith(b"+PONG"):
                    return
        except OSError:
            pass
        time.sleep(0.1)
    sys.exit(f"{SCRIPT}: no PONG from port {port} in {secs}s")


def cpu_seconds(pid):
    """User and system CPU time process `pid` has used so far (all its threads)."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def fail(msg):
    """Exits with `msg`, prefixed with the script's name."""
    sys.exit(f"{SCRIPT}: {msg}")


class Resp:
    """A blocking RESP2 client on one socket: `cmd(*args)` sends a command
    and returns its reply (bytes, int, list or None; an error reply raises
    RespError). `send(*args)` and `read()` split the two for pipelining."""

    def __init__(self, port, timeout=30):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = bytearray()

    def close(self):
        self.sock.close()

    def send(self, *args):
        self.sock.sendall(encode(*args))

    def cmd(self, *args):
        self.send(*args)
        return self.read()

    def _line(self):
        while True:
            end = self.buf.find(b"\r\n")
            if end >= 0:
                line = bytes(self.buf[:end])
                del self.buf[:end + 2]
                return line
            self._fill()

    def _fill(self):
        chunk = self.sock.recv(1 << 16)
        if not chunk:
            raise ConnectionError("server closed the connection")
        self.buf += chunk

    def read(self):
        line = self._line()
        kind, rest = line[:1], line[1:]
        if kind == b"+":
            return rest
        if kind == b"-":
            raise RespError(rest.decode(errors="replace"))
        if kind == b":":
            return int(rest)
        if kind == b"$":
            n = int(rest)
            if n < 0:
                return None
            while len(self.buf) < n + 2:
                self._fill()
            data = bytes(self.buf[:n])
            del self.buf[:n + 2]
            return data
        if kind == b"*":
            n = int(rest)
            return None if n < 0 else [self.read() for _ in range(n)]
        raise ConnectionError(f"unexpected reply line {line[:80]!r}")


class RespError(Exception):
    """An error reply."""


def encode(*args):
    """One command in RESP (arguments as str, bytes or int)."""
    out = [b"*%d\r\n" % len(args)]
    for a in args:
        a = a if isinstance(a, bytes) else str(a).encode()
        out.append(b"$%d\r\n%s\r\n" % (len(a), a))
    return b"".join(out)


def info(client, section):
    """INFO `section` as a dict of its fields (values as str)."""
    fields = {}
    for line in client.cmd("INFO", section).decode().splitlines():
        name, sep, value = line.partition(":")
        if sep and not name.startswith("#"):
            fields[name] = value
    return fields


class Servers:
    """Server processes started for one script run, each pinned with taskset,
    working and logging in a temporary folder; `stop()` ends them all
    (SIGTERM, then SIGKILL) and removes the folder unless `keep_logs` was set
    (by `fail`)."""

    def __init__(self):
        import tempfile
        self.dir = tempfile.mkdtemp(prefix=SCRIPT + "-")
        self.procs = {}
        self.keep_logs = False

    def start(self, name, cpus, cmd, port):
        """Starts `cmd` as `name` on `cpus` and waits for its PONG on `port`."""
        import shutil, subprocess
        if "/" in cmd[0]:
            cmd = [os.path.abspath(cmd[0])] + cmd[1:]
        elif not shutil.which(cmd[0]):
            fail(f"{cmd[0]} not found")
        log = open(os.path.join(self.dir, name + ".log"), "wb")
        # Each server works in its own folder (a replica's received RDB lands there).
        work = os.path.join(self.dir, name)
        os.makedirs(work, exist_ok=True)
        proc = subprocess.Popen(["taskset", "-c", cpus] + cmd, stdout=log, stderr=subprocess.STDOUT,
                                cwd=work, start_new_session=True)
        self.procs[name] = proc
        try:
            wait_ping(port, proc)
        except SystemExit:
            self.keep_logs = True
            raise
        return proc

    def stop_one(self, name):
        """Stops server `name` and removes its working folder (its log stays)."""
        import shutil
        proc = self.procs.pop(name, None)
        if proc is None:
            return
        self._end(proc)
        shutil.rmtree(os.path.join(self.dir, name), ignore_errors=True)

    @staticmethod
    def _end(proc):
        import signal, subprocess
        if proc.poll() is not None:
            return
        try:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(timeout=15)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            try:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=15)
            except (ProcessLookupError, subprocess.TimeoutExpired):
                pass

    def dead(self):
        """Names of the servers that exited, with their exit status."""
        return [f"{n} (exit {p.returncode})" for n, p in self.procs.items() if p.poll() is not None]

    def log_tail(self, name, lines=30):
        try:
            with open(os.path.join(self.dir, name + ".log"), "rb") as f:
                return b"\n".join(f.read().splitlines()[-lines:]).decode(errors="replace")
        except OSError:
            return ""

    def fail(self, msg, names=()):
        """Exits with `msg` and the tail of the logs of `names`; keeps the logs."""
        self.keep_logs = True
        tails = "".join(f"\n--- {n} ({os.path.join(self.dir, n + '.log')}):\n{self.log_tail(n)}" for n in names)
        fail(msg + tails)

    def stop(self):
        import shutil
        for name in list(self.procs):
            self._end(self.procs.pop(name))
        if self.keep_logs:
            print(f"{SCRIPT}: server logs kept in {self.dir}", file=sys.stderr)
        else:
            shutil.rmtree(self.dir, ignore_errors=True)


def wait_replica(servers, primary, replica, ports, timeout, digest=True):
    """Polls until server `replica` has its link up, has applied everything
    server `primary` had when asked (slave_repl_offset at or past the
    primary's master_repl_offset) and, with `digest`, holds the same data
    (DEBUG DIGEST; compare only servers of one kind). Returns the seconds it
    took; exits with both logs' tails when `timeout` passes or one exits."""
    p, r = Resp(ports[primary], timeout=timeout), Resp(ports[replica], timeout=timeout)
    t0 = time.monotonic()
    state = "no answer yet"
    try:
        while time.monotonic() - t0 < timeout:
            if servers.dead():
                servers.fail(f"{', '.join(servers.dead())} exited", [primary, replica])
            want = int(info(p, "replication").get("master_repl_offset", -1))
            fields = info(r, "replication")
            got = int(fields.get("slave_repl_offset", -1))
            link = fields.get("master_link_status", "?")
            state = f"link {link}, replica offset {got}, primary offset {want}"
            if link == "up" and got >= want >= 0:
                if not digest:
                    return time.monotonic() - t0
                dp, dr = p.cmd("DEBUG", "DIGEST"), r.cmd("DEBUG", "DIGEST")
                if dp == dr:
                    return time.monotonic() - t0
                state += f", digests {dp.decode()} / {dr.decode()}"
            time.sleep(0.005)
    except (OSError, RespError) as e:
        servers.fail(f"{replica} or {primary} failed while syncing: {e}", [primary, replica])
    finally:
        p.close()
        r.close()
    servers.fail(f"{replica} did not catch up with {primary} in {timeout}s ({state})", [primary, replica])
