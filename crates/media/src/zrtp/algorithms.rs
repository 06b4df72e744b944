//! The algorithms ZRTP negotiates (RFC 6189 §5.1.2–§5.1.6), their 4-character names on the
//! wire, and the choice between two Hellos (§4.1.2).

use sotto_crypto::agreement::AgreementAlgorithm;
use sotto_crypto::hash::HashAlgorithm;
use sotto_crypto::mac::MacAlgorithm;

use crate::srtp::SrtpSuite;

/// A negotiated hash (§5.1.2): the hash of the protocol transcript, the KDF's HMAC.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ZrtpHash {
    /// `S256`: SHA-256 (mandatory).
    S256,
    /// `S384`: SHA-384.
    S384,
}

/// A negotiated cipher (§5.1.3): the SRTP cipher and the Confirm messages' AES-CFB.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ZrtpCipher {
    /// `AES1`: AES with a 128-bit key (mandatory).
    Aes1,
    /// `AES3`: AES with a 256-bit key.
    Aes3,
}

/// A negotiated SRTP authentication tag (§5.1.4).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ZrtpAuthTag {
    /// `HS32`: HMAC-SHA1, 32-bit tag (mandatory).
    Hs32,
    /// `HS80`: HMAC-SHA1, 80-bit tag (mandatory).
    Hs80,
}

/// A key agreement (§5.1.5). Curve25519 has two names in use: bzrtp (Linphone) says `X255`,
/// GNU ZRTP says `E255`; both are the same algorithm and both are offered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ZrtpKeyAgreement {
    /// `DH3k`: finite-field DH on the RFC 3526 3072-bit group (mandatory).
    Dh3k,
    /// `DH2k`: finite-field DH on the RFC 3526 2048-bit group.
    Dh2k,
    /// `X255`: Curve25519 (bzrtp's name).
    X255,
    /// `E255`: Curve25519 (GNU ZRTP's name).
    E255,
    /// `X448`: Curve448.
    X448,
}

/// A SAS rendering (§5.1.6).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ZrtpSasType {
    /// `B32 `: four base-32 characters (mandatory).
    B32,
    /// `B256`: two PGP words.
    B256,
}

/// One family of algorithms: names on the wire, the mandatory member.
pub trait Algorithm: Copy + Eq + Sized + 'static {
    /// Every member, in the order of the default preference.
    const ALL: &'static [Self];
    /// The member every endpoint supports, listed or not (§5.1).
    const MANDATORY: &'static [Self];
    /// The 4-character name.
    fn name(self) -> [u8; 4];
    /// The member a name stands for.
    fn from_name(name: &[u8]) -> Option<Self> {
        Self::ALL.iter().copied().find(|a| a.name() == name)
    }
    /// The name as text.
    fn label(self) -> String {
        String::from_utf8_lossy(&self.name()).trim_end().to_owned()
    }
}

impl Algorithm for ZrtpHash {
    const ALL: &'static [Self] = &[ZrtpHash::S256, ZrtpHash::S384];
    const MANDATORY: &'static [Self] = &[ZrtpHash::S256];
    fn name(self) -> [u8; 4] {
        match self {
            ZrtpHash::S256 => *b"S256",
            ZrtpHash::S384 => *b"S384",
        }
    }
}

impl Algorithm for ZrtpCipher {
    const ALL: &'static [Self] = &[ZrtpCipher::Aes1, ZrtpCipher::Aes3];
    const MANDATORY: &'static [Self] = &[ZrtpCipher::Aes1];
    fn name(self) -> [u8; 4] {
        match self {
            ZrtpCipher::Aes1 => *b"AES1",
            ZrtpCipher::Aes3 => *b"AES3",
        }
    }
}

impl Algorithm for ZrtpAuthTag {
    const ALL: &'static [Self] = &[ZrtpAuthTag::Hs80, ZrtpAuthTag::Hs32];
    const MANDATORY: &'static [Self] = &[ZrtpAuthTag::Hs32, ZrtpAuthTag::Hs80];
    fn name(self) -> [u8; 4] {
        match self {
            ZrtpAuthTag::Hs32 => *b"HS32",
            ZrtpAuthTag::Hs80 => *b"HS80",
        }
    }
}

