"""A local S3-compatible server and a fault-injecting proxy for the S3 tests.

Nothing here needs pytest except the fixtures at the bottom; the classes can be used from a
script as well.

S3Server
    moto's S3 server (``python -m moto.server``) in a subprocess on 127.0.0.1 and a free port.
    Being a separate process, a test can stop or kill it in the middle of an operation to
    make the endpoint unreachable (connection refused), then start it again on the same port.
    moto keeps everything in memory: after ``stop()``/``kill()`` + ``start()`` every bucket and
    object is gone.

FaultProxy
    An HTTP/1.1 proxy in a thread, on 127.0.0.1 and its own free port, in front of a server
    (normally an S3Server). Its mode can change at any time, and the change applies from the
    next request, also on connections the client keeps alive:

    ``pass``                   forward every request unchanged
    ``503``                    answer every request ``503`` with the S3 error ``SlowDown``
    ``503_then_pass`` (n)      the next n requests get the 503, then ``pass``
    ``403``                    answer every request ``403`` with the S3 error ``AccessDenied``
    ``drop``                   read the request, then close the connection without answering
    ``drop_after_bytes`` (n)   forward, but cut the connection (both sides) once n bytes of
                               body (request body, then response body, counted together per
                               request) have passed: an upload or download dropped mid-way.
                               Requests whose bodies are shorter pass unharmed.

    ``set_mode(mode, n=None, times=None)``: ``times`` limits how many requests are faulted
    before the proxy switches itself back to ``pass`` (for ``drop_after_bytes`` it counts
    actual cuts). ``mode`` reads back ``(mode, n, times left)``.

    ``requests`` counts every request seen, ``faults`` the ones faulted; ``history`` lists
    ``(method, target, action)`` per request, action being one of ``pass``, ``503``, ``403``,
    ``drop``, ``cut`` (cut by drop_after_bytes), ``unreachable`` (the upstream refused the
    connection) and ``broken`` (the upstream or the client closed the connection mid-message);
    after ``unreachable`` and ``broken`` the proxy resets the client's connection.

Credentials are dummies (``testing``/``testing``, region us-east-1); addressing is path-style.

Fixtures (made available to every test by an import in conftest.py):

    s3_server   session-wide S3Server (restarted by ``s3`` if a test left it stopped)
    s3          S3Env: the shared server plus a fresh, empty bucket for this test
    s3_own      S3Env on a server of this test alone: stop it, kill it, restart it freely
    s3_proxy    FaultProxy in front of the ``s3`` server, in mode ``pass``

S3Env: ``.server``, ``.bucket``, ``.endpoint``, ``.region``, ``.access_key_id``,
``.secret_access_key``, ``.url(key)`` (``s3://bucket/key``), ``.settings_sql(endpoint=None,
scope="")``, ``.settings_statements(...)``, ``.proxy()`` (a FaultProxy stopped at teardown), and
``.put/.get/.delete/.list_keys`` on its bucket.
"""
import atexit
import email.utils
import http.client
import os
import re
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
import uuid
import weakref

HOST = "127.0.0.1"
REGION = "us-east-1"
ACCESS_KEY_ID = "testing"
SECRET_ACCESS_KEY = "testing"


_live_servers = weakref.WeakSet()


@atexit.register
def _stop_live_servers():
    """No moto left behind when Python exits without close() (a SIGKILLed Python still does)."""
    for server in list(_live_servers):
        server.close()


