//! Unit tests of framing, limits and start lines.

use super::*;

const OPTS: &[u8] = b"OPTIONS sip:a@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/TCP 127.0.0.1;branch=z9hG4bK1\r\nTo: <sip:a@127.0.0.1>\r\nFrom: <sip:b@127.0.0.1>;tag=1\r\nCall-ID: x\r\nCSeq: 1 OPTIONS\r\nContent-Length: 3\r\n\r\nabc";

#[test]
fn frames_stream() {
    let l = Limits::default();
    assert_eq!(frame_stream(b"", &l).unwrap(), Frame::Incomplete);
    assert_eq!(
        frame_stream(b"\r\n\r\nOPTIONS", &l).unwrap(),
        Frame::KeepAlive { len: 4 }
    );
    assert_eq!(
        frame_stream(b"\r\n", &l).unwrap(),
        Frame::KeepAlive { len: 2 }
    );
    assert_eq!(frame_stream(b"\r\n\r", &l).unwrap(), Frame::Incomplete);
    for cut in 1..OPTS.len() {
        assert_eq!(
            frame_stream(&OPTS[..cut], &l).unwrap(),
            Frame::Incomplete,
            "cut {cut}"
        );
    }
    let mut two = OPTS.to_vec();
    two.extend_from_slice(OPTS);
    assert_eq!(
        frame_stream(&two, &l).unwrap(),
        Frame::Message { len: OPTS.len() }
    );
    let no_cl = b"OPTIONS sip:a@b SIP/2.0\r\nVia: x\r\n\r\n";
    assert_eq!(
        frame_stream(no_cl, &l),
        Err(ParseError::MissingContentLength)
    );
    let small = Limits {
        max_message_bytes: 40,
        ..Limits::default()
    };
    assert!(matches!(
        frame_stream(OPTS, &small),
        Err(ParseError::MessageTooLarge { .. })
    ));
    assert!(matches!(
        frame_stream(&[b'a'; 100], &small),
        Err(ParseError::MessageTooLarge { .. })
    ));
}

#[test]
fn limits_are_errors() {
    let b = Bytes::from_static(OPTS);
    let e = parse_message(
        b.clone(),
        &Limits {
            max_headers: 3,
            ..Limits::default()
        },
    )
    .unwrap_err();
    assert_eq!(e, ParseError::TooManyHeaders { limit: 3 });
    assert_eq!(e.status(), Some(513));
    let e = parse_message(
        b.clone(),
        &Limits {
            max_line_bytes: 20,
            ..Limits::default()
        },
    )
    .unwrap_err();
    assert!(matches!(
        e,
        ParseError::LineTooLong {
            limit_bytes: 20,
            ..
        }
    ));
    let e = parse_message(
        b,
        &Limits {
            max_message_bytes: 50,
            ..Limits::default()
        },
    )
    .unwrap_err();
    assert!(matches!(
        e,
        ParseError::MessageTooLarge {
            limit_bytes: 50,
            ..
        }
    ));
}

#[test]
fn start_lines() {
    let l = Limits::default();
    let p = |s: &'static [u8]| parse_message(Bytes::from_static(s), &l);
    assert!(matches!(
        p(b"SIP/2.0 99 Low\r\n\r\n"),
        Err(ParseError::InvalidStatusLine { .. })
    ));
    assert!(matches!(
        p(b"SIP/2.0 700 High\r\n\r\n"),
        Err(ParseError::InvalidStatusLine { .. })
    ));
    assert!(matches!(
        p(b"SIP/2.0 1000 x\r\n\r\n"),
        Err(ParseError::InvalidStatusLine { .. })
    ));
    assert!(p(b"SIP/2.0 200\r\n\r\n").is_ok());
    assert!(matches!(
        p(b"INVITE sip:a@b SIP/2.0 \r\n\r\n"),
        Err(ParseError::InvalidRequestLine { .. })
    ));
    assert!(matches!(
        p(b"INVITE sip:a@b SIP/2.x\r\n\r\n"),
        Err(ParseError::InvalidVersion { .. })
    ));
    assert!(matches!(
        p(b"INVITE  sip:a@b SIP/2.0\r\n\r\n"),
        Err(ParseError::InvalidRequestLine { .. })
    ));
    assert!(matches!(
        p(b"INVITE sip:a@b SIP/2.0\nVia: x\r\n\r\n"),
        Err(ParseError::BadLineEnding { .. })
    ));
    assert!(matches!(
        p(b"INVITE sip:a@b SIP/2.0\r\n folded\r\n\r\n"),
        Err(ParseError::InvalidHeaderLine { .. })
    ));
    assert!(matches!(
        p(b"INVITE sip:a@b SIP/2.0\r\nNoColon\r\n\r\n"),
        Err(ParseError::InvalidHeaderLine { .. })
    ));
    assert!(matches!(
        p(b"INVITE sip:a@b SIP/2.0\r\nBad Name: x\r\n\r\n"),
        Err(ParseError::InvalidHeaderName { .. })
    ));
    assert!(matches!(
        p(b"INVITE sip:a@b SIP/2.0\r\nX: \xff\r\n\r\n"),
        Err(ParseError::NotUtf8 { .. })
    ));
    assert!(matches!(p(b"\r\n\r\n"), Err(ParseError::Empty)));
    let m = p(b"\r\n\r\nINVITE sip:a@b SIP/9.12\r\n\r\n").unwrap();
    assert_eq!(
        m.version(),
        Version {
            major: 9,
            minor: 12
        }
    );
}
