//! SRTCP (RFC 3711 §3.4; RFC 7714 §9 for AES-GCM): protect and unprotect of compound RTCP
//! packets, on the same session as SRTP.

use sotto_crypto::cipher::GCM_TAG_LEN;

use super::{
    Cipher, MAX_SRTCP_INDEX, SRTCP_INDEX_LEN, SrtpSession, cm_iv, gcm_iv, split, sub, sub_mut,
};
use crate::hook::PacketMut;
use crate::rtp::{RTCP_HEADER_LEN, RtcpHeader};
use crate::srtp::SrtpError;
use crate::srtp::suite::CipherKind;

impl SrtpSession {
    /// Protects the compound RTCP packet `buf[..len]` in place and returns the SRTCP packet
    /// length. `buf` must have room for [`SrtpSession::rtcp_overhead`] more bytes.
    pub fn protect_rtcp(&mut self, buf: &mut [u8], len: usize) -> Result<usize, SrtpError> {
        if len > buf.len() {
            return Err(SrtpError::BufferTooSmall { need: len });
        }
        let mut len = len;
        if let Some(m) = self.modifier.as_mut() {
            let mut p = PacketMut::new(buf, len);
            m.outgoing_rtcp(&mut p);
            len = p.len();
        }
        let hdr = RtcpHeader::parse(sub(buf, 0, len)?)?;
        let tag_len = self.suite.rtcp_tag_len();
        let mki_len = self.mki_len;
        let total = len + SRTCP_INDEX_LEN + mki_len + tag_len;
        if total > buf.len() {
            return Err(SrtpError::BufferTooSmall { need: total });
        }
        let si = self.stream_or_create(hdr.ssrc)?;
        let Some(st) = self.streams.get_mut(si) else {
            return Err(SrtpError::InvalidPolicy("stream table out of sync"));
        };
        let Some(key) = self.keys.get_mut(self.active) else {
            return Err(SrtpError::UnknownMki);
        };
        if key.srtcp_used >= self.limits.srtcp_packets || st.tx_rtcp_index > MAX_SRTCP_INDEX {
            return Err(SrtpError::KeyLimitReached);
        }
        let index = st.tx_rtcp_index;
        let encrypt = self.encrypt_rtcp && !matches!(key.rtcp.cipher, Cipher::Null);
        let eword = (u32::from(encrypt) << 31 | index).to_be_bytes();
        let buf = sub_mut(buf, 0, total)?;
        match &key.rtcp.cipher {
            Cipher::Gcm(aead) => {
                // header | ciphertext | tag | E+index | MKI (RFC 7714 §9.2)
                let nonce = gcm_iv(&key.rtcp.salt, hdr.ssrc, u64::from(index));
                if encrypt {
                    let (pkt, trailer) = split(buf, len)?;
                    let (tag, rest) = split(trailer, GCM_TAG_LEN)?;
                    let mut aad = [0u8; RTCP_HEADER_LEN + SRTCP_INDEX_LEN];
                    let (a, b) = aad.split_at_mut(RTCP_HEADER_LEN);
                    a.copy_from_slice(sub(pkt, 0, RTCP_HEADER_LEN)?);
                    b.copy_from_slice(&eword);
                    let (_, payload) = split(pkt, RTCP_HEADER_LEN)?;
                    aead.seal_in_place_detached(&nonce, &aad, payload, tag)?;
                    sub_mut(rest, 0, SRTCP_INDEX_LEN)?.copy_from_slice(&eword);
                } else {
                    // AAD = packet || E+index: make it contiguous in the tag's room first.
                    let mut t = [0u8; GCM_TAG_LEN];
                    sub_mut(buf, len, len + SRTCP_INDEX_LEN)?.copy_from_slice(&eword);
                    aead.seal_in_place_detached(
                        &nonce,
                        sub(buf, 0, len + SRTCP_INDEX_LEN)?,
                        &mut [],
                        &mut t,
                    )?;
                    sub_mut(buf, len, len + GCM_TAG_LEN)?.copy_from_slice(&t);
                    let ew_at = len + GCM_TAG_LEN;
                    sub_mut(buf, ew_at, ew_at + SRTCP_INDEX_LEN)?.copy_from_slice(&eword);
                }
                sub_mut(buf, len + GCM_TAG_LEN + SRTCP_INDEX_LEN, total)?.copy_from_slice(&key.mki);
            }
            cipher => {
                // header | payload | E+index | MKI | tag (RFC 3711 §3.4)
                if let (Cipher::Cm(ctr), true) = (cipher, encrypt) {
                    let iv = cm_iv(&key.rtcp.salt, hdr.ssrc, u64::from(index));
                    ctr.apply_keystream(&iv, sub_mut(buf, RTCP_HEADER_LEN, len)?);
                }
                let auth_end = len + SRTCP_INDEX_LEN;
                sub_mut(buf, len, auth_end)?.copy_from_slice(&eword);
                let (authed, trailer) = split(buf, auth_end)?;
                let (mki_out, tag) = split(trailer, mki_len)?;
                mki_out.copy_from_slice(&key.mki);
                if let Some(auth) = &key.rtcp.auth {
                    auth.compute(&[authed], tag)?;
                }
            }
        }
        st.tx_rtcp_index = index + 1;
        key.srtcp_used += 1;
        Ok(total)
    }