def free_port():
    """A TCP port on 127.0.0.1 that nothing listens on right now (another process may still
    take it before we bind it; S3Server retries with another port if that happens)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def boto3_client(endpoint, retries=0, timeout=10):
    """A boto3 S3 client for endpoint with the dummy credentials and path-style addressing.

    retries: how many times botocore retries a failed request (0: every failure, 503 or
    dropped connection included, reaches the caller at once). Checksums are only computed
    when S3 requires them, so request bodies are plain Content-Length bodies."""
    import boto3  # noqa: PLC0415 (only the S3 tests need boto3)
    from botocore.config import Config  # noqa: PLC0415

    cfg = Config(
        region_name=REGION,
        s3={"addressing_style": "path"},
        retries={"total_max_attempts": retries + 1, "mode": "standard"},
        connect_timeout=timeout,
        read_timeout=timeout,
        request_checksum_calculation="when_required",
        response_checksum_validation="when_required",
    )
    return boto3.session.Session().client(
        "s3",
        endpoint_url=endpoint,
        aws_access_key_id=ACCESS_KEY_ID,
        aws_secret_access_key=SECRET_ACCESS_KEY,
        config=cfg,
    )


class S3Server:
    """moto's S3 server in a subprocess. ``start()`` is called by the constructor unless
    start=False. ``stop()`` ends it (SIGTERM), ``kill()`` with SIGKILL; either way the port
    refuses connections until ``start()``, which reuses the same port and begins with an
    empty store (moto keeps its state in memory only)."""

    def __init__(self, port=None, start=True, startup_timeout=30.0):
        self._fixed_port = port is not None
        self.port = port or free_port()
        self.startup_timeout = startup_timeout
        self.proc = None
        self._log = tempfile.NamedTemporaryFile(prefix="moto-", suffix=".log", delete=False)
        self._client = None
        if start:
            self.start()

    @property
    def endpoint(self):
        return f"http://{HOST}:{self.port}"

    @property
    def log_path(self):
        """moto's stdout and stderr (every request is logged there)."""
        return self._log.name

    def is_running(self):
        return self.proc is not None and self.proc.poll() is None

    def start(self):
        """Starts the server (on the same port as before, if it ran already) and waits until
        it answers HTTP."""
        if self.is_running():
            return self
        for attempt in range(3):
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "moto.server", "-H", HOST, "-p", str(self.port)],
                stdout=self._log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env={**os.environ, "AWS_ACCESS_KEY_ID": ACCESS_KEY_ID,
                     "AWS_SECRET_ACCESS_KEY": SECRET_ACCESS_KEY, "AWS_DEFAULT_REGION": REGION},
            )
            _live_servers.add(self)
            if self._wait_ready():
                return self
            self._terminate(signal_kill=True)
            if self._fixed_port or attempt == 2:
                break
            self.port = free_port()  # someone else took the port in between: try another one
        raise RuntimeError(f"moto server did not start on port {self.port}:\n{self._log_tail()}")

    def _wait_ready(self):
        deadline = time.monotonic() + self.startup_timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                return False
            try:
                conn = http.client.HTTPConnection(HOST, self.port, timeout=2)
                conn.request("GET", "/")
                conn.getresponse().read()
                conn.close()
                return True
            except OSError:
                time.sleep(0.05)
        return False

    def _log_tail(self, n=4000):
        try:
            with open(self._log.name, "rb") as f:
                return f.read()[-n:].decode(errors="replace")
        except OSError:
            return ""

    def _terminate(self, signal_kill=False):
        if self.proc is None:
            return
        if self.proc.poll() is None:
            if signal_kill:
                self.proc.kill()
            else:
                self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        self.proc = None
        self._client = None

    def stop(self):
        """Ends the server (SIGTERM) and waits for it; the port then refuses connections.
        Open connections are closed by the kernel: a request in flight fails."""
        self._terminate()

    def kill(self):
        """Like stop() but with SIGKILL."""
        self._terminate(signal_kill=True)

    def close(self):
        """stop() and remove the log file."""
        self._terminate()
        self._log.close()
        try:
            os.unlink(self._log.name)
        except OSError:
            pass

    def reset(self):
        """Empties the store without restarting (moto's /moto-api/reset)."""
        conn = http.client.HTTPConnection(HOST, self.port, timeout=10)
        conn.request("POST", "/moto-api/reset")
        conn.getresponse().read()
        conn.close()

    # boto3 helpers, talking to the server directly (not through any proxy)

    def client(self, endpoint=None, retries=0, timeout=10):
        """A new boto3 S3 client for endpoint (default: this server), see boto3_client."""
        return boto3_client(endpoint or self.endpoint, retries=retries, timeout=timeout)

    @property
    def s3(self):
        """A boto3 client for this server, created once per start."""
        if self._client is None:
            self._client = boto3_client(self.endpoint, retries=2)
        return self._client

    def create_bucket(self, name):
        self.s3.create_bucket(Bucket=name)
        return name

    def list_keys(self, bucket, prefix=""):
        """Every key under prefix, sorted."""
        keys = []
        for page in self.s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
            keys.extend(o["Key"] for o in page.get("Contents", []))
        return sorted(keys)

    def get(self, bucket, key):
        return self.s3.get_object(Bucket=bucket, Key=key)["Body"].read()

    def put(self, bucket, key, data):
        if isinstance(data, str):
            data = data.encode()
        self.s3.put_object(Bucket=bucket, Key=key, Body=data)

    def delete(self, bucket, key):
        self.s3.delete_object(Bucket=bucket, Key=key)

    def exists(self, bucket, key):
        from botocore.exceptions import ClientError  # noqa: PLC0415

        try:
            self.s3.head_object(Bucket=bucket, Key=key)
            return True
        except ClientError as e:
            if e.response.get("ResponseMetadata", {}).get("HTTPStatusCode") == 404:
                return False
            raise

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


