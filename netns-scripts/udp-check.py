#!/usr/bin/env python3
"""Sends COUNT datagrams of SIZE random bytes to ADDR:PORT and checks that each comes back intact.
Prints a summary; exit status 0 only if every datagram came back unchanged."""
import argparse
import os
import socket
import sys

p = argparse.ArgumentParser()
p.add_argument("addr")
p.add_argument("port", type=int)
p.add_argument("--size", type=int, default=3000)
p.add_argument("--count", type=int, default=5)
p.add_argument("--timeout", type=float, default=2.0)
a = p.parse_args()
fam = socket.AF_INET6 if ":" in a.addr else socket.AF_INET
s = socket.socket(fam, socket.SOCK_DGRAM)
s.settimeout(a.timeout)
ok = 0
for i in range(a.count):
    data = os.urandom(a.size)
    s.sendto(data, (a.addr, a.port))
    try:
        while True:
            back, _ = s.recvfrom(65535)
            if back == data:
                ok += 1
                break
    except socket.timeout:
        pass
print(f"{ok}/{a.count} datagrams of {a.size} bytes echoed intact")
sys.exit(0 if ok == a.count else 1)
