//! Malformed and hostile input: errors name the line and the fault; no input panics;
//! truncation anywhere is handled; limits hold; the serializer refuses to emit what would
//! break the line structure or a k= line.

mod common;

use sotto_sdp::{Attribute, Crypto, EmitError, Limits, ParseError, ParseErrorKind, Session};

const HEAD: &str = "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n";

fn err(body: &str) -> ParseError {
    Session::parse(body.as_bytes()).expect_err(body)
}

#[test]
fn errors_name_line_and_fault() {
    use ParseErrorKind as K;
    let m = "m=audio 7100 RTP/AVP 0\r\n";
    let cases: Vec<(String, usize, ParseErrorKind)> = vec![
        ("".into(), 0, K::Empty),
        ("\r\n\r\n".into(), 0, K::Empty),
        ("o=- 1 1 IN IP4 127.0.0.1\r\n".into(), 1, K::MissingVersion),
        ("v=1\r\n".into(), 1, K::BadVersion),
        ("v=0\r\ns=-\r\n".into(), 2, K::Missing('o')),
        (
            "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\nt=0 0\r\n".into(),
            3,
            K::Missing('s'),
        ),
        (
            "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\n".into(),
            4,
            K::Missing('t'),
        ),
        (
            "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nm=audio 1 RTP/AVP 0\r\n".into(),
            4,
            K::Missing('t'),
        ),
        (
            "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\na=x\r\n".into(),
            4,
            K::Missing('t'),
        ),
        (
            "v=0\r\no=- 1 1 IN IP4\r\n".into(),
            2,
            K::BadOrigin("expected 6 fields"),
        ),
        (
            "v=0\r\no=-  1 1 IN IP4 127.0.0.1\r\n".into(),
            2,
            K::BadOrigin("expected 6 fields"),
        ),
        (
            "v=0\r\no=- x 1 IN IP4 127.0.0.1\r\n".into(),
            2,
            K::BadOrigin("session id"),
        ),
        (
            "v=0\r\no=- 1 99999999999999999999 IN IP4 1.1.1.1\r\n".into(),
            2,
            K::BadOrigin("session version"),
        ),
        (
            format!("{HEAD}c=IN IP4 127.0.0.1\r\n"),
            6,
            K::OutOfOrder('c'),
        ),
        (format!("{HEAD}s=again\r\n"), 6, K::OutOfOrder('s')),
        (format!("{HEAD}x=1\r\n"), 6, K::UnknownType('x')),
        (format!("{HEAD}A=1\r\n"), 6, K::NotTypeValue),
        (format!("{HEAD}a\r\n"), 6, K::NotTypeValue),
        (format!("{HEAD}\r\na=x\r\n"), 6, K::EmptyLine),
        (format!("{HEAD}a=\r\n"), 6, K::BadAttribute("name")),
        (
            format!("{HEAD}a=bad name:1\r\n"),
            6,
            K::BadAttribute("name"),
        ),
        (format!("{HEAD}a=x\ry\r\n"), 6, K::ControlCharacter(b'\r')),
        (format!("{HEAD}a=x\0\r\n"), 6, K::ControlCharacter(0)),
        (
            "v=0\r\no=- 1 1 IN IP4 ::1\r\ns=-\r\nb=AS\r\n".into(),
            4,
            K::BadBandwidth("expected <type>:<value>"),
        ),
        (
            "v=0\r\no=- 1 1 IN IP4 ::1\r\ns=-\r\nb=AS:x\r\n".into(),
            4,
            K::BadBandwidth("value"),
        ),
        (format!("{HEAD}b=AS:1\r\n"), 6, K::OutOfOrder('b')),
        (format!("{HEAD}a=x\r\nr=1\r\n"), 7, K::OutOfOrder('r')),
        (
            format!("{HEAD}t=1\r\n"),
            6,
            K::BadTiming("expected 2 fields"),
        ),
        (format!("{HEAD}m=audio\r\n"), 6, K::BadMedia("missing port")),
        (
            format!("{HEAD}m=audio 70000 RTP/AVP 0\r\n"),
            6,
            K::BadMedia("port"),
        ),
        (
            format!("{HEAD}m=audio 7100/x RTP/AVP 0\r\n"),
            6,
            K::BadMedia("port count"),
        ),
        (
            format!("{HEAD}m=audio 7100 RTP/AVP\r\n"),
            6,
            K::BadMedia("no format"),
        ),
        (
            format!("{HEAD}m=audio 7100 RTP/AVP 0 \r\n"),
            6,
            K::BadMedia("format"),
        ),
        (
            format!("{HEAD}m=audio 7100 RTP//AVP 0\r\n"),
            6,
            K::BadMedia("proto"),
        ),
        (format!("{HEAD}{m}t=0 0\r\n"), 7, K::OutOfOrder('t')),
        (
            format!("{HEAD}{m}a=x\r\nc=IN IP4 127.0.0.1\r\n"),
            8,
            K::OutOfOrder('c'),
        ),
        (format!("{HEAD}{m}i=a\r\ni=b\r\n"), 8, K::OutOfOrder('i')),
        (
            format!("{HEAD}{m}c=IN IP4\r\n"),
            7,
            K::BadConnection("expected 3 fields"),
        ),
        (format!("{HEAD}{m}y=1\r\n"), 7, K::UnknownType('y')),
    ];
    for (body, line, kind) in cases {
        let e = err(&body);
        assert_eq!((e.line, &e.kind), (line, &kind), "{body:?}");
        assert!(
            e.to_string().starts_with(&format!("SDP line {line}: ")),
            "{e}"
        );
    }
    // Invalid UTF-8 names its line.
    let mut b = format!("{HEAD}a=x").into_bytes();
    b.push(0xff);
    let e = Session::parse(&b).unwrap_err();
    assert_eq!((e.line, e.kind), (6, ParseErrorKind::NotUtf8));
}

