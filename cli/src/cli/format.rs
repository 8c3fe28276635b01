//! `inspect --format`: a row per image name, as `docker images --format` prints them,
//! from a small template: `{{.Field}}` placeholders, `\t` and `\n`, and `table` in front
//! for a header and aligned columns (docker's tabwriter: columns at least 10 wide, 3
//! spaces apart). Nothing else of Go's templates: for anything more, `--json` and jq.

use std::time::SystemTime;

use dockhand::text::{civil_date, shown};
use dockhand::ImageRow;

use super::tables::{docker_size, relative_time};

/// The fields a template can name, with the header docker's table gives each.
const FIELDS: [(&str, &str); 8] = [
    ("ID", "IMAGE ID"),
    ("Repository", "REPOSITORY"),
    ("Tag", "TAG"),
    ("Digest", "DIGEST"),
    ("CreatedAt", "CREATED AT"),
    ("CreatedSince", "CREATED"),
    ("Size", "SIZE"),
    ("Index", "#"),
];

/// What `--format table` alone prints: docker's default `images` table.
const DEFAULT_TABLE: &str =
    "table {{.Repository}}\\t{{.Tag}}\\t{{.ID}}\\t{{.CreatedSince}}\\t{{.Size}}";

/// A parsed `--format`.
#[derive(Debug, PartialEq, Eq)]
pub struct Template {
    /// Text and fields, in order.
    parts: Vec<Part>,
    /// `table`: a header row, and columns aligned.
    table: bool,
}

#[derive(Debug, PartialEq, Eq)]
enum Part {
    Text(String),
    Field(usize),
}

impl Template {
    /// Parse `text`; what it cannot take is a usage error naming the fields it can.
    pub fn parse(text: &str) -> Result<Template, String> {
        let text = if text.trim() == "table" {
            DEFAULT_TABLE
        } else {
            text
        };
        let (table, body) = match text.strip_prefix("table") {
            Some(rest) if rest.starts_with([' ', '\t']) || rest.starts_with("\\t") => (true, rest),
            _ => (false, text),
        };
        // As docker: the spaces around it trimmed, `\t` and `\n` written as such.
        let body = body
            .trim_matches(' ')
            .replace("\\t", "\t")
            .replace("\\n", "\n");
        let fields = || {
            FIELDS
                .iter()
                .map(|(f, _)| format!("{{{{.{f}}}}}"))
                .collect::<Vec<_>>()
                .join(" ")
        };
        let mut parts = Vec::new();
        let mut rest = body.as_str();
        while let Some(start) = rest.find("{{") {
            if start > 0 {
                parts.push(Part::Text(rest[..start].to_string()));
            }
            let after = &rest[start + 2..];
            let end = after
                .find("}}")
                .ok_or_else(|| format!("--format: a {{{{ without }}}} in {}", shown(text)))?;
            let action = after[..end].trim();
            let field = action
                .strip_prefix('.')
                .and_then(|name| FIELDS.iter().position(|(f, _)| *f == name))
                .ok_or_else(|| {
                    format!(
                        "--format takes the fields {} (and `table` in front), not {{{{{}}}}}; \
                         for anything else, --json and jq",
                        fields(),
                        shown(action)
                    )
                })?;
            parts.push(Part::Field(field));
            rest = &after[end + 2..];
        }
        if rest.contains("}}") {
            return Err(format!("--format: a }}}} without {{{{ in {}", shown(text)));
        }
        if !rest.is_empty() {
            parts.push(Part::Text(rest.to_string()));
        }
        Ok(Template { parts, table })
    }

    /// The rows rendered, each line ending with a newline; with `table`, a header
    /// first and the columns aligned.
    pub fn render(&self, rows: &[ImageRow], no_trunc: bool, now: SystemTime) -> String {
        let line = |value: &dyn Fn(usize) -> String| -> String {
            self.parts
                .iter()
                .map(|p| match p {
                    Part::Text(t) => t.clone(),
                    Part::Field(f) => value(*f),
                })
                .collect()
        };
        let mut lines: Vec<String> = Vec::new();
        if self.table {
            lines.push(line(&|f| FIELDS[f].1.to_string()));
        }
        for row in rows {
            lines.push(line(&|f| field(row, f, no_trunc, now)));
        }
        if self.table {
            tabwriter(&lines)
        } else {
            lines.iter().map(|l| format!("{l}\n")).collect()
        }
    }
}

