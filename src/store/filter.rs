//! `docker images --filter`: `reference=PATTERN`, `label=KEY[=VALUE]`, `before=IMAGE`,
//! `since=IMAGE` and `dangling=true|false`, matched as docker matches them.

use std::collections::BTreeMap;

use crate::error::{Error, Result};
use crate::history::ConfigSummary;
use crate::model::image::Image;
use crate::select::{select, Selector};
use crate::text::shown;

use super::listing::created_at;

/// One filter of `docker images --filter`.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ImageFilter {
    /// `reference=PATTERN`: a name matches when the pattern (Go's `path.Match`: `*`
    /// and `?` stop at `/`, `[...]` classes, `\` escapes) matches it in docker's
    /// familiar form with its tag (`busybox:latest`, `quay.io/x/y:1`) or without
    /// (`busybox`); an OCI ref name that is not a reference is matched as written.
    Reference(String),
    /// `label=KEY` or `label=KEY=VALUE`: the config has the label (with that value).
    Label {
        /// The label's key.
        key: String,
        /// The value it must have, when given.
        value: Option<String>,
    },
    /// `before=IMAGE`: created before that image of the source (by its config's
    /// `created`; a name, an ID or a prefix of one, `@N`).
    Before(String),
    /// `since=IMAGE`: created after that image.
    Since(String),
    /// `dangling=true|false`: without any name (or with one).
    Dangling(bool),
}

/// Filters as `docker images` combines them: different keys must all pass; of several
/// `reference` patterns one must match (docker lists only the names that do); several
/// `label`, `before` or `since` filters must all pass; `dangling=true` given at all
/// wins over `dangling=false`.
///
/// ```
/// use dockhand::{open_source, ImageFilters, Location, ReadOptions};
///
/// let input = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/docker-save-multi/input.tar");
/// let mut source = open_source(&Location::parse(input)?, &ReadOptions::default())?;
/// let filters = ImageFilters::parse(&["reference=*/dockhand/app:*".into()])?;
/// let passed = filters.apply(&mut source.images, &[0, 1, 2])?;
/// assert_eq!(passed, vec![0]);
/// // Only the names that matched are left.
/// assert_eq!(source.images[0].tags[0].to_string(), "localhost:5000/dockhand/app:v2");
/// assert!(ImageFilters::parse(&["color=red".into()]).unwrap_err().is_usage());
/// # Ok::<(), dockhand::Error>(())
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ImageFilters(pub Vec<ImageFilter>);

impl ImageFilters {
    /// Parse `KEY=VALUE` texts as `docker images --filter` takes them; a malformed one,
    /// an unknown key or a bad pattern is a usage error.
    pub fn parse(texts: &[String]) -> Result<ImageFilters> {
        let mut filters = Vec::new();
        for text in texts {
            let Some((key, value)) = text.split_once('=') else {
                return Err(Error::Usage(format!(
                    "bad format of filter {} (expected name=value)",
                    shown(text)
                )));
            };
            let filter = match key.trim().to_ascii_lowercase().as_str() {
                "reference" => {
                    glob(value, "").map_err(|()| {
                        Error::Usage(format!(
                            "invalid reference pattern {} (a pattern as Go's path.Match takes it)",
                            shown(value)
                        ))
                    })?;
                    ImageFilter::Reference(value.to_string())
                }
                "label" => match value.split_once('=') {
                    Some((k, v)) => ImageFilter::Label {
                        key: k.to_string(),
                        value: Some(v.to_string()),
                    },
                    None => ImageFilter::Label {
                        key: value.to_string(),
                        value: None,
                    },
                },
                "before" => ImageFilter::Before(value.to_string()),
                "since" => ImageFilter::Since(value.to_string()),
                "dangling" => match value {
                    "true" => ImageFilter::Dangling(true),
                    "false" => ImageFilter::Dangling(false),
                    _ => {
                        return Err(Error::Usage(format!(
                            "invalid filter dangling={}: expected true or false",
                            shown(value)
                        )))
                    }
                },
                _ => {
                    return Err(Error::Usage(format!(
                        "invalid filter {}: images are filtered by reference, label, before, since and dangling",
                        shown(key)
                    )))
                }
            };
            filters.push(filter);
        }
        Ok(ImageFilters(filters))
    }