    /// Verifies and decrypts the SRTCP packet `buf` in place and returns the length of the
    /// RTCP packet now at `buf[..n]`. On error the contents of `buf` are unspecified.
    pub fn unprotect_rtcp(&mut self, buf: &mut [u8]) -> Result<usize, SrtpError> {
        let len = buf.len();
        let hdr = RtcpHeader::parse(buf)?;
        let tag_len = self.suite.rtcp_tag_len();
        let mki_len = self.mki_len;
        let need = RTCP_HEADER_LEN + SRTCP_INDEX_LEN + mki_len + tag_len;
        if len < need {
            return Err(SrtpError::Truncated { len, need });
        }
        let gcm = matches!(self.suite.cipher(), CipherKind::AesGcm);
        // HMAC: ct | E+index | MKI | tag.  GCM: ct | tag | E+index | MKI.
        let (ct_end, ew_at, mki_at, tag_at) = if gcm {
            let mki_at = len - mki_len;
            let ew_at = mki_at - SRTCP_INDEX_LEN;
            (ew_at - tag_len, ew_at, mki_at, ew_at - tag_len)
        } else {
            let tag_at = len - tag_len;
            let mki_at = tag_at - mki_len;
            (
                mki_at - SRTCP_INDEX_LEN,
                mki_at - SRTCP_INDEX_LEN,
                mki_at,
                tag_at,
            )
        };
        let ki = self.key_by_mki(sub(buf, mki_at, mki_at + mki_len)?)?;
        let mut eword = [0u8; SRTCP_INDEX_LEN];
        eword.copy_from_slice(sub(buf, ew_at, ew_at + SRTCP_INDEX_LEN)?);
        let ew = u32::from_be_bytes(eword);
        let encrypted = ew >> 31 == 1;
        let index = ew & MAX_SRTCP_INDEX;
        let si = self.find_stream(hdr.ssrc);
        if let Some(st) = si.and_then(|i| self.streams.get(i)) {
            st.rtcp_replay.check(u64::from(index))?;
        }
        let Some(key) = self.keys.get_mut(ki) else {
            return Err(SrtpError::UnknownMki);
        };
        if key.srtcp_used >= self.limits.srtcp_packets {
            return Err(SrtpError::KeyLimitReached);
        }
        match &key.rtcp.cipher {
            Cipher::Gcm(aead) => {
                let nonce = gcm_iv(&key.rtcp.salt, hdr.ssrc, u64::from(index));
                let mut tag = [0u8; GCM_TAG_LEN];
                tag.copy_from_slice(sub(buf, tag_at, tag_at + GCM_TAG_LEN)?);
                let r = if encrypted {
                    let mut aad = [0u8; RTCP_HEADER_LEN + SRTCP_INDEX_LEN];
                    let (a, b) = aad.split_at_mut(RTCP_HEADER_LEN);
                    a.copy_from_slice(sub(buf, 0, RTCP_HEADER_LEN)?);
                    b.copy_from_slice(&eword);
                    aead.open_in_place_detached(
                        &nonce,
                        &aad,
                        sub_mut(buf, RTCP_HEADER_LEN, ct_end)?,
                        &tag,
                    )
                } else {
                    // AAD = packet || E+index: move the index word next to the packet.
                    sub_mut(buf, ct_end, ct_end + SRTCP_INDEX_LEN)?.copy_from_slice(&eword);
                    aead.open_in_place_detached(
                        &nonce,
                        sub(buf, 0, ct_end + SRTCP_INDEX_LEN)?,
                        &mut [],
                        &tag,
                    )
                };
                r.map_err(|_| SrtpError::AuthenticationFailed)?;
            }
            cipher => {
                if let Some(auth) = &key.rtcp.auth {
                    let authed = sub(buf, 0, ew_at + SRTCP_INDEX_LEN)?;
                    if !auth.verify(&[authed], sub(buf, tag_at, tag_at + tag_len)?) {
                        return Err(SrtpError::AuthenticationFailed);
                    }
                }
                if let (Cipher::Cm(ctr), true) = (cipher, encrypted) {
                    let iv = cm_iv(&key.rtcp.salt, hdr.ssrc, u64::from(index));
                    ctr.apply_keystream(&iv, sub_mut(buf, RTCP_HEADER_LEN, ct_end)?);
                }
            }
        }
        key.srtcp_used += 1;
        let si = match si {
            Some(i) => i,
            None => self.stream_or_create(hdr.ssrc)?,
        };
        if let Some(st) = self.streams.get_mut(si) {
            st.rtcp_replay.update(u64::from(index));
        }
        let mut n = ct_end;
        if let Some(m) = self.modifier.as_mut() {
            let mut p = PacketMut::new(buf, n);
            m.incoming_rtcp(&mut p);
            n = p.len();
        }
        Ok(n)
    }
}
