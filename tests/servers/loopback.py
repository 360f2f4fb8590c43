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
