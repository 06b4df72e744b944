#!/usr/bin/env python3
"""TLS devices held by one `sotto server`: memory per connection, and every device reachable.

Opens DEVICES TLS connections to the server (from many loopback source addresses,
PER_SOURCE per address, as phones behind their own addresses), registers a device over each
(digest auth, RFC 5626 outbound: +sip.instance, reg-id, the flow is the connection), keeps
them open and idle, and reads the server's resident set and heap before and after. Then a
caller calls every account: the server forks each INVITE to the account's devices over their
connections; each device answers 486, and the script checks that every device got its INVITE.

Output: one JSON object on stdout:
  {"devices":..,"registered":..,"rss_before_bytes":..,"rss_after_bytes":..,
   "bytes_per_connection":..,"heap_bytes_per_connection":..,"reachable":..,"want_max_bytes":16384}
Progress on stderr.

usage: tls_devices.py --server-pid PID --tls HOST:PORT --domain D --ca CA.pem
         --users users.txt (lines "name password") --devices N [--metrics HOST:PORT]
         [--per-source 250] [--settle 5] [--timeout 600]
Loopback only; every wait bounded by --timeout.
"""
import argparse
import asyncio
import hashlib
import json
import os
import resource
import ssl
import sys
import time
import urllib.request
import uuid


# Calls made by one caller device (4 requests each: INVITE, ACK, INVITE with credentials,
# ACK), under the anti-flood burst of 200 requests per address.
CALLS_PER_CALLER = 40


def log(*a):
    print("[tls_devices]", *a, file=sys.stderr, flush=True)