# ---------------------------------------------------------------------------------------------
# fault-injecting proxy

_ERRORS = {
    "503": (503, "Service Unavailable", "SlowDown", "Please reduce your request rate."),
    "403": (403, "Forbidden", "AccessDenied", "Access Denied"),
}
MODES = ("pass", "503", "503_then_pass", "403", "drop", "drop_after_bytes")
_MAX_LINE = 65536


class _Cut(Exception):
    """drop_after_bytes reached its limit: the connection is to be cut."""


class _Closed(Exception):
    """A peer closed its connection in the middle of a message."""


class _Budget:
    """How many more body bytes may pass for one request under drop_after_bytes."""

    def __init__(self, proxy, limit):
        self.proxy, self.left = proxy, limit

    def send(self, sock, data):
        if self.left is None or len(data) <= self.left:
            if self.left is not None:
                self.left -= len(data)
            sock.sendall(data)
            return
        if not self.proxy._claim_cut():  # the allowed number of cuts is used up: let it pass
            self.left = None
            sock.sendall(data)
            return
        if self.left:
            sock.sendall(data[: self.left])
        raise _Cut()


def _readline(reader):
    line = reader.readline(_MAX_LINE)
    if not line:
        raise _Closed()
    return line


def _read_head(reader, first_line=None):
    """Start line plus headers: (start_line, [(name, value)], raw_lines)."""
    start = first_line or _readline(reader)
    raw = [start]
    headers = []
    while True:
        line = _readline(reader)
        raw.append(line)
        if line in (b"\r\n", b"\n"):
            break
        name, _, value = line.decode("latin-1").partition(":")
        headers.append((name.strip().lower(), value.strip()))
    return start, headers, raw


def _header(headers, name):
    for n, v in headers:
        if n == name:
            return v
    return None


def _body_framing(headers):
    te = _header(headers, "transfer-encoding")
    if te and "chunked" in te.lower():
        return ("chunked", None)
    cl = _header(headers, "content-length")
    if cl is not None:
        return ("length", int(cl))
    return None


def _copy_body(reader, framing, emit):
    """Reads a body framed as framing from reader, handing the raw bytes (chunk framing
    included) to emit(bytes); emit None only discards."""
    if framing is None:
        return
    kind, n = framing
    if kind == "length":
        left = n
        while left:
            data = reader.read1(min(left, 65536)) if hasattr(reader, "read1") else reader.read(min(left, 65536))
            if not data:
                raise _Closed()
            left -= len(data)
            if emit:
                emit(data)
    elif kind == "chunked":
        while True:
            line = _readline(reader)
            if emit:
                emit(line)
            size = int(line.split(b";", 1)[0].strip() or b"0", 16)
            if size == 0:
                while True:  # trailers, then the empty line
                    t = _readline(reader)
                    if emit:
                        emit(t)
                    if t in (b"\r\n", b"\n"):
                        return
            _copy_body(reader, ("length", size + 2), emit)  # data and its CRLF
    elif kind == "close":
        while True:
            data = reader.read1(65536)
            if not data:
                return
            if emit:
                emit(data)


