#!/usr/bin/env python3
"""A tripwire on the services' default ports, for `make demo` under `make test`.

Listens on each given 127.0.0.1 port it can bind (a port already taken by something else is
skipped and named), logs every connection to --log and closes it at once. The demo exports
every setting before starting a service; a connection here means some service fell back to a
default (as issuer-api once did with the RPC URL) and the demo fails.
"""
import argparse
import selectors
import socket
import sys
import time


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--log", required=True)
    parser.add_argument("--ready", required=True, help="file written once listening")
    parser.add_argument("ports", nargs="+", type=int)
    args = parser.parse_args()

    sel = selectors.DefaultSelector()
    bound, taken = [], []
    for port in args.ports:
        s = socket.socket()
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            taken.append(port)
            s.close()
            continue
        s.listen(64)
        s.setblocking(False)
        sel.register(s, selectors.EVENT_READ, port)
        bound.append(port)
    with open(args.ready, "w") as f:
        f.write(f"listening on {bound}; already taken (skipped): {taken}\n")
    while True:
        for key, _ in sel.select():
            try:
                conn, peer = key.fileobj.accept()
            except OSError:
                continue
            conn.close()
            with open(args.log, "a") as f:
                f.write(f"{time.strftime('%H:%M:%S')} connection to default port {key.data} from {peer}\n")


if __name__ == "__main__":
    sys.exit(main())