impl Algorithm for ZrtpKeyAgreement {
    const ALL: &'static [Self] = &[
        ZrtpKeyAgreement::X255,
        ZrtpKeyAgreement::E255,
        ZrtpKeyAgreement::X448,
        ZrtpKeyAgreement::Dh3k,
        ZrtpKeyAgreement::Dh2k,
    ];
    const MANDATORY: &'static [Self] = &[ZrtpKeyAgreement::Dh3k];
    fn name(self) -> [u8; 4] {
        match self {
            ZrtpKeyAgreement::Dh3k => *b"DH3k",
            ZrtpKeyAgreement::Dh2k => *b"DH2k",
            ZrtpKeyAgreement::X255 => *b"X255",
            ZrtpKeyAgreement::E255 => *b"E255",
            ZrtpKeyAgreement::X448 => *b"X448",
        }
    }
}

impl Algorithm for ZrtpSasType {
    const ALL: &'static [Self] = &[ZrtpSasType::B32, ZrtpSasType::B256];
    const MANDATORY: &'static [Self] = &[ZrtpSasType::B32];
    fn name(self) -> [u8; 4] {
        match self {
            ZrtpSasType::B32 => *b"B32 ",
            ZrtpSasType::B256 => *b"B256",
        }
    }
}

impl ZrtpHash {
    /// The hash of the crypto API.
    pub fn hash(self) -> HashAlgorithm {
        match self {
            ZrtpHash::S256 => HashAlgorithm::Sha256,
            ZrtpHash::S384 => HashAlgorithm::Sha384,
        }
    }
    /// The HMAC of the crypto API.
    pub fn mac(self) -> MacAlgorithm {
        match self {
            ZrtpHash::S256 => MacAlgorithm::Sha256,
            ZrtpHash::S384 => MacAlgorithm::Sha384,
        }
    }
    /// Output length in bytes.
    pub fn output_len(self) -> usize {
        match self {
            ZrtpHash::S256 => 32,
            ZrtpHash::S384 => 48,
        }
    }
}

impl ZrtpCipher {
    /// The AES key length in bytes.
    pub fn key_len(self) -> usize {
        match self {
            ZrtpCipher::Aes1 => 16,
            ZrtpCipher::Aes3 => 32,
        }
    }

    /// The SRTP suite this cipher and `tag` key (§5.1.3, §5.1.4).
    pub fn srtp_suite(self, tag: ZrtpAuthTag) -> SrtpSuite {
        match (self, tag) {
            (ZrtpCipher::Aes1, ZrtpAuthTag::Hs80) => SrtpSuite::AesCm128HmacSha1_80,
            (ZrtpCipher::Aes1, ZrtpAuthTag::Hs32) => SrtpSuite::AesCm128HmacSha1_32,
            (ZrtpCipher::Aes3, ZrtpAuthTag::Hs80) => SrtpSuite::Aes256CmHmacSha1_80,
            (ZrtpCipher::Aes3, ZrtpAuthTag::Hs32) => SrtpSuite::Aes256CmHmacSha1_32,
        }
    }
}

impl ZrtpKeyAgreement {
    /// The key agreement of the crypto API.
    pub fn agreement(self) -> AgreementAlgorithm {
        match self {
            ZrtpKeyAgreement::Dh3k => AgreementAlgorithm::Ffdh3072,
            ZrtpKeyAgreement::Dh2k => AgreementAlgorithm::Ffdh2048,
            ZrtpKeyAgreement::X255 | ZrtpKeyAgreement::E255 => AgreementAlgorithm::X25519,
            ZrtpKeyAgreement::X448 => AgreementAlgorithm::X448,
        }
    }

    /// The length of a public value in DHPart messages, in bytes.
    pub fn public_len(self) -> usize {
        self.agreement().public_len()
    }

    /// Relative cost, cheapest first: when two Hellos prefer different agreements, the
    /// cheaper one is used (§4.1.2; bzrtp orders DH2k, Curve25519, Curve448, DH3k).
    fn cost(self) -> u8 {
        match self {
            ZrtpKeyAgreement::Dh2k => 0,
            ZrtpKeyAgreement::X255 | ZrtpKeyAgreement::E255 => 1,
            ZrtpKeyAgreement::X448 => 2,
            ZrtpKeyAgreement::Dh3k => 3,
        }
    }
}

