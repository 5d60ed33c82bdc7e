//! Untrusted text made safe for a terminal: the one function every printer
//! calls before a name it did not write reaches a screen.
//!
//! Anyone can choose what hopscope prints: an unprivileged process names
//! itself (`prctl(PR_SET_NAME)`), a container runtime names namespaces and
//! interfaces, a recording comes from another machine, libpcap echoes the
//! expression it refused. Printed raw, an escape sequence in such a name
//! rewrites the terminal's title, moves the cursor or hides lines.
//!
//! [`escape`] writes the text with every character a terminal would act on
//! shown as an escape instead: C0 and C1 controls and DEL as `\x1b`,
//! `\x9b`; invisible formatting characters that reorder or hide text
//! (bidirectional overrides, zero-width characters, line separators) as
//! `\u{202e}`; bytes that are not UTF-8 as `\xff`; and the backslash itself
//! as `\\`, so an escaped name cannot pass for another. Everything else,
//! including non-ASCII letters, is kept. JSON needs none of this: serde
//! escapes control characters there.

use std::borrow::Cow;
use std::fmt;

/// Whether a terminal could act on `c` (or hide or reorder text with it).
fn dangerous(c: char) -> bool {
    c.is_control()
        || c == '\\'
        || matches!(c,
            '\u{200b}'..='\u{200f}' // zero-width spaces and joiners, LRM, RLM
            | '\u{2028}'..='\u{202e}' // line/paragraph separators, bidi embeddings and overrides
            | '\u{2060}'..='\u{206f}' // word joiner, invisible operators, bidi isolates
            | '\u{feff}' // zero-width no-break space (BOM)
            | '\u{fff9}'..='\u{fffb}') // interlinear annotations
}

/// THE function: writes `bytes` (text from an untrusted source, UTF-8 or
/// not) to `out` with everything a terminal could act on escaped. The
/// result holds no control character, whatever the input.
pub fn escape(bytes: &[u8], out: &mut impl fmt::Write) -> fmt::Result {
    for chunk in bytes.utf8_chunks() {
        let valid = chunk.valid();
        let mut start = 0;
        for (i, c) in valid.char_indices() {
            if !dangerous(c) {
                continue;
            }
            out.write_str(&valid[start..i])?;
            start = i + c.len_utf8();
            match c {
                '\\' => out.write_str("\\\\")?,
                c if (c as u32) < 0x80 => write!(out, "\\x{:02x}", c as u32)?,
                c => write!(out, "\\u{{{:x}}}", c as u32)?,
            }
        }
        out.write_str(&valid[start..])?;
        for b in chunk.invalid() {
            write!(out, "\\x{b:02x}")?;
        }
    }
    Ok(())
}

/// `s` as [`escape`] shows it; borrowed when nothing needed escaping.
pub fn shown(s: &str) -> Cow<'_, str> {
    if !s.chars().any(dangerous) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    let _ = escape(s.as_bytes(), &mut out);
    Cow::Owned(out)
}

/// Displays an untrusted string through [`escape`] (padding and width
/// apply to the escaped text), so it can go straight into `format!`.
#[derive(Clone, Copy)]
pub struct Shown<'a>(pub &'a str);

impl fmt::Display for Shown<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(&shown(self.0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn esc(b: &[u8]) -> String {
        let mut s = String::new();
        escape(b, &mut s).unwrap();
        s
    }

    #[test]
    fn escapes_what_a_terminal_acts_on() {
        assert_eq!(
            shown("\x1b]0;pwned\x07x"),
            "\\x1b]0;pwned\\x07x",
            "OSC title sequence"
        );
        assert_eq!(shown("\x1b[2J\x1b[H"), "\\x1b[2J\\x1b[H");
        assert_eq!(shown("a\u{9b}31m"), "a\\u{9b}31m", "C1 CSI");
        assert_eq!(shown("evil\u{202e}gpj.exe"), "evil\\u{202e}gpj.exe");
        assert_eq!(shown("tab\there\r\n\x7f"), "tab\\x09here\\x0d\\x0a\\x7f");
        assert_eq!(
            shown("a\\x1b"),
            "a\\\\x1b",
            "a literal backslash stays apart"
        );
        assert_eq!(esc(b"veth\xff\xfe0"), "veth\\xff\\xfe0");
    }

    #[test]
    fn leaves_ordinary_names_alone() {
        for s in [
            "eth0",
            "hs-c1",
            "ctr 3f2a9c1d0e4b",
            "ping[1234]",
            "café",
            "网卡0",
        ] {
            assert!(matches!(shown(s), Cow::Borrowed(_)), "{s}");
            assert_eq!(esc(s.as_bytes()), s);
        }
        assert_eq!(format!("[{:>6}]", Shown("a\x1b")), "[ a\\x1b]");
    }

    #[test]
    fn no_control_character_survives_any_byte() {
        for b in 0..=255u8 {
            let out = esc(&[b'a', b, b'z']);
            assert!(!out.chars().any(char::is_control), "{b:#x}: {out:?}");
        }
        for c in (0..0x3000u32).filter_map(char::from_u32) {
            let out = shown(c.encode_utf8(&mut [0; 4])).into_owned();
            assert!(
                !out.chars().any(dangerous) || out.starts_with('\\'),
                "{c:?}"
            );
            assert!(!out.chars().any(char::is_control), "{c:?}");
        }
    }
}
