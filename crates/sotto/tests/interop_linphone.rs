//! Interop with a real Linphone client: two headless `linphonec` (Debian package
//! `linphone-cli`) register to `sotto server` over TLS with digest authentication (the server
//! certificate verified against the CA `sotto init` wrote) and call each other through it with
//! ZRTP; a `tshark` capture on `lo` checks what went over the wire.
//!
//! Asserted:
//! - both register (`linphonecsh status register` and the server's `REGISTER … 200` events,
//!   over TLS, after a 401 challenge);
//! - alice calls bob through the server, then bob calls alice (each INVITE challenged with
//!   407, then forwarded; ACK and BYE forwarded); each call connects and both ends print the
//!   same ZRTP SAS;
//! - in each call, the tone alice plays (1000 Hz) is found in bob's recording and bob's
//!   (440 Hz) in alice's (Goertzel, `sotto_media::audio::goertzel`);
//! - the capture (filter: the server's port and the phones' RTP/RTCP ports): the server's
//!   port carried TLS only (ClientHellos, application data, and no byte string `SIP/2.0`
//!   anywhere in its TCP payloads); every UDP datagram went between alice's and bob's
//!   RTP/RTCP ports (RTP both ways, the ZRTP handshake among them), none to or from the
//!   server's port; and the server process holds no UDP socket at all during the calls
//!   (its open sockets matched against `/proc/net/udp{,6}`), so it cannot have sent or
//!   received RTP on any other port either.
//!
//! Needs root (one uid per linphonec via `setpriv`, and tshark on `lo`); fails with the
//! apt-get line when a peer is missing. Every child is killed on every path (drop guards);
//! every wait is bounded.

#[path = "common/capture.rs"]
mod capture;
#[path = "common/linphone.rs"]
mod linphone;
#[path = "common/pki.rs"]
mod pki;
#[path = "common/process.rs"]
mod process;
#[path = "common/sotto_server.rs"]
mod sotto_server;
#[path = "common/tone.rs"]
mod tone;

use std::collections::BTreeSet;
use std::os::unix::fs::PermissionsExt as _;
use std::time::Duration;

use capture::Capture;
use linphone::{Account, INSTALL, LINPHONE_TOOLS, Linphonec, require_as_root};
use process::udp_ports_of;
use sotto_server::{DataDir, Server, addrs, is_request, set};
use tone::assert_tone;

/// Bound of the registration and call-setup waits (a failure bound, not a measurement).
const WAIT: Duration = Duration::from_secs(30);
/// How long the call carries audio before alice hangs up.
const TALK: Duration = Duration::from_secs(4);
/// The hex form of `SIP/2.0`: present in every SIP message, so in any cleartext SIP.
const SIP_VERSION_HEX: &str = "5349502f322e30";

fn request_over_tls(v: &serde_json::Value, method: &str, outcome: &str) -> bool {
    is_request(v, method, outcome) && v["transport"] == "tls"
}

/// Where the phones register: the server's TLS address and domain, and its CA.
struct Setup<'a> {
    proxy: std::net::SocketAddr,
    domain: &'a str,
}

#[test]
fn linphonec_zrtp_call_through_sotto_server_over_tls() {
    require_as_root(&LINPHONE_TOOLS, INSTALL);
    let tmp = tempfile::Builder::new()
        .prefix("sotto-linphone-")
        .tempdir()
        .expect("temp dir");
    let base = tmp.path();
    linphone::open_up(base);

    // The server: TLS only, on a port of its choosing; no metrics listener (fixed port).
    let data = DataDir::init(
        &base.join("data"),
        &[("alice", "alicepw"), ("bob", "bobpw")],
    );
    data.edit_config(|t| {
        set(t, "listen", "tls", addrs(&["127.0.0.1:0"]));
        set(t, "listen", "tcp", addrs(&[]));
        set(t, "listen", "udp", addrs(&[]));
        set(t, "metrics", "enabled", toml::Value::Boolean(false));
    });
    let mut server = Server::start("linphone", &data.config(), 1);
    let proxy = server.addr("tls");
    let setup = Setup {
        proxy,
        domain: "127.0.0.1",
    };
    zrtp_calls(base, &data, &mut server, &setup);
    server.stop();
}

