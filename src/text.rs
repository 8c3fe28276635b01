//! Showing text that came from an input: archive entry names, paths in manifest.json,
//! tags, OCI ref names, annotations. Such text can hold anything (a newline that forges
//! a second message, an escape sequence that rewrites the terminal, a megabyte of
//! name), so it is escaped and cut before it reaches a message.

/// How many characters of one input-derived text a message shows.
pub const MAX_SHOWN_CHARS: usize = 200;

/// How many characters one printed line (an error, a warning) holds at most.
pub const MAX_LINE_CHARS: usize = 4000;

/// The proleptic Gregorian date (year, month, day) of a day counted from 1970-01-01,
/// for writing times in UTC (Howard Hinnant's `civil_from_days`).
///
/// ```
/// use dockhand::text::civil_date;
///
/// assert_eq!(civil_date(0), (1970, 1, 1));
/// assert_eq!(civil_date(19_782), (2024, 2, 29));
/// assert_eq!(civil_date(-1), (1969, 12, 31));
/// ```
pub fn civil_date(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// `text` escaped (see [`escape`]) and cut to [`MAX_SHOWN_CHARS`] characters, for
/// putting input-derived text into a message.
///
/// ```
/// use dockhand::text::shown;
///
/// assert_eq!(shown("a\nb\x1b[31m"), "a\\nb\\x1b[31m");
/// assert!(shown(&"x".repeat(10_000)).len() < 300);
/// ```
pub fn shown(text: &str) -> String {
    let mut out = String::new();
    for (count, c) in text.chars().enumerate() {
        if count == MAX_SHOWN_CHARS {
            out.push_str(&format!("... ({} bytes)", text.len()));
            break;
        }
        push_escaped(&mut out, c, true);
    }
    out
}

/// `text` with every character that could change what a terminal shows escaped:
/// control characters (`\n`, `\t`, `\x1b`, `\x7f`, C1 controls), Unicode line
/// separators and bidirectional overrides (`\u{202e}`), and the backslash itself, so
/// that the result reads back unambiguously.
///
/// ```
/// use dockhand::text::escape;
///
/// assert_eq!(escape("RUN\techo\n\x1b[2J"), "RUN\\techo\\n\\x1b[2J");
/// assert_eq!(escape("evil\u{202e}txt"), "evil\\u{202e}txt");
/// assert_eq!(escape("a\\b"), "a\\\\b"); // the backslash too
/// assert_eq!(escape("héllo wörld"), "héllo wörld"); // printable text is kept
/// ```
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        push_escaped(&mut out, c, true);
    }
    out
}

/// Make `line` safe to print as exactly one line: characters that [`escape`] would
/// escape are escaped (except the backslash, so text escaped once is unchanged), and
/// the result is cut to [`MAX_LINE_CHARS`] characters.
///
/// ```
/// use dockhand::text::{one_line, shown, MAX_LINE_CHARS};
///
/// let message = format!("error: {}: not an image", shown("evil\nname"));
/// assert_eq!(one_line(&message), message); // escaped once, unchanged
/// assert_eq!(one_line("a\nb"), "a\\nb");
/// assert!(one_line(&"x".repeat(10_000)).chars().count() <= MAX_LINE_CHARS + 3);
/// ```
pub fn one_line(line: &str) -> String {
    let mut out = String::with_capacity(line.len().min(MAX_LINE_CHARS));
    for (count, c) in line.chars().enumerate() {
        if count == MAX_LINE_CHARS {
            out.push_str("...");
            break;
        }
        push_escaped(&mut out, c, false);
    }
    out
}

/// Escape, inside serialized JSON, the characters JSON allows raw but a terminal would
/// act on (DEL, C1 controls, line separators, bidirectional overrides), as `\uXXXX`.
/// The JSON value is unchanged; control characters below 0x20 are already escaped by
/// every JSON serializer.
///
/// ```
/// use dockhand::text::escape_json_text;
///
/// let json = serde_json::json!({"label": "right\u{202e}left"}).to_string();
/// let escaped = escape_json_text(&json);
/// assert_eq!(escaped, r#"{"label":"right\u202eleft"}"#);
/// let back: serde_json::Value = serde_json::from_str(&escaped).unwrap();
/// assert_eq!(back.to_string(), json); // the same value
/// ```
pub fn escape_json_text(json: &str) -> String {
    let mut out = String::with_capacity(json.len());
    for c in json.chars() {
        if needs_escape(c) && c >= ' ' {
            let mut units = [0u16; 2];
            for unit in c.encode_utf16(&mut units) {
                out.push_str(&format!("\\u{unit:04x}"));
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// Characters that must not reach a terminal raw.
fn needs_escape(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{061c}'
                | '\u{200e}'
                | '\u{200f}'
                | '\u{2028}'
                | '\u{2029}'
                | '\u{202a}'..='\u{202e}'
                | '\u{2066}'..='\u{2069}'
        )
}

fn push_escaped(out: &mut String, c: char, backslash: bool) {
    match c {
        '\\' if backslash => out.push_str("\\\\"),
        '\n' => out.push_str("\\n"),
        '\r' => out.push_str("\\r"),
        '\t' => out.push_str("\\t"),
        c if needs_escape(c) && (c as u32) < 0x80 => {
            out.push_str(&format!("\\x{:02x}", c as u32));
        }
        c if needs_escape(c) => out.push_str(&format!("\\u{{{:x}}}", c as u32)),
        c => out.push(c),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_what_a_terminal_would_act_on() {
        assert_eq!(escape("plain/path:tag"), "plain/path:tag");
        assert_eq!(escape("a\nb"), "a\\nb");
        assert_eq!(escape("\x1b[2J\x07"), "\\x1b[2J\\x07");
        assert_eq!(escape("\u{9b}31m"), "\\u{9b}31m");
        assert_eq!(escape("evil\u{202e}txt"), "evil\\u{202e}txt");
        assert_eq!(escape("back\\slash"), "back\\\\slash");
        assert_eq!(escape("\x7f"), "\\x7f");
        assert_eq!(escape("ünïcödé"), "ünïcödé");
    }

    #[test]
    fn shown_text_is_bounded() {
        let long = "é".repeat(5000);
        let s = shown(&long);
        assert!(s.chars().count() < MAX_SHOWN_CHARS + 30, "{s}");
        assert!(s.ends_with("(10000 bytes)"), "{s}");
        assert_eq!(shown("short"), "short");
    }

    #[test]
    fn one_line_is_idempotent_on_escaped_text() {
        let once = shown("x\ny\\z");
        assert_eq!(one_line(&once), once);
        assert_eq!(one_line("a\nb"), "a\\nb");
        assert!(!one_line(&"\n".repeat(100_000)).contains('\n'));
        assert!(one_line(&"y".repeat(100_000)).len() <= MAX_LINE_CHARS + 3);
    }

    #[test]
    fn json_text_keeps_its_value() {
        let value = serde_json::json!({"name": "a\u{9b}b\u{202e}c\x1b"});
        let text = escape_json_text(&serde_json::to_string(&value).unwrap());
        assert!(text.is_ascii(), "{text}");
        assert_eq!(
            serde_json::from_str::<serde_json::Value>(&text).unwrap(),
            value
        );
    }
}
