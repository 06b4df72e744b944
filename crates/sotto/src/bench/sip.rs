//! `sotto bench sip`: SIP parse and serialize throughput through the public `sotto-sip` API.
//!
//! Workloads: a typical INVITE carrying SDP, and a REGISTER. For each it measures
//! - `parse_per_s`: `parse_message` of the datagram (headers kept raw, decoded on access);
//! - `parse_serialize_per_s`: parse, read the fields a proxy needs (top Via branch, CSeq,
//!   Call-ID, Max-Forwards) and serialize the unmodified message;
//! - `proxy_edit_per_s`: parse, prepend a Via, decrement Max-Forwards, add a Record-Route and
//!   serialize the edited message (the proxy hot path).

use std::hint::black_box;
use std::time::{Duration, Instant};

use anyhow::Context;
use bytes::Bytes;
use sotto_sip::message::Message;
use sotto_sip::parse::{Limits, parse_message};

/// Arguments of `sotto bench sip`.
#[derive(Debug, clap::Args)]
pub(crate) struct SipBenchArgs {
    /// Messages per workload and measurement (about a second each in release builds).
    #[arg(long, default_value_t = 300_000)]
    iterations: u64,
}

const INVITE_SDP: &[u8] = b"INVITE sip:bob@127.0.0.1:5062 SIP/2.0\r\n\
Via: SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bK74bf9;rport\r\n\
Max-Forwards: 70\r\n\
From: \"Alice\" <sip:alice@127.0.0.1>;tag=9fxced76sl\r\n\
To: \"Bob\" <sip:bob@127.0.0.1>\r\n\
Call-ID: 3848276298220188511@127.0.0.1\r\n\
CSeq: 1 INVITE\r\n\
Contact: <sip:alice@127.0.0.1:5060;transport=udp>;+sip.instance=\"<urn:uuid:f81d4fae-7dec-11d0-a765-00a0c91e6bf6>\"\r\n\
Allow: INVITE, ACK, CANCEL, BYE, OPTIONS, MESSAGE, INFO, UPDATE, PRACK, REFER, NOTIFY\r\n\
Supported: replaces, outbound, gruu, 100rel\r\n\
User-Agent: sotto-bench/0.1\r\n\
Content-Type: application/sdp\r\n\
Content-Length: 279\r\n\
\r\n\
v=0\r\n\
o=alice 2890844526 2890844526 IN IP4 127.0.0.1\r\n\
s=-\r\n\
c=IN IP4 127.0.0.1\r\n\
t=0 0\r\n\
m=audio 49170 RTP/SAVP 0 8 101\r\n\
a=rtpmap:0 PCMU/8000\r\n\
a=rtpmap:8 PCMA/8000\r\n\
a=rtpmap:101 telephone-event/8000\r\n\
a=zrtp-hash:1.10 fe30efd02423cb054e50efd0248742ac7a52c8f91bc2df881ae642c371ba46df\r\n";

const REGISTER: &[u8] = b"REGISTER sip:127.0.0.1 SIP/2.0\r\n\
Via: SIP/2.0/TCP 127.0.0.1:5060;branch=z9hG4bKnashds7;rport\r\n\
Max-Forwards: 70\r\n\
From: <sip:alice@127.0.0.1>;tag=456248\r\n\
To: <sip:alice@127.0.0.1>\r\n\
Call-ID: 843817637684230@998sdasdh09\r\n\
CSeq: 1826 REGISTER\r\n\
Contact: <sip:alice@127.0.0.1:5060;transport=tcp;ob>;reg-id=1;+sip.instance=\"<urn:uuid:00000000-0000-1000-8000-000A95A0E128>\";expires=3600\r\n\
Supported: path, outbound, gruu\r\n\
User-Agent: sotto-bench/0.1\r\n\
Content-Length: 0\r\n\
\r\n";

/// Checks that a benchmark message is well framed (its Content-Length is its body length).
fn checked(msg: &'static [u8]) -> anyhow::Result<Bytes> {
    let m = parse_message(Bytes::from_static(msg), &Limits::default())
        .context("benchmark message does not parse")?;
    let declared = m.content_length()?.unwrap_or(0);
    anyhow::ensure!(
        declared == m.body().len() && m.to_bytes().len() == msg.len(),
        "benchmark message has a wrong Content-Length"
    );
    Ok(Bytes::from_static(msg))
}

fn rate(n: u64, d: Duration) -> f64 {
    n as f64 / d.as_secs_f64().max(1e-9)
}

fn proxy_fields(m: &Message) -> anyhow::Result<usize> {
    let via = m.via_top()?;
    let cseq = m.cseq()?;
    let call_id = m.call_id()?;
    let mf = m.max_forwards()?.unwrap_or(70);
    Ok(via.branch.map_or(0, |b| b.len()) + cseq.seq as usize + call_id.len() + mf as usize)
}

/// Runs the benchmark.
pub(crate) fn run(args: SipBenchArgs, json: bool) -> anyhow::Result<()> {
    let limits = Limits::default();
    let n = args.iterations.max(1);
    for (name, raw) in [("invite_sdp", INVITE_SDP), ("register", REGISTER)] {
        let bytes = checked(raw)?;

        // warm-up and sanity
        let probe = parse_message(bytes.clone(), &limits)?;
        anyhow::ensure!(
            probe.to_bytes() == bytes,
            "unmodified message did not serialize byte for byte"
        );

        let t = Instant::now();
        for _ in 0..n {
            black_box(parse_message(black_box(bytes.clone()), &limits)?);
        }
        let parse = t.elapsed();

        let t = Instant::now();
        let mut out = Vec::with_capacity(2048);
        for _ in 0..n {
            let m = parse_message(black_box(bytes.clone()), &limits)?;
            black_box(proxy_fields(&m)?);
            out.clear();
            m.write_to(&mut out);
            black_box(&out);
        }
        let parse_serialize = t.elapsed();

        let t = Instant::now();
        for _ in 0..n {
            let mut m = parse_message(black_box(bytes.clone()), &limits)?;
            let mf = m.max_forwards()?.unwrap_or(70);
            let h = m.headers_mut();
            h.insert_first("Via", "SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bKproxy1");
            h.set("Max-Forwards", (mf.saturating_sub(1)).to_string());
            h.insert_first("Record-Route", "<sip:127.0.0.1:5070;lr>");
            out.clear();
            m.write_to(&mut out);
            black_box(&out);
        }
        let proxy_edit = t.elapsed();

        let obj = serde_json::json!({
            "bench": "sip",
            "message": name,
            "bytes": bytes.len(),
            "iterations": n,
            "parse_per_s": rate(n, parse).round() as u64,
            "parse_serialize_per_s": rate(n, parse_serialize).round() as u64,
            "proxy_edit_per_s": rate(n, proxy_edit).round() as u64,
        });
        if json {
            println!("{obj}");
        } else {
            println!(
                "sip {name:<10} {:>5} B  parse {:>10.0}/s  parse+serialize {:>10.0}/s  proxy edit {:>10.0}/s",
                bytes.len(),
                rate(n, parse),
                rate(n, parse_serialize),
                rate(n, proxy_edit)
            );
        }
    }
    Ok(())
}
