//! Backend for [`sotto_crypto::signature::SignatureProvider`]: Ed25519 on `ed25519-dalek`,
//! Ed448 on the pinned pre-release `ed448-goldilocks` (RFC 8032 §5.1, §5.2).
//!
//! Ed25519 verification is `verify_strict` (rejects small-order keys and `R`, and
//! non-canonical `S`). Ed25519ctx with the empty context is dalek's own signing and
//! verification (`hazmat`) run with a SHA-512 whose input starts with `dom2(0, "")`
//! (`Dom2Sha512`, checked against RFC 8032's Ed25519ctx vectors with their contexts); its
//! verification rejects non-canonical `S` and small-order keys.
//! `ed448-goldilocks` offers Ed448 with a context and Ed448ph; the sotto API does not.

use sotto_crypto::Error;
use sotto_crypto::agreement::{AgreementAlgorithm, AgreementProvider, PrivateKey};
use sotto_crypto::rng::SecureRandom;
use sotto_crypto::signature::{Signature, SignatureAlgorithm, SignatureProvider, SigningKey};

use crate::agreement::RustAgreement;
use zeroize::Zeroizing;

/// A `dom2(0, context)` prefix of RFC 8032 §5.1 (Ed25519ctx).
trait Dom2: Send + Sync + 'static {
    /// `"SigEd25519 no Ed25519 collisions" ‖ 0x00 ‖ len(context) ‖ context`.
    const PREFIX: &'static [u8];
}

/// The empty context: what LIME signs with on Curve25519.
struct EmptyContext;

impl Dom2 for EmptyContext {
    const PREFIX: &'static [u8] = b"SigEd25519 no Ed25519 collisions\x00\x00";
}

/// SHA-512 with `D::PREFIX` fed first: given to dalek's signing and verification
/// (`hazmat`), it makes them Ed25519ctx.
struct Dom2Sha512<D: Dom2>(sha2::Sha512, std::marker::PhantomData<D>);

impl<D: Dom2> Clone for Dom2Sha512<D> {
    fn clone(&self) -> Self {
        Dom2Sha512(self.0.clone(), std::marker::PhantomData)
    }
}

impl<D: Dom2> Default for Dom2Sha512<D> {
    fn default() -> Self {
        use sha2::digest::Update;
        let mut h = sha2::Sha512::default();
        h.update(D::PREFIX);
        Dom2Sha512(h, std::marker::PhantomData)
    }
}

impl<D: Dom2> sha2::digest::HashMarker for Dom2Sha512<D> {}

impl<D: Dom2> sha2::digest::OutputSizeUser for Dom2Sha512<D> {
    type OutputSize = sha2::digest::consts::U64;
}

impl<D: Dom2> sha2::digest::Update for Dom2Sha512<D> {
    fn update(&mut self, data: &[u8]) {
        self.0.update(data);
    }
}

impl<D: Dom2> sha2::digest::FixedOutput for Dom2Sha512<D> {
    fn finalize_into(self, out: &mut sha2::digest::Output<Self>) {
        self.0.finalize_into(out);
    }
}

/// Ed25519ctx signature of `message` with context `D`.
fn sign_ctx<D: Dom2>(key: &ed25519_dalek::SigningKey, message: &[u8]) -> [u8; 64] {
    let esk = ed25519_dalek::hazmat::ExpandedSecretKey::from(key.as_bytes());
    ed25519_dalek::hazmat::raw_sign::<Dom2Sha512<D>>(&esk, message, &key.verifying_key()).to_bytes()
}

/// Ed25519ctx verification with context `D` (non-canonical `S` and weak keys refused).
fn verify_ctx<D: Dom2>(
    vk: &ed25519_dalek::VerifyingKey,
    message: &[u8],
    sig: &ed25519_dalek::Signature,
) -> Result<(), Error> {
    if vk.is_weak() {
        return Err(Error::InvalidPublicValue);
    }
    ed25519_dalek::hazmat::raw_verify::<Dom2Sha512<D>>(vk, message, sig)
        .map_err(|_| Error::AuthenticationFailed)
}

/// RustCrypto / dalek implementation of [`SignatureProvider`].
#[derive(Debug)]
pub(crate) struct RustSignature;

/// An Ed25519 (or Ed25519ctx) signing key (zeroized on drop by `ed25519-dalek`).
struct Ed25519Key {
    key: ed25519_dalek::SigningKey,
    public: [u8; 32],
    /// Sign as Ed25519ctx with the empty context.
    ctx: bool,
}

/// An Ed448 signing key (zeroized on drop by `ed448-goldilocks`).
struct Ed448Key {
    key: ed448_goldilocks::SigningKey,
    public: [u8; 57],
}

impl core::fmt::Debug for Ed25519Key {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("Ed25519Key(<redacted>)")
    }
}

