//! MD5 (RFC 1321), small and dependency-free.
//!
//! MD5 is used only to shorten canonical request JSON into a fixed-size key suffix that matches
//! what the JavaScript and Python peers compute. It is **not** used for anything that needs
//! collision resistance against an attacker.
//!
//! The whole message is hashed in one call: full 64-byte blocks are read straight from the input
//! and only the final one or two padded blocks are copied to a stack buffer, so hashing never
//! allocates.

/// The initial state (A, B, C, D) from RFC 1321 section 3.3.
const INIT: [u32; 4] = [0x6745_2301, 0xefcd_ab89, 0x98ba_dcfe, 0x1032_5476];

/// Lowercase hexadecimal digits.
const HEX: &[u8; 16] = b"0123456789abcdef";

/// The MD5 digest of `data`.
pub(crate) fn md5(data: &[u8]) -> [u8; 16] {
    let mut state = INIT;
    let mut blocks = data.chunks_exact(64);
    for block in &mut blocks {
        compress(&mut state, block);
    }
    let rest = blocks.remainder();

    // Padding: 0x80, zeros, then the message length in bits (little-endian, modulo 2^64).
    let mut tail = [0u8; 128];
    let tail_len = if rest.len() < 56 { 64 } else { 128 };
    for (dst, src) in tail.iter_mut().zip(rest) {
        *dst = *src;
    }
    if let Some(b) = tail.get_mut(rest.len()) {
        *b = 0x80;
    }
    let bits = (data.len() as u64).wrapping_mul(8).to_le_bytes();
    if let Some(dst) = tail.get_mut(tail_len - 8..tail_len) {
        dst.copy_from_slice(&bits);
    }
    for block in tail.chunks_exact(64).take(tail_len / 64) {
        compress(&mut state, block);
    }

    let mut digest = [0u8; 16];
    for (dst, word) in digest.chunks_exact_mut(4).zip(state) {
        dst.copy_from_slice(&word.to_le_bytes());
    }
    digest
}

/// Appends the MD5 digest of `data` to `out` as 32 lowercase hexadecimal characters.
pub(crate) fn md5_hex_into(data: &[u8], out: &mut String) {
    let digest = md5(data);
    out.reserve(32);
    for byte in digest {
        out.push(char::from(HEX[usize::from(byte >> 4)]));
        out.push(char::from(HEX[usize::from(byte & 0x0f)]));
    }
}

/// One MD5 step: `a = b + ((a + f(b, c, d) + k + w) <<< s)`.
///
/// MD5 is bound by the latency of this chain, so everything that does not depend on `b` (the
/// value the previous step just produced) is added first.
macro_rules! step {
    ($f:ident, $a:ident, $b:ident, $c:ident, $d:ident, $w:expr, $k:expr, $s:expr) => {
        $a = $b.wrapping_add($f($a.wrapping_add($k).wrapping_add($w), $b, $c, $d).rotate_left($s));
    };
}

/// `sum + F(x, y, z)` with `F = (x & y) | (!x & z)`.
#[inline(always)]
fn f(sum: u32, x: u32, y: u32, z: u32) -> u32 {
    sum.wrapping_add(z ^ (x & (y ^ z)))
}

/// `sum + G(x, y, z)` with `G = (x & z) | (y & !z)`; the two terms have no bit in common, so
/// they can be added separately and only `x & z` waits for `x`.
#[inline(always)]
fn g(sum: u32, x: u32, y: u32, z: u32) -> u32 {
    sum.wrapping_add(y & !z).wrapping_add(x & z)
}

/// `sum + H(x, y, z)` with `H = x ^ y ^ z`.
#[inline(always)]
fn h(sum: u32, x: u32, y: u32, z: u32) -> u32 {
    sum.wrapping_add(x ^ (y ^ z))
}

/// `sum + I(x, y, z)` with `I = y ^ (x | !z)`.
#[inline(always)]
fn i(sum: u32, x: u32, y: u32, z: u32) -> u32 {
    sum.wrapping_add(y ^ (x | !z))
}

