//! Rendering the SAS (RFC 6189 §5.1.6): B32 is four characters of the base-32 alphabet from
//! the leftmost 20 bits of the sasvalue; B256 is two PGP words from its first two octets.

use super::algorithms::ZrtpSasType;
use super::pgp_words::{EVEN, ODD};

/// The base-32 alphabet of §5.1.6 (chosen to be read aloud without confusion).
pub const B32_ALPHABET: &[u8; 32] = b"ybndrfg8ejkmcpqxot1uwisza345h769";

/// The SAS as users compare it: `h441` (B32), `aardvark:adroitness` (B256).
pub fn render(sas_type: ZrtpSasType, sas_value: u32) -> String {
    match sas_type {
        ZrtpSasType::B32 => [27u32, 22, 17, 12]
            .iter()
            .map(|shift| char::from(B32_ALPHABET[((sas_value >> shift) & 31) as usize]))
            .collect(),
        ZrtpSasType::B256 => {
            let [a, b, _, _] = sas_value.to_be_bytes();
            format!("{}:{}", EVEN[usize::from(a)], ODD[usize::from(b)])
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn b32_uses_the_top_twenty_bits() {
        assert_eq!(render(ZrtpSasType::B32, 0), "yyyy");
        assert_eq!(render(ZrtpSasType::B32, 0xFFFF_FFFF), "9999");
        assert_eq!(render(ZrtpSasType::B32, 0x0000_0FFF), "yyyy");
        assert_eq!(render(ZrtpSasType::B32, 0x0800_0000), "byyy");
        assert_eq!(render(ZrtpSasType::B32, 0x1234_5678), "ne4f");
    }

    #[test]
    fn b256_even_then_odd() {
        assert_eq!(
            render(ZrtpSasType::B256, 0x0000_0000),
            "aardvark:adroitness"
        );
        assert_eq!(render(ZrtpSasType::B256, 0xFFFF_0000), "Zulu:Yucatan");
    }
}