impl core::fmt::Debug for Ed448Key {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("Ed448Key(<redacted>)")
    }
}

/// Copies `secret` into the start of `out`.
fn write_into(secret: &[u8], out: &mut [u8]) -> Result<usize, Error> {
    let dst = out
        .get_mut(..secret.len())
        .ok_or(Error::BufferTooSmall { need: secret.len() })?;
    dst.copy_from_slice(secret);
    Ok(secret.len())
}

impl SigningKey for Ed25519Key {
    fn algorithm(&self) -> SignatureAlgorithm {
        if self.ctx {
            SignatureAlgorithm::Ed25519Ctx
        } else {
            SignatureAlgorithm::Ed25519
        }
    }

    fn public_key(&self) -> &[u8] {
        &self.public
    }

    fn sign(&self, message: &[u8]) -> Signature {
        use ed25519_dalek::Signer;
        if self.ctx {
            return Signature::new(&sign_ctx::<EmptyContext>(&self.key, message));
        }
        Signature::new(&self.key.sign(message).to_bytes())
    }

    fn write_seed(&self, out: &mut [u8]) -> Result<usize, Error> {
        write_into(self.key.as_bytes(), out)
    }
}

impl SigningKey for Ed448Key {
    fn algorithm(&self) -> SignatureAlgorithm {
        SignatureAlgorithm::Ed448
    }

    fn public_key(&self) -> &[u8] {
        &self.public
    }

    fn sign(&self, message: &[u8]) -> Signature {
        Signature::new(&self.key.sign_raw(message).to_bytes())
    }

    fn write_seed(&self, out: &mut [u8]) -> Result<usize, Error> {
        write_into(self.key.as_bytes(), out)
    }
}

fn ed25519_from_seed(seed: &[u8], ctx: bool) -> Result<Box<dyn SigningKey>, Error> {
    let seed: Zeroizing<[u8; 32]> =
        Zeroizing::new(seed.try_into().map_err(|_| Error::InvalidLength {
            what: "ed25519 seed",
            got: seed.len(),
        })?);
    let key = ed25519_dalek::SigningKey::from_bytes(&seed);
    let public = key.verifying_key().to_bytes();
    Ok(Box::new(Ed25519Key { key, public, ctx }))
}

fn ed448_from_seed(seed: &[u8]) -> Result<Box<dyn SigningKey>, Error> {
    let key = ed448_goldilocks::SigningKey::try_from(seed).map_err(|_| Error::InvalidLength {
        what: "ed448 seed",
        got: seed.len(),
    })?;
    let public = key.verifying_key().to_bytes();
    Ok(Box::new(Ed448Key { key, public }))
}

fn ed25519_verify(
    public_key: &[u8],
    message: &[u8],
    signature: &[u8],
    ctx: bool,
) -> Result<(), Error> {
    let pk: &[u8; 32] = public_key.try_into().map_err(|_| Error::InvalidLength {
        what: "ed25519 public key",
        got: public_key.len(),
    })?;
    let sig: &[u8; 64] = signature.try_into().map_err(|_| Error::InvalidLength {
        what: "ed25519 signature",
        got: signature.len(),
    })?;
    let vk = ed25519_dalek::VerifyingKey::from_bytes(pk).map_err(|_| Error::InvalidPublicValue)?;
    let sig = ed25519_dalek::Signature::from_bytes(sig);
    if ctx {
        return verify_ctx::<EmptyContext>(&vk, message, &sig);
    }
    vk.verify_strict(message, &sig)
        .map_err(|_| Error::AuthenticationFailed)
}

fn ed448_verify(public_key: &[u8], message: &[u8], signature: &[u8]) -> Result<(), Error> {
    let pk: &[u8; 57] = public_key.try_into().map_err(|_| Error::InvalidLength {
        what: "ed448 public key",
        got: public_key.len(),
    })?;
    let sig: &[u8; 114] = signature.try_into().map_err(|_| Error::InvalidLength {
        what: "ed448 signature",
        got: signature.len(),
    })?;
    let vk =
        ed448_goldilocks::VerifyingKey::from_bytes(pk).map_err(|_| Error::InvalidPublicValue)?;
    let sig = ed448_goldilocks::Signature::from_bytes(sig);
    vk.verify_raw(&sig, message)
        .map_err(|_| Error::AuthenticationFailed)
}

impl SignatureProvider for RustSignature {
    fn generate(
        &self,
        algorithm: SignatureAlgorithm,
        rng: &dyn SecureRandom,
    ) -> Result<Box<dyn SigningKey>, Error> {
        let mut seed = Zeroizing::new([0u8; 57]);
        let seed = seed
            .get_mut(..algorithm.seed_len())
            .ok_or(Error::Unsupported("signature algorithm"))?;
        rng.fill(seed)?;
        self.from_seed(algorithm, seed)
    }