/// Processes one 64-byte block (shorter slices are zero-extended; callers pass exactly 64 bytes).
fn compress(state: &mut [u32; 4], block: &[u8]) {
    let mut w = [0u32; 16];
    for (word, bytes) in w.iter_mut().zip(block.chunks_exact(4)) {
        *word = u32::from_le_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]);
    }
    let [mut a, mut b, mut c, mut d] = *state;

    // Round 1.
    step!(f, a, b, c, d, w[0], 0xd76a_a478, 7);
    step!(f, d, a, b, c, w[1], 0xe8c7_b756, 12);
    step!(f, c, d, a, b, w[2], 0x2420_70db, 17);
    step!(f, b, c, d, a, w[3], 0xc1bd_ceee, 22);
    step!(f, a, b, c, d, w[4], 0xf57c_0faf, 7);
    step!(f, d, a, b, c, w[5], 0x4787_c62a, 12);
    step!(f, c, d, a, b, w[6], 0xa830_4613, 17);
    step!(f, b, c, d, a, w[7], 0xfd46_9501, 22);
    step!(f, a, b, c, d, w[8], 0x6980_98d8, 7);
    step!(f, d, a, b, c, w[9], 0x8b44_f7af, 12);
    step!(f, c, d, a, b, w[10], 0xffff_5bb1, 17);
    step!(f, b, c, d, a, w[11], 0x895c_d7be, 22);
    step!(f, a, b, c, d, w[12], 0x6b90_1122, 7);
    step!(f, d, a, b, c, w[13], 0xfd98_7193, 12);
    step!(f, c, d, a, b, w[14], 0xa679_438e, 17);
    step!(f, b, c, d, a, w[15], 0x49b4_0821, 22);

    // Round 2.
    step!(g, a, b, c, d, w[1], 0xf61e_2562, 5);
    step!(g, d, a, b, c, w[6], 0xc040_b340, 9);
    step!(g, c, d, a, b, w[11], 0x265e_5a51, 14);
    step!(g, b, c, d, a, w[0], 0xe9b6_c7aa, 20);
    step!(g, a, b, c, d, w[5], 0xd62f_105d, 5);
    step!(g, d, a, b, c, w[10], 0x0244_1453, 9);
    step!(g, c, d, a, b, w[15], 0xd8a1_e681, 14);
    step!(g, b, c, d, a, w[4], 0xe7d3_fbc8, 20);
    step!(g, a, b, c, d, w[9], 0x21e1_cde6, 5);
    step!(g, d, a, b, c, w[14], 0xc337_07d6, 9);
    step!(g, c, d, a, b, w[3], 0xf4d5_0d87, 14);
    step!(g, b, c, d, a, w[8], 0x455a_14ed, 20);
    step!(g, a, b, c, d, w[13], 0xa9e3_e905, 5);
    step!(g, d, a, b, c, w[2], 0xfcef_a3f8, 9);
    step!(g, c, d, a, b, w[7], 0x676f_02d9, 14);
    step!(g, b, c, d, a, w[12], 0x8d2a_4c8a, 20);

    // Round 3.
    step!(h, a, b, c, d, w[5], 0xfffa_3942, 4);
    step!(h, d, a, b, c, w[8], 0x8771_f681, 11);
    step!(h, c, d, a, b, w[11], 0x6d9d_6122, 16);
    step!(h, b, c, d, a, w[14], 0xfde5_380c, 23);
    step!(h, a, b, c, d, w[1], 0xa4be_ea44, 4);
    step!(h, d, a, b, c, w[4], 0x4bde_cfa9, 11);
    step!(h, c, d, a, b, w[7], 0xf6bb_4b60, 16);
    step!(h, b, c, d, a, w[10], 0xbebf_bc70, 23);
    step!(h, a, b, c, d, w[13], 0x289b_7ec6, 4);
    step!(h, d, a, b, c, w[0], 0xeaa1_27fa, 11);
    step!(h, c, d, a, b, w[3], 0xd4ef_3085, 16);
    step!(h, b, c, d, a, w[6], 0x0488_1d05, 23);
    step!(h, a, b, c, d, w[9], 0xd9d4_d039, 4);
    step!(h, d, a, b, c, w[12], 0xe6db_99e5, 11);
    step!(h, c, d, a, b, w[15], 0x1fa2_7cf8, 16);
    step!(h, b, c, d, a, w[2], 0xc4ac_5665, 23);

    // Round 4.
    step!(i, a, b, c, d, w[0], 0xf429_2244, 6);
    step!(i, d, a, b, c, w[7], 0x432a_ff97, 10);
    step!(i, c, d, a, b, w[14], 0xab94_23a7, 15);
    step!(i, b, c, d, a, w[5], 0xfc93_a039, 21);
    step!(i, a, b, c, d, w[12], 0x655b_59c3, 6);
    step!(i, d, a, b, c, w[3], 0x8f0c_cc92, 10);
    step!(i, c, d, a, b, w[10], 0xffef_f47d, 15);
    step!(i, b, c, d, a, w[1], 0x8584_5dd1, 21);
    step!(i, a, b, c, d, w[8], 0x6fa8_7e4f, 6);
    step!(i, d, a, b, c, w[15], 0xfe2c_e6e0, 10);
    step!(i, c, d, a, b, w[6], 0xa301_4314, 15);
    step!(i, b, c, d, a, w[13], 0x4e08_11a1, 21);
    step!(i, a, b, c, d, w[4], 0xf753_7e82, 6);
    step!(i, d, a, b, c, w[11], 0xbd3a_f235, 10);
    step!(i, c, d, a, b, w[2], 0x2ad7_d2bb, 15);
    step!(i, b, c, d, a, w[9], 0xeb86_d391, 21);

    state[0] = state[0].wrapping_add(a);
    state[1] = state[1].wrapping_add(b);
    state[2] = state[2].wrapping_add(c);
    state[3] = state[3].wrapping_add(d);
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