/// The value of field `f` (of [`FIELDS`]) for `row`, as docker writes it.
fn field(row: &ImageRow, f: usize, no_trunc: bool, now: SystemTime) -> String {
    let none = || "<none>".to_string();
    match FIELDS[f].0 {
        "ID" if no_trunc => row.id.to_string(),
        "ID" => row.id.short().to_string(),
        "Repository" => row.repository.clone().unwrap_or_else(none),
        "Tag" => row.tag.as_deref().map(shown).unwrap_or_else(none),
        "Digest" => row.digest.as_ref().map_or_else(none, |d| d.to_string()),
        "CreatedAt" => row.created_at.map_or_else(none, go_time_string),
        "CreatedSince" => row.created_at.map_or_else(none, |t| {
            relative_time(t.div_euclid(1_000_000_000) as i64, now)
        }),
        "Size" => docker_size(row.size),
        "Index" => format!("@{}", row.index),
        _ => unreachable!("a field of FIELDS"),
    }
}

/// A time as Go's `time.Time.String()` writes one in UTC, as `docker images`
/// shows CREATED AT: `2024-01-02 03:04:05 +0000 UTC`.
fn go_time_string(nanos: i128) -> String {
    let seconds = nanos.div_euclid(1_000_000_000) as i64;
    let days = seconds.div_euclid(86_400);
    let of_day = seconds.rem_euclid(86_400);
    let (year, month, day) = civil_date(days);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02} +0000 UTC",
        of_day / 3600,
        of_day % 3600 / 60,
        of_day % 60
    )
}

/// Lines of tab-separated cells aligned as Go's tabwriter aligns them for docker
/// (`tabwriter.NewWriter(out, 10, 1, 3, ' ', 0)`): each tab-terminated cell padded to
/// its column's width, the widest cell plus 3 and at least 10; a line's last cell as
/// it is.
fn tabwriter(lines: &[String]) -> String {
    let cells: Vec<Vec<&str>> = lines.iter().map(|l| l.split('\t').collect()).collect();
    let columns = cells.iter().map(|c| c.len() - 1).max().unwrap_or(0);
    let mut widths = vec![10usize; columns];
    for line in &cells {
        for (w, cell) in widths.iter_mut().zip(&line[..line.len() - 1]) {
            *w = (*w).max(cell.chars().count() + 3);
        }
    }
    let mut out = String::new();
    for line in &cells {
        let (last, aligned) = line.split_last().expect("split gives one at least");
        for (cell, w) in aligned.iter().zip(&widths) {
            out.push_str(cell);
            out.push_str(&" ".repeat(w - cell.chars().count()));
        }
        out.push_str(last);
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn templates_take_fields_and_nothing_else() {
        let t = Template::parse("{{.ID}} {{ .Tag }}").unwrap();
        assert_eq!(
            t.parts,
            vec![Part::Field(0), Part::Text(" ".into()), Part::Field(2)]
        );
        assert!(!t.table);
        assert!(Template::parse("table {{.ID}}").unwrap().table);
        assert!(Template::parse("table").unwrap().table);
        for bad in ["{{json .}}", "{{.Nope}}", "{{.ID", "x}}", "{{.ID | lower}}"] {
            let err = Template::parse(bad).unwrap_err();
            assert!(err.contains("--format"), "{bad}: {err}");
        }
    }

    #[test]
    fn times_read_as_go_writes_them() {
        assert_eq!(go_time_string(0), "1970-01-01 00:00:00 +0000 UTC");
        // 2026-11-22T19:35:04.18851048Z
        assert_eq!(
            go_time_string(1_795_376_104_188_510_480),
            "2026-11-22 19:35:04 +0000 UTC"
        );
        assert_eq!(
            go_time_string(951_782_400 * 1_000_000_000),
            "2000-02-29 00:00:00 +0000 UTC"
        );
        assert_eq!(
            go_time_string(-86_400 * 1_000_000_000),
            "1969-12-31 00:00:00 +0000 UTC"
        );
    }

    #[test]
    fn tables_align_as_go_tabwriter() {
        let lines = [
            "REPOSITORY\tTAG\tIMAGE ID".to_string(),
            "a\tlatest\tx".to_string(),
        ];
        assert_eq!(
            tabwriter(&lines),
            "REPOSITORY   TAG       IMAGE ID\na            latest    x\n"
        );
    }
}
