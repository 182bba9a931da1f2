#!/usr/bin/python3
"""Sends malformed frames to Norman from a test namespace, made by scapy, and prints what it sent as JSON:
one object per family, with how many frames and the drop reason Norman must count for each of them.

    hostile_frames.py IFACE NORMAN_MAC NORMAN_IP PEER_IP NORMAN_IP6 PEER_IP6 UDP_PORT [--jumbo] [--bad-udp-checksums] [--short-vlan]

--jumbo: the interface's MTU lets 9000-byte frames out (a TAP); --bad-udp-checksums: Norman checks the UDP
checksum of what arrives on this interface (a veth marks raw frames as checked, as a kernel would trust them);
--short-vlan: frames cut inside their VLAN tag reach Norman (a receiving kernel drops them before a packet socket).
"""
import json
import sys

from scapy.all import ARP, IP, UDP, Dot1Q, Ether, IPv6, Raw, conf, get_if_hwaddr, sendp
from scapy.layers.inet6 import ICMPv6ND_NS, ICMPv6NDOptSrcLLAddr, IPv6ExtHdrDestOpt, IPv6ExtHdrFragment

iface, norman_mac, norman_ip, peer_ip, norman_ip6, peer_ip6, port = sys.argv[1:8]
port = int(port)
options = set(sys.argv[8:])
conf.verb = 0
peer_mac = get_if_hwaddr(iface)


def eth(type_=None):
    return Ether(src=peer_mac, dst=norman_mac) if type_ is None else Ether(src=peer_mac, dst=norman_mac, type=type_)


def udp4(payload=b"x" * 64, **ip):
    return eth() / IP(src=peer_ip, dst=norman_ip, **ip) / UDP(sport=40000, dport=port) / Raw(payload)


def raw_ip(header, rest=b""):
    """An IPv4 header given as bytes (any field may be wrong), behind our Ethernet header."""
    return bytes(eth(0x0800)) + header + rest


def ip_header(version=4, ihl=5, total=48, checksum=None, proto=17):
    header = bytearray(bytes(IP(src=peer_ip, dst=norman_ip, proto=proto, len=total)))[:20]
    header[0] = (version << 4) | ihl
    if checksum is not None:
        header[10:12] = checksum.to_bytes(2, "big")
    return bytes(header)


def vlan_stack(tags):
    """A UDP datagram behind a stack of 802.1Q tags: each tag's TCI, then the type of what follows."""
    stack = b"".join((1).to_bytes(2, "big") + (0x8100 if i < tags - 1 else 0x0800).to_bytes(2, "big") for i in range(tags))
    return bytes(eth(0x8100)) + stack + good[14:]


def ipv6_chain(headers):
    """A UDP datagram to our IPv6 address behind a chain of destination-options headers."""
    chain = IPv6ExtHdrDestOpt()
    for _ in range(headers - 1):
        chain = chain / IPv6ExtHdrDestOpt()
    return bytes(eth() / IPv6(src=peer_ip6, dst=norman_ip6) / chain / UDP(sport=1, dport=port))


def wrong(correct):
    """Sixteen checksums that are not the right one (one bit flipped each), none of them 0 ("no checksum")."""
    return [c for c in (correct ^ (1 << bit) for bit in range(16)) if c != 0]