/// The algorithms an endpoint offers, most preferred first; at most 7 of each (the Hello's
/// counts are 4 bits; §5.2 allows 7).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ZrtpPreferences {
    /// Hashes.
    pub hashes: Vec<ZrtpHash>,
    /// Ciphers.
    pub ciphers: Vec<ZrtpCipher>,
    /// SRTP authentication tags.
    pub auth_tags: Vec<ZrtpAuthTag>,
    /// Key agreements.
    pub key_agreements: Vec<ZrtpKeyAgreement>,
    /// SAS renderings.
    pub sas_types: Vec<ZrtpSasType>,
}

impl Default for ZrtpPreferences {
    /// Curve25519 (both names), Curve448, then DH3k; SHA-256 then SHA-384; AES-256 then
    /// AES-128; 80-bit tags before 32-bit; base-32 SAS (what Linphone shows) before words.
    fn default() -> Self {
        ZrtpPreferences {
            hashes: vec![ZrtpHash::S256, ZrtpHash::S384],
            ciphers: vec![ZrtpCipher::Aes3, ZrtpCipher::Aes1],
            auth_tags: vec![ZrtpAuthTag::Hs80, ZrtpAuthTag::Hs32],
            key_agreements: vec![
                ZrtpKeyAgreement::X255,
                ZrtpKeyAgreement::E255,
                ZrtpKeyAgreement::X448,
                ZrtpKeyAgreement::Dh3k,
            ],
            sas_types: vec![ZrtpSasType::B32, ZrtpSasType::B256],
        }
    }
}

impl ZrtpPreferences {
    /// Only `agreement` as key agreement (benchmarks, tests, forcing a peer's choice).
    pub fn with_key_agreement(agreement: ZrtpKeyAgreement) -> Self {
        ZrtpPreferences {
            key_agreements: vec![agreement],
            ..ZrtpPreferences::default()
        }
    }

    /// Whether every list is non-empty and at most 7 long, without repeats.
    pub fn is_valid(&self) -> bool {
        fn ok<T: PartialEq>(v: &[T]) -> bool {
            !v.is_empty() && v.len() <= 7 && v.iter().enumerate().all(|(i, a)| !v[..i].contains(a))
        }
        ok(&self.hashes)
            && ok(&self.ciphers)
            && ok(&self.auth_tags)
            && ok(&self.key_agreements)
            && ok(&self.sas_types)
    }
}

/// What one Hello offers (names it does not know are dropped; mandatory ones are implied).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Offered {
    /// Hashes.
    pub hashes: Vec<ZrtpHash>,
    /// Ciphers.
    pub ciphers: Vec<ZrtpCipher>,
    /// Authentication tags.
    pub auth_tags: Vec<ZrtpAuthTag>,
    /// Key agreements (`Mult`, `Prsh` and unknown ones left out).
    pub key_agreements: Vec<ZrtpKeyAgreement>,
    /// SAS renderings.
    pub sas_types: Vec<ZrtpSasType>,
    /// `Mult` is listed: the sender takes Multistream Commits for further streams.
    pub multistream: bool,
}

impl Offered {
    /// Whether `a` is offered or mandatory.
    pub fn allows<A: Algorithm>(list: &[A], a: A) -> bool {
        list.contains(&a) || A::MANDATORY.contains(&a)
    }
}

/// The algorithms of one exchange.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ZrtpSuite {
    /// Hash.
    pub hash: ZrtpHash,
    /// Cipher.
    pub cipher: ZrtpCipher,
    /// SRTP tag.
    pub auth_tag: ZrtpAuthTag,
    /// Key agreement.
    pub key_agreement: ZrtpKeyAgreement,
    /// SAS rendering.
    pub sas_type: ZrtpSasType,
}

fn first_common<A: Algorithm>(ours: &[A], theirs: &[A]) -> Option<A> {
    ours.iter()
        .copied()
        .find(|a| Offered::allows(theirs, *a))
        .or_else(|| A::MANDATORY.iter().copied().find(|a| ours.contains(a)))
}

/// The suite we commit to after the peer's Hello (§4.1.2): the key agreement both prefer, or
/// when their first choices differ the cheaper of the two; for the rest our first choice the
/// peer supports. `None` when nothing is common.
pub fn choose(ours: &ZrtpPreferences, theirs: &Offered) -> Option<ZrtpSuite> {
    let our_first = first_common(&ours.key_agreements, &theirs.key_agreements)?;
    let their_first = theirs
        .key_agreements
        .iter()
        .copied()
        .find(|a| ours.key_agreements.contains(a))
        .unwrap_or(our_first);
    let key_agreement = if their_first.cost() < our_first.cost() {
        their_first
    } else {
        our_first
    };
    Some(ZrtpSuite {
        hash: first_common(&ours.hashes, &theirs.hashes)?,
        cipher: first_common(&ours.ciphers, &theirs.ciphers)?,
        auth_tag: first_common(&ours.auth_tags, &theirs.auth_tags)?,
        key_agreement,
        sas_type: first_common(&ours.sas_types, &theirs.sas_types)?,
    })
}

