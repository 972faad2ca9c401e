#!/usr/bin/env python3
"""hostile-gen.py: malformed and abusive packets for netns-scripts/hostile.sh.

Writes raw Ethernet frames on one interface of the namespace it runs in (AF_PACKET), so the
local stack does not "fix" them: what the gateway's kernel accepts and forwards into the TUN is
what nat64d sees. Bounded: at most --count packets and --seconds seconds, at --rate per second.
Only documentation addresses and 64:ff9b::/96 are used (the caller passes them).

Modes (--mode):
  malformed6   every kind in KINDS6, round robin, IPv6 (client side)
  malformed4   every kind in KINDS4, round robin, IPv4 (server side)
  sessions6    valid UDP from a new source address inside --src-prefix (a /64) for each packet
  frags6       first fragments that never complete (UDP, and ICMPv6 echo) from rotating sources
               in the /64

Prints one line: "sent N packets (K kinds) in T s: R pps".
"""
import argparse
import ipaddress
import os
import random
import socket
import struct
import sys
import time


def csum(data):
    if len(data) % 2:
        data += b"\0"
    s = sum(struct.unpack("!%dH" % (len(data) // 2), data))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return (~s) & 0xFFFF


def a6(x):
    return ipaddress.IPv6Address(x).packed


def a4(x):
    return ipaddress.IPv4Address(x).packed


# --- IPv6 ----------------------------------------------------------------------------------------
def ip6(src, dst, nh, payload, hlim=64, plen=None):
    if plen is None:
        plen = len(payload)
    return struct.pack("!IHBB", 0x60000000, plen & 0xFFFF, nh, hlim) + src + dst + payload


def l4sum6(src, dst, nh, seg):
    return csum(src + dst + struct.pack("!IxxxB", len(seg), nh) + seg)


def udp6(src, dst, sport, dport, data, good=True, length=None, zero=False):
    ln = 8 + len(data) if length is None else length
    seg = struct.pack("!HHHH", sport, dport, ln & 0xFFFF, 0) + data
    c = 0 if zero else l4sum6(src, dst, 17, seg)
    if c == 0 and not zero:
        c = 0xFFFF
    if not good:
        c ^= 0x5A5A
    return seg[:6] + struct.pack("!H", c) + seg[8:]


def tcp_seg(sport, dport, flags=0x02, doff=5, opts=b"", data=b""):
    return struct.pack("!HHIIBBHHH", sport, dport, 1, 0, (doff & 0xF) << 4, flags, 65535, 0, 0) + opts + data


def tcp6(src, dst, seg):
    c = l4sum6(src, dst, 6, seg)
    return seg[:16] + struct.pack("!H", c) + seg[18:]


def icmp6(src, dst, typ, code, body, good=True):
    seg = struct.pack("!BBH", typ, code, 0) + body
    c = l4sum6(src, dst, 58, seg)
    if not good:
        c ^= 0x1111
    return seg[:2] + struct.pack("!H", c) + seg[4:]


def frag6(nh, offset8, more, ident, data):
    return struct.pack("!BBHI", nh, 0, (offset8 << 3) | (1 if more else 0), ident) + data


def ext6(nh, body_len8, fill=b""):
    # A Destination Options / Hop-by-Hop shaped header: next header, length in 8-octet units - 1.
    body = fill.ljust(6 + 8 * body_len8, b"\x01\x00")[: 6 + 8 * body_len8] if fill else padn(6 + 8 * body_len8)
    return struct.pack("!BB", nh, body_len8) + body


def padn(n):
    # PadN option filling n bytes (n >= 2), or Pad1 for n == 1.
    if n == 1:
        return b"\x00"
    return struct.pack("!BB", 1, n - 2) + b"\x00" * (n - 2)


# --- IPv4 ----------------------------------------------------------------------------------------
def ip4(src, dst, proto, payload, ttl=64, df=True, mf=False, off8=0, ident=0, opts=b"", tot=None, bad=False):
    ihl = 5 + len(opts) // 4
    tl = 20 + len(opts) + len(payload) if tot is None else tot
    fl = (0x4000 if df else 0) | (0x2000 if mf else 0) | (off8 & 0x1FFF)
    h = struct.pack("!BBHHHBBH", 0x40 | ihl, 0, tl & 0xFFFF, ident & 0xFFFF, fl, ttl, proto, 0) + src + dst + opts
    c = csum(h)
    if bad:
        c ^= 0x0F0F
    return h[:10] + struct.pack("!H", c) + h[12:] + payload


def l4sum4(src, dst, proto, seg):
    return csum(src + dst + struct.pack("!xBH", proto, len(seg)) + seg)


def udp4(src, dst, sport, dport, data, good=True, length=None, zero=False):
    ln = 8 + len(data) if length is None else length
    seg = struct.pack("!HHHH", sport, dport, ln & 0xFFFF, 0) + data
    c = 0 if zero else l4sum4(src, dst, 17, seg)
    if c == 0 and not zero:
        c = 0xFFFF
    if not good:
        c ^= 0x5A5A
    return seg[:6] + struct.pack("!H", c) + seg[8:]


def tcp4(src, dst, seg):
    c = l4sum4(src, dst, 6, seg)
    return seg[:16] + struct.pack("!H", c) + seg[18:]


def icmp4(typ, code, body, good=True):
    seg = struct.pack("!BBH", typ, code, 0) + body
    c = csum(seg)
    if not good:
        c ^= 0x1111
    return seg[:2] + struct.pack("!H", c) + seg[4:]


# --- the kinds ----------------------------------------------------------------------------------
R = random.Random(6146)


def rnd(n):
    return bytes(R.getrandbits(8) for _ in range(n))


def kinds6(S, D, port):
    """Each entry: name -> function(i) -> list of IPv6 packets (S = client, D = server via pool6)."""
    p = port
    inner_ok = ip6(D, S, 17, udp6(D, S, p, 4000, b"x" * 16))  # a packet S could have received
    k = {}
    k["udp-bad-checksum"] = lambda i: [ip6(S, D, 17, udp6(S, D, 4000 + i % 50, p, b"hello", good=False))]
    k["udp-zero-checksum"] = lambda i: [ip6(S, D, 17, udp6(S, D, 4100, p, b"zero", zero=True))]
    k["udp-length-too-big"] = lambda i: [ip6(S, D, 17, udp6(S, D, 4200, p, b"abc", length=400))]
    k["udp-length-below-8"] = lambda i: [ip6(S, D, 17, udp6(S, D, 4201, p, b"abcdef", length=4))]
    k["udp-truncated-header"] = lambda i: [ip6(S, D, 17, struct.pack("!HH", 4202, p))]
    k["udp-port-0"] = lambda i: [ip6(S, D, 17, udp6(S, D, 0, 0, b"zero ports"))]
    k["tcp-truncated-header"] = lambda i: [ip6(S, D, 6, tcp_seg(4300, p)[:10])]
    k["tcp-data-offset-3"] = lambda i: [ip6(S, D, 6, tcp6(S, D, tcp_seg(4301, p, doff=3)))]
    k["tcp-data-offset-15"] = lambda i: [ip6(S, D, 6, tcp6(S, D, tcp_seg(4302, p, doff=15)))]
    k["tcp-all-flags"] = lambda i: [ip6(S, D, 6, tcp6(S, D, tcp_seg(4303, p, flags=0xFF)))]
    k["tcp-bad-checksum"] = lambda i: [ip6(S, D, 6, tcp_seg(4304, p, flags=0x10))]
    k["icmp6-unknown-type"] = lambda i: [ip6(S, D, 58, icmp6(S, D, 200, 7, rnd(12)))]
    k["icmp6-echo-bad-checksum"] = lambda i: [ip6(S, D, 58, icmp6(S, D, 128, 0, struct.pack("!HH", 77, i & 0xFFFF) + b"p" * 8, good=False))]
    k["icmp6-echo-truncated"] = lambda i: [ip6(S, D, 58, struct.pack("!BB", 128, 0))]
    k["icmp6-echo-code-9"] = lambda i: [ip6(S, D, 58, icmp6(S, D, 128, 9, struct.pack("!HH", 78, i & 0xFFFF)))]
    k["icmp6-mld-report"] = lambda i: [ip6(S, D, 58, icmp6(S, D, 143, 0, rnd(20)))]
    k["icmp6-neighbor-solicit"] = lambda i: [ip6(S, D, 58, icmp6(S, D, 135, 0, b"\0" * 4 + D), hlim=255)]
    k["icmp6-error-garbage-inner"] = lambda i: [ip6(S, D, 58, icmp6(S, D, 1, 4, b"\0" * 4 + rnd(8)))]
    k["icmp6-error-inner-version-4"] = lambda i: [ip6(S, D, 58, icmp6(S, D, 1, 4, b"\0" * 4 + b"\x45" + inner_ok[1:]))]
    k["icmp6-error-inner-truncated-header"] = lambda i: [ip6(S, D, 58, icmp6(S, D, 1, 4, b"\0" * 4 + inner_ok[:20]))]
    k["icmp6-error-nested-error"] = lambda i: [ip6(S, D, 58, icmp6(S, D, 1, 4, b"\0" * 4 + ip6(D, S, 58, icmp6(D, S, 1, 4, b"\0" * 4 + inner_ok))))]
    k["icmp6-packet-too-big-mtu-0"] = lambda i: [ip6(S, D, 58, icmp6(S, D, 2, 0, struct.pack("!I", 0) + inner_ok))]
    k["icmp6-packet-too-big-mtu-max"] = lambda i: [ip6(S, D, 58, icmp6(S, D, 2, 0, struct.pack("!I", 0xFFFFFFFF) + inner_ok))]
    k["icmp6-param-problem-pointer-far"] = lambda i: [ip6(S, D, 58, icmp6(S, D, 4, 0, struct.pack("!I", 0xFFFF) + inner_ok))]
    k["icmp6-param-problem-code-9"] = lambda i: [ip6(S, D, 58, icmp6(S, D, 4, 9, struct.pack("!I", 6) + inner_ok))]
    k["icmp6-time-exceeded-empty"] = lambda i: [ip6(S, D, 58, icmp6(S, D, 3, 0, b"\0" * 4))]
    k["frag-first-4-bytes"] = lambda i: [ip6(S, D, 44, frag6(17, 0, True, 0x10000 + i, struct.pack("!HH", 4400, p)))]
    k["frag-non-first-alone"] = lambda i: [ip6(S, D, 44, frag6(17, 100, False, 0x20000 + i, rnd(64)))]
    k["frag-overlapping"] = lambda i: [
        ip6(S, D, 44, frag6(17, 0, True, 0x30000 + i, udp6(S, D, 4401, p, b"o" * 200)[:64])),
        ip6(S, D, 44, frag6(17, 4, False, 0x30000 + i, rnd(80))),
    ]
    k["frag-atomic"] = lambda i: [ip6(S, D, 44, frag6(17, 0, False, 0x40000 + i, udp6(S, D, 4402, p, b"atomic")))]
    k["frag-zero-length"] = lambda i: [ip6(S, D, 44, frag6(17, 0, True, 0x50000 + i, b""))]
    k["frag-max-offset"] = lambda i: [ip6(S, D, 44, frag6(17, 8191, True, 0x60000 + i, rnd(16)))]
    k["frag-nested-fragment-header"] = lambda i: [ip6(S, D, 44, frag6(44, 0, True, 0x70000 + i, frag6(17, 0, False, 1, udp6(S, D, 4403, p, b"n" * 8))))]
    k["frag-icmp6-echo-first-only"] = lambda i: [ip6(S, D, 44, frag6(58, 0, True, 0x80000 + i, icmp6(S, D, 128, 0, struct.pack("!HH", 79, 1) + b"f" * 40)))]
    k["frag-first-without-l4-but-more"] = lambda i: [ip6(S, D, 44, frag6(60, 0, True, 0x90000 + i, ext6(17, 0)))]
    k["dstopts-then-udp"] = lambda i: [ip6(S, D, 60, ext6(17, 0) + udp6(S, D, 4500, p, b"dstopt"))]
    k["dstopts-length-past-end"] = lambda i: [ip6(S, D, 60, struct.pack("!BB", 17, 200) + b"\x01\x02\0\0\0\0")]
    k["dstopts-chain-of-20"] = lambda i: [ip6(S, D, 60, b"".join(ext6(60, 0) for _ in range(19)) + ext6(17, 0) + udp6(S, D, 4501, p, b"chain"))]
    k["routing-type-0-segments-left-0"] = lambda i: [ip6(S, D, 43, struct.pack("!BBBB", 17, 2, 0, 0) + b"\0" * 4 + D + udp6(S, D, 4502, p, b"rh0"))]
    k["routing-srh-segments-left-0"] = lambda i: [ip6(S, D, 43, struct.pack("!BBBBBBH", 17, 2, 4, 0, 0, 0, 0) + D + udp6(S, D, 4503, p, b"srh"))]
    k["next-header-unknown-253"] = lambda i: [ip6(S, D, 253, rnd(40))]
    k["next-header-none-59"] = lambda i: [ip6(S, D, 59, rnd(24))]
    k["next-header-esp-50"] = lambda i: [ip6(S, D, 50, rnd(48))]
    k["next-header-udp-random-bytes"] = lambda i: [ip6(S, D, 17, rnd(3 + i % 60))]
    k["next-header-icmp6-random-bytes"] = lambda i: [ip6(S, D, 58, rnd(3 + i % 60))]
    k["hop-limit-2"] = lambda i: [ip6(S, D, 17, udp6(S, D, 4600, p, b"hlim"), hlim=2)]
    k["payload-length-short"] = lambda i: [ip6(S, D, 17, udp6(S, D, 4601, p, b"short" * 10), plen=12)]
    for host in ("127.0.0.1", "10.1.2.3", "224.0.0.1", "255.255.255.255", "0.0.0.0", "169.254.1.1"):
        dst = a6("64:ff9b::" + host)
        k["to-pool6-" + host] = (lambda dst: lambda i: [ip6(S, dst, 17, udp6(S, dst, 4700, p, b"ng"))])(dst)
    k["source-inside-pool6"] = lambda i: [ip6(a6("64:ff9b::c000:202"), D, 17, udp6(a6("64:ff9b::c000:202"), D, 4800, p, b"spoof"))]
    k["source-v4-mapped"] = lambda i: [ip6(a6("::ffff:192.0.2.9"), D, 17, udp6(a6("::ffff:192.0.2.9"), D, 4801, p, b"mapped"))]
    return k


def kinds4(S, D, port):
    """S = the IPv4 server, D = the address the IPv6 host has on the IPv4 side (EAMT or pool4)."""
    p = port
    inner_ok = ip4(D, S, 17, udp4(D, S, p, 4000, b"y" * 16))
    k = {}
    k["udp-bad-checksum"] = lambda i: [ip4(S, D, 17, udp4(S, D, 5000 + i % 50, p, b"hello", good=False))]
    k["udp-zero-checksum"] = lambda i: [ip4(S, D, 17, udp4(S, D, 5100, p, b"zero", zero=True))]
    k["udp-length-too-big"] = lambda i: [ip4(S, D, 17, udp4(S, D, 5200, p, b"abc", length=400))]
    k["udp-length-below-8"] = lambda i: [ip4(S, D, 17, udp4(S, D, 5201, p, b"abcdef", length=4))]
    k["udp-truncated-header"] = lambda i: [ip4(S, D, 17, struct.pack("!HH", 5202, p))]
    k["udp-port-0"] = lambda i: [ip4(S, D, 17, udp4(S, D, 0, 0, b"zero ports"))]
    k["tcp-truncated-header"] = lambda i: [ip4(S, D, 6, tcp_seg(5300, p)[:10])]
    k["tcp-data-offset-3"] = lambda i: [ip4(S, D, 6, tcp4(S, D, tcp_seg(5301, p, doff=3)))]
    k["tcp-data-offset-15"] = lambda i: [ip4(S, D, 6, tcp4(S, D, tcp_seg(5302, p, doff=15)))]
    k["tcp-all-flags"] = lambda i: [ip4(S, D, 6, tcp4(S, D, tcp_seg(5303, p, flags=0xFF)))]
    k["tcp-bad-checksum"] = lambda i: [ip4(S, D, 6, tcp_seg(5304, p, flags=0x10))]
    k["icmp-unknown-type"] = lambda i: [ip4(S, D, 1, icmp4(42, 3, rnd(12)))]
    k["icmp-echo-bad-checksum"] = lambda i: [ip4(S, D, 1, icmp4(8, 0, struct.pack("!HH", 91, i & 0xFFFF) + b"p" * 8, good=False))]
    k["icmp-echo-truncated"] = lambda i: [ip4(S, D, 1, b"\x08\x00")]
    k["icmp-timestamp"] = lambda i: [ip4(S, D, 1, icmp4(13, 0, b"\0" * 16))]
    k["icmp-source-quench"] = lambda i: [ip4(S, D, 1, icmp4(4, 0, b"\0" * 4 + inner_ok))]
    k["icmp-redirect"] = lambda i: [ip4(S, D, 1, icmp4(5, 1, a4("198.51.100.9") + inner_ok))]
    k["icmp-router-advert"] = lambda i: [ip4(S, D, 1, icmp4(9, 0, rnd(8)))]
    k["icmp-error-garbage-inner"] = lambda i: [ip4(S, D, 1, icmp4(3, 3, b"\0" * 4 + rnd(8)))]
    k["icmp-error-inner-version-6"] = lambda i: [ip4(S, D, 1, icmp4(3, 3, b"\0" * 4 + b"\x65" + inner_ok[1:]))]
    k["icmp-error-inner-ihl-15"] = lambda i: [ip4(S, D, 1, icmp4(3, 3, b"\0" * 4 + b"\x4f" + inner_ok[1:]))]
    k["icmp-error-inner-ihl-2"] = lambda i: [ip4(S, D, 1, icmp4(11, 0, b"\0" * 4 + b"\x42" + inner_ok[1:]))]
    k["icmp-error-nested-error"] = lambda i: [ip4(S, D, 1, icmp4(3, 1, b"\0" * 4 + ip4(D, S, 1, icmp4(3, 3, b"\0" * 4 + inner_ok))))]
    k["icmp-frag-needed-mtu-0"] = lambda i: [ip4(S, D, 1, icmp4(3, 4, struct.pack("!HH", 0, 0) + inner_ok))]
    k["icmp-frag-needed-mtu-68"] = lambda i: [ip4(S, D, 1, icmp4(3, 4, struct.pack("!HH", 0, 68) + inner_ok))]
    k["icmp-param-problem-pointer-far"] = lambda i: [ip4(S, D, 1, icmp4(12, 0, struct.pack("!B3x", 250) + inner_ok))]
    k["icmp-unreach-code-15"] = lambda i: [ip4(S, D, 1, icmp4(3, 15, b"\0" * 4 + inner_ok))]
    k["options-nop-eol"] = lambda i: [ip4(S, D, 17, udp4(S, D, 5400, p, b"opts"), opts=b"\x01\x01\x01\x00")]
    k["options-router-alert"] = lambda i: [ip4(S, D, 17, udp4(S, D, 5401, p, b"ra"), opts=b"\x94\x04\x00\x00")]
    k["options-length-0"] = lambda i: [ip4(S, D, 17, udp4(S, D, 5402, p, b"bad"), opts=b"\x07\x00\x00\x00")]
    k["options-lsrr"] = lambda i: [ip4(S, D, 17, udp4(S, D, 5403, p, b"lsrr"), opts=b"\x83\x07\x04" + a4("192.0.2.9") + b"\x00")]
    k["frag-first-4-bytes"] = lambda i: [ip4(S, D, 17, struct.pack("!HH", 5500, p), df=False, mf=True, ident=0x1000 + i)]
    k["frag-non-first-alone"] = lambda i: [ip4(S, D, 17, rnd(64), df=False, off8=100, ident=0x2000 + i)]
    k["frag-overlapping"] = lambda i: [
        ip4(S, D, 17, udp4(S, D, 5501, p, b"o" * 200)[:64], df=False, mf=True, ident=0x3000 + i),
        ip4(S, D, 17, rnd(80), df=False, off8=4, ident=0x3000 + i),
    ]
    k["frag-zero-length"] = lambda i: [ip4(S, D, 17, b"", df=False, mf=True, ident=0x4000 + i)]
    k["frag-max-offset"] = lambda i: [ip4(S, D, 17, rnd(16), df=False, mf=True, off8=8191, ident=0x5000 + i)]
    k["frag-df-and-mf"] = lambda i: [ip4(S, D, 17, udp4(S, D, 5502, p, b"dfmf"), df=True, mf=True, ident=0x6000 + i)]
    k["frag-icmp-echo-first-only"] = lambda i: [ip4(S, D, 1, icmp4(8, 0, struct.pack("!HH", 92, 1) + b"f" * 40), df=False, mf=True, ident=0x7000 + i)]
    k["protocol-unknown-253"] = lambda i: [ip4(S, D, 253, rnd(40))]
    k["protocol-esp-50"] = lambda i: [ip4(S, D, 50, rnd(48))]
    k["protocol-gre-47"] = lambda i: [ip4(S, D, 47, rnd(24))]
    k["protocol-icmp6-58-in-ipv4"] = lambda i: [ip4(S, D, 58, rnd(24))]
    k["protocol-udp-random-bytes"] = lambda i: [ip4(S, D, 17, rnd(3 + i % 60))]
    k["protocol-icmp-random-bytes"] = lambda i: [ip4(S, D, 1, rnd(3 + i % 60))]
    k["ttl-2"] = lambda i: [ip4(S, D, 17, udp4(S, D, 5600, p, b"ttl"), ttl=2)]
    k["total-length-short"] = lambda i: [ip4(S, D, 17, udp4(S, D, 5601, p, b"short" * 10), tot=30)]
    k["header-checksum-bad"] = lambda i: [ip4(S, D, 17, udp4(S, D, 5602, p, b"hcs"), bad=True)]
    k["df-1400-bytes"] = lambda i: [ip4(S, D, 17, udp4(S, D, 5603, p, b"d" * 1352))]
    return k


def mac(s):
    return bytes(int(x, 16) for x in s.split(":"))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--mode", required=True, choices=["malformed6", "malformed4", "sessions6", "frags6"])
    ap.add_argument("--iface", required=True)
    ap.add_argument("--dst-mac", required=True)
    ap.add_argument("--src", required=True, help="source address (or, for sessions6/frags6, a /64)")
    ap.add_argument("--dst", required=True)
    ap.add_argument("--port", type=int, default=9)
    ap.add_argument("--rate", type=float, default=2000)
    ap.add_argument("--count", type=int, default=10000)
    ap.add_argument("--seconds", type=float, default=10)
    ap.add_argument("--list", action="store_true", help="print the kinds and exit")
    a = ap.parse_args()

    six = a.mode != "malformed4"
    ethertype = 0x86DD if six else 0x0800
    if a.mode == "malformed6":
        table = kinds6(a6(a.src), a6(a.dst), a.port)
    elif a.mode == "malformed4":
        table = kinds4(a4(a.src), a4(a.dst), a.port)
    else:
        net = ipaddress.IPv6Network(a.src)
        D = a6(a.dst)
        base = int(net.network_address)
        span = net.num_addresses - 2

        def fresh(i):
            return ipaddress.IPv6Address(base + 1 + R.randrange(span)).packed

        if a.mode == "sessions6":
            def gen(i):
                s = fresh(i)
                return [ip6(s, D, 17, udp6(s, D, 1024 + i % 60000, a.port, b"flood"))]
        else:
            # First fragments whose datagrams never complete: two of UDP (each takes an entry
            # of the fragment store until it times out) for one of an ICMPv6 echo (each takes a
            # reassembly slot: RFC 7915 cannot translate ICMP fragment by fragment).
            def gen(i):
                s = fresh(i)
                if i % 3 < 2:
                    body = udp6(s, D, 7000 + i % 1000, a.port, b"F" * 1400)[:1232]
                    return [ip6(s, D, 44, frag6(17, 0, True, R.getrandbits(32), body))]
                echo = icmp6(s, D, 128, 0, struct.pack("!HH", i & 0xFFFF, 1) + b"E" * 2000)[:1232]
                return [ip6(s, D, 44, frag6(58, 0, True, R.getrandbits(32), echo))]

        table = {a.mode: gen}
    names = sorted(table)
    if a.list:
        print("\n".join(names))
        return 0

    src_mac = open("/sys/class/net/%s/address" % a.iface).read().strip()
    hdr = mac(a.dst_mac) + mac(src_mac) + struct.pack("!H", ethertype)
    s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
    s.bind((a.iface, 0))
    sent = 0
    i = 0
    t0 = time.monotonic()
    deadline = t0 + a.seconds
    interval = 1.0 / a.rate if a.rate > 0 else 0
    nxt = t0
    while sent < a.count and time.monotonic() < deadline:
        for pkt in table[names[i % len(names)]](i // len(names)):
            try:
                s.send(hdr + pkt)
                sent += 1
            except OSError as e:
                print("send: %s" % e, file=sys.stderr)
        i += 1
        nxt += interval
        d = nxt - time.monotonic()
        if d > 0:
            time.sleep(d)
    dt = time.monotonic() - t0
    print("sent %d packets (%d kinds) in %.1f s: %d pps" % (sent, len(names), dt, sent / dt if dt > 0 else 0))
    return 0


if __name__ == "__main__":
    sys.exit(main())