    fn from_seed(
        &self,
        algorithm: SignatureAlgorithm,
        seed: &[u8],
    ) -> Result<Box<dyn SigningKey>, Error> {
        match algorithm {
            SignatureAlgorithm::Ed25519 => ed25519_from_seed(seed, false),
            SignatureAlgorithm::Ed25519Ctx => ed25519_from_seed(seed, true),
            SignatureAlgorithm::Ed448 => ed448_from_seed(seed),
            _ => Err(Error::Unsupported("signature algorithm")),
        }
    }

    fn verify(
        &self,
        algorithm: SignatureAlgorithm,
        public_key: &[u8],
        message: &[u8],
        signature: &[u8],
    ) -> Result<(), Error> {
        match algorithm {
            SignatureAlgorithm::Ed25519 => ed25519_verify(public_key, message, signature, false),
            SignatureAlgorithm::Ed25519Ctx => ed25519_verify(public_key, message, signature, true),
            SignatureAlgorithm::Ed448 => ed448_verify(public_key, message, signature),
            _ => Err(Error::Unsupported("signature algorithm")),
        }
    }

    fn agreement_key(
        &self,
        algorithm: SignatureAlgorithm,
        seed: &[u8],
    ) -> Result<Box<dyn PrivateKey>, Error> {
        let bad_seed = || Error::InvalidLength {
            what: "EdDSA seed",
            got: seed.len(),
        };
        if seed.len() != algorithm.seed_len() {
            return Err(bad_seed());
        }
        match algorithm {
            SignatureAlgorithm::Ed25519 | SignatureAlgorithm::Ed25519Ctx => {
                let seed: Zeroizing<[u8; 32]> =
                    Zeroizing::new(seed.try_into().map_err(|_| bad_seed())?);
                let scalar =
                    Zeroizing::new(ed25519_dalek::SigningKey::from_bytes(&seed).to_scalar_bytes());
                RustAgreement.from_secret_bytes(AgreementAlgorithm::X25519, &scalar[..])
            }
            SignatureAlgorithm::Ed448 => {
                use shake::{ExtendableOutput, Update, XofReader};
                let mut xof = shake::Shake256::default();
                xof.update(seed);
                let mut secret = Zeroizing::new([0u8; 56]);
                xof.finalize_xof().read(&mut secret[..]);
                RustAgreement.from_secret_bytes(AgreementAlgorithm::X448, &secret[..])
            }
            _ => Err(Error::Unsupported("signature algorithm")),
        }
    }

