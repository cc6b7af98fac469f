#!/usr/bin/env python3
"""Writes a pcap of 64-byte test frames (60 bytes + FCS on the wire) for
dpdk-testpmd's net_pcap generator:
  mkpcap.py OUT.pcap mpls DST_MAC [N]   label 16001, TTL 64, inner IPv4/UDP
  mkpcap.py OUT.pcap ipv4 DST_MAC [N]   IPv4/UDP to 10.99.1.1 (kernel forwarding)
N frames with distinct UDP source ports (flows)."""
import struct, sys

out, kind, dst = sys.argv[1], sys.argv[2], bytes.fromhex(sys.argv[3].replace(":", ""))
n = int(sys.argv[4]) if len(sys.argv) > 4 else 64
src = bytes.fromhex("026f00000001")


def csum(h):
    s = sum(struct.unpack("!10H", h))
    while s > 0xFFFF:
        s = (s & 0xFFFF) + (s >> 16)
    return (~s) & 0xFFFF


def ipv4_udp(sport, total):
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, total, 0, 0x4000, 64, 17, 0,
                     bytes([10, 99, 0, 1]), bytes([10, 99, 1, 1]))
    ip = ip[:10] + struct.pack("!H", csum(ip)) + ip[12:]
    udp = struct.pack("!HHHH", sport, 5001, total - 20, 0)
    return ip + udp + bytes(total - 28)


frames = []
for i in range(n):
    if kind == "mpls":
        lse = struct.pack("!I", (16001 << 12) | (1 << 8) | 64)
        f = dst + src + b"\x88\x47" + lse + ipv4_udp(1000 + i, 60 - 18)
    else:
        f = dst + src + b"\x08\x00" + ipv4_udp(1000 + i, 60 - 14)
    assert len(f) == 60
    frames.append(f)

with open(out, "wb") as fh:
    fh.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1))
    for f in frames:
        fh.write(struct.pack("<IIII", 0, 0, len(f), len(f)) + f)
