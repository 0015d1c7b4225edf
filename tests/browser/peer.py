"""The pylichat side of the browser test (PyPI pylichat 1.4, over TCP).

Usage: peer.py HOST PORT CHANNEL BROWSER_USER

Connects as "pylichat", creates CHANNEL and prints "ready" once it has
joined it. Then waits for BROWSER_USER to join, says "hello from pylichat",
and waits for the browser's answer "hello from the browser". Prints
"peer ok" and exits 0, or prints what was missing and exits 1.
"""

import sys
import time

from pylichat import Client
from pylichat.update import Create, Join, Message

TIMEOUT = 30.0


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
    sys.exit(f"no {what} within {TIMEOUT} s; saw {seen}")


def main():
    host, port, channel, browser = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
    me = Client("pylichat")
    me.connect(host, port)
    if not me.connected:
        sys.exit("the Lichat handshake did not complete")
    me.send(Create, channel=channel)
    pump(me, lambda u: isinstance(u, Join) and u.channel == channel, "join after create")
    print("ready", flush=True)
    pump(
        me,
        lambda u: isinstance(u, Join) and u["from"] == browser and u.channel == channel,
        "join of the browser to the channel",
    )
    me.send(Message, channel=channel, text="hello from pylichat")
    got = pump(me, lambda u: isinstance(u, Message) and u["from"] == browser, "the browser's answer")
    if got.text != "hello from the browser":
        sys.exit(f"the browser said {got.text!r}")
    me.disconnect()
    print("peer ok", flush=True)


if __name__ == "__main__":
    main()