#[test]
fn tolerances() {
    // LF only, no final line end, trailing empty lines.
    let s1 = Session::parse(format!("{HEAD}a=x").as_bytes()).unwrap();
    let s2 = Session::parse(format!("{HEAD}a=x\r\n\r\n\n").as_bytes()).unwrap();
    let s3 = Session::parse(format!("{HEAD}a=x\r\n").replace("\r\n", "\n").as_bytes()).unwrap();
    assert_eq!(s1, s2);
    assert_eq!(s1, s3);
    assert_eq!(s1.to_sdp().unwrap(), format!("{HEAD}a=x\r\n"));
}

#[test]
fn limits_hold() {
    let l = Limits::default();
    let big = format!("{HEAD}{}", "a=x\r\n".repeat(l.max_bytes / 5));
    assert_eq!(
        err(&big).kind,
        ParseErrorKind::TooLarge { limit: l.max_bytes }
    );
    let many = format!("{HEAD}{}", "a=x\r\n".repeat(l.max_lines));
    let e = err(&many);
    assert_eq!(
        (e.line, e.kind),
        (
            l.max_lines + 1,
            ParseErrorKind::TooManyLines { limit: l.max_lines }
        )
    );
    let long = format!("{HEAD}a=x:{}\r\n", "y".repeat(l.max_line_bytes));
    assert_eq!(
        err(&long).kind,
        ParseErrorKind::LineTooLong {
            limit: l.max_line_bytes
        }
    );
    let media = format!(
        "{HEAD}{}",
        "m=audio 0 RTP/AVP 0\r\n".repeat(l.max_media + 1)
    );
    let e = err(&media);
    assert_eq!(
        (e.line, e.kind),
        (
            6 + l.max_media,
            ParseErrorKind::TooManyMedia { limit: l.max_media }
        )
    );
    let fmts = format!(
        "{HEAD}m=audio 1 RTP/AVP{}\r\n",
        " 0".repeat(l.max_formats + 1)
    );
    assert_eq!(
        err(&fmts).kind,
        ParseErrorKind::TooManyFormats {
            limit: l.max_formats
        }
    );
    // Just under the limits parses.
    let tight = Limits {
        max_media: 2,
        ..Limits::default()
    };
    let two = format!("{HEAD}{}", "m=audio 0 RTP/AVP 0\r\n".repeat(2));
    assert_eq!(
        Session::parse_with_limits(two.as_bytes(), &tight)
            .unwrap()
            .media
            .len(),
        2
    );
}

#[test]
fn serializer_refuses_injection_and_key_lines() {
    let base = Session::parse(format!("{HEAD}m=audio 1 RTP/AVP 0\r\n").as_bytes()).unwrap();
    let mut s = base.clone();
    s.key = Some("clear:secret".into());
    assert_eq!(s.to_sdp().unwrap_err(), EmitError::KeyLine);
    let mut s = base.clone();
    s.media[0].key = Some("clear:secret".into());
    assert_eq!(s.to_sdp().unwrap_err(), EmitError::KeyLine);
    // A parsed k= is kept (visible to the caller) but not re-emitted.
    let with_k = Session::parse(format!("{HEAD}k=prompt\r\n").as_bytes()).unwrap();
    assert_eq!(with_k.key.as_deref(), Some("prompt"));
    assert_eq!(with_k.to_sdp().unwrap_err(), EmitError::KeyLine);
    let mut s = base.clone();
    s.name = "x\r\na=crypto:1 evil".into();
    assert_eq!(s.to_sdp().unwrap_err(), EmitError::ControlCharacter("s="));
    let mut s = base.clone();
    s.media[0].attributes.push(Attribute::new("x", "1\n2"));
    assert_eq!(
        s.to_sdp().unwrap_err(),
        EmitError::ControlCharacter("a= value")
    );
    let mut s = base.clone();
    s.origin.username = "two words".into();
    assert_eq!(s.to_sdp().unwrap_err(), EmitError::BadField("o= username"));
    let mut s = base.clone();
    s.media[0].formats.clear();
    assert_eq!(s.to_sdp().unwrap_err(), EmitError::NoFormats);
    let mut s = base;
    s.media[0].attributes.push(Attribute::property("bad:name"));
    assert_eq!(s.to_sdp().unwrap_err(), EmitError::BadField("a= name"));
}