def _abort(sock):
    """Closes sock with a reset (SO_LINGER 0), as a crashed or unreachable peer does."""
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    except OSError:
        pass
    try:
        sock.close()
    except OSError:
        pass


def _shut(sock):
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
    try:
        sock.close()
    except OSError:
        pass


class FaultProxy:
    """HTTP/1.1 proxy in a thread on 127.0.0.1:``port`` in front of ``upstream_host:upstream_port``,
    with faults chosen by ``set_mode`` (see the module docstring). Starts at construction
    unless start=False; ``stop()`` closes the listening socket and every open connection;
    ``start()`` listens again on the same port."""

    def __init__(self, upstream_port, upstream_host=HOST, port=None, mode="pass", n=None, start=True):
        self.upstream = (upstream_host, upstream_port)
        self.port = port or free_port()
        self._lock = threading.Lock()
        self._mode, self._n, self._times = "pass", None, None
        self.requests = 0
        self.faults = 0
        self.history = []
        self._socks = set()
        self._listener = None
        self._thread = None
        self._stopping = threading.Event()
        self.set_mode(mode, n)
        if start:
            self.start()

    @property
    def endpoint(self):
        return f"http://{HOST}:{self.port}"

    @property
    def mode(self):
        with self._lock:
            return (self._mode, self._n, self._times)

    def set_mode(self, mode, n=None, times=None):
        """mode: pass | 503 | 503_then_pass (n: how many 503s) | 403 | drop |
        drop_after_bytes (n: body bytes let through per request). times: fault at most this many
        requests (cuts, for drop_after_bytes), then pass; None: until the mode changes."""
        if mode not in MODES:
            raise ValueError(f"unknown mode {mode!r}; one of {MODES}")
        if mode == "503_then_pass":
            if n is None:
                raise ValueError("503_then_pass needs n")
            mode, times, n = "503", n, None
        if mode == "drop_after_bytes" and (n is None or n < 0):
            raise ValueError("drop_after_bytes needs n >= 0")
        if times is not None and times <= 0:
            mode, n, times = "pass", None, None
        with self._lock:
            self._mode, self._n, self._times = mode, n, times
        return self

    def reset_counts(self):
        with self._lock:
            self.requests = 0
            self.faults = 0
            self.history = []

    # lifecycle

    def start(self):
        if self._listener is not None:
            return self
        ls = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        ls.bind((HOST, self.port))
        ls.listen(128)
        ls.settimeout(0.1)
        self._listener = ls
        self._stopping.clear()
        self._thread = threading.Thread(target=self._accept_loop, name=f"FaultProxy:{self.port}", daemon=True)
        self._thread.start()
        return self

    def stop(self):
        """Stops listening (new connections are refused) and closes every open connection."""
        if self._listener is None:
            return
        self._stopping.set()
        self._thread.join(timeout=5)
        self._listener.close()
        self._listener = None
        with self._lock:
            socks = list(self._socks)
        for s in socks:
            _shut(s)

    close = stop

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()

    # internals

    def _track(self, sock, add=True):
        with self._lock:
            (self._socks.add if add else self._socks.discard)(sock)

    def _accept_loop(self):
        while not self._stopping.is_set():
            try:
                client, _ = self._listener.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            client.settimeout(None)
            client.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self._track(client)
            threading.Thread(target=self._serve, args=(client,), daemon=True).start()

    def _decide(self, method, target):
        """The action for one request, counted."""
        with self._lock:
            self.requests += 1
            mode, n = self._mode, self._n
            if mode in ("503", "403", "drop"):
                if self._times is not None:
                    self._times -= 1
                    if self._times <= 0:  # that was the last one
                        self._mode, self._n, self._times = "pass", None, None
                self.faults += 1
            self.history.append([method, target, mode if mode != "drop_after_bytes" else "pass"])
            return mode, n, len(self.history) - 1

    def _claim_cut(self):
        with self._lock:
            if self._mode != "drop_after_bytes":
                return False  # the mode changed, or the allowed cuts are used up
            if self._times is not None:
                self._times -= 1
                if self._times <= 0:
                    self._mode, self._n, self._times = "pass", None, None
            self.faults += 1
            return True

    def _note(self, idx, action):
        with self._lock:
            self.history[idx][2] = action

    def _serve(self, client):
        reader = client.makefile("rb")
        try:
            while self._serve_one(client, reader):
                pass
        except (_Closed, _Cut, OSError, ValueError):
            pass
        finally:
            self._track(client, add=False)
            try:
                reader.close()
            except OSError:
                pass
            _shut(client)

    def _serve_one(self, client, reader):
        """Handles one request; True if the connection stays open for another."""
        try:
            first = reader.readline(_MAX_LINE)
        except OSError:
            return False
        if not first:
            return False  # the client closed its keep-alive connection
        if first in (b"\r\n", b"\n"):
            return True  # stray empty line between requests
        start, headers, raw = _read_head(reader, first)
        parts = start.decode("latin-1").split()
        method, target, version = (parts + ["", "", ""])[:3]
        framing = _body_framing(headers)
        expect = (_header(headers, "expect") or "").lower() == "100-continue"
        conn_hdr = (_header(headers, "connection") or "").lower()
        keep_alive = ("close" not in conn_hdr) and (version != "HTTP/1.0" or "keep-alive" in conn_hdr)
        mode, n, idx = self._decide(method, target)

        if mode in ("503", "403", "drop"):
            if not expect:
                _copy_body(reader, framing, None)  # read the body the client sends anyway
            if mode == "drop":
                return False
            status, reason, code, message = _ERRORS[mode]
            rid = uuid.uuid4().hex[:16].upper()
            body = (
                '<?xml version="1.0" encoding="UTF-8"?>\n'
                f"<Error><Code>{code}</Code><Message>{message}</Message>"
                f"<Resource>{_xml_escape(target)}</Resource><RequestId>{rid}</RequestId>"
                "<HostId>faultproxy</HostId></Error>"
            ).encode()
            payload = b"" if method == "HEAD" else body
            head = (
                f"HTTP/1.1 {status} {reason}\r\n"
                "Content-Type: application/xml\r\n"
                f"Content-Length: {len(payload) if method != 'HEAD' else 0}\r\n"
                f"x-amz-request-id: {rid}\r\n"
                f"Date: {email.utils.formatdate(usegmt=True)}\r\n"
                "Server: FaultProxy\r\n"
                "Connection: close\r\n\r\n"
            ).encode()
            client.sendall(head + payload)
            _lingering_close(client)
            return False

        # pass / drop_after_bytes: a fresh upstream connection per request, so that a
        # restarted upstream or a mode change never meets a stale connection
        budget = _Budget(self, n if mode == "drop_after_bytes" else None)
        try:
            up = socket.create_connection(self.upstream, timeout=60)
        except OSError:
            self._note(idx, "unreachable")
            _abort(client)
            return False
        self._track(up)
        up_reader = up.makefile("rb")
        try:
            if expect:
                client.sendall(b"HTTP/1.1 100 Continue\r\n\r\n")
            fwd = b"".join(line for line in raw if not line.lower().startswith(b"expect:"))
            up.sendall(fwd)
            _copy_body(reader, framing, lambda d: budget.send(up, d))
            # the response, with any 1xx interim responses before it
            while True:
                rstart, rheaders, rraw = _read_head(up_reader)
                status = int(rstart.split()[1])
                if status >= 200 or status == 101:
                    break
                client.sendall(b"".join(rraw))
            if method == "HEAD" or status in (204, 304) or 100 <= status < 200:
                rframing = None
            else:
                rframing = _body_framing(rheaders) or ("close", None)
            if rframing and rframing[0] == "close":
                keep_alive = False
            # the upstream connection is ours alone: its Connection header does not concern
            # the client, whose connection stays open unless the body ends with the close
            out = [line for line in rraw[:-1] if not line.lower().startswith(b"connection:")]
            if not keep_alive:
                out.append(b"Connection: close\r\n")
            out.append(b"\r\n")
            client.sendall(b"".join(out))
            _copy_body(up_reader, rframing, lambda d: budget.send(client, d))
            return keep_alive
        except _Cut:
            self._note(idx, "cut")
            _shut(up)
            _abort(client)
            raise
        except (_Closed, OSError):
            # a peer closed or died mid-message: the client (if still there) sees a reset
            self._note(idx, "broken")
            _abort(client)
            raise
        finally:
            self._track(up, add=False)
            try:
                up_reader.close()
            except OSError:
                pass
            _shut(up)


