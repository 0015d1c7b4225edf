"""Drives the server's TLS port with the real pylichat client (PyPI
pylichat 1.4, `connect(..., ssl=True, ssl_options=...)`).

Usage: interop_pylichat_tls.py HOST TLS_PORT TCP_PORT CAFILE

Alice connects over TLS, trusting only the certificate in CAFILE (pylichat
hands `ssl_options` to `ssl.create_default_context`, and checks the name
HOST against the certificate); bob connects over plain TCP. Alice creates a
channel, bob joins it, and they exchange a message each way. A second TLS
client that trusts no such certificate must fail its handshake. Exits 0 on
success; on failure prints what was missing and exits 1.
"""

import ssl
import sys
import time

from pylichat import Client
from pylichat.client import ConnectionFailed
from pylichat.update import Create, Join, Message

TIMEOUT = 5.0


def pump(client, wanted, what):
    """Receives and handles updates until wanted(update) is true."""
    deadline = time.time() + TIMEOUT
    seen = []
    while time.time() < deadline:
        for u in client.recv(0.1):
            client.handle(u)
            seen.append(type(u).__name__)
            if wanted(u):
                return u
    sys.exit(f"{client.username}: no {what} within {TIMEOUT} s; saw {seen}")


def main():
    host, tls_port, tcp_port, cafile = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]

    # With only the system's roots the client must refuse the certificate.
    stranger = Client("stranger")
    try:
        stranger.connect(host, tls_port, ssl=True)
        sys.exit("a client that trusts no such certificate completed the handshake")
    except ssl.SSLCertVerificationError:
        pass

    alice = Client("alice")
    try:
        alice.connect(host, tls_port, ssl=True, ssl_options={"cafile": cafile})
    except ConnectionFailed as e:
        sys.exit(f"alice's connect over TLS failed: {e.update!r}")
    if not alice.connected:
        sys.exit("alice did not complete the Lichat handshake over TLS")
    if not isinstance(alice.socket, ssl.SSLSocket):
        sys.exit(f"alice's socket is not TLS: {alice.socket!r}")
    print(f"alice: {alice.socket.version()} {alice.socket.cipher()[0]}")
    bob = Client("bob")
    bob.connect(host, tcp_port)
    if not bob.connected:
        sys.exit("bob did not complete the handshake over TCP")

    alice.send(Create, channel="secure")
    pump(alice, lambda u: isinstance(u, Join) and u.channel == "secure", "join after create")
    bob.send(Join, channel="secure")
    pump(bob, lambda u: isinstance(u, Join) and u.channel == "secure", "own join")
    pump(alice, lambda u: isinstance(u, Join) and u["from"] == "bob", "bob's join")

    alice.send(Message, channel="secure", text="over tls")
    got = pump(bob, lambda u: isinstance(u, Message) and u.channel == "secure", "alice's message")
    if got.text != "over tls" or got["from"] != "alice":
        sys.exit(f"bob got the wrong message: {got!r}")

    bob.send(Message, channel="secure", text="over tcp")
    got = pump(alice, lambda u: isinstance(u, Message) and u["from"] == "bob", "bob's message")
    if got.text != "over tcp":
        sys.exit(f"alice got the wrong message: {got!r}")

    alice.disconnect()
    bob.disconnect()
    print("pylichat over TLS ok")


if __name__ == "__main__":
    main()