    fn agreement_public_key(
        &self,
        algorithm: SignatureAlgorithm,
        public_key: &[u8],
        out: &mut [u8],
    ) -> Result<usize, Error> {
        let bad = || Error::InvalidLength {
            what: "EdDSA public key",
            got: public_key.len(),
        };
        match algorithm {
            SignatureAlgorithm::Ed25519 | SignatureAlgorithm::Ed25519Ctx => {
                let pk: &[u8; 32] = public_key.try_into().map_err(|_| bad())?;
                let vk = ed25519_dalek::VerifyingKey::from_bytes(pk)
                    .map_err(|_| Error::InvalidPublicValue)?;
                write_into(&vk.to_montgomery().to_bytes(), out)
            }
            SignatureAlgorithm::Ed448 => {
                let pk: &[u8; 57] = public_key.try_into().map_err(|_| bad())?;
                let vk = ed448_goldilocks::VerifyingKey::from_bytes(pk)
                    .map_err(|_| Error::InvalidPublicValue)?;
                write_into(vk.to_edwards().to_montgomery().as_bytes(), out)
            }
            _ => Err(Error::Unsupported("signature algorithm")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Foo;
    impl Dom2 for Foo {
        const PREFIX: &'static [u8] = b"SigEd25519 no Ed25519 collisions\x00\x03foo";
    }
    struct Bar;
    impl Dom2 for Bar {
        const PREFIX: &'static [u8] = b"SigEd25519 no Ed25519 collisions\x00\x03bar";
    }

    fn hex(s: &str) -> Vec<u8> {
        let mut out = vec![0u8; s.len() / 2];
        assert!(sotto_crypto::hex::decode(s, &mut out));
        out
    }

    /// RFC 8032 §7.2 (tests/vectors/curves/rfc8032_eddsa.json): the dom2-prefixed SHA-512
    /// given to dalek signs and verifies exactly as Ed25519ctx.
    #[test]
    fn ed25519ctx_matches_rfc8032_vectors() {
        let text = include_str!("../tests/vectors/curves/rfc8032_eddsa.json");
        let doc: serde_json::Value = serde_json::from_str(text).unwrap();
        let mut n = 0;
        for v in doc["vectors"].as_array().unwrap() {
            if v["algorithm"] != "Ed25519ctx" {
                continue;
            }
            let field = |k: &str| hex(v[k].as_str().unwrap());
            let seed: [u8; 32] = field("secret_key").try_into().unwrap();
            let key = ed25519_dalek::SigningKey::from_bytes(&seed);
            let (msg, want) = (field("message"), field("signature"));
            let sig = match v["context"].as_str().unwrap() {
                "666f6f" => sign_ctx::<Foo>(&key, &msg),
                "626172" => sign_ctx::<Bar>(&key, &msg),
                other => panic!("context {other}"),
            };
            assert_eq!(&sig[..], &want[..], "{}", v["name"]);
            let vk = key.verifying_key();
            let s = ed25519_dalek::Signature::from_bytes(&sig);
            match v["context"].as_str().unwrap() {
                "666f6f" => verify_ctx::<Foo>(&vk, &msg, &s).unwrap(),
                _ => verify_ctx::<Bar>(&vk, &msg, &s).unwrap(),
            }
            assert!(verify_ctx::<EmptyContext>(&vk, &msg, &s).is_err());
            n += 1;
        }
        assert_eq!(n, 4);
    }

    #[test]
    fn ed25519ctx_with_the_empty_context_differs_from_ed25519() {
        let seed = [7u8; 32];
        let ctx = RustSignature
            .from_seed(SignatureAlgorithm::Ed25519Ctx, &seed)
            .unwrap();
        let pure = RustSignature
            .from_seed(SignatureAlgorithm::Ed25519, &seed)
            .unwrap();
        assert_eq!(ctx.public_key(), pure.public_key());
        let (a, b) = (ctx.sign(b"m"), pure.sign(b"m"));
        assert_ne!(a.as_ref(), b.as_ref());
        let p = ctx.public_key();
        for (alg, sig, ok) in [
            (SignatureAlgorithm::Ed25519Ctx, &a, true),
            (SignatureAlgorithm::Ed25519Ctx, &b, false),
            (SignatureAlgorithm::Ed25519, &b, true),
            (SignatureAlgorithm::Ed25519, &a, false),
        ] {
            assert_eq!(RustSignature.verify(alg, p, b"m", sig.as_ref()).is_ok(), ok);
        }
    }

    /// The Montgomery form of an EdDSA key agrees with the Montgomery form of another's
    /// public key: DH(conv(a), conv(B)) = DH(conv(b), conv(A)), for both curves.
    #[test]
    fn eddsa_keys_agree_through_their_montgomery_forms() {
        for alg in [SignatureAlgorithm::Ed25519Ctx, SignatureAlgorithm::Ed448] {
            let a_seed: Vec<u8> = (0..alg.seed_len() as u8).collect();
            let b_seed: Vec<u8> = (0..alg.seed_len() as u8).map(|x| x ^ 0x5a).collect();
            let (a, b) = (
                RustSignature.from_seed(alg, &a_seed).unwrap(),
                RustSignature.from_seed(alg, &b_seed).unwrap(),
            );
            let (ax, bx) = (
                RustSignature.agreement_key(alg, &a_seed).unwrap(),
                RustSignature.agreement_key(alg, &b_seed).unwrap(),
            );
            let mut pa = [0u8; 56];
            let mut pb = [0u8; 56];
            let na = RustSignature
                .agreement_public_key(alg, a.public_key(), &mut pa)
                .unwrap();
            let nb = RustSignature
                .agreement_public_key(alg, b.public_key(), &mut pb)
                .unwrap();
            assert_eq!(&pa[..na], ax.public_key(), "{alg:?}: public forms agree");
            assert_eq!(&pb[..nb], bx.public_key());
            let (s1, s2) = (ax.agree(&pb[..nb]).unwrap(), bx.agree(&pa[..na]).unwrap());
            assert_eq!(s1.as_bytes(), s2.as_bytes());
        }
    }

    #[test]
    fn debug_is_redacted_and_seed_round_trips() {
        for alg in [SignatureAlgorithm::Ed25519, SignatureAlgorithm::Ed448] {
            let seed: Vec<u8> = (0..alg.seed_len() as u8).collect();
            let key = RustSignature.from_seed(alg, &seed).unwrap();
            let dbg = format!("{key:?}");
            assert!(dbg.contains("<redacted>"), "{dbg}");
            let mut out = [0u8; 64];
            assert_eq!(
                key.write_seed(&mut out[..alg.seed_len() - 1]),
                Err(Error::BufferTooSmall {
                    need: alg.seed_len()
                })
            );
            let n = key.write_seed(&mut out).unwrap();
            assert_eq!(&out[..n], &seed[..]);
            assert_eq!(key.public_key().len(), alg.public_key_len());
        }
    }
}