    /// Whether there is no filter.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The images of `selected` that pass, in the same order. An image passing by
    /// `reference` patterns keeps only the names that matched (its `tags` and
    /// `ref_names` are narrowed in `images`), as docker lists only those. A `before` or
    /// `since` image that the source does not hold is an error naming it.
    pub fn apply(&self, images: &mut [Image], selected: &[usize]) -> Result<Vec<usize>> {
        let time_of = |text: &str, images: &[Image]| -> Result<Option<i128>> {
            let picked = select(images, &[Selector::parse(text)?])?;
            Ok(created_at(&images[picked[0]]))
        };
        let mut before = Vec::new();
        let mut since = Vec::new();
        let mut patterns = Vec::new();
        let mut labels = Vec::new();
        let mut dangling = None;
        for filter in &self.0 {
            match filter {
                ImageFilter::Before(image) => before.push(time_of(image, images)?),
                ImageFilter::Since(image) => since.push(time_of(image, images)?),
                ImageFilter::Reference(p) => patterns.push(p.as_str()),
                ImageFilter::Label { key, value } => labels.push((key, value)),
                ImageFilter::Dangling(d) => dangling = Some(dangling.unwrap_or(false) || *d),
            }
        }
        let mut passed = Vec::new();
        for &i in selected {
            let image = &mut images[i];
            // An image without a time is docker's zero time: before every other.
            let created = created_at(image).unwrap_or(i128::MIN);
            if before.iter().any(|t| created >= t.unwrap_or(i128::MIN))
                || since.iter().any(|t| created <= t.unwrap_or(i128::MIN))
            {
                continue;
            }
            if !labels.is_empty() {
                let held: BTreeMap<String, String> =
                    ConfigSummary::of(image).labels.unwrap_or_default();
                let all = labels.iter().all(|(key, value)| match held.get(*key) {
                    Some(v) => value.as_ref().is_none_or(|want| want == v),
                    None => false,
                });
                if !all {
                    continue;
                }
            }
            let named = !image.tags.is_empty() || !image.ref_names.is_empty();
            if dangling.is_some_and(|d| d == named) {
                continue;
            }
            if !patterns.is_empty() {
                let matches = |name: &str| patterns.iter().any(|p| glob(p, name) == Ok(true));
                let tags: Vec<_> = image
                    .tags
                    .iter()
                    .filter(|t| matches(&t.familiar()) || matches(&t.familiar_repository()))
                    .cloned()
                    .collect();
                let ref_names: Vec<String> = image
                    .ref_names
                    .iter()
                    .filter(|n| matches(n))
                    .cloned()
                    .collect();
                if tags.is_empty() && ref_names.is_empty() {
                    continue;
                }
                image.retain_names(|t| tags.contains(t), |n| ref_names.contains(n));
            }
            passed.push(i);
        }
        Ok(passed)
    }
}

/// One piece of a pattern.
enum Token {
    /// `*`: any run of characters but `/`.
    Star,
    /// `?`: one character but `/`.
    One,
    /// `[...]`: one character in (or, negated, not in) the ranges.
    Class {
        negated: bool,
        ranges: Vec<(char, char)>,
    },
    /// A character as it is.
    Literal(char),
}

/// Whether `pattern` matches all of `name`, as Go's `path.Match`; `Err` for a
/// malformed pattern (whatever the name). Work is the product of the two lengths.
pub(crate) fn glob(pattern: &str, name: &str) -> std::result::Result<bool, ()> {
    let tokens = tokens(pattern)?;
    let name: Vec<char> = name.chars().collect();
    // matched[j]: the tokens from the current one on match name[j..].
    let mut matched = vec![false; name.len() + 1];
    matched[name.len()] = true;
    for token in tokens.iter().rev() {
        let mut next = vec![false; name.len() + 1];
        for j in (0..=name.len()).rev() {
            next[j] = match token {
                Token::Star => matched[j] || (j < name.len() && name[j] != '/' && next[j + 1]),
                _ if j == name.len() => false,
                Token::One => name[j] != '/' && matched[j + 1],
                Token::Literal(c) => name[j] == *c && matched[j + 1],
                Token::Class { negated, ranges } => {
                    let inside = ranges
                        .iter()
                        .any(|(lo, hi)| *lo <= name[j] && name[j] <= *hi);
                    inside != *negated && matched[j + 1]
                }
            };
        }
        matched = next;
    }
    Ok(matched[0])
}