/// The way people run it: the config `sotto init --domain example.test` writes, unchanged
/// but for the users (TLS on 0.0.0.0:5061, metrics on 127.0.0.1:9464), and Linphone's usual
/// account (`reg_proxy=<sip:127.0.0.1:5061;transport=tls>`, `reg_route=<…;lr>`, identity at
/// the named domain). Every call from a Linphone client on this config once failed with 500:
/// the server did not know its own address behind 0.0.0.0.
#[test]
fn linphonec_zrtp_calls_on_the_config_sotto_init_writes() {
    require_as_root(&LINPHONE_TOOLS, INSTALL);
    let _ports = process::DefaultPorts::lock();
    let tmp = tempfile::Builder::new()
        .prefix("sotto-linphone-default-")
        .tempdir()
        .expect("temp dir");
    let base = tmp.path();
    linphone::open_up(base);
    let data = DataDir::init_for(
        &base.join("data"),
        "example.test",
        &[("alice", "alicepw"), ("bob", "bobpw")],
    );
    let mut server = Server::start_all("linphone-default", &data.config());
    assert_eq!(
        server.listener("tls"),
        "0.0.0.0:5061".parse().unwrap(),
        "the default listener"
    );
    let setup = Setup {
        proxy: "127.0.0.1:5061".parse().unwrap(),
        domain: "example.test",
    };
    zrtp_calls(base, &data, &mut server, &setup);
    let events = server.stop();
    assert!(
        !events
            .iter()
            .any(|v| v["status"] == 500 || v["outcome"] == "failed"),
        "no request failed: {events:#?}"
    );
}

/// Two linphonec register at the server (`setup`) over TLS with digest and call each other
/// both ways with ZRTP: the same SAS on both sides, each side's tone in the other's
/// recording; the capture shows TLS only on the server's port and media only between the
/// phones.
fn zrtp_calls(base: &std::path::Path, data: &DataDir, server: &mut Server, setup: &Setup<'_>) {
    let srv = setup.proxy.port();
    // What the phones read: the CA, and the tones they play.
    let ca = base.join("ca.pem");
    std::fs::copy(data.ca(), &ca).expect("copy ca.pem");
    std::fs::set_permissions(&ca, std::fs::Permissions::from_mode(0o644)).expect("chmod ca");
    let (tone_a, tone_b) = (base.join("tone1000.wav"), base.join("tone440.wav"));
    tone::write_tone(&tone_a, 1000.0, 20);
    tone::write_tone(&tone_b, 440.0, 20);

    let (rtp_a, rtp_b) = (linphone::free_rtp_port(), linphone::free_rtp_port());
    assert_ne!(rtp_a, rtp_b);
    // The server's port (any protocol) and the phones' RTP/RTCP ports: exact ports, so that
    // other loopback traffic on this machine stays out of the capture.
    let mut capture = Capture::start(
        &base.join("lo.pcap"),
        &format!(
            "port {srv} or udp port {rtp_a} or udp port {} or udp port {rtp_b} or udp port {}",
            rtp_a + 1,
            rtp_b + 1
        ),
    );

    let account = |user, password| Account {
        user,
        password,
        proxy: setup.proxy,
        root_ca: &ca,
        domain: setup.domain,
    };
    let alice = Linphonec::start(base, &account("alice", "alicepw"), rtp_a, false);
    let bob = Linphonec::start(base, &account("bob", "bobpw"), rtp_b, true);
    alice.cmd(&format!("play {}", tone_a.display()));
    bob.cmd(&format!("play {}", tone_b.display()));

    // Both register over TLS, after a digest challenge.
    for lp in [&alice, &bob] {
        let status = lp.wait_registered(WAIT);
        assert!(
            status.contains(&format!("identity=sip:{}@{}", lp.name, setup.domain)),
            "{status}"
        );
    }
    server.wait_for(2, "REGISTER 401 over TLS", |v| {
        request_over_tls(v, "REGISTER", "replied") && v["status"] == 401
    });
    server.wait_for(2, "REGISTER 200 over TLS", |v| {
        request_over_tls(v, "REGISTER", "replied")
            && v["status"] == 200
            && v["module"] == "registrar"
    });

    // alice calls bob through the server (bob auto-answers), then bob calls alice (she
    // answers with the `answer` command). Each call records into its own files.
    let mut heard = Vec::new();
    let mut udp_during_calls = Vec::new();
    for n in 1..=2 {
        let (caller, callee) = if n == 1 {
            (&alice, &bob)
        } else {
            (&bob, &alice)
        };
        let rec = format!("rec/heard{n}.wav");
        for lp in [&alice, &bob] {
            lp.cmd(&format!("record {}", lp.path(&rec).display()));
        }
        heard.push((bob.path(&rec), 1000.0));
        heard.push((alice.path(&rec), 440.0));
        let sas = call(caller, callee, n, server, setup.domain);
        eprintln!("call {n}: {} -> {}: SAS {sas}", caller.name, callee.name);
        udp_during_calls.extend(udp_ports_of(server.pid()));
        std::thread::sleep(TALK);
        caller.cmd("terminate");
        let (c, e) = (uri(callee, setup.domain), uri(caller, setup.domain));
        // Every call of the test is between alice and bob: the n-th such line is this call's.
        caller.wait_line(&[&format!("with {c} ended")], n, WAIT);
        callee.wait_line(&[&format!("with {e} ended")], n, WAIT);
        server.wait_for(n, "ACK forwarded", |v| {
            request_over_tls(v, "ACK", "forwarded")
        });
        server.wait_for(n, "BYE forwarded", |v| {
            request_over_tls(v, "BYE", "forwarded")
        });
    }
    capture.stop();
    // Linphone's own habit: the dialogs' Contact is the GRUU the server handed out, so the
    // in-dialog requests above were routed by it.
    for lp in [&alice, &bob] {
        let log = lp.log();
        assert!(
            log.lines()
                .any(|l| l.contains("Setting contact address for session") && l.contains(";gr=")),
            "{}: no GRUU contact in its calls",
            lp.name
        );
    }
    drop(alice);
    drop(bob);

    assert!(
        udp_during_calls.is_empty(),
        "the server process held UDP sockets during the calls: ports {udp_during_calls:?}"
    );

    // Audio crossed in both directions.
    for (path, freq) in heard {
        assert_tone("a linphonec recording", &path, freq);
    }

    check_capture(&capture, srv, rtp_a, rtp_b);
}

