#!/usr/bin/env python3
"""UDP echo server for the netns cases: echoes every datagram; exits after --lifetime seconds.
--no-checksum (IPv4): the echoes carry UDP checksum 0 (SO_NO_CHECK), as RFC 768 allows."""
import argparse
import socket
import time

p = argparse.ArgumentParser()
p.add_argument("addr")
p.add_argument("port", type=int)
p.add_argument("--lifetime", type=float, default=60.0)
p.add_argument("--no-checksum", action="store_true")
a = p.parse_args()
fam = socket.AF_INET6 if ":" in a.addr else socket.AF_INET
s = socket.socket(fam, socket.SOCK_DGRAM)
if a.no_checksum:
    s.setsockopt(socket.SOL_SOCKET, 11, 1)  # SO_NO_CHECK (Linux, IPv4 UDP)
s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
s.bind((a.addr, a.port))
end = time.monotonic() + a.lifetime
while time.monotonic() < end:
    s.settimeout(max(0.1, end - time.monotonic()))
    try:
        data, peer = s.recvfrom(65535)
    except socket.timeout:
        break
    s.sendto(data, peer)
