//! The Dockerfile's word rules, as Docker's builder applies them to `--change`
//! instructions: splitting a line into words (quotes and escapes kept for later),
//! then each word's quotes removed, escapes applied and `$VAR` expanded against the
//! config's environment. Also Go's durations (`HEALTHCHECK --interval=1m30s`).

/// The words of `rest`, split at whitespace outside quotes; quotes and escapes stay
/// in the words, for [`expand`] to apply (Docker's `parseWords`).
pub(crate) fn split_words(rest: &str) -> Vec<String> {
    #[derive(PartialEq)]
    enum Phase {
        Spaces,
        Word,
        Quote(char),
    }
    let mut words = Vec::new();
    let mut word = String::new();
    // A word made of quotes only (`""`) is a word, empty.
    let mut blank_ok = false;
    let mut phase = Phase::Spaces;
    let mut chars = rest.chars().peekable();
    while let Some(ch) = chars.next() {
        match phase {
            Phase::Spaces if ch.is_whitespace() => continue,
            Phase::Spaces => phase = Phase::Word,
            _ => {}
        }
        match phase {
            Phase::Word => {
                if ch.is_whitespace() {
                    if blank_ok || !word.is_empty() {
                        words.push(std::mem::take(&mut word));
                    }
                    blank_ok = false;
                    phase = Phase::Spaces;
                    continue;
                }
                if ch == '\'' || ch == '"' {
                    blank_ok = true;
                    phase = Phase::Quote(ch);
                }
                if ch == '\\' {
                    // An escape keeps itself and the character after it, a quote too;
                    // one at the very end is dropped.
                    match chars.next() {
                        Some(next) => {
                            word.push('\\');
                            word.push(next);
                        }
                        None => break,
                    }
                    continue;
                }
                word.push(ch);
            }
            Phase::Quote(quote) => {
                if ch == quote {
                    phase = Phase::Word;
                }
                if ch == '\\' && quote != '\'' {
                    match chars.next() {
                        Some(next) => {
                            word.push('\\');
                            word.push(next);
                        }
                        None => phase = Phase::Word,
                    }
                    continue;
                }
                word.push(ch);
            }
            Phase::Spaces => unreachable!("left above"),
        }
    }
    if phase != Phase::Spaces && (blank_ok || !word.is_empty()) {
        words.push(word);
    }
    words
}

/// The words of `rest` split at whitespace, nothing else (Docker's
/// `parseStringsWhitespaceDelimited`, for `EXPOSE`, `USER` and `VOLUME`).
pub(crate) fn split_whitespace(rest: &str) -> Vec<String> {
    rest.split_whitespace().map(String::from).collect()
}

/// `word` with its quotes removed, escapes applied and `$NAME`, `${NAME}`,
/// `${NAME:-WORD}` and `${NAME:+WORD}` replaced from `env` (`NAME=VALUE` entries; an
/// unset name is empty), as Docker's shell lexer processes one word. An error says
/// what is wrong with the word.
pub(crate) fn expand(word: &str, env: &[String]) -> Result<String, String> {
    let chars: Vec<char> = word.chars().collect();
    let mut lexer = Lexer {
        chars: &chars,
        at: 0,
        env,
    };
    lexer.until(None)
}

struct Lexer<'a> {
    chars: &'a [char],
    at: usize,
    env: &'a [String],
}

impl Lexer<'_> {
    fn peek(&self) -> Option<char> {
        self.chars.get(self.at).copied()
    }

    fn next(&mut self) -> Option<char> {
        let ch = self.peek();
        if ch.is_some() {
            self.at += 1;
        }
        ch
    }

    /// The text up to `stop` (consumed), or to the end when `stop` is `None`.
    fn until(&mut self, stop: Option<char>) -> Result<String, String> {
        let mut out = String::new();
        while let Some(ch) = self.peek() {
            if Some(ch) == stop {
                self.at += 1;
                return Ok(out);
            }
            match ch {
                '\'' => out.push_str(&self.single_quoted()?),
                '"' => out.push_str(&self.double_quoted()?),
                '$' => out.push_str(&self.dollar()?),
                _ => {
                    self.at += 1;
                    if ch == '\\' {
                        match self.next() {
                            Some(escaped) => out.push(escaped),
                            None => break,
                        }
                    } else {
                        out.push(ch);
                    }
                }
            }
        }
        match stop {
            Some(stop) => Err(format!(
                "unexpected end of statement while looking for matching {stop}"
            )),
            None => Ok(out),
        }
    }

    fn single_quoted(&mut self) -> Result<String, String> {
        self.at += 1;
        let mut out = String::new();
        loop {
            match self.next() {
                None => {
                    return Err(
                        "unexpected end of statement while looking for matching single-quote"
                            .into(),
                    )
                }
                Some('\'') => return Ok(out),
                Some(ch) => out.push(ch),
            }
        }
    }

    fn double_quoted(&mut self) -> Result<String, String> {
        self.at += 1;
        let mut out = String::new();
        loop {
            match self.peek() {
                None => {
                    return Err(
                        "unexpected end of statement while looking for matching double-quote"
                            .into(),
                    )
                }
                Some('"') => {
                    self.at += 1;
                    return Ok(out);
                }
                Some('$') => out.push_str(&self.dollar()?),
                Some(_) => {
                    let mut ch = self.next().expect("peeked");
                    if ch == '\\' {
                        match self.peek() {
                            // A backslash at the end of the word is dropped.
                            None => continue,
                            // Only these are escaped; any other backslash stays.
                            Some(next @ ('"' | '$' | '\\')) => {
                                self.at += 1;
                                ch = next;
                            }
                            Some(_) => {}
                        }
                    }
                    out.push(ch);
                }
            }
        }
    }

    fn dollar(&mut self) -> Result<String, String> {
        self.at += 1;
        if self.peek() != Some('{') {
            let name = self.name();
            if name.is_empty() {
                return Ok("$".into());
            }
            return Ok(self.lookup(&name).unwrap_or_default());
        }
        self.at += 1;
        match self.peek() {
            None => return Err("syntax error: missing '}'".into()),
            Some('{' | '}' | ':') => return Err("syntax error: bad substitution".into()),
            Some(_) => {}
        }
        let name = self.name();
        match self.next() {
            Some('}') => Ok(self.lookup(&name).unwrap_or_default()),
            Some(':') => {
                let modifier = self.next();
                let at_end = |lexer: &Self| lexer.peek().is_none();
                let word = match self.until(Some('}')) {
                    Ok(word) => word,
                    Err(_) if at_end(self) => return Err("syntax error: missing '}'".into()),
                    Err(e) => return Err(e),
                };
                let value = self.lookup(&name).unwrap_or_default();
                match modifier {
                    Some('+') => Ok(if value.is_empty() { value } else { word }),
                    Some('-') => Ok(if value.is_empty() { word } else { value }),
                    other => Err(format!(
                        "unsupported modifier ({}) in substitution",
                        other.map(String::from).unwrap_or_default()
                    )),
                }
            }
            _ => Err("missing ':' in substitution".into()),
        }
    }

    /// A variable's name: digits only, or letters, digits and `_`.
    fn name(&mut self) -> String {
        let mut name = String::new();
        if self.peek().is_some_and(|c| c.is_ascii_digit()) {
            while let Some(c) = self.peek().filter(char::is_ascii_digit) {
                name.push(c);
                self.at += 1;
            }
            return name;
        }
        while let Some(c) = self.peek().filter(|c| c.is_alphanumeric() || *c == '_') {
            name.push(c);
            self.at += 1;
        }
        name
    }

    fn lookup(&self, name: &str) -> Option<String> {
        self.env.iter().find_map(|entry| {
            let (key, value) = entry.split_once('=').unwrap_or((entry, ""));
            (key == name).then(|| value.to_string())
        })
    }
}

