//! The "socket" OpenSSL reads and writes: datagrams in memory. Each `read` hands OpenSSL
//! one whole datagram (or `WouldBlock`); each `write` is one datagram out.

use std::collections::VecDeque;
use std::io;

/// Datagrams between OpenSSL and the session.
#[derive(Debug, Default)]
pub(super) struct DatagramChannel {
    /// Received, not yet read by OpenSSL.
    pub(super) incoming: VecDeque<Vec<u8>>,
    /// Written by OpenSSL, not yet taken.
    pub(super) outgoing: Vec<Vec<u8>>,
}

impl io::Read for DatagramChannel {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self.incoming.pop_front() {
            None => Err(io::ErrorKind::WouldBlock.into()),
            Some(d) => {
                // A datagram longer than OpenSSL's buffer is truncated, as a UDP socket does.
                let n = d.len().min(buf.len());
                buf[..n].copy_from_slice(&d[..n]);
                Ok(n)
            }
        }
    }
}

impl io::Write for DatagramChannel {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.outgoing.push(buf.to_vec());
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}
