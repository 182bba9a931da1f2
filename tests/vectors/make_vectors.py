#!/usr/bin/python3
"""Writes packet test vectors made by scapy, a tool independent of Norman, with the fields scapy decodes.

Run from the repository root:  /usr/bin/python3 tests/vectors/make_vectors.py
The output, tests/vectors/packets.json, is committed; the tests read it and need no scapy.
"""
import json
from scapy.all import Ether, Dot1Q, ARP, IP, IPv6, UDP, TCP, ICMP, ICMPv6EchoRequest, ICMPv6EchoReply, Raw
from scapy.layers.inet6 import IPv6ExtHdrHopByHop, IPv6ExtHdrRouting, IPv6ExtHdrFragment, IPv6ExtHdrDestOpt

MAC_A, MAC_B = "02:00:00:00:00:01", "02:00:00:00:00:02"
V4_A, V4_B = "198.18.0.1", "198.18.0.2"
V6_A, V6_B = "2001:db8::1", "2001:db8::2"


def vector(name, packet, expect):
    raw = bytes(packet)
    return {"name": name, "hex": raw.hex(), "expect": expect}


def udp4(payload=b"hello", **ip):
    return Ether(src=MAC_A, dst=MAC_B) / IP(src=V4_A, dst=V4_B, **ip) / UDP(sport=40000, dport=5000) / Raw(payload)


vectors = [
    vector("udp4", udp4(), {"kind": "Udp", "ipVersion": 4, "protocol": 17, "src": V4_A, "dst": V4_B,
                           "sport": 40000, "dport": 5000, "payload": b"hello".hex()}),
    vector("udp4-empty-payload", udp4(b""), {"kind": "Udp", "ipVersion": 4, "sport": 40000, "dport": 5000, "payload": ""}),
    vector("udp4-options", Ether(src=MAC_A, dst=MAC_B) / IP(src=V4_A, dst=V4_B, options=b"\x01\x01\x01\x00") / UDP(sport=1, dport=2) / Raw(b"opt"),
           {"kind": "Udp", "ipVersion": 4, "sport": 1, "dport": 2, "payload": b"opt".hex()}),
    vector("udp4-first-fragment", udp4(b"x" * 64, flags="MF"), {"kind": "Udp", "ipVersion": 4, "fragment": True, "laterFragment": False}),
    vector("udp4-later-fragment", udp4(b"x" * 64, frag=8), {"kind": "OtherIp", "ipVersion": 4, "fragment": True, "laterFragment": True}),
    vector("vlan-udp4", Ether(src=MAC_A, dst=MAC_B) / Dot1Q(vlan=42) / IP(src=V4_A, dst=V4_B) / UDP(sport=7, dport=8) / Raw(b"v"),
           {"kind": "Udp", "ipVersion": 4, "vlanCount": 1, "vlanId": 42, "sport": 7, "dport": 8}),
    vector("qinq-udp4", Ether(src=MAC_A, dst=MAC_B, type=0x88a8) / Dot1Q(vlan=100) / Dot1Q(vlan=200) / IP(src=V4_A, dst=V4_B) / UDP(sport=7, dport=8),
           {"kind": "Udp", "vlanCount": 2, "vlanId": 100}),
    vector("tcp4-syn", Ether(src=MAC_A, dst=MAC_B) / IP(src=V4_A, dst=V4_B) / TCP(sport=50000, dport=80, flags="S", options=[("MSS", 1460)]),
           {"kind": "Tcp", "ipVersion": 4, "protocol": 6, "sport": 50000, "dport": 80, "tcpFlags": 0x02}),
    vector("tcp4-psh-ack", Ether(src=MAC_A, dst=MAC_B) / IP(src=V4_A, dst=V4_B) / TCP(sport=80, dport=50000, flags="PA") / Raw(b"GET /"),
           {"kind": "Tcp", "sport": 80, "dport": 50000, "tcpFlags": 0x18, "payload": b"GET /".hex()}),
    vector("icmp4-echo", Ether(src=MAC_A, dst=MAC_B) / IP(src=V4_A, dst=V4_B) / ICMP(type=8, id=1, seq=2) / Raw(b"ping"),
           {"kind": "Icmp", "ipVersion": 4, "icmpType": 8, "icmpCode": 0}),
    vector("arp-request", Ether(src=MAC_A, dst="ff:ff:ff:ff:ff:ff") / ARP(op=1, hwsrc=MAC_A, psrc=V4_A, pdst=V4_B),
           {"kind": "Arp", "src": V4_A, "dst": V4_B}),
    vector("udp6", Ether(src=MAC_A, dst=MAC_B) / IPv6(src=V6_A, dst=V6_B) / UDP(sport=40000, dport=5000) / Raw(b"six"),
           {"kind": "Udp", "ipVersion": 6, "protocol": 17, "src": V6_A, "dst": V6_B, "sport": 40000, "dport": 5000, "payload": b"six".hex()}),
    vector("udp6-extension-chain", Ether(src=MAC_A, dst=MAC_B) / IPv6(src=V6_A, dst=V6_B) / IPv6ExtHdrHopByHop() / IPv6ExtHdrDestOpt()
           / IPv6ExtHdrRouting(addresses=[]) / UDP(sport=1, dport=2) / Raw(b"ext"),
           {"kind": "Udp", "ipVersion": 6, "protocol": 17, "sport": 1, "dport": 2, "payload": b"ext".hex()}),
    vector("udp6-fragment-first", Ether(src=MAC_A, dst=MAC_B) / IPv6(src=V6_A, dst=V6_B) / IPv6ExtHdrFragment(offset=0, m=1, id=7) / UDP(sport=1, dport=2) / Raw(b"f"),
           {"kind": "Udp", "ipVersion": 6, "fragment": True, "laterFragment": False}),
    vector("udp6-fragment-later", Ether(src=MAC_A, dst=MAC_B) / IPv6(src=V6_A, dst=V6_B) / IPv6ExtHdrFragment(offset=2, m=0, id=7, nh=17) / Raw(b"later"),
           {"kind": "OtherIp", "ipVersion": 6, "fragment": True, "laterFragment": True}),
    vector("tcp6", Ether(src=MAC_A, dst=MAC_B) / IPv6(src=V6_A, dst=V6_B) / TCP(sport=443, dport=50000, flags="SA"),
           {"kind": "Tcp", "ipVersion": 6, "sport": 443, "dport": 50000, "tcpFlags": 0x12}),
    vector("icmp6-echo", Ether(src=MAC_A, dst=MAC_B) / IPv6(src=V6_A, dst=V6_B) / ICMPv6EchoRequest(id=1, seq=1, data=b"ping6"),
           {"kind": "IcmpV6", "ipVersion": 6, "icmpType": 128}),
    vector("icmp6-echo-reply", Ether(src=MAC_A, dst=MAC_B) / IPv6(src=V6_A, dst=V6_B) / ICMPv6EchoReply(id=1, seq=1),
           {"kind": "IcmpV6", "ipVersion": 6, "icmpType": 129}),
    # Frames padded to Ethernet's minimum: the parser must stop at the IP length, not the frame's.
    vector("udp4-padded", Ether(src=MAC_A, dst=MAC_B) / IP(src=V4_A, dst=V4_B) / UDP(sport=9, dport=9) / Raw(b"a") / Raw(b"\x00" * 17),
           {"kind": "Udp", "ipVersion": 4, "payload": b"a".hex() + "00" * 17}),
]

