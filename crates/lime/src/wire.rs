//! Reading LIME's big-endian wire and storage formats: one bounds-checked cursor for the key
//! server protocol ([`Reader`], `None` when the bytes run out) and for stored state
//! ([`Fields`], a [`LimeError::Malformed`] naming what was read).

use crate::LimeError;

/// A cursor over bytes; every read is bounds-checked.
pub(crate) struct Reader<'a>(pub(crate) &'a [u8]);

impl<'a> Reader<'a> {
    pub(crate) fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if self.0.len() < n {
            return None;
        }
        let (a, b) = self.0.split_at(n);
        self.0 = b;
        Some(a)
    }
    pub(crate) fn u8(&mut self) -> Option<u8> {
        self.take(1).map(|b| b[0])
    }
    pub(crate) fn u16(&mut self) -> Option<usize> {
        self.take(2)
            .map(|b| usize::from(u16::from_be_bytes([b[0], b[1]])))
    }
    pub(crate) fn u32(&mut self) -> Option<u32> {
        self.take(4)
            .map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }
    pub(crate) fn u64(&mut self) -> Option<u64> {
        let b = self.take(8)?;
        Some(u64::from_be_bytes([
            b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7],
        ]))
    }
    /// A part prefixed with its 2-octet length.
    pub(crate) fn var(&mut self) -> Option<&'a [u8]> {
        let n = self.u16()?;
        self.take(n)
    }
    pub(crate) fn done(&self) -> bool {
        self.0.is_empty()
    }
}

/// A [`Reader`] over stored state: running out is [`LimeError::Malformed`] of `what`.
pub(crate) struct Fields<'a> {
    r: Reader<'a>,
    what: &'static str,
}

impl<'a> Fields<'a> {
    pub(crate) fn new(b: &'a [u8], what: &'static str) -> Self {
        Fields { r: Reader(b), what }
    }
    fn ok<T>(&self, v: Option<T>) -> Result<T, LimeError> {
        v.ok_or(LimeError::Malformed(self.what))
    }
    pub(crate) fn take(&mut self, n: usize) -> Result<&'a [u8], LimeError> {
        let v = self.r.take(n);
        self.ok(v)
    }
    pub(crate) fn u8(&mut self) -> Result<u8, LimeError> {
        let v = self.r.u8();
        self.ok(v)
    }
    pub(crate) fn u16(&mut self) -> Result<usize, LimeError> {
        let v = self.r.u16();
        self.ok(v)
    }
    pub(crate) fn u32(&mut self) -> Result<u32, LimeError> {
        let v = self.r.u32();
        self.ok(v)
    }
    pub(crate) fn u64(&mut self) -> Result<u64, LimeError> {
        let v = self.r.u64();
        self.ok(v)
    }
    pub(crate) fn var(&mut self) -> Result<&'a [u8], LimeError> {
        let v = self.r.var();
        self.ok(v)
    }
}

/// Appends `b` prefixed with its 2-octet length.
pub(crate) fn put_var(o: &mut Vec<u8>, b: &[u8]) {
    o.extend_from_slice(&(b.len() as u16).to_be_bytes());
    o.extend_from_slice(b);
}
