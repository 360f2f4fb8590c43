#!/usr/bin/env python3
"""moto's S3 (Object Lock, multipart uploads listed and aborted, STS, regions) for ckfb's tests.

Usage: moto_s3.py PORTFILE. Listens on 127.0.0.1 on a free port and writes it to
PORTFILE; runs until SIGTERM. Any access key is accepted (moto's default).
"""
import os
import signal
import sys
import threading

from moto.server import ThreadedMotoServer


def main():
    portfile = sys.argv[1]
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    _, port = server.get_host_and_port()
    with open(portfile + ".tmp", "w") as f:
        f.write(str(port))
    os.rename(portfile + ".tmp", portfile)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    stop.wait()
    server.stop()


if __name__ == "__main__":
    main()
