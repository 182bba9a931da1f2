#!/usr/bin/python3
"""The same ruleset and the same frames for nftables and for Norman, so that their verdicts can be compared.

    nft_differential.py rules SEED COUNT          print COUNT rules, one a line, in nft's words (which Norman reads too)
    nft_differential.py replay SEED IFACE MAC IP  send the frame list (seeded) from IFACE to MAC/IP, one every 2 ms,
                                                  and print "delivered N N …": the frames whose UDP echo came back
    nft_differential.py echo PORT                 a UDP echo server (the kernel side's application), until killed

Every frame is well formed (good checksums and lengths): what differs between the two is the filter, not the parser.
The rules use only what Norman and nft share: addresses, sets, protocols, ports, TCP flags (any, exact, masked),
ip length, ip dscp, ICMP types, ct state, negation, counter, accept and drop; limits are left out (they depend on
the pace of the replay, not the meaning of the words).
"""
import random
import socket
import sys
import time

UDP_PORT = 7000
SOURCE = '198.18.1.2'


# Each match with the field it reads and the protocol it implies: a rule takes one match a field and at most one
# protocol, as both nft and Norman would have it (Norman refuses a rule that is both udp and tcp).
MATCHES = [
    ('saddr', None, 'ip saddr 198.18.1.0/24'), ('saddr', None, 'ip saddr != 198.18.1.2'),
    ('saddr', None, 'ip saddr { 198.18.1.2, 10.0.0.1 }'), ('daddr', None, 'ip daddr 198.18.1.1'),
    ('dport', 'udp', 'udp dport 7000'), ('dport', 'udp', 'udp dport { 7000, 9999 }'), ('dport', 'udp', 'udp dport 1-1024'),
    ('sport', 'udp', 'udp sport != 40000'), ('sport', 'udp', 'udp sport 40000-40004'),
    ('dport', 'tcp', 'tcp dport 80'), ('dport', 'tcp', 'tcp dport != 80'), ('flags', 'tcp', 'tcp flags syn'),
    ('flags', 'tcp', 'tcp flags fin,rst'), ('flags', 'tcp', 'tcp flags == syn'), ('flags', 'tcp', 'tcp flags == ack'),
    ('flags', 'tcp', 'tcp flags & (syn|ack) == syn|ack'), ('flags', 'tcp', 'tcp flags syn / syn,ack'), ('flags', 'tcp', 'tcp flags != ack'),
    ('length', None, 'ip length 100-300'), ('length', None, 'ip length 500-65535'), ('length', None, 'ip length != 28-60'),
    ('dscp', None, 'ip dscp ef'), ('dscp', None, 'ip dscp { af41, cs1 }'), ('dscp', None, 'ip dscp != be'),
    ('type', 'icmp', 'icmp type echo-request'), ('type', 'icmp', 'icmp type { redirect, router-advertisement }'),
    ('type', 'icmp', 'icmp type != echo-request'),
    ('ct', None, 'ct state new'), ('ct', None, 'ct state established,related'), ('ct', None, 'ct state invalid'),
    ('ct', None, 'ct state != established'), ('ct', None, 'ct state { new, invalid }'),
    ('l4', 'l4', 'meta l4proto udp'), ('l4', 'l4', 'meta l4proto { tcp, icmp }'), ('l4', 'l4', 'meta l4proto != udp'),
]


def rules(seed, count):
    rng = random.Random(seed)
    lines = []
    while len(lines) < count:
        chosen = rng.sample(MATCHES, rng.choice([1, 1, 2]))
        if len({field for field, _, _ in chosen}) < len(chosen) or len({p for _, p, _ in chosen if p}) > 1:
            continue
        verdict = rng.choices(['counter', 'counter accept', 'counter drop'], weights=[6, 2, 2])[0]
        lines.append(' '.join(text for _, _, text in chosen) + ' ' + verdict)
    return lines


def frames(seed, mac, ip):
    from scapy.all import ICMP, IP, TCP, UDP, Ether, Raw
    rng = random.Random(seed * 7919)
    out = []
    for index in range(600):
        kind = rng.random()
        base = Ether(dst=mac) / IP(src=SOURCE, dst=ip, tos=rng.choice([0, 0, 10 << 2, 46 << 2, 34 << 2, 8 << 2]))
        if kind < 0.55:
            payload = f'id:{index:05d}:'.encode() + b'x' * rng.randint(0, 560)
            out.append((index, base / UDP(sport=rng.randint(40000, 40009), dport=UDP_PORT) / Raw(payload)))
        elif kind < 0.62:
            out.append((None, base / UDP(sport=rng.randint(40000, 40009), dport=9999) / Raw(b'closed')))
        elif kind < 0.85:
            flags = rng.choice(['S', 'S', 'SA', 'A', 'PA', 'F', 'FA', 'R', 'RA', 'SF', '', 'FPU'])
            # A port of its own for each stray, so that no two of them meet in a connection either side tracks.
            out.append((None, base / TCP(sport=30000 + index, dport=rng.choice([80, UDP_PORT]), flags=flags,
                                         seq=rng.randint(0, 2**32 - 1), ack=rng.randint(0, 2**32 - 1) if 'A' in flags else 0)))
        else:
            # No timestamp requests: Linux answers them, Norman's host does not (a host duty, not the filter's meaning).
            icmp_type = rng.choice([8, 8, 8, 0, 14, 5, 9, 10])
            out.append((None, base / ICMP(type=icmp_type, id=rng.randint(1, 3), seq=index) / Raw(b'ping')))
    return out


def replay(seed, interface, mac, ip):
    from scapy.all import UDP, AsyncSniffer, Raw, conf, sendp
    conf.verb = 0
    delivered = set()

    def seen(packet):
        if UDP in packet and packet[UDP].sport == UDP_PORT and Raw in packet:
            text = bytes(packet[Raw].load)
            if text.startswith(b'id:'):
                delivered.add(int(text[3:8]))

    import threading
    # The echoes come back to ports 40000-40009: held here, so that this side's kernel sends no port unreachable back
    # (which each target would see as one more packet, related, at the pace of this kernel's own ICMP rate limit).
    held = []
    for port in range(40000, 40010):
        holder = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        holder.bind((SOURCE, port))
        held.append(holder)
    listening = threading.Event()
    sniffer = AsyncSniffer(iface=interface, filter=f'udp and src port {UDP_PORT}', prn=seen, store=False, started_callback=listening.set)
    sniffer.start()
    listening.wait(10)
    for _, frame in frames(seed, mac, ip):
        sendp(frame, iface=interface)
        time.sleep(0.002)
    time.sleep(1.5)  # the last echoes' way back
    sniffer.stop()
    print('delivered ' + ' '.join(str(i) for i in sorted(delivered)), flush=True)


def echo(port):
    server = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    server.bind(('0.0.0.0', port))
    print('echoing', flush=True)
    while True:
        data, peer = server.recvfrom(65536)
        server.sendto(data, peer)


if __name__ == '__main__':
    mode = sys.argv[1]
    if mode == 'rules':
        print('\n'.join(rules(int(sys.argv[2]), int(sys.argv[3]))))
    elif mode == 'replay':
        replay(int(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5])
    elif mode == 'echo':
        echo(int(sys.argv[2]))
    else:
        sys.exit(f'unknown mode {mode}')