fn bodies() -> Vec<Vec<u8>> {
    let mut v = vec![
        common::read("fixtures/linphone_sdes_offer.sdp"),
        common::read("fixtures/linphone_dtls_offer.sdp"),
    ];
    let json: serde_json::Value =
        serde_json::from_slice(&common::read("vectors/sdes/rfc4568_crypto.json")).unwrap();
    for ex in json["sdp_examples"].as_array().unwrap() {
        let mut b = String::new();
        for l in ex["lines"].as_array().unwrap() {
            b.push_str(l.as_str().unwrap());
            b.push_str("\r\n");
        }
        v.push(b.into_bytes());
    }
    v
}

/// If a (possibly damaged) body parses, what it serializes to parses back to the same model.
fn check_stable(body: &[u8]) -> bool {
    match Session::parse(body) {
        Ok(s) => {
            if let Ok(text) = s.to_sdp() {
                assert_eq!(Session::parse(text.as_bytes()).unwrap(), s);
            }
            true
        }
        Err(_) => false,
    }
}

#[test]
fn body_truncated_at_every_byte_never_panics() {
    for body in bodies() {
        let text = String::from_utf8(body.clone()).unwrap();
        let first_m = text.find("\r\nm=").unwrap() + 2;
        for cut in 0..=body.len() {
            let ok = check_stable(&body[..cut]);
            // Before the stop time of the first t= line the description is incomplete.
            let t = text.find("\r\nt=").unwrap() + 2;
            let t_stop = t + text[t..].find(' ').unwrap() + 1;
            if cut < t_stop {
                assert!(!ok, "cut {cut} parsed");
            }
            if cut > first_m && cut < first_m + 8 {
                assert!(!ok, "cut {cut} inside 'm=audio ' parsed");
            }
        }
    }
}

/// The byte offset after which a truncated line of this type can still be valid; cuts before
/// it must fail.
fn must_fail_before(line: &str) -> usize {
    let last_space = line.rfind(' ').map_or(line.len(), |i| i + 1);
    match line.get(..2).unwrap_or("") {
        "v=" => line.len(),
        "o=" | "c=" | "t=" => last_space,
        "m=" => {
            // m=<media> <port> <proto> <fmt>: the first format starts after the third space.
            line.match_indices(' ')
                .nth(2)
                .map_or(line.len(), |(i, _)| i + 1)
        }
        "b=" => line.find(':').map_or(line.len(), |i| i + 1),
        _ => 2,
    }
}

#[test]
fn every_line_truncated_at_every_position() {
    let mut cases = 0usize;
    for body in bodies() {
        let text = String::from_utf8(body).unwrap();
        let lines: Vec<&str> = text.split_terminator("\r\n").collect();
        for (i, line) in lines.iter().enumerate() {
            for cut in 0..line.len() {
                let mut damaged = lines.clone();
                damaged[i] = &line[..cut];
                let b = damaged.join("\r\n") + "\r\n";
                let ok = check_stable(b.as_bytes());
                cases += 1;
                // (An empty last line is a tolerated trailing empty line.)
                if cut < must_fail_before(line) && !(cut == 0 && i + 1 == lines.len()) {
                    assert!(
                        !ok,
                        "line {} cut at {cut} parsed: {:?}",
                        i + 1,
                        &line[..cut]
                    );
                    let e = Session::parse(b.as_bytes()).unwrap_err();
                    assert!(
                        e.line == i + 1 || e.line > lines.len() || e.line <= i + 2,
                        "{e}"
                    );
                }
                // A truncated a=crypto: the key no longer decodes until its base64 is whole.
                if let Some(v) = line.strip_prefix("a=crypto:") {
                    let start = 9 + v.find("inline:").unwrap() + 7;
                    let b64_len = v[start - 9..]
                        .find(['|', ' '])
                        .unwrap_or(v.len() - (start - 9));
                    let unpadded = v[start - 9..start - 9 + b64_len]
                        .trim_end_matches('=')
                        .len();
                    let cut_value = line[..cut].strip_prefix("a=crypto:");
                    if cut < start + unpadded {
                        let r = cut_value.map(Crypto::parse);
                        assert!(!matches!(r, Some(Ok(_))), "crypto cut at {cut} decoded");
                    }
                }
            }
        }
    }
    assert!(cases > 2000, "{cases}");
}
