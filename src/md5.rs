//! MD5 (RFC 1321) through RustCrypto's `md-5`, with the RFC's test suite.
//!
//! MD5 is used only to shorten canonical request JSON into a fixed-size key suffix that matches
//! what the JavaScript and Python peers compute. It is **not** used for anything that needs
//! collision resistance against an attacker.

use ::md5::{Digest, Md5};

const HEX: &[u8; 16] = b"0123456789abcdef";

/// The MD5 digest of `data`.
pub(crate) fn md5(data: &[u8]) -> [u8; 16] {
    Md5::digest(data).into()
}

/// Appends the lowercase hex of `data`'s MD5 digest to `out`.
pub(crate) fn md5_hex_into(data: &[u8], out: &mut String) {
    let digest = md5(data);
    out.reserve(32);
    for byte in digest {
        out.push(char::from(HEX[usize::from(byte >> 4)]));
        out.push(char::from(HEX[usize::from(byte & 0x0f)]));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(data: &[u8]) -> String {
        let mut s = String::new();
        md5_hex_into(data, &mut s);
        s
    }

    #[test]
    fn rfc1321_test_suite() {
        let suite: [(&str, &str); 7] = [
            ("", "d41d8cd98f00b204e9800998ecf8427e"),
            ("a", "0cc175b9c0f1b6a831c399e269772661"),
            ("abc", "900150983cd24fb0d6963f7d28e17f72"),
            ("message digest", "f96b697d7cb7938d525a2f31aaf161d0"),
            (
                "abcdefghijklmnopqrstuvwxyz",
                "c3fcd3d76192e4007dfb496cca67e13b",
            ),
            (
                "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789",
                "d174ab98d277d9f5a5611c2c9f419d9f",
            ),
            (
                "12345678901234567890123456789012345678901234567890123456789012345678901234567890",
                "57edf4a22be3c955ac49da2e2107b67a",
            ),
        ];
        for (input, want) in suite {
            assert_eq!(hex(input.as_bytes()), want, "md5({input:?})");
        }
    }

    #[test]
    fn raw_digest_matches_hex() {
        let d = md5(b"abc");
        assert_eq!(
            d,
            [
                0x90, 0x01, 0x50, 0x98, 0x3c, 0xd2, 0x4f, 0xb0, 0xd6, 0x96, 0x3f, 0x7d, 0x28, 0xe1,
                0x7f, 0x72
            ]
        );
    }

    #[test]
    fn appends_instead_of_replacing() {
        let mut s = String::from("v1:ns:");
        md5_hex_into(b"abc", &mut s);
        assert_eq!(s, "v1:ns:900150983cd24fb0d6963f7d28e17f72");
    }

    #[test]
    fn padding_boundaries_and_multi_block() {
        // Lengths around the 55/56/64-byte padding boundaries and a long multi-block input,
        // checked against Python's hashlib.
        let cases: [(usize, &str); 6] = [
            (55, "ef1772b6dff9a122358552954ad0df65"),
            (56, "3b0c8ac703f828b04c6c197006d17218"),
            (57, "652b906d60af96844ebd21b674f35e93"),
            (63, "b06521f39153d618550606be297466d5"),
            (64, "014842d480b571495a4a0363793f7367"),
            (65, "c743a45e0d2e6a95cb859adae0248435"),
        ];
        for (len, want) in cases {
            assert_eq!(hex(&vec![b'a'; len]), want, "md5('a' x {len})");
        }
        // One million 'a' (the classic long-message check): 15625 full blocks plus padding.
        assert_eq!(
            hex(&vec![b'a'; 1_000_000]),
            "7707d6ae4e027c70eea2a935c2296f21"
        );
        // A multi-block input that is not a multiple of the block size.
        let data: Vec<u8> = (0..1000u32).map(|n| (n % 251) as u8).collect();
        assert_eq!(hex(&data), PATTERN_1000);
    }

    /// `md5` of bytes `n % 251` for n in 0..1000 (computed with Python's hashlib).
    const PATTERN_1000: &str = "a24f1e3ef66950e1327f210e3997ba2c";
}