fn tokens(pattern: &str) -> std::result::Result<Vec<Token>, ()> {
    let chars: Vec<char> = pattern.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    // A character of a class, maybe escaped.
    let escaped = |i: &mut usize| -> std::result::Result<char, ()> {
        match chars.get(*i) {
            None | Some('-') | Some(']') => Err(()),
            Some('\\') => {
                let c = *chars.get(*i + 1).ok_or(())?;
                *i += 2;
                Ok(c)
            }
            Some(&c) => {
                *i += 1;
                Ok(c)
            }
        }
    };
    while i < chars.len() {
        match chars[i] {
            '*' => {
                out.push(Token::Star);
                i += 1;
            }
            '?' => {
                out.push(Token::One);
                i += 1;
            }
            '\\' => {
                out.push(Token::Literal(*chars.get(i + 1).ok_or(())?));
                i += 2;
            }
            '[' => {
                i += 1;
                let negated = chars.get(i) == Some(&'^');
                if negated {
                    i += 1;
                }
                let mut ranges = Vec::new();
                loop {
                    if chars.get(i) == Some(&']') && !ranges.is_empty() {
                        i += 1;
                        break;
                    }
                    let lo = escaped(&mut i)?;
                    let hi = if chars.get(i) == Some(&'-') {
                        i += 1;
                        escaped(&mut i)?
                    } else {
                        lo
                    };
                    ranges.push((lo, hi));
                }
                out.push(Token::Class { negated, ranges });
            }
            c => {
                out.push(Token::Literal(c));
                i += 1;
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::glob;

    #[test]
    fn patterns_match_as_go_path_match_does() {
        for (pattern, name, want) in [
            ("abc", "abc", Ok(true)),
            ("*", "abc", Ok(true)),
            ("*c", "abc", Ok(true)),
            ("a*", "a", Ok(true)),
            ("a*", "ab/c", Ok(false)),
            ("a*/b", "abc/b", Ok(true)),
            ("a*/b", "a/c/b", Ok(false)),
            ("a*b*c*d*e*/f", "axbxcxdxe/f", Ok(true)),
            ("a*b*c*d*e*/f", "axbxcxdxexxx/f", Ok(true)),
            ("a*b*c*d*e*/f", "axbxcxdxe/xxx/f", Ok(false)),
            ("a*b?c*x", "abxbbxdbxebxczzx", Ok(true)),
            ("a*b?c*x", "abxbbxdbxebxczzy", Ok(false)),
            ("ab[c]", "abc", Ok(true)),
            ("ab[b-d]", "abc", Ok(true)),
            ("ab[e-g]", "abc", Ok(false)),
            ("ab[^c]", "abc", Ok(false)),
            ("ab[^b-d]", "abe", Ok(true)),
            ("a\\*b", "a*b", Ok(true)),
            ("a\\*b", "ab", Ok(false)),
            ("a?b", "a☺b", Ok(true)),
            ("a???b", "a☺b", Ok(false)),
            ("a[^a]b", "a☺b", Ok(true)),
            ("[", "a", Err(())),
            ("[^", "a", Err(())),
            ("[^bc", "a", Err(())),
            ("a[", "a", Err(())),
            ("a[", "ab", Err(())),
            ("*x", "xxx", Ok(true)),
            ("[]a]", "]", Err(())),
            ("[-]", "-", Err(())),
            ("[x-]", "x", Err(())),
            ("\\", "a", Err(())),
            ("busybox:*", "busybox:latest", Ok(true)),
            ("*/app", "quay.io/app", Ok(true)),
            ("*/app", "quay.io/team/app", Ok(false)),
        ] {
            assert_eq!(glob(pattern, name), want, "{pattern} {name}");
        }
    }
}
