#!/usr/bin/python3
# A tiny TCP service for the demo and the failover tests: answers every connection with "<node> <count>\n",
# where count numbers the connections this process has served. Binds to the floating IP only, so
# it cannot start before the IP is up (as smbd).
import socket, sys
ip, port = sys.argv[1], int(sys.argv[2])
node = socket.gethostname()
s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind((ip, port))
s.listen(64)
n = 0
while True:
    c, _ = s.accept()
    n += 1
    try:
        c.sendall(f"{node} {n}\n".encode())
    except OSError:
        pass
    c.close()
