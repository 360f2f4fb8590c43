"""What every loopback test server shares: bind 127.0.0.1 on a free port, write the
port to PORTFILE (atomically, once it listens), serve until killed."""
import os
from http.server import ThreadingHTTPServer


def serve(handler, portfile):
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    with open(portfile + ".tmp", "w") as f:
        f.write(str(server.server_address[1]))
    os.rename(portfile + ".tmp", portfile)
    server.serve_forever()


def reply(handler, code, body=b"", headers=()):
    """Answers a request: the status, the headers, Content-Length, the body (none to HEAD)."""
    handler.send_response(code)
    for k, v in headers:
        handler.send_header(k, v)
    handler.send_header("Content-Length", str(len(body)))
    handler.end_headers()
    if handler.command != "HEAD":
        handler.wfile.write(body)