def _xml_escape(s):
    return s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _lingering_close(sock, seconds=1.0):
    """Closes after the answer has been read: shut our side, drain what the client still
    sends (so that the kernel does not reset the connection under our answer), close."""
    try:
        sock.shutdown(socket.SHUT_WR)
        sock.settimeout(seconds)
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if not sock.recv(65536):
                break
    except OSError:
        pass
    try:
        sock.close()
    except OSError:
        pass


# ---------------------------------------------------------------------------------------------
# what a test gets


class S3Env:
    """A server and a bucket of one test, with what an extension user would configure."""

    region = REGION
    access_key_id = ACCESS_KEY_ID
    secret_access_key = SECRET_ACCESS_KEY

    def __init__(self, server, bucket):
        self.server = server
        self.bucket = bucket
        self._proxies = []

    @property
    def endpoint(self):
        return self.server.endpoint

    def url(self, key=""):
        return f"s3://{self.bucket}/{key}"

    def settings_statements(self, endpoint=None, scope=""):
        """The SET statements that point the extension at this server (or at endpoint, e.g. a
        FaultProxy's). scope: "" or "GLOBAL" / "SESSION"."""
        set_ = f"SET {scope} " if scope else "SET "
        return [
            f"{set_}snapshot_s3_endpoint='{endpoint or self.endpoint}'",
            f"{set_}snapshot_s3_region='{self.region}'",
            f"{set_}snapshot_s3_url_style='path'",
            f"{set_}snapshot_s3_use_ssl=false",
            f"{set_}snapshot_s3_access_key_id='{self.access_key_id}'",
            f"{set_}snapshot_s3_secret_access_key='{self.secret_access_key}'",
        ]

    def settings_sql(self, endpoint=None, scope=""):
        """settings_statements as one string, each statement ending with ';'."""
        return " ".join(s + ";" for s in self.settings_statements(endpoint, scope))

    def proxy(self, mode="pass", n=None):
        """A FaultProxy in front of this server; stopped when the test ends."""
        p = FaultProxy(self.server.port, mode=mode, n=n)
        self._proxies.append(p)
        return p

    def list_keys(self, prefix=""):
        return self.server.list_keys(self.bucket, prefix)

    def get(self, key):
        return self.server.get(self.bucket, key)

    def put(self, key, data):
        self.server.put(self.bucket, key, data)

    def delete(self, key):
        self.server.delete(self.bucket, key)

    def exists(self, key):
        return self.server.exists(self.bucket, key)

    def close(self):
        for p in self._proxies:
            p.stop()
        self._proxies = []


