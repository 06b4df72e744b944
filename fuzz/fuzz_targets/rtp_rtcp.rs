//! Fuzz target: the media packet parsers on arbitrary bytes: RTP (`RtpPacket::parse`), the
//! shared-port demultiplexer (`classify`, `is_rtcp`), compound RTCP (`parse_compound`), the
//! RFC 4733 telephone-event payload (`TelephoneEvent::parse`) and WAV files (`Wav::parse`).
//! Every parser sees the whole input.
//!
//! Beyond "no panic on any input", wherever a writer exists the value read must survive
//! write → parse unchanged: an RTP packet through `RtpPacket::write`; each SR, RR, one-chunk
//! SDES CNAME and one-source BYE through the `write_*` functions, one by one and appended into
//! one compound packet; a telephone event through `encode`; a WAV file through `to_bytes` and,
//! for mono audio, through `WavWriter`.

#![no_main]

use libfuzzer_sys::fuzz_target;
use sotto_media::audio::dtmf::TelephoneEvent;
use sotto_media::audio::{Wav, WavWriter};
use sotto_media::session::rtcp::{
    self, RtcpPacket, parse_compound, write_bye, write_rr, write_sdes_cname, write_sr,
};
use sotto_media::session::{PacketClass, RtpPacket, classify, is_rtcp};

fn check_classify(data: &[u8]) {
    let class = classify(data);
    match class {
        PacketClass::Rtp => assert!(!is_rtcp(data)),
        PacketClass::Rtcp => assert!(is_rtcp(data)),
        _ => {}
    }
    if matches!(data.first(), Some(128..=191)) {
        assert!(matches!(class, PacketClass::Rtp | PacketClass::Rtcp));
    }
}

fn check_rtp(data: &[u8]) {
    let Ok(p) = RtpPacket::parse(data) else {
        return;
    };
    assert!(p.payload.len() + 12 <= data.len());
    let mut buf = vec![0u8; 12 + p.payload.len()];
    // invariant: the buffer is exactly header + payload long.
    let n = p
        .write(&mut buf)
        .expect("RTP write into a large enough buffer");
    assert_eq!(n, buf.len());
    assert!(p.write(&mut buf[..n - 1]).is_none());
    let q = RtpPacket::parse(&buf[..n]).expect("written RTP packet parses");
    assert_eq!(p, q);
    check_classify(&buf[..n]);
    assert_eq!(classify(&buf[..n]) == PacketClass::Rtcp, is_rtcp(&buf[..n]));
}

/// Writes `p` with the matching writer, if one can represent it exactly.
fn write_one(p: &RtcpPacket, buf: &mut [u8]) -> Option<usize> {
    match p {
        RtcpPacket::SenderReport {
            ssrc,
            info,
            reports,
        } => Some(write_sr(buf, *ssrc, info, reports).expect("SR fits")),
        RtcpPacket::ReceiverReport { ssrc, reports } => {
            Some(write_rr(buf, *ssrc, reports).expect("RR fits"))
        }
        RtcpPacket::SourceDescription { chunks } => match chunks.as_slice() {
            [(ssrc, Some(cname))] if cname.len() <= 255 => {
                Some(write_sdes_cname(buf, *ssrc, cname).expect("SDES fits"))
            }
            _ => None,
        },
        RtcpPacket::Bye { ssrcs, reason } => match (ssrcs.as_slice(), reason.as_deref()) {
            ([ssrc], None) => Some(write_bye(buf, *ssrc, None).expect("BYE fits")),
            ([ssrc], Some(r)) if !r.is_empty() && r.len() <= 255 => {
                Some(write_bye(buf, *ssrc, Some(r)).expect("BYE fits"))
            }
            _ => None,
        },
        _ => None,
    }
}

fn check_rtcp(data: &[u8]) {
    let Ok(packets) = parse_compound(data) else {
        return;
    };
    assert!(!packets.is_empty());
    let mut compound = Vec::new();
    let mut expected = Vec::new();
    for p in &packets {
        if let RtcpPacket::SenderReport { reports, .. }
        | RtcpPacket::ReceiverReport { reports, .. } = p
        {
            assert!(reports.len() <= rtcp::MAX_REPORTS);
        }
        // Largest packet a writer makes: SR with 31 blocks, or 255 octets of text.
        let mut buf = [0u8; 28 + rtcp::MAX_REPORTS * rtcp::REPORT_BLOCK_LEN];
        let Some(n) = write_one(p, &mut buf) else {
            continue;
        };
        let again = parse_compound(&buf[..n]).expect("written RTCP packet parses");
        assert_eq!(again.as_slice(), std::slice::from_ref(p));
        compound.extend_from_slice(&buf[..n]);
        expected.push(p.clone());
    }
    if !compound.is_empty() {
        check_classify(&compound);
        let again = parse_compound(&compound).expect("written compound packet parses");
        assert_eq!(again, expected);
    }
}

fn check_dtmf(data: &[u8]) {
    let Ok(ev) = TelephoneEvent::parse(data) else {
        assert!(data.len() < 4);
        return;
    };
    let enc = ev.encode();
    // The R bit (0x40) is not kept; everything else is.
    assert_eq!(enc[0], data[0]);
    assert_eq!(enc[1], data[1] & !0x40);
    assert_eq!(enc[2..4], data[2..4]);
    assert_eq!(TelephoneEvent::parse(&enc), Ok(ev));
    if let Some(c) = ev.digit() {
        assert_eq!(sotto_media::audio::dtmf::digit_to_event(c), Some(ev.event));
    }
}

fn check_wav(data: &[u8]) {
    let Ok(wav) = Wav::parse(data) else {
        return;
    };
    assert!(wav.channels >= 1);
    assert_eq!(wav.samples.len() % usize::from(wav.channels), 0);
    assert!(wav.samples.len() * 2 <= data.len());
    if let Ok(mono) = wav.to_8k_mono() {
        assert!(mono.len() <= wav.frames());
    }
    let bytes = wav
        .to_bytes()
        .expect("a parsed WAV is small enough to write");
    assert_eq!(Wav::parse(&bytes), Ok(wav.clone()));
    if wav.channels == 1 {
        let mut w = WavWriter::new(std::io::Cursor::new(Vec::new()), wav.sample_rate)
            .expect("in-memory writer");
        w.write_samples(&wav.samples).expect("in-memory write");
        let out = w.finish().expect("in-memory finish").into_inner();
        assert_eq!(out, bytes);
    }
}

fuzz_target!(|data: &[u8]| {
    check_classify(data);
    check_rtp(data);
    check_rtcp(data);
    check_dtmf(data);
    check_wav(data);
});