/// A Go duration (`300ms`, `1m30s`, `2h`, `1.5s`) in nanoseconds, as
/// `time.ParseDuration` reads it; `None` when it is none.
pub(crate) fn go_duration(text: &str) -> Option<i64> {
    let (negative, mut rest) = match text.as_bytes().first() {
        Some(b'-') => (true, &text[1..]),
        Some(b'+') => (false, &text[1..]),
        _ => (false, text),
    };
    if rest == "0" {
        return Some(0);
    }
    if rest.is_empty() {
        return None;
    }
    let mut total: f64 = 0.0;
    while !rest.is_empty() {
        let number_end = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let number = &rest[..number_end];
        if number.is_empty() || number == "." || number.matches('.').count() > 1 {
            return None;
        }
        let value: f64 = number.parse().ok()?;
        rest = &rest[number_end..];
        let unit_end = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let scale = match &rest[..unit_end] {
            "ns" => 1.0,
            "us" | "µs" | "μs" => 1e3,
            "ms" => 1e6,
            "s" => 1e9,
            "m" => 60e9,
            "h" => 3600e9,
            _ => return None,
        };
        rest = &rest[unit_end..];
        total += value * scale;
    }
    if total > i64::MAX as f64 {
        return None;
    }
    let nanos = total.round() as i64;
    Some(if negative { -nanos } else { nanos })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What the Docker 20.10 daemon here made of these words (`docker import --change`).
    #[test]
    fn words_expand_as_docker_expands_them() {
        let env = vec!["A=1".to_string()];
        let cases = [
            ("$A-2", "1-2"),
            ("${A}x", "1x"),
            ("\"q $A\"", "q 1"),
            ("'s $A'", "s $A"),
            ("a\\ b", "a b"),
            ("\"a\\\"b\"", "a\"b"),
            ("a\\\\b", "a\\b"),
            ("\\$A", "$A"),
            ("'x\\y'", "x\\y"),
            ("\"x\\y\"", "x\\y"),
            ("${A}${A}", "11"),
            ("$", "$"),
            ("a$", "a$"),
            (
                "${A:-z} and ${H:-def} ${A:+alt} ${H:+alt}",
                "1 and def alt ",
            ),
        ];
        for (word, want) in cases {
            assert_eq!(expand(word, &env).as_deref(), Ok(want), "{word}");
        }
        for bad in ["${", "${}", "${A", "${A:?x}", "'open", "\"open", "${A%x}"] {
            assert!(expand(bad, &env).is_err(), "{bad}");
        }
    }

    #[test]
    fn words_split_outside_quotes_keeping_them() {
        assert_eq!(
            split_words(r#"B=$A-2 D="q $A" F=a\ b "c d"="e f" '' "#),
            ["B=$A-2", "D=\"q $A\"", "F=a\\ b", "\"c d\"=\"e f\"", "''"]
        );
        assert_eq!(split_words("  "), Vec::<String>::new());
        assert_eq!(split_words("a\\"), ["a"]);
    }

    #[test]
    fn go_durations() {
        assert_eq!(go_duration("5s"), Some(5_000_000_000));
        assert_eq!(go_duration("1m30s"), Some(90_000_000_000));
        assert_eq!(go_duration("100ms"), Some(100_000_000));
        assert_eq!(go_duration("1.5h"), Some(5_400_000_000_000));
        assert_eq!(go_duration("0"), Some(0));
        for bad in ["", "5", "s", "1x", "1..2s", "--1s"] {
            assert_eq!(go_duration(bad), None, "{bad}");
        }
    }
}
