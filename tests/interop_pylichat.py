"""Drives the server with the real pylichat client (PyPI pylichat 1.4).

Usage: interop_pylichat.py HOST PORT

Two clients connect, one creates a channel, the other joins it, and they
exchange a message each way. Then the second user, registered meanwhile,
opens a second connection: the server replays its joins, and pylichat asks
by itself for the channel's info (shirakumo-channel-info) and backfill
(shirakumo-backfill) and must get the topic and the messages it missed on
that connection. Exits 0 on success; on failure prints what was missing and
exits 1.
"""

import sys
import time

from pylichat import Client
from pylichat.symbol import kw
from pylichat.update import Backfill, Create, Join, Message, Register, SetChannelInfo

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
    host, port = sys.argv[1], int(sys.argv[2])
    alice = Client("alice")
    bob = Client("bob")
    alice.connect(host, port)
    bob.connect(host, port)
    if not (alice.connected and bob.connected):
        sys.exit("a client did not complete the handshake")

    alice.send(Create, channel="interop")
    pump(alice, lambda u: isinstance(u, Join) and u.channel == "interop", "join after create")

    bob.send(Join, channel="interop")
    pump(bob, lambda u: isinstance(u, Join) and u.channel == "interop", "own join")
    pump(alice, lambda u: isinstance(u, Join) and u["from"] == "bob", "bob's join")

    alice.send(Message, channel="interop", text="hello from alice")
    got = pump(bob, lambda u: isinstance(u, Message) and u.channel == "interop", "alice's message")
    if got.text != "hello from alice" or got["from"] != "alice":
        sys.exit(f"bob got the wrong message: {got!r}")

    bob.send(Message, channel="interop", text="hi alice")
    got = pump(alice, lambda u: isinstance(u, Message) and u["from"] == "bob", "bob's message")
    if got.text != "hi alice":
        sys.exit(f"alice got the wrong message: {got!r}")

    if "bob" not in alice.channels["interop"].users:
        sys.exit(f"alice's channel users lack bob: {list(alice.channels['interop'].users)}")

    # A second connection of bob's asks for backfill and channel info itself.
    for ext in ("shirakumo-backfill", "shirakumo-channel-info"):
        if not bob.is_supported(ext):
            sys.exit(f"the server does not advertise {ext}: {bob.extensions}")
    bob.send(Register, password="bobs secret")
    pump(bob, lambda u: isinstance(u, Register), "register reply")
    alice.send(SetChannelInfo, channel="interop", key=kw("topic"), text="interop testing")
    pump(bob, lambda u: isinstance(u, SetChannelInfo), "the new topic")
    alice.send(Message, channel="interop", text="while bob was away")
    pump(bob, lambda u: isinstance(u, Message) and u.text == "while bob was away", "alice's news")

    bob2 = Client("bob", "bobs secret")
    backfilled = []
    bob2.add_handler(Message, lambda c, u: backfilled.append(u.text))
    bob2.connect(host, port)
    if not bob2.connected:
        sys.exit("bob's second connection did not complete the handshake")
    pump(bob2, lambda u: isinstance(u, Backfill) and u.channel == "interop", "end of backfill")
    for wanted in ("hello from alice", "hi alice", "while bob was away"):
        if wanted not in backfilled:
            sys.exit(f"backfill lacks {wanted!r}: got {backfilled}")
    topic = bob2.channels["interop"][kw("topic")]
    if topic != "interop testing":
        sys.exit(f"bob's second connection has topic {topic!r}: {bob2.channels['interop'].info}")
    bob2.disconnect()

    alice.disconnect()
    bob.disconnect()
    print("pylichat interop ok")


if __name__ == "__main__":
    main()
