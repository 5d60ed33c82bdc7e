//! A JSON object written straight into a byte buffer, for the records
//! `--json` writes per event: the same bytes serde_json writes (compact
//! form, the same string escapes), without its per-field machinery.
//!
//! Keys are written as given (they are ASCII literals of this crate);
//! string values are escaped as serde_json escapes them: `"` and `\`,
//! `\b \t \n \f \r`, other control characters as `\u00xx`, everything
//! else (non-ASCII included) as is.

use std::fmt::{self, Write as _};
use std::net::IpAddr;

/// One JSON object being written into `out`; [`Obj::end`] closes it.
pub struct Obj<'a> {
    out: &'a mut Vec<u8>,
    first: bool,
}

impl<'a> Obj<'a> {
    /// Opens an object at the end of `out`.
    pub fn begin(out: &'a mut Vec<u8>) -> Obj<'a> {
        out.push(b'{');
        Obj { out, first: true }
    }

    /// Closes the object.
    pub fn end(self) {
        self.out.push(b'}');
    }

    // Inlined, so that a key's length is a constant and its copy no call
    // (the writers below are inlined for the same reason).
    #[inline(always)]
    fn key(&mut self, k: &str) {
        if !self.first {
            self.out.push(b',');
        }
        self.first = false;
        self.out.push(b'"');
        self.out.extend_from_slice(k.as_bytes());
        self.out.extend_from_slice(b"\":");
    }

    #[inline(always)]
    pub fn u64(&mut self, k: &str, v: u64) {
        self.key(k);
        write_u64(self.out, v);
    }

    #[inline(always)]
    pub fn i64(&mut self, k: &str, v: i64) {
        self.key(k);
        if v < 0 {
            self.out.push(b'-');
        }
        write_u64(self.out, v.unsigned_abs());
    }

    #[inline(always)]
    pub fn bool(&mut self, k: &str, v: bool) {
        self.key(k);
        self.out
            .extend_from_slice(if v { b"true" as &[u8] } else { b"false" });
    }

    #[inline(always)]
    pub fn str(&mut self, k: &str, v: &str) {
        self.key(k);
        write_str(self.out, v);
    }

    /// A value's Display, as a JSON string.
    #[inline(always)]
    pub fn display(&mut self, k: &str, v: impl fmt::Display) {
        self.key(k);
        self.out.push(b'"');
        // Writing into a Vec does not fail; a Display that fails leaves
        // what it wrote.
        let _ = write!(Escaped(self.out), "{v}");
        self.out.push(b'"');
    }

    /// An address as a JSON string (IPv4 without the formatting
    /// machinery; the same text as its Display).
    #[inline(always)]
    pub fn ip(&mut self, k: &str, v: IpAddr) {
        match v {
            IpAddr::V4(a) => {
                self.key(k);
                self.out.push(b'"');
                for (i, o) in a.octets().into_iter().enumerate() {
                    if i > 0 {
                        self.out.push(b'.');
                    }
                    write_u64(self.out, o.into());
                }
                self.out.push(b'"');
            }
            IpAddr::V6(_) => self.display(k, v),
        }
    }

    #[inline(always)]
    pub fn opt_ip(&mut self, k: &str, v: Option<IpAddr>) {
        if let Some(v) = v {
            self.ip(k, v);
        }
    }

    /// Fields an earlier object wrote, copied as they are: `obj` is that
    /// whole object, braces included (`{}` adds nothing).
    #[inline(always)]
    pub fn fields_of(&mut self, obj: &[u8]) {
        let inner = obj.get(1..obj.len().saturating_sub(1)).unwrap_or_default();
        if inner.is_empty() {
            return;
        }
        if !self.first {
            self.out.push(b',');
        }
        self.first = false;
        self.out.extend_from_slice(inner);
    }

    /// A nested object under `k`.
    #[inline(always)]
    pub fn obj(&mut self, k: &str) -> Obj<'_> {
        self.key(k);
        Obj::begin(self.out)
    }

    #[inline(always)]
    pub fn opt_u64(&mut self, k: &str, v: Option<impl Into<u64>>) {
        if let Some(v) = v {
            self.u64(k, v.into());
        }
    }

    #[inline(always)]
    pub fn opt_str(&mut self, k: &str, v: Option<&str>) {
        if let Some(v) = v {
            self.str(k, v);
        }
    }

    #[inline(always)]
    pub fn opt_display(&mut self, k: &str, v: Option<impl fmt::Display>) {
        if let Some(v) = v {
            self.display(k, v);
        }
    }
}

/// The 8 decimal digits of `v` (below 10^8, zero-padded) as ASCII bytes,
/// first digit in the lowest byte: split into halves, quarters and digits
/// in the lanes of one integer ("SIMD within a register"), each division a
/// multiplication exact for the lane's range.
#[inline(always)]
fn digits8(v: u32) -> u64 {
    let v = u64::from(v);
    // Lanes of 32 bits: abcd, efgh (each < 10^4).
    let x = (v / 10_000) | ((v % 10_000) << 32);
    // n / 100 = n * 10486 >> 20 for n < 10^4; lanes of 16 bits: ab, cd, ef, gh.
    let hi = ((x * 10_486) >> 20) & 0x0000_007f_0000_007f;
    let x = hi | ((x - hi * 100) << 16);
    // n / 10 = n * 103 >> 10 for n < 100; lanes of 8 bits: a .. h.
    let hi = ((x * 103) >> 10) & 0x000f_000f_000f_000f;
    let x = hi | ((x - hi * 10) << 8);
    x + 0x3030_3030_3030_3030
}