fn uri(lp: &Linphonec, domain: &str) -> String {
    format!("sip:{}@{domain}", lp.name)
}

/// The `n`-th call of the test: `caller` calls `callee` through the server, the call connects
/// on both sides, and both show the same ZRTP SAS (returned). The server challenged the
/// INVITE (407) and forwarded it, over TLS.
fn call(
    caller: &Linphonec,
    callee: &Linphonec,
    n: usize,
    server: &mut Server,
    domain: &str,
) -> String {
    let (to, from) = (uri(callee, domain), uri(caller, domain));
    caller.cmd(&format!("call {to}"));
    callee.wait_line(&["Receiving new incoming call from", &from], 1, WAIT);
    if n == 2 {
        callee.cmd("answer");
    }
    // Every call of the test is between alice and bob: the n-th such line is this call's.
    caller.wait_line(&[&format!("with {to} connected")], n, WAIT);
    callee.wait_line(&[&format!("with {from} connected")], n, WAIT);
    let sas_caller = caller.wait_sas(n, WAIT);
    let sas_callee = callee.wait_sas(n, WAIT);
    assert_eq!(
        sas_caller, sas_callee,
        "call {n}: both ends must show the same SAS"
    );
    assert_eq!(
        sas_caller.len(),
        4,
        "a base-32 SAS has 4 characters: {sas_caller}"
    );
    server.wait_for(n, "INVITE 407", |v| {
        request_over_tls(v, "INVITE", "replied") && v["status"] == 407
    });
    server.wait_for(n, "INVITE forwarded", |v| {
        request_over_tls(v, "INVITE", "forwarded")
    });
    sas_caller
}

