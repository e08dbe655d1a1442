#!/usr/bin/python3
"""A real SMTP server for flashotp's email tests: aiosmtpd (Debian python3-aiosmtpd) with STARTTLS or implicit
TLS and AUTH (PLAIN, LOGIN) accepting one user and password, writing each message it receives to a directory.

It listens on a socket it binds itself on 127.0.0.1:0 (aiosmtpd's Controller wants a fixed port and connects
to it to see it is up: a free port chosen then released could be taken meanwhile), prints "READY <port>" on
standard output once it accepts connections, and stops when its standard input closes (the test ended).

Each message is written as <n>.eml (the DATA as received) and then <n>.json (the envelope: mail_from,
rcpt_tos, the authenticated login), each renamed into place, so a reader that sees <n>.json sees both whole.

Recipients drive the answers: a local part starting with "reject" gets 550 at RCPT; one starting with
"tempfail" gets 451 on its first RCPT and 250 after.
"""
import argparse
import asyncio
import itertools
import json
import os
import signal
import socket
import ssl
import sys

from aiosmtpd.smtp import SMTP, AuthResult, LoginPassword


class Handler:
    def __init__(self, directory):
        self.directory = directory
        self.count = itertools.count(1)
        self.tempfailed = set()

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        local = address.split("@", 1)[0]
        if local.startswith("reject"):
            return "550 5.1.1 mailbox unavailable"
        if local.startswith("tempfail") and address not in self.tempfailed:
            self.tempfailed.add(address)
            return "451 4.3.0 try again later"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        n = next(self.count)
        login = session.auth_data.login.decode() if isinstance(session.auth_data, LoginPassword) else None
        self._write(f"{n}.eml", envelope.original_content)
        meta = {"mail_from": envelope.mail_from, "rcpt_tos": envelope.rcpt_tos, "login": login}
        self._write(f"{n}.json", json.dumps(meta).encode())
        return "250 2.0.0 queued as %d" % n

    def _write(self, name, data):
        tmp = os.path.join(self.directory, "." + name + ".tmp")
        with open(tmp, "wb") as f:
            f.write(data)
        os.rename(tmp, os.path.join(self.directory, name))


def authenticator(user, password):
    def check(server, session, envelope, mechanism, auth_data):
        ok = isinstance(auth_data, LoginPassword) and auth_data.login == user and auth_data.password == password
        return AuthResult(success=ok, handled=False, auth_data=auth_data if ok else None)
    return check


async def main():
    p = argparse.ArgumentParser()
    p.add_argument("--dir", required=True)
    p.add_argument("--cert")
    p.add_argument("--key")
    p.add_argument("--tls", choices=["starttls", "implicit", "none"], default="starttls")
    p.add_argument("--user", default="")
    p.add_argument("--password", default="")
    a = p.parse_args()

    ctx = None
    if a.tls != "none":
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ctx.load_cert_chain(a.cert, a.key)
    handler = Handler(a.dir)
    auth = a.user != ""

    def factory():
        return SMTP(
            handler,
            hostname="smtpd.test",
            tls_context=ctx if a.tls == "starttls" else None,
            require_starttls=a.tls == "starttls",
            authenticator=authenticator(a.user.encode(), a.password.encode()) if auth else None,
            auth_required=auth,
            # aiosmtpd knows TLS only as its own STARTTLS: over implicit TLS the whole connection is TLS.
            auth_require_tls=a.tls == "starttls",
        )

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    loop = asyncio.get_running_loop()
    server = await loop.create_server(factory, sock=sock, ssl=ctx if a.tls == "implicit" else None)
    print("READY %d" % sock.getsockname()[1], flush=True)

    stop = asyncio.Event()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    loop.add_reader(sys.stdin.fileno(), lambda: stop.set() if not os.read(sys.stdin.fileno(), 4096) else None)
    await stop.wait()
    server.close()


asyncio.run(main())
