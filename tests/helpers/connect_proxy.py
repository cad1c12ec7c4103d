"""A CONNECT proxy on 127.0.0.1 for tests of the cloud preflight's proxy support (RFC 9110 CONNECT)."""

import select
import socket
import threading


def proxy_server(answer=None):
    """A CONNECT proxy on 127.0.0.1: relays the tunnel, or answers ``answer`` (e.g. b"403 Forbidden"). Records requests."""
    seen = []
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(5)

    def handle(conn):
        head = b""
        while b"\r\n\r\n" not in head:
            head += conn.recv(4096)
        seen.append(head.decode("latin-1"))
        target = head.split(b" ")[1].decode()
        if answer:
            conn.sendall(b"HTTP/1.1 " + answer + b"\r\nContent-Length: 0\r\n\r\n")
            conn.close()
            return
        host, port = target.rsplit(":", 1)
        upstream = socket.create_connection((host, int(port)))
        conn.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
        pair = {conn: upstream, upstream: conn}
        while True:
            readable, dummy, dummy = select.select(list(pair), [], [], 5)
            if not readable:
                break
            data = readable[0].recv(65536)
            if not data:
                break
            pair[readable[0]].sendall(data)
        conn.close()
        upstream.close()

    def accept():
        while True:
            conn, dummy = listener.accept()
            threading.Thread(target=handle, args=(conn,), daemon=True).start()

    threading.Thread(target=accept, daemon=True).start()
    return "127.0.0.1:%d" % listener.getsockname()[1], seen