def bucket_name(hint="t"):
    """A valid, unique bucket name (3-63 lowercase letters, digits and hyphens)."""
    base = re.sub(r"[^a-z0-9-]+", "-", hint.lower()).strip("-")[:40] or "t"
    return f"{base}-{uuid.uuid4().hex[:12]}"


# ---------------------------------------------------------------------------------------------
# pytest fixtures

try:
    import pytest
except ImportError:  # the classes above work without pytest
    pytest = None

if pytest is not None:

    @pytest.fixture(scope="session")
    def s3_server():
        """One moto server for the whole run."""
        server = S3Server()
        yield server
        server.close()

    @pytest.fixture
    def s3(s3_server, request):
        """The shared server (started again if a test stopped it) and a new bucket."""
        if not s3_server.is_running():
            s3_server.start()
        env = S3Env(s3_server, s3_server.create_bucket(bucket_name(request.node.name)))
        yield env
        env.close()

    @pytest.fixture
    def s3_own(request):
        """A server of this test alone, and a bucket on it."""
        server = S3Server()
        env = S3Env(server, server.create_bucket(bucket_name(request.node.name)))
        yield env
        env.close()
        server.close()

    @pytest.fixture
    def s3_proxy(s3):
        """A FaultProxy in mode pass in front of the ``s3`` server."""
        return s3.proxy()