/// Whether a peer's Commit names only algorithms our Hello offered (or mandatory ones).
pub fn acceptable(ours: &ZrtpPreferences, suite: &ZrtpSuite) -> bool {
    Offered::allows(&ours.hashes, suite.hash)
        && Offered::allows(&ours.ciphers, suite.cipher)
        && Offered::allows(&ours.auth_tags, suite.auth_tag)
        && Offered::allows(&ours.key_agreements, suite.key_agreement)
        && Offered::allows(&ours.sas_types, suite.sas_type)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn offered(p: &ZrtpPreferences) -> Offered {
        Offered {
            hashes: p.hashes.clone(),
            ciphers: p.ciphers.clone(),
            auth_tags: p.auth_tags.clone(),
            key_agreements: p.key_agreements.clone(),
            sas_types: p.sas_types.clone(),
            multistream: true,
        }
    }

    #[test]
    fn names_round_trip() {
        for a in ZrtpKeyAgreement::ALL {
            assert_eq!(ZrtpKeyAgreement::from_name(&a.name()), Some(*a));
        }
        assert_eq!(ZrtpSasType::B32.name(), *b"B32 ");
        assert_eq!(ZrtpSasType::B32.label(), "B32");
        assert_eq!(ZrtpKeyAgreement::from_name(b"Mult"), None);
    }

    #[test]
    fn linphone_default_hello_gives_dh3k_aes1() {
        // linphonec 5.1 by default: DH3k, AES1 AES3, S256, HS80 HS32, B32.
        let peer = Offered {
            hashes: vec![ZrtpHash::S256],
            ciphers: vec![ZrtpCipher::Aes1, ZrtpCipher::Aes3],
            auth_tags: vec![ZrtpAuthTag::Hs80, ZrtpAuthTag::Hs32],
            key_agreements: vec![ZrtpKeyAgreement::Dh3k],
            sas_types: vec![ZrtpSasType::B32],
            multistream: true,
        };
        let s = choose(&ZrtpPreferences::default(), &peer).unwrap();
        assert_eq!(s.key_agreement, ZrtpKeyAgreement::Dh3k);
        assert_eq!(s.cipher, ZrtpCipher::Aes3);
        assert_eq!(s.hash, ZrtpHash::S256);
        assert_eq!(s.sas_type, ZrtpSasType::B32);
    }

    #[test]
    fn differing_first_choices_take_the_cheaper() {
        let ours = ZrtpPreferences::default();
        let mut theirs = offered(&ours);
        theirs.key_agreements = vec![ZrtpKeyAgreement::X448, ZrtpKeyAgreement::X255];
        assert_eq!(
            choose(&ours, &theirs).unwrap().key_agreement,
            ZrtpKeyAgreement::X255
        );
        let mut ours2 = ours.clone();
        ours2.key_agreements = vec![ZrtpKeyAgreement::Dh3k, ZrtpKeyAgreement::X448];
        assert_eq!(
            choose(&ours2, &theirs).unwrap().key_agreement,
            ZrtpKeyAgreement::X448
        );
    }

    #[test]
    fn nothing_common_is_none_and_commits_are_checked() {
        let ours = ZrtpPreferences::with_key_agreement(ZrtpKeyAgreement::X448);
        let theirs = Offered {
            key_agreements: vec![ZrtpKeyAgreement::X255],
            ..Offered::default()
        };
        assert!(choose(&ours, &theirs).is_none());
        let s = ZrtpSuite {
            hash: ZrtpHash::S256,
            cipher: ZrtpCipher::Aes1,
            auth_tag: ZrtpAuthTag::Hs32,
            key_agreement: ZrtpKeyAgreement::X255,
            sas_type: ZrtpSasType::B32,
        };
        assert!(!acceptable(&ours, &s));
        assert!(acceptable(&ZrtpPreferences::default(), &s));
        assert!(ZrtpPreferences::default().is_valid());
    }
}
