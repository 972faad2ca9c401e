#!/usr/bin/env python3
"""Sends UDP datagrams as IPv6 fragments in a chosen order (last fragment first by default) and
checks that an echo server sends each datagram back whole.

Linux always sends its own fragments in order, so the fragments are built here and written with
a raw socket (IPV6_HDRINCL is implied by IPPROTO_RAW); the echo comes back to an ordinary UDP
socket bound to the same source port. Exit 0 when every echo matched, 1 otherwise.

  frag-order.py SRC DST PORT [--size 2400] [--parts 3] [--order last-first|middle-first]
                [--count 3] [--timeout 3]
"""
import argparse
import os
import socket
import struct
import sys


def csum(data: bytes) -> int:
    if len(data) % 2:
        data += b"\0"
    s = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return s


def udp6(src: bytes, dst: bytes, sport: int, dport: int, payload: bytes) -> bytes:
    length = 8 + len(payload)
    pseudo = src + dst + struct.pack("!IxxxB", length, 17)
    head = struct.pack("!HHHH", sport, dport, length, 0)
    c = 0xFFFF - csum(pseudo + head + payload)
    return struct.pack("!HHHH", sport, dport, length, c or 0xFFFF) + payload


def fragments(src: bytes, dst: bytes, segment: bytes, parts: int, ident: int) -> list:
    # Equal parts, multiples of 8 bytes except the last (RFC 8200 section 4.5).
    step = (len(segment) // parts) & ~7
    out = []
    for i in range(parts):
        lo = i * step
        hi = len(segment) if i == parts - 1 else lo + step
        more = 1 if i < parts - 1 else 0
        body = segment[lo:hi]
        fh = struct.pack("!BBHI", 17, 0, (lo // 8) << 3 | more, ident)
        ip = struct.pack("!IHBB", 6 << 28, len(fh) + len(body), 44, 64) + src + dst
        out.append(ip + fh + body)
    return out


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("src")
    p.add_argument("dst")
    p.add_argument("port", type=int)
    p.add_argument("--size", type=int, default=2400)
    p.add_argument("--parts", type=int, default=3)
    p.add_argument("--order", choices=["last-first", "middle-first"], default="last-first")
    p.add_argument("--count", type=int, default=3)
    p.add_argument("--timeout", type=float, default=3.0)
    a = p.parse_args()
    src = socket.inet_pton(socket.AF_INET6, a.src)
    dst = socket.inet_pton(socket.AF_INET6, a.dst)
    rx = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
    rx.bind((a.src, 0))
    rx.settimeout(a.timeout)
    sport = rx.getsockname()[1]
    tx = socket.socket(socket.AF_INET6, socket.SOCK_RAW, socket.IPPROTO_RAW)
    ok = 0
    for n in range(a.count):
        payload = os.urandom(a.size)
        frags = fragments(src, dst, udp6(src, dst, sport, a.port, payload), a.parts,
                          int.from_bytes(os.urandom(4), "big"))
        if a.order == "last-first":
            order = list(reversed(range(len(frags))))
        else:
            order = [1, 0] + list(range(2, len(frags)))
        for i in order:
            tx.sendto(frags[i], (a.dst, 0))
        try:
            data = rx.recv(65535)
        except socket.timeout:
            print(f"datagram {n}: no echo within {a.timeout} s")
            continue
        if data == payload:
            ok += 1
        else:
            print(f"datagram {n}: echo of {len(data)} bytes differs from the {a.size} sent")
    print(f"{ok}/{a.count} datagrams sent as {a.parts} fragments {a.order} came back whole")
    return 0 if ok == a.count else 1


if __name__ == "__main__":
    sys.exit(main())