def rss(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


def heap(metrics):
    if not metrics:
        return None
    try:
        body = urllib.request.urlopen(f"http://{metrics}/metrics", timeout=5).read().decode()
        for line in body.splitlines():
            if line.startswith("sotto_heap_bytes "):
                return int(float(line.split()[1]))
    except Exception:
        return None
    return None


class Conn:
    """One TLS connection carrying SIP messages (framed by Content-Length)."""

    def __init__(self, reader, writer):
        self.reader, self.writer = reader, writer

    async def read(self):
        head = await self.reader.readuntil(b"\r\n\r\n")
        text = head.decode(errors="replace")
        length = 0
        for line in text.split("\r\n"):
            name, _, value = line.partition(":")
            if name.strip().lower() in ("content-length", "l"):
                length = int(value.strip() or 0)
        body = await self.reader.readexactly(length) if length else b""
        return text, body

    def send(self, text):
        self.writer.write(text.encode())


def header(text, name):
    for line in text.split("\r\n")[1:]:
        n, _, v = line.partition(":")
        if n.strip().lower() == name.lower():
            return v.strip()
    return None


def status(text):
    return int(text.split(" ", 2)[1]) if text.startswith("SIP/2.0 ") else None


def digest(challenge, user, password, method, uri):
    params = {}
    for part in challenge[len("Digest "):].split(","):
        k, _, v = part.strip().partition("=")
        params[k.strip()] = v.strip().strip('"')
    algo = params.get("algorithm", "MD5")
    h = (lambda s: hashlib.sha256(s.encode()).hexdigest()) if algo == "SHA-256" else (
        lambda s: hashlib.md5(s.encode()).hexdigest())
    realm, nonce = params["realm"], params["nonce"]
    ha1 = h(f"{user}:{realm}:{password}")
    ha2 = h(f"{method}:{uri}")
    cnonce, nc = uuid.uuid4().hex[:16], "00000001"
    if "qop" in params:
        resp = h(f"{ha1}:{nonce}:{nc}:{cnonce}:auth:{ha2}")
        extra = f', qop=auth, nc={nc}, cnonce="{cnonce}"'
    else:
        resp = h(f"{ha1}:{nonce}:{ha2}")
        extra = ""
    opaque = f', opaque="{params["opaque"]}"' if "opaque" in params else ""
    return (f'Digest username="{user}", realm="{realm}", nonce="{nonce}", uri="{uri}", '
            f'response="{resp}", algorithm={algo}{extra}{opaque}')


async def connect(args, ctx, index):
    # Households: a few devices per address (a burst of REGISTERs from one address would meet
    # the anti-flood rate, as a whole office re-registering at once does).
    n = index // args.per_source
    src = f"127.{1 + n // 250}.{1 + n % 250}.1"
    host, port = args.tls.rsplit(":", 1)
    reader, writer = await asyncio.open_connection(
        host, int(port), ssl=ctx, server_hostname=args.domain, local_addr=(src, 0))
    return Conn(reader, writer)


async def register(args, ctx, index, user, password, device):
    c = await connect(args, ctx, index)
    writer = c.writer
    local = writer.get_extra_info("sockname")
    instance = f"urn:uuid:{uuid.uuid4()}"
    call_id = uuid.uuid4().hex
    uri = f"sip:{args.domain}"
    auth = ""
    for cseq in (1, 2):
        c.send(
            f"REGISTER {uri} SIP/2.0\r\n"
            f"Via: SIP/2.0/TLS {local[0]}:{local[1]};branch=z9hG4bK{uuid.uuid4().hex};rport\r\n"
            f"Max-Forwards: 70\r\nFrom: <sip:{user}@{args.domain}>;tag={uuid.uuid4().hex[:8]}\r\n"
            f"To: <sip:{user}@{args.domain}>\r\nCall-ID: {call_id}\r\nCSeq: {cseq} REGISTER\r\n"
            f"Supported: outbound, path, gruu\r\n"
            f'Contact: <sip:{user}-{device}@{local[0]}:{local[1]};transport=tls;ob>;'
            f'+sip.instance="<{instance}>";reg-id=1;expires=3600\r\n'
            f"{auth}Content-Length: 0\r\n\r\n")
        text, _ = await c.read()
        code = status(text)
        if code == 401 and cseq == 1:
            auth = "Authorization: " + digest(header(text, "WWW-Authenticate"), user, password,
                                              "REGISTER", uri) + "\r\n"
            continue
        if code != 200:
            raise RuntimeError(f"REGISTER {user}/{device}: {text.splitlines()[0]}")
        return c
    raise RuntimeError("no final answer")


async def device_loop(c, got):
    """Answers every INVITE with 486 (and ACKs nothing: the proxy absorbs the ACK)."""
    try:
        while True:
            text, _ = await c.read()
            if text.startswith("INVITE "):
                got.add(id(c))
                resp = ["SIP/2.0 486 Busy Here"]
                for line in text.split("\r\n")[1:]:
                    n = line.partition(":")[0].strip().lower()
                    if n in ("via", "v", "from", "f", "call-id", "i", "cseq"):
                        resp.append(line)
                    elif n in ("to", "t"):
                        resp.append(line + ";tag=" + uuid.uuid4().hex[:8])
                resp.append("Content-Length: 0")
                c.send("\r\n".join(resp) + "\r\n\r\n")
    except (asyncio.IncompleteReadError, ConnectionError, ssl.SSLError):
        return


async def call(caller, args, callee, user, password):
    """INVITE callee (forked to its devices); waits for the final response; ACKs it."""
    uri = f"sip:{callee}@{args.domain}"
    local = caller.writer.get_extra_info("sockname")
    call_id, tag, auth = uuid.uuid4().hex, uuid.uuid4().hex[:8], ""
    for cseq in (1, 2):
        branch = f"z9hG4bK{uuid.uuid4().hex}"
        via = f"Via: SIP/2.0/TLS {local[0]}:{local[1]};branch={branch};rport\r\n"
        caller.send(
            f"INVITE {uri} SIP/2.0\r\n{via}Max-Forwards: 70\r\n"
            f"From: <sip:{user}@{args.domain}>;tag={tag}\r\nTo: <{uri}>\r\nCall-ID: {call_id}\r\n"
            f"CSeq: {cseq} INVITE\r\nContact: <sip:{user}@{local[0]}:{local[1]};transport=tls>\r\n"
            f"{auth}Content-Length: 0\r\n\r\n")
        while True:
            text, _ = await caller.read()
            code = status(text)
            if code is None or code < 200:
                continue
            to = header(text, "To")
            caller.send(
                f"ACK {uri} SIP/2.0\r\n{via}Max-Forwards: 70\r\nFrom: <sip:{user}@{args.domain}>;tag={tag}\r\n"
                f"To: {to}\r\nCall-ID: {call_id}\r\nCSeq: {cseq} ACK\r\nContent-Length: 0\r\n\r\n")
            break
        if code == 407 and cseq == 1:
            auth = "Proxy-Authorization: " + digest(header(text, "Proxy-Authenticate"), user,
                                                    password, "INVITE", uri) + "\r\n"
            continue
        return code
    return code


async def flood_then_call(args, ctx, users, accounts):
    """Opens args.flood idle TCP connections to the TLS port from one address (no handshake:
    the cheapest flood), then times a device of another address registering and calling."""
    host, port = args.tls.rsplit(":", 1)
    held, refused = [], 0

    async def open_one():
        nonlocal refused
        try:
            r, w = await asyncio.open_connection(host, int(port), local_addr=("127.0.0.5", 0))
            held.append(w)
        except OSError:
            refused += 1

    t0 = time.monotonic()
    for i in range(0, args.flood, 500):
        await asyncio.gather(*(open_one() for _ in range(min(500, args.flood - i))))
    await asyncio.sleep(0.5)
    log(f"flood: {len(held)} connections opened from 127.0.0.5 in {time.monotonic() - t0:.1f} s,"
        f" {refused} refused at connect")
    user, pw = accounts[0]
    caller_user, caller_pw = users[0]
    t1 = time.monotonic()
    device = await register(args, ctx, args.devices + 100_000, user, pw, "legit")
    t_reg = time.monotonic() - t1
    got = set()
    loop = asyncio.create_task(device_loop(device, got))
    caller = await connect(args, ctx, args.devices + 200_000)
    status_code = await call(caller, args, user, caller_user, caller_pw)
    t_all = time.monotonic() - t1
    loop.cancel()
    for w in held:
        w.close()
    return {"idle_connections": args.flood, "opened": len(held), "refused_at_connect": refused,
            "register_s": round(t_reg, 3), "register_and_call_s": round(t_all, 3),
            "call_status": status_code, "device_reached": id(device) in got,
            "want_max_s": 1.0, "met": bool(t_all < 1.0 and id(device) in got)}


async def main():
    p = argparse.ArgumentParser()
    p.add_argument("--server-pid", type=int, required=True)
    p.add_argument("--tls", required=True)
    p.add_argument("--domain", required=True)
    p.add_argument("--ca", required=True)
    p.add_argument("--users", required=True)
    p.add_argument("--devices", type=int, required=True)
    p.add_argument("--metrics")
    p.add_argument("--per-source", type=int, default=20)
    p.add_argument("--settle", type=float, default=5)
    p.add_argument("--timeout", type=float, default=600)
    p.add_argument("--concurrency", type=int, default=64)
    p.add_argument("--flood", type=int, default=0,
                   help="idle connections opened from one address (127.0.0.5) before a"
                        " legitimate device registers and calls (timed)")
    args = p.parse_args()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    users = [line.split() for line in open(args.users) if line.strip()]
    caller_user, caller_pw = users[0]
    accounts = users[1:]
    ctx = ssl.create_default_context(cafile=args.ca)
    ctx.check_hostname = True
    before, heap_before = rss(args.server_pid), heap(args.metrics)
    deadline = time.monotonic() + args.timeout
    gate = asyncio.Semaphore(args.concurrency)
    conns = {}

    async def one(i):
        user, pw = accounts[i % len(accounts)]
        async with gate:
            c = await asyncio.wait_for(register(args, ctx, i, user, pw, i // len(accounts)),
                                       max(1, deadline - time.monotonic()))
        conns[i] = (user, c)

    t0 = time.monotonic()
    results = await asyncio.gather(*(one(i) for i in range(args.devices)), return_exceptions=True)
    failures = [r for r in results if isinstance(r, Exception)]
    log(f"registered {len(conns)}/{args.devices} in {time.monotonic() - t0:.1f} s;"
        f" failures: {len(failures)} {failures[:3]}")
    await asyncio.sleep(args.settle)
    after, heap_after = rss(args.server_pid), heap(args.metrics)
    got = set()
    loops = [asyncio.create_task(device_loop(c, got)) for _, c in conns.values()]
    by_user = {}
    for user, c in conns.values():
        by_user.setdefault(user, []).append(c)
    t1 = time.monotonic()
    answers = {}
    caller = None
    for k, user in enumerate(sorted(by_user)):
        if time.monotonic() > deadline:
            break
        if k % CALLS_PER_CALLER == 0:
            # A caller device per few calls, each from its own address: one device calling
            # a thousand accounts in a few seconds would meet the anti-flood rate (as it should).
            # Not registered (an account holds at most 16 devices): its first INVITE's
            # credentials authenticate the connection.
            caller = await connect(args, ctx, args.devices + k * args.per_source)
        answers[user] = await asyncio.wait_for(call(caller, args, user, caller_user, caller_pw),
                                               max(1, deadline - time.monotonic()))
    await asyncio.sleep(0.5)
    reached = sum(1 for _, c in conns.values() if id(c) in got)
    log(f"called {len(answers)} accounts in {time.monotonic() - t1:.1f} s; devices reached {reached}")
    flood = await flood_then_call(args, ctx, users, accounts) if args.flood else None
    for t in loops:
        t.cancel()
    n = len(conns)
    out = {
        "workload": "tls_devices", "devices": args.devices, "registered": n,
        "accounts": len(by_user), "rss_before_bytes": before, "rss_after_bytes": after,
        "bytes_per_connection": round((after - before) / n, 1) if n else None,
        "heap_bytes_per_connection": round((heap_after - heap_before) / n, 1)
        if n and heap_before is not None and heap_after is not None else None,
        "reachable": reached, "final_statuses": sorted(set(answers.values())),
        "flood": flood,
        "want_max_bytes": 16384,
        "met": bool(n == args.devices and reached == n and (after - before) / n <= 16384),
    }
    print(json.dumps(out), flush=True)
    os._exit(0)  # thousands of TLS connections: do not wait for each close


asyncio.run(main())
