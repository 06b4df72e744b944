#!/usr/bin/env python3
"""Writes the benchmark's user files into OUT_DIR (one set of accounts for both servers).

usage: gen_users.py OUT_DIR N UAS_CONTACT

  users.csv         SIPp injection file for register.xml: user;password;contact;[authentication]
                    (user00000..user{N-1}, contact 127.0.0.1:5999: nobody is called there)
  uas.csv           the same for the callee "uas", whose contact is UAS_CONTACT (host:port)
  sotto_users.txt   "name password" per line, for `sotto user add NAME --password-stdin`
  dbtext/version, dbtext/subscriber
                    Kamailio db_text tables for auth_db (plain-text passwords, calculate_ha1)
Besides the N load users there are "uas" (the callee) and "loadgen" (the caller, -au/-ap).
Passwords are per-run random (secrets), so nothing here is a fixed credential.
"""
import os
import secrets
import sys


def main() -> int:
    if len(sys.argv) != 4:
        print(__doc__, file=sys.stderr)
        return 2
    out, n, uas_contact = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    if not 1 <= n <= 100_000:
        print("N must be in 1..100000", file=sys.stderr)
        return 2
    os.makedirs(os.path.join(out, "dbtext"), exist_ok=True)
    users = [(f"user{i:05d}", "pw" + secrets.token_hex(8)) for i in range(n)]
    special = [("uas", "pw" + secrets.token_hex(8)), ("loadgen", "pw" + secrets.token_hex(8))]

    def auth(u: str, p: str) -> str:
        return f"[authentication username={u} password={p}]"

    with open(os.path.join(out, "users.csv"), "w") as f:
        f.write("SEQUENTIAL\n")
        for u, p in users:
            f.write(f"{u};{p};127.0.0.1:5999;{auth(u, p)}\n")
    with open(os.path.join(out, "uas.csv"), "w") as f:
        u, p = special[0]
        f.write(f"SEQUENTIAL\n{u};{p};{uas_contact};{auth(u, p)}\n")
    with open(os.path.join(out, "loadgen.txt"), "w") as f:
        f.write(f"{special[1][0]} {special[1][1]}\n")
    with open(os.path.join(out, "sotto_users.txt"), "w") as f:
        for u, p in special + users:
            f.write(f"{u} {p}\n")
    # auth_db reads subscriber at table version 7; ha1/ha1b must be nullable when empty.
    with open(os.path.join(out, "dbtext", "version"), "w") as f:
        f.write("table_name(string) table_version(int)\nsubscriber:7\n")
    with open(os.path.join(out, "dbtext", "subscriber"), "w") as f:
        f.write("id(int,auto) username(string) domain(string) password(string) "
                "ha1(string,null) ha1b(string,null)\n")
        for i, (u, p) in enumerate(special + users, start=1):
            f.write(f"{i}:{u}:127.0.0.1:{p}::\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
