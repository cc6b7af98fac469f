#!/usr/bin/env python3
"""Test traffic for the namespace tests (AF_PACKET, run inside a namespace).

  pkt.py send IFACE [COUNT]      frames as hex lines on stdin, each sent COUNT times
  pkt.py seq IFACE COUNT PPS      the hex frame on stdin, COUNT times, paced at
                                 PPS, with a 4-byte sequence number in its last bytes
  pkt.py capture IFACE SECONDS   prints every received frame as a hex line
                                 (802.1Q tags re-inserted from PACKET_AUXDATA)
"""
import socket, struct, sys, time

SOL_PACKET, PACKET_AUXDATA = 263, 8


def send(ifname, count):
    s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
    s.bind((ifname, 0))
    frames = [bytes.fromhex(l.strip()) for l in sys.stdin if l.strip()]
    for _ in range(count):
        for f in frames:
            s.send(f)
    print(f"sent {len(frames) * count}", flush=True)


def seq(ifname, count, pps):
    s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
    s.bind((ifname, 0))
    base = bytes.fromhex(sys.stdin.readline().strip())[:-4]
    t0 = time.time()
    for i in range(count):
        s.send(base + struct.pack("!I", i))
        if i % 64 == 63:
            ahead = t0 + (i + 1) / pps - time.time()
            if ahead > 0:
                time.sleep(ahead)
    print(f"sent {count}", flush=True)


def capture(ifname, secs):
    s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(0x0003))
    s.bind((ifname, 0))
    s.setsockopt(SOL_PACKET, PACKET_AUXDATA, 1)
    # Room for bursts while this process is descheduled (a loaded 2-core
    # runner): a full buffer drops frames the relay did deliver.
    try:
        s.setsockopt(socket.SOL_SOCKET, 33, 32 << 20)  # SO_RCVBUFFORCE (root)
    except OSError:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 32 << 20)
    s.settimeout(0.1)
    print("ready", flush=True)
    t0 = time.time()
    while time.time() - t0 < secs:
        try:
            f, anc, _, addr = s.recvmsg(65536, socket.CMSG_SPACE(20))
        except socket.timeout:
            continue
        if addr[2] == socket.PACKET_OUTGOING:
            continue
        for lvl, typ, d in anc:
            if lvl == SOL_PACKET and typ == PACKET_AUXDATA:
                st, _, _, _, _, tci, tpid = struct.unpack("IIIHHHH", d[:20])
                if st & (1 << 4):
                    f = f[:12] + struct.pack("!HH", tpid or 0x8100, tci) + f[12:]
        print(f.hex(), flush=True)


if __name__ == "__main__":
    if sys.argv[1] == "send":
        send(sys.argv[2], int(sys.argv[3]) if len(sys.argv) > 3 else 1)
    elif sys.argv[1] == "seq":
        seq(sys.argv[2], int(sys.argv[3]), float(sys.argv[4]))
    else:
        capture(sys.argv[2], float(sys.argv[3]))
