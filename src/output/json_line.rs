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

/// Two decimal digits of every number below 100.
const DIGIT_PAIRS: &[u8; 200] = b"\
0001020304050607080910111213141516171819\
2021222324252627282930313233343536373839\
4041424344454647484950515253545556575859\
6061626364656667686970717273747576777879\
8081828384858687888990919293949596979899";

/// Decimal digits of `v`, two at a time, written in place: the buffer
/// grows by a constant 20 bytes and is cut back, so no copy of a length
/// known only at run time (a call to `memcpy`) is made per number.
fn write_u64(out: &mut Vec<u8>, mut v: u64) {
    let n = v.checked_ilog10().map_or(1, |d| d as usize + 1);
    let start = out.len();
    out.extend_from_slice(&[0u8; 20]);
    let digits = &mut out[start..start + n];
    let mut i = n;
    while v >= 100 {
        let d = (v % 100) as usize * 2;
        v /= 100;
        i -= 2;
        digits[i] = DIGIT_PAIRS[d];
        digits[i + 1] = DIGIT_PAIRS[d + 1];
    }
    if v >= 10 {
        let d = v as usize * 2;
        digits[i - 2] = DIGIT_PAIRS[d];
        digits[i - 1] = DIGIT_PAIRS[d + 1];
    } else {
        digits[i - 1] = b'0' + v as u8;
    }
    out.truncate(start + n);
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
