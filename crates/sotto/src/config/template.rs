//! The commented config file `sotto init` writes: every key with its default.

use super::{Config, toml_string};

/// The commented config file `sotto init` writes for `domain`. It loads back to
/// [`Config::for_domain`].
pub(crate) fn template(domain: &str) -> String {
    let d = Config::for_domain(domain);
    let domain = toml_string(domain);
    let r = &d.registrar;
    let f = &d.modules.anti_flood;
    let a = &d.modules.authentication;
    let g = &d.modules.registrar;
    let t = &d.transactions;
    format!(
        r#"# sotto server configuration, written by `sotto init`.
# Every key below shows its default; a key or section left out takes that default.
# Unknown keys are an error. Relative paths are relative to this file's directory.

[server]
# The SIP domain served: users register as sip:USER@DOMAIN.
domain = {domain}
# The digest authentication realm. Stored password hashes (HA1) are bound to it:
# changing it means setting every user's password again (`sotto user passwd`).
realm = {domain}
# Other names and addresses that mean this server ("host" or "host:port"), besides the
# domain and the addresses of the machine's interfaces, e.g. ["sip.example.org"].
aliases = []
# The host our Via and Record-Route name, for a server behind NAT or with a public name.
# Empty: the address each client reached us at.
public_host = ""

[listen]
# SIP over TLS, on all IPv4 interfaces (the certificate from `sotto init` names the domain,
# localhost and 127.0.0.1). Add "[::]:5061" for IPv6, or use "127.0.0.1:5061" to keep the
# server to this machine.
tls = ["0.0.0.0:5061"]
# Unencrypted SIP over TCP and UDP (port 5060) is off. Enable only for old phones on a
# trusted network, e.g. udp = ["127.0.0.1:5060"].
tcp = []
udp = []

[tls]
certificate = "server.pem"  # PEM chain, server certificate first
key = "server.key"          # PEM private key (keep it mode 0600)
ca = "ca.pem"               # CA that client certificates are checked against
# Client certificates: "none" (phones log in with a password), "optional" or "required".
client_auth = "none"

[security]
# A call or message that would lose encryption on some leg: "refuse" it, or "warn" (allow it
# and log a warning).
downgrade = "refuse"

[storage]
# "sqlite": users and registrations in one file that survives restarts.
# "memory": nothing kept across restarts (tests only).
# "redis": registrations shared by several servers in Redis at url (users stay in path), e.g.
#   url = "redis://127.0.0.1:6379/0" or url = "unix:///run/redis/redis-server.sock"
kind = "sqlite"
path = "sotto.db"

[registrar]
# Registration lifetimes, in seconds: shorter requests get 423 Interval Too Brief, longer
# ones are cut to max_expires; default_expires applies when the phone asks for none.
min_expires = {min}
default_expires = {def}
max_expires = {max}
# Contacts (devices) one user may have registered at once.
max_contacts = {maxc}

# The request pipeline, in order. Each module can be switched off with enabled = false.

[modules.anti_flood]
enabled = true
# Requests one source IP address may send per second, sustained, and at once (burst);
# beyond that its requests are dropped until it slows down.
rate_per_s = {frate}
burst = {fburst}
# Authentication failures are counted per source address and account. An account failing
# ban_after_failures times from one source within failure_window_secs is locked out from
# that source for account_lockout_secs (403 with Retry-After: a mistyped password slows its
# author, not the other users behind the same address); ban_after_accounts different
# accounts failing from one source get the source ignored for ban_secs (password guessing).
ban_after_failures = {fauth}
account_lockout_secs = {flock}
ban_after_accounts = {faccts}
failure_window_secs = {fwin}
ban_secs = {fban}
# Sources tracked at once (memory stays bounded under a flood from many addresses).
max_sources = {fsrc}
# Networks or addresses never rate-limited, locked out or banned, e.g. ["10.0.0.0/8"].
trusted_networks = []

[modules.sanity]
# Rejects malformed requests (400) and loops (483) before any other work.
enabled = true

[modules.authentication]
# Digest authentication; without it anyone may register any address.
enabled = true
# Offered in this order (SHA-256 first, RFC 8760); `sotto user` stores a hash for each.
algorithms = [{algs}]
# Seconds a nonce stays valid before the phone is asked again (stale=true).
nonce_lifetime_secs = {nonce}
# A TLS client certificate naming the user (SAN URI or CN) logs in without a password, when
# [tls] client_auth is "optional" or "required".
tls_client_certificates = {tlscert}

[modules.registrar]
enabled = true
gruu = {gruu}      # GRUUs (RFC 5627) for phones that send +sip.instance
outbound = {outb}  # SIP outbound (RFC 5626): several flows per phone (reg-id)

[modules.router]
enabled = true

[modules.forward]
enabled = true

[transactions]
# RFC 3261 timers, in milliseconds: T1 (round-trip estimate; retransmissions start there and
# double), T2 (their cap), T4 (a message's lifetime in the network), Timer D (a client INVITE
# absorbs retransmitted responses), and the delay before we answer 100 Trying ourselves.
t1_ms = {t1}
t2_ms = {t2}
t4_ms = {t4}
timer_d_ms = {td}
trying_delay_ms = {tt}
# Transactions alive at once; when full, the oldest that only absorb retransmissions go
# first, then new requests get 503 with Retry-After.
max = {tmax}

[log]
format = "text"  # or "json": one object per line
level = "info"   # error, warn, info, debug or trace
# A line per request handled: "none", "sampled" (at most requests_per_second lines, then one
# line counting those skipped: the log stays small under load) or "all". Counters for every
# request are on /metrics either way.
requests = "sampled"
requests_per_second = 10

[metrics]
# Prometheus metrics over HTTP; loopback only by default.
enabled = true
listen = "127.0.0.1:9464"

[connections]
# TCP/TLS connections. max = 0: sized to the file-descriptor limit (raised to its hard limit
# at start). per_source: from one address (open or handshaking), so that one source cannot
# take every slot; an office behind one NAT needs one per phone.
max = 0
per_source = 256
idle_secs = 300
# A connection that has made no authenticated request this long after it opened is closed.
unauthenticated_secs = 30

[overload]
# When received messages come faster than the proxy handles them, new requests get
# 503 + Retry-After at once (no digest check, no store), while responses and in-dialog
# requests (ACK, BYE) are still handled: calls already up finish. First new requests without
# credentials, then every new one: when messages keep waiting that long since they arrived
# (*_after_ms; the kernel's receive time for UDP) for standing_ms in a row (a pause of the
# process is not an overload), or, as a backstop before the queue overflows, from a number
# of messages waiting in it (*_at).
enabled = true
queue = 1024
# Per UDP socket (capped by the system's net.core.rmem_max); 0: the system default.
udp_receive_buffer = 4194304
shed_unauthenticated_at = 1000
shed_all_at = 1020
shed_unauthenticated_after_ms = 20
shed_all_after_ms = 100
standing_ms = 100
retry_after_secs = 5

[admin]
# The Unix socket `sotto ban list|lift` talks to (mode 0600: only this server's user).
# Empty: no control socket.
socket = "admin.sock"

[lime]
# The LIME key server: end-to-end message keys for Linphone clients (their
# lime_server_url, printed at start) and sotto agents. HTTPS with the certificate of [tls],
# HTTP digest against the same accounts as SIP. Off by default: it opens one more port.
enabled = false
listen = "0.0.0.0:8443"
path = "/lime"
database = "lime.sqlite"
# postgres_url = "postgres://lime@db.example.test/lime"   # instead, shared by several servers
max_opks_per_device = 500
bundle_requests_per_minute = 600

[dns]
# Name servers for NAPTR/SRV/A lookups (RFC 3263), e.g. ["192.0.2.53:53"]; empty: the
# system's (/etc/resolv.conf). Names in /etc/hosts need no name server.
servers = []
timeout_secs = 2

[federation]
# Calls and messages between domains: requests of our users for other domains go to those
# domains' servers (found by DNS, over TLS), and other domains' servers may send to us if
# their certificate proves their domain (mutual TLS, RFC 5922). Off: requests from other
# domains are refused.
enabled = false
# Domains allowed (empty: any domain that proves itself), e.g. ["partner.example"].
domains = []
# CA certificates the other servers' certificates must chain to.
ca = "/etc/ssl/certs/ca-certificates.crt"
"#,
        min = r.min_expires,
        def = r.default_expires,
        max = r.max_expires,
        maxc = r.max_contacts,
        frate = f.rate_per_s,
        fburst = f.burst,
        fauth = f.ban_after_failures,
        flock = f.account_lockout_secs,
        faccts = f.ban_after_accounts,
        fwin = f.failure_window_secs,
        fban = f.ban_secs,
        fsrc = f.max_sources,
        tlscert = a.tls_client_certificates,
        gruu = g.gruu,
        outb = g.outbound,
        t1 = t.t1_ms,
        t2 = t.t2_ms,
        t4 = t.t4_ms,
        td = t.timer_d_ms,
        tt = t.trying_delay_ms,
        tmax = t.max,
        algs = a
            .algorithms
            .iter()
            .map(|x| toml_string(x.0.name()))
            .collect::<Vec<_>>()
            .join(", "),
        nonce = a.nonce_lifetime_secs,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::parse;

    #[test]
    fn template_loads_back_to_the_defaults() {
        for domain in ["localhost", "example.test", "odd\"name\\"] {
            let parsed = parse(&template(domain));
            if domain.contains('"') {
                // Quoting survives; the realm rule then refuses the quote.
                let err = format!("{:#}", parsed.expect_err("quote in realm"));
                assert!(err.contains("server.realm"), "{err}");
                continue;
            }
            assert_eq!(parsed.expect("template parses"), Config::for_domain(domain));
        }
    }
}