# Malformed frames, each with the error the parser must report.
good = bytes(udp4())
bad_ihl = bytearray(good); bad_ihl[14] = 0x44
bad_total = bytearray(good); bad_total[16:18] = (4000).to_bytes(2, "big")
bad_udp_len = bytes(Ether(src=MAC_A, dst=MAC_B) / IP(src=V4_A, dst=V4_B) / UDP(sport=1, dport=2, len=200) / Raw(b"x"))
bad_ip_csum = bytes(Ether(src=MAC_A, dst=MAC_B) / IP(src=V4_A, dst=V4_B, chksum=0x1234) / UDP(sport=1, dport=2))
bad_tcp_off = bytes(Ether(src=MAC_A, dst=MAC_B) / IP(src=V4_A, dst=V4_B) / TCP(sport=1, dport=2, dataofs=15))
malformed = [
    {"name": "truncated-ethernet", "hex": good[:10].hex(), "error": "TruncatedEthernet"},
    {"name": "truncated-ip", "hex": good[:20].hex(), "error": "TruncatedIp"},
    {"name": "bad-ihl", "hex": bytes(bad_ihl).hex(), "error": "BadIpHeaderLength"},
    {"name": "bad-total-length", "hex": bytes(bad_total).hex(), "error": "BadIpTotalLength"},
    {"name": "bad-udp-length", "hex": bad_udp_len.hex(), "error": "BadUdpLength"},
    {"name": "bad-ip-checksum", "hex": bad_ip_csum.hex(), "error": "BadIpChecksum"},
    {"name": "bad-tcp-offset", "hex": bad_tcp_off.hex(), "error": "BadTcpHeaderLength"},
    {"name": "unknown-ethertype", "hex": bytes(Ether(src=MAC_A, dst=MAC_B, type=0x88b5) / Raw(b"x" * 46)).hex(), "error": "UnknownEtherType"},
    {"name": "truncated-arp", "hex": bytes(Ether(src=MAC_A, dst=MAC_B, type=0x0806) / Raw(b"\x00\x01\x08\x00")).hex(), "error": "TruncatedArp"},
    {"name": "three-vlan-tags", "hex": bytes(Ether(src=MAC_A, dst=MAC_B) / Dot1Q(vlan=1) / Dot1Q(vlan=2) / Dot1Q(vlan=3) / IP() / UDP()).hex(), "error": "TooManyVlanTags"},
]

with open("tests/vectors/packets.json", "w") as out:
    json.dump({"generator": "scapy", "vectors": vectors, "malformed": malformed}, out, indent=1)
print(f"wrote {len(vectors)} vectors and {len(malformed)} malformed frames to tests/vectors/packets.json")