/// The wire: TLS only on the server's port, media only between the phones.
fn check_capture(capture: &Capture, srv: u16, rtp_a: u16, rtp_b: u16) {
    let decode = [
        format!("tcp.port=={srv},tls"),
        format!("udp.port=={rtp_a},rtp"),
        format!("udp.port=={rtp_b},rtp"),
    ];
    // UDP: only between alice's and bob's media ports (RTP and RTCP), never the server's.
    let udp = capture.fields(
        &decode,
        "udp",
        &["udp.srcport", "udp.dstport", "frame.protocols", "zrtp.type"],
    );
    let media_a = [rtp_a, rtp_a + 1];
    let media_b = [rtp_b, rtp_b + 1];
    let port = |s: Option<&String>| s.and_then(|p| p.parse::<u16>().ok()).unwrap_or(0);
    let (mut rtp_ab, mut rtp_ba) = (0usize, 0usize);
    let mut zrtp = BTreeSet::new();
    for row in &udp {
        let (src, dst) = (port(row.first()), port(row.get(1)));
        let protocols = row.get(2).map(String::as_str).unwrap_or_default();
        assert!(
            (media_a.contains(&src) && media_b.contains(&dst))
                || (media_b.contains(&src) && media_a.contains(&dst)),
            "a UDP datagram {src} -> {dst} ({protocols}) is not between the phones' media \
             ports {media_a:?} / {media_b:?} (server: {srv})"
        );
        if protocols.ends_with(":rtp") {
            if src == rtp_a && dst == rtp_b {
                rtp_ab += 1;
            } else if src == rtp_b && dst == rtp_a {
                rtp_ba += 1;
            }
        }
        if let Some(t) = row.get(3).map(|t| t.trim()).filter(|t| !t.is_empty()) {
            zrtp.insert(t.to_owned());
        }
    }
    eprintln!(
        "capture: {} UDP datagrams, all between the phones; RTP alice->bob {rtp_ab}, \
         bob->alice {rtp_ba}; ZRTP {zrtp:?}",
        udp.len()
    );
    assert!(
        rtp_ab >= 50 && rtp_ba >= 50,
        "RTP between the phones: alice->bob {rtp_ab}, bob->alice {rtp_ba} packets"
    );
    for t in [
        "Hello", "Commit", "DHPart1", "DHPart2", "Confirm1", "Confirm2", "Conf2ACK",
    ] {
        assert!(zrtp.contains(t), "no ZRTP {t} captured; saw {zrtp:?}");
    }

    // TCP on the server's port: TLS records only, no cleartext SIP.
    let tcp = capture.fields(
        &decode,
        &format!("tcp.port=={srv}"),
        &[
            "tls.handshake.type",
            "tls.record.content_type",
            "tcp.payload",
        ],
    );
    let has = |cell: Option<&String>, v: &str| cell.is_some_and(|c| c.split(',').any(|x| x == v));
    let client_hellos = tcp.iter().filter(|r| has(r.first(), "1")).count();
    let app_data = tcp.iter().filter(|r| has(r.get(1), "23")).count();
    assert!(
        client_hellos >= 2,
        "expected a TLS ClientHello from each phone, saw {client_hellos}"
    );
    assert!(app_data >= 6, "TLS application data frames: {app_data}");
    let cleartext = tcp
        .iter()
        .filter(|r| {
            r.get(2)
                .is_some_and(|p| p.to_ascii_lowercase().contains(SIP_VERSION_HEX))
        })
        .count();
    eprintln!(
        "capture: {} TCP frames on the server's port {srv}: {client_hellos} ClientHello, \
         {app_data} with TLS application data, {cleartext} with cleartext SIP",
        tcp.len()
    );
    assert_eq!(
        cleartext, 0,
        "cleartext SIP in {cleartext} TCP frames on the server's port {srv}"
    );
}

/// The helper behind the "server holds no UDP socket" check finds a socket that exists.
#[test]
fn udp_socket_lookup_finds_a_bound_socket() {
    let socket = std::net::UdpSocket::bind("127.0.0.1:0").expect("bind");
    let port = socket.local_addr().expect("addr").port();
    let ports = udp_ports_of(std::process::id());
    assert!(ports.contains(&port), "{port} not in {ports:?}");
    drop(socket);
    assert!(!udp_ports_of(std::process::id()).contains(&port));
}

/// The SAS is read from linphonec's event line, and nothing else passes for one.
#[test]
fn sas_is_read_from_the_event_line() {
    assert_eq!(
        linphone::sas_of("Call 1 is fully encrypted and auth token is h441.").as_deref(),
        Some("h441")
    );
    assert_eq!(
        linphone::sas_of("Call 1 is fully encrypted and auth token is absent.").as_deref(),
        Some("absent")
    );
    assert_eq!(
        linphone::sas_of("Call 1 with sip:bob@127.0.0.1 connected."),
        None
    );
    assert_eq!(linphone::sas_of("auth token is ."), None);
}