good = bytes(udp4())
good_ip_checksum = IP(good[14:]).chksum
good_udp_checksum = IP(bytes(IP(src=peer_ip, dst=norman_ip) / UDP(sport=2, dport=port) / Raw(b"c" * 8)))[UDP].chksum
udp_bytes = bytes(UDP(sport=40000, dport=port) / Raw(b"y" * 16))
good6 = bytes(eth() / IPv6(src=peer_ip6, dst=norman_ip6) / UDP(sport=40000, dport=port) / Raw(b"6" * 16))
good_udp6_checksum = IPv6(good6[14:])[UDP].chksum
families = {
    # Cut inside the IPv4 header, at every byte: the header is incomplete.
    "ip cut in its header": ("truncated_ip", [good[:14 + k] for k in range(0, 20)]),
    # Cut at every byte between the IPv4 header's end and the frame's: shorter than the header's total length says.
    "ip cut short of its total length": ("bad_ip_total_length", [good[:n] for n in range(34, len(good))]),
    # A consistent IPv4 header around a UDP header cut at every byte.
    "udp header cut": ("truncated_transport",
                       [bytes(eth() / IP(src=peer_ip, dst=norman_ip, proto=17) / Raw(udp_bytes[:k])) for k in range(0, 8)]),
    "bad ihl": ("bad_ip_header_length", [raw_ip(ip_header(ihl=ihl), b"\0" * 40) for ihl in range(0, 5)] + [raw_ip(ip_header(ihl=15), b"\0" * 8)]),
    "total length below the header or past the frame": ("bad_ip_total_length",
                       [raw_ip(ip_header(total=t), b"\0" * 28) for t in list(range(0, 20)) + [200, 1500, 65535]]),
    "bad ip version": ("bad_ip_version", [raw_ip(ip_header(version=v), b"\0" * 28) for v in (0, 1, 5, 6, 7, 15)]),
    "bad ip checksum": ("bad_ip_checksum", [bytes(udp4(chksum=c)) for c in wrong(good_ip_checksum)]),
    "bad udp length": ("bad_udp_length", [bytes(eth() / IP(src=peer_ip, dst=norman_ip) / UDP(sport=1, dport=port, len=n) / Raw(b"z" * 8))
                                           for n in list(range(0, 8)) + [17, 200, 65535]]),
    # Norman carries no fragments: tiny ones, overlapping ones, all are dropped and counted.
    "tiny and overlapping fragments": ("ip_fragment",
                       [bytes(eth() / IP(src=peer_ip, dst=norman_ip, id=7, flags="MF", frag=0, proto=17) / Raw(udp_bytes[:8]))]
                       + [bytes(eth() / IP(src=peer_ip, dst=norman_ip, id=9, flags="MF" if i < 3 else 0, frag=i, proto=17) / Raw(b"o" * 24))
                          for i in range(0, 4)]),
    "unknown ethertypes": ("unknown_ether_type", [bytes(eth(t) / Raw(b"\0" * 46)) for t in (0x0000, 0x0042, 0x05DC, 0x1234, 0x88CC, 0x9000, 0xFFFF)]),
    "vlan stacks of 3 to 6 tags": ("too_many_vlan_tags", [vlan_stack(n) for n in range(3, 7)]),
    "ipv6 chain of 9 to 12 extension headers": ("too_many_ipv6_extension_headers", [ipv6_chain(n) for n in range(9, 13)]),
    "ipv6 extension header longer than the packet": ("truncated_ipv6_extension_header",
                       [bytes(eth() / IPv6(src=peer_ip6, dst=norman_ip6, nh=0, plen=8) / Raw(bytes([17, n]) + b"\0" * 6)) for n in range(1, 5)]),
    # IPv6, now that Norman carries it: the same cuts, lengths, versions and fragments as IPv4's.
    "ipv6 cut in its header": ("truncated_ip", [good6[:14 + k] for k in range(0, 40)]),
    "ipv6 payload length past the frame": ("bad_ip_total_length",
                       [bytes(eth() / IPv6(src=peer_ip6, dst=norman_ip6, plen=n) / UDP(sport=1, dport=port) / Raw(b"q" * 8)) for n in (17, 100, 1500, 65535)]),
    "ipv6 with another version": ("bad_ip_version", [bytes(eth(0x86DD)) + bytes([v << 4]) + good6[15:] for v in (0, 4, 5, 15)]),
    "udp6 header cut": ("truncated_transport",
                       [bytes(eth() / IPv6(src=peer_ip6, dst=norman_ip6, nh=17) / Raw(udp_bytes[:k])) for k in range(0, 8)]),
    "bad udp6 length": ("bad_udp_length", [bytes(eth() / IPv6(src=peer_ip6, dst=norman_ip6) / UDP(sport=1, dport=port, len=n) / Raw(b"z" * 8))
                                            for n in list(range(0, 8)) + [17, 200, 65535]]),
    "ipv6 fragments": ("ip_fragment",
                       [bytes(eth() / IPv6(src=peer_ip6, dst=norman_ip6) / IPv6ExtHdrFragment(id=7, m=1, offset=0) / Raw(udp_bytes[:8]))]
                       + [bytes(eth() / IPv6(src=peer_ip6, dst=norman_ip6) / IPv6ExtHdrFragment(id=9, m=1 if i < 3 else 0, offset=i, nh=17) / Raw(b"o" * 24))
                          for i in range(0, 4)]),
    # A neighbour solicitation for our address that crossed a router (hop limit below 255): not believed, not answered.
    "neighbour solicitation from off the link": ("malformed_neighbour_discovery",
                       [bytes(eth() / IPv6(src=peer_ip6, dst=norman_ip6, hlim=h) / ICMPv6ND_NS(tgt=norman_ip6) / ICMPv6NDOptSrcLLAddr(lladdr="02:66:66:66:66:66"))
                        for h in (1, 64, 254)]),
    "arp cut at every byte": ("truncated_arp", [bytes(eth(0x0806)) + bytes(ARP(hwsrc=peer_mac, psrc=peer_ip, pdst=norman_ip))[:k] for k in range(0, 28)]),
    "arp of odd sizes and kinds": ("malformed_arp",
                       [bytes(eth(0x0806)) + bytes(ARP(hwtype=ht, ptype=pt, hwlen=hl, plen=pl, hwsrc=peer_mac, psrc=peer_ip, pdst=norman_ip)).ljust(28, b"\0")[:28]
                        for ht, pt, hl, pl in [(6, 0x0800, 6, 4), (1, 0x86DD, 6, 4), (1, 0x0800, 8, 4), (1, 0x0800, 6, 16), (1, 0x0800, 0, 0)]]),
}
if "--bad-udp-checksums" in options:
    families["bad udp checksum"] = ("bad_udp_checksum", [bytes(eth() / IP(src=peer_ip, dst=norman_ip) / UDP(sport=2, dport=port, chksum=c) / Raw(b"c" * 8))
                                                         for c in wrong(good_udp_checksum)])
    # Over IPv6 a UDP checksum is required: 0 ("none", allowed over IPv4) is as wrong as a flipped bit.
    families["bad udp6 checksum"] = ("bad_udp_checksum", [bytes(eth() / IPv6(src=peer_ip6, dst=norman_ip6) / UDP(sport=40000, dport=port, chksum=c) / Raw(b"6" * 16))
                                                          for c in wrong(good_udp6_checksum) + [0]])
if "--short-vlan" in options:
    families["vlan tag cut"] = ("truncated_vlan", [bytes(eth(0x8100)) + b"\0" * k for k in range(0, 4)])
if "--jumbo" in options:
    families["jumbo frames"] = ("frame_too_long", [bytes(udp4(b"j" * n)) for n in (1600, 4000, 8000, 8900)])

for name, (reason, frames) in families.items():
    sendp([Raw(f) for f in frames], iface=iface)
    print(json.dumps({"family": name, "reason": reason, "frames": len(frames)}))
