"""HTTP/1.1 (and TLS) on 127.0.0.1: one selector thread accepts for every port, one thread per connection.

Idle instances cost nothing: the selector blocks without a timeout. A port that is "down" stays bound but not
listening, so clients get "connection refused" exactly as with stopped containers, and keeps its number.
"""

import email.utils
import http
import http.server
import json
import queue
import selectors
import socket
import threading
import time
import urllib.parse

HOST = "127.0.0.1"


class Request:
    """What a handler sees: method, raw path, decoded path, query, headers (case-insensitive), body."""

    def __init__(self, method, target, headers, body):
        self.method = method
        self.target = target
        split = urllib.parse.urlsplit(target)
        self.path = urllib.parse.unquote(split.path)
        self.query = urllib.parse.parse_qs(split.query, keep_blank_values=True)
        self.headers = headers
        self.body = body

    def header(self, name, default=None):
        return self.headers.get(name, default)

    def json(self):
        return json.loads(self.body.decode("utf-8"))


class Response:
    def __init__(self, status, body=b"", content_type=None, headers=None, trickle=None):
        self.status = status
        self.body = body
        self.headers = list(headers or [])
        self.trickle = trickle  # seconds between the body's bytes (a slow proxy or link); None: all at once
        if content_type:
            self.headers.insert(0, ("Content-Type", content_type))


def json_response(status, value, headers=None):
    body = json.dumps(value, separators=(",", ":")).encode("utf-8")
    return Response(status, body, "application/json; charset=utf-8", headers)


def text_response(status, text, content_type="text/plain"):
    return Response(status, text.encode("utf-8"), content_type)


def nginx_page(status, reason):
    """nginx's own error pages (e.g. 502 while the api container is not answering yet)."""
    text = (f"<html>\r\n<head><title>{status} {reason}</title></head>\r\n<body>\r\n<center><h1>{status} {reason}</h1></center>\r\n"
            "<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n")
    return text_response(status, text, "text/html")


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    timeout = 120
    disable_nagle_algorithm = True

    def version_string(self):
        return "nginx"

    def log_message(self, format, *args):  # pylint: disable=redefined-builtin
        """Access logs would only fill bwsim.log (and could carry tokens in URLs)."""

    def _read_body(self):
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            chunks = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _dispatch(self):
        request = Request(self.command, self.path, self.headers, self._read_body())
        try:
            response = self.server.app(request)
        except Exception:  # pylint: disable=broad-exception-caught
            # An unexpected simulator bug must still answer like ASP.NET would, and show up in bwsim.log.
            import traceback  # pylint: disable=import-outside-toplevel
            traceback.print_exc()
            response = json_response(500, {"message": "simulator error"})
        if response is None:
            self.close_connection = True
            return
        try:
            reason = http.HTTPStatus(response.status).phrase
        except ValueError:
            reason = ""
        head = [f"{self.protocol_version} {response.status} {reason}", "Server: nginx",
                f"Date: {email.utils.formatdate(time.time(), usegmt=True)}"]
        head += [f"{name}: {value}" for name, value in response.headers]
        head.append(f"Content-Length: {len(response.body)}")
        if self.close_connection:
            head.append("Connection: close")
        body = b"" if self.command == "HEAD" else response.body
        if response.trickle and body:
            self._trickle(("\r\n".join(head) + "\r\n\r\n").encode("latin-1"), body, response.trickle)
            return
        # one write for head and body: no Nagle/delayed-ACK stall on keep-alive connections
        self.wfile.write(("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + body)

    def _trickle(self, head, body, every):
        """The head at once, then the body a byte at a time, until the client gives up."""
        try:
            self.wfile.write(head)
            for index in range(len(body)):
                self.wfile.write(body[index:index + 1])
                self.wfile.flush()
                time.sleep(every)
        except OSError:
            self.close_connection = True

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = do_OPTIONS = _dispatch


class Acceptor:
    """A single thread that accepts on every listening socket and hands connections to worker threads."""

    def __init__(self):
        self._selector = selectors.DefaultSelector()
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        self._selector.register(self._wake_r, selectors.EVENT_READ, None)
        self._calls = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name="acceptor", daemon=True)
        self._thread.start()

    def call(self, func):
        """Run func in the acceptor thread (the selector is not thread-safe) and wait for it."""
        if threading.current_thread() is self._thread:
            func()
            return
        done = threading.Event()
        self._calls.put((func, done))
        self._wake_w.send(b"x")
        done.wait()

    def _run(self):
        while True:
            for key, dummy in self._selector.select():
                if key.data is None:
                    try:
                        self._wake_r.recv(4096)
                    except BlockingIOError:
                        pass
                    while not self._calls.empty():
                        func, done = self._calls.get()
                        try:
                            func()
                        finally:
                            done.set()
                    continue
                key.data.accept_all()

    def register(self, listener):
        self.call(lambda: self._selector.register(listener.sock, selectors.EVENT_READ, listener))

    def unregister(self, listener):
        self.call(lambda: self._selector.unregister(listener.sock))


class Listener:
    """One 127.0.0.1 port with an app `app(Request) -> Response`; start() listens, stop() refuses."""

    def __init__(self, acceptor, app, ssl_context=None, port=0):
        self.acceptor = acceptor
        self.app = app
        self.ssl_context = ssl_context
        self.listening = False
        self.connections = set()
        self._lock = threading.Lock()
        self.sock = self._bind(port)
        self.port = self.sock.getsockname()[1]

    @staticmethod
    def _bind(port):
        for dummy in range(50):
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                sock.bind((HOST, port))
                return sock
            except OSError:
                sock.close()
                if not port:
                    raise
                time.sleep(0.05)
        raise OSError(f"cannot bind {HOST}:{port} again")

    def start(self):
        with self._lock:
            if self.listening:
                return
            self.sock.listen(256)
            self.sock.setblocking(False)
            self.listening = True
        self.acceptor.register(self)

    def stop(self):
        """Stop accepting (new connections are refused), drop open connections, keep the port."""
        with self._lock:
            if not self.listening:
                return
            self.listening = False
        self.acceptor.unregister(self)
        self.sock.close()
        with self._lock:
            connections = list(self.connections)
        for conn in connections:
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        self.sock = self._bind(self.port)

    def close(self):
        self.stop()
        self.sock.close()

    def accept_all(self):
        while True:
            try:
                conn, addr = self.sock.accept()
            except (BlockingIOError, OSError):
                return
            threading.Thread(target=self._serve, args=(conn, addr), daemon=True).start()

    def _serve(self, conn, addr):
        conn.setblocking(True)
        conn.settimeout(_Handler.timeout)
        raw = conn
        with self._lock:
            self.connections.add(raw)
        try:
            if self.ssl_context is not None:
                conn = self.ssl_context.wrap_socket(conn, server_side=True)
                with self._lock:
                    self.connections.discard(raw)
                    self.connections.add(conn)
            _Handler(conn, addr, self)
        except OSError:
            pass
        finally:
            with self._lock:
                self.connections.discard(raw)
                self.connections.discard(conn)
            try:
                conn.close()
            except OSError:
                pass
