"""socket_activate.py PORTFILE COMMAND...: systemd socket activation for a server that
takes it (sd_listen_fds(3)): binds 127.0.0.1 on a free port, writes the port to
PORTFILE, then becomes COMMAND (exec keeps the pid, as LISTEN_PID must) with the
listening socket as fd 3. Clients connect from the moment the port is written: the
kernel queues them until the server accepts, so nobody polls for readiness."""
import os
import socket
import sys


def main():
    portfile, command = sys.argv[1], sys.argv[2:]
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    sock.listen(64)
    if sock.fileno() != 3:
        os.dup2(sock.fileno(), 3)
    os.set_inheritable(3, True)
    with open(portfile + ".tmp", "w") as f:
        f.write(str(sock.getsockname()[1]))
    os.rename(portfile + ".tmp", portfile)
    env = dict(os.environ, LISTEN_FDS="1", LISTEN_PID=str(os.getpid()), LISTEN_FDNAMES="http")
    os.execvpe(command[0], command, env)


main()