/// The digits of `v` below 10^8, without leading zeros: written as 8 bytes
/// and cut back, so the copy has a constant length (no `memcpy` call).
#[inline(always)]
fn write_short(out: &mut Vec<u8>, v: u32) {
    let n = v.checked_ilog10().map_or(1, |d| d as usize + 1);
    let skip = 8 - n;
    let start = out.len();
    out.extend_from_slice(&(digits8(v) >> (8 * skip)).to_le_bytes());
    out.truncate(start + n);
}

/// Decimal digits of `v`, 8 at a time (see [`digits8`]).
fn write_u64(out: &mut Vec<u8>, v: u64) {
    const E8: u64 = 100_000_000;
    if v < E8 {
        write_short(out, v as u32);
    } else if v < E8 * E8 {
        write_short(out, (v / E8) as u32);
        out.extend_from_slice(&digits8((v % E8) as u32).to_le_bytes());
    } else {
        let top = v / (E8 * E8);
        let rest = v % (E8 * E8);
        write_short(out, top as u32);
        out.extend_from_slice(&digits8((rest / E8) as u32).to_le_bytes());
        out.extend_from_slice(&digits8((rest % E8) as u32).to_le_bytes());
    }
}

/// `s` as a JSON string, escaped like serde_json.
fn write_str(out: &mut Vec<u8>, s: &str) {
    out.push(b'"');
    escape_into(out, s);
    out.push(b'"');
}

fn escape_into(out: &mut Vec<u8>, s: &str) {
    let bytes = s.as_bytes();
    let mut start = 0;
    for (i, &b) in bytes.iter().enumerate() {
        let esc: &[u8] = match b {
            b'"' => b"\\\"",
            b'\\' => b"\\\\",
            0x08 => b"\\b",
            0x0c => b"\\f",
            b'\n' => b"\\n",
            b'\r' => b"\\r",
            b'\t' => b"\\t",
            0..=0x1f => &[],
            _ => continue,
        };
        out.extend_from_slice(&bytes[start..i]);
        if esc.is_empty() {
            const HEX: &[u8; 16] = b"0123456789abcdef";
            out.extend_from_slice(b"\\u00");
            out.push(HEX[usize::from(b >> 4)]);
            out.push(HEX[usize::from(b & 0xf)]);
        } else {
            out.extend_from_slice(esc);
        }
        start = i + 1;
    }
    out.extend_from_slice(&bytes[start..]);
}

/// Escapes what is written through it into the buffer.
struct Escaped<'a>(&'a mut Vec<u8>);

impl fmt::Write for Escaped<'_> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        escape_into(self.0, s);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strings_and_numbers_as_serde_json_writes_them() {
        let mut all = String::new();
        for c in (0u32..0x100).chain([0x2028, 0x1f600]) {
            all.push(char::from_u32(c).unwrap());
        }
        for s in ["", "eth0", "a\"b\\c", "\u{7f}", &all] {
            let mut out = Vec::new();
            write_str(&mut out, s);
            assert_eq!(out, serde_json::to_vec(s).unwrap(), "{s:?}");
            let mut out = Vec::new();
            let mut o = Obj::begin(&mut out);
            o.display("k", s);
            o.end();
            let want = serde_json::to_vec(&serde_json::json!({ "k": s })).unwrap();
            assert_eq!(out, want);
        }
        for a in [
            "0.0.0.0",
            "198.18.0.2",
            "255.255.255.255",
            "::",
            "fd00::1",
            "::ffff:1.2.3.4",
        ] {
            let a: IpAddr = a.parse().unwrap();
            let mut out = Vec::new();
            let mut o = Obj::begin(&mut out);
            o.ip("a", a);
            o.end();
            let want = serde_json::to_vec(&serde_json::json!({ "a": a })).unwrap();
            assert_eq!(out, want);
        }
        let mut every_length = vec![0, u64::MAX];
        for d in 1..20 {
            let p = 10u64.pow(d);
            every_length.extend([p - 1, p, p + 1, p + p / 2 + 7]);
        }
        let mut r = 0x9e37_79b9_7f4a_7c15u64;
        for _ in 0..200_000 {
            r ^= r << 13;
            r ^= r >> 7;
            r ^= r << 17;
            every_length.push(r >> (r % 64));
        }
        every_length.extend(0..100_000);
        for v in every_length {
            let mut out = b"x".to_vec();
            write_u64(&mut out, v);
            assert_eq!(out, format!("x{v}").as_bytes());
        }
        #[derive(serde::Serialize)]
        struct Empty {}
        #[derive(serde::Serialize)]
        struct Mixed {
            rc: i64,
            t: bool,
            f: bool,
            n: Empty,
        }
        for rc in [0i64, -1, -113, i64::MIN, i64::MAX] {
            let mut out = Vec::new();
            let mut o = Obj::begin(&mut out);
            o.i64("rc", rc);
            o.bool("t", true);
            o.bool("f", false);
            o.obj("n").end();
            o.end();
            let want = Mixed {
                rc,
                t: true,
                f: false,
                n: Empty {},
            };
            assert_eq!(out, serde_json::to_vec(&want).unwrap());
        }
    }
}
