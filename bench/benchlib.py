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
