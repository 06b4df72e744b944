//! The pipeline's modules, one file each, in chain order.

pub mod anti_flood;
pub mod authentication;
pub mod federation;
pub mod forward;
pub mod registrar;
pub mod router;
pub mod sanity;
pub mod store_outage;

pub use anti_flood::AntiFlood;
pub use authentication::Authentication;
pub use federation::Federation;
pub use forward::Forward;
pub use registrar::Registrar;
pub use router::Router;
pub use sanity::Sanity;

#[cfg(test)]
pub(crate) mod testutil {
    //! Shared helpers for the modules' unit tests.

    use std::net::SocketAddr;
    use std::time::SystemTime;

    use sotto_sip::message::{Message, Request};
    use sotto_sip::parse::{Limits, parse_message};
    use sotto_sip::transport::TransportKind;

    use crate::pipeline::{Locality, RequestContext};

    /// `example.test` on UDP 127.0.0.1:5060 and TLS 127.0.0.1:5061.
    pub(crate) fn locality() -> Locality {
        Locality::new(
            vec!["example.test".into()],
            vec![
                (TransportKind::Udp, "127.0.0.1:5060".parse().unwrap()),
                (TransportKind::Tls, "127.0.0.1:5061".parse().unwrap()),
            ],
        )
    }

    pub(crate) fn parse_request(text: &str) -> Request {
        match parse_message(bytes::Bytes::from(text.to_owned()), &Limits::default()) {
            Ok(Message::Request(r)) => r,
            other => panic!("not a request: {other:?}"),
        }
    }

    pub(crate) fn with_source(req: Request, source: &str) -> RequestContext {
        let source: SocketAddr = source.parse().unwrap();
        RequestContext::new(req, source, TransportKind::Udp, SystemTime::now())
    }

    pub(crate) fn ctx_from(source: &str) -> RequestContext {
        let req = parse_request(
            "OPTIONS sip:example.test SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1;branch=z9hG4bK1\r\n\
             To: <sip:example.test>\r\nFrom: <sip:a@example.test>;tag=1\r\nCall-ID: x\r\n\
             CSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n",
        );
        with_source(req, source)
    }
}
