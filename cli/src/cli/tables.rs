//! What `inspect`, `inspect --platforms` and `history` print as text, and the sizes,
//! times and names they show: docker's tables, drawn from what the library reads.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::{SystemTime, UNIX_EPOCH};

use dockhand::text::{escape, shown};
use dockhand::{ConfigSummary, Digest, Image, ImageHistory, Layer, Referrer, Source};

/// What `docker history` strips from the front of a build step.
const NOP_PREFIX: &str = "/bin/sh -c #(nop) ";

/// How many characters of a build step the `history` table shows without `--no-trunc`.
const CREATED_BY_WIDTH: usize = 45;

/// How many other images a layer row of the `inspect` table names as sharing it.
const SHARED_SHOWN: usize = 8;

/// How many names a row of the `inspect` table shows (`--json` lists them all).
const TABLE_NAMES: usize = 10;

/// The digest whole (`sha256:<hex>`) with `--no-trunc`, else its short form.
fn whole_or_short(digest: &Digest, whole: bool) -> String {
    if whole {
        digest.to_string()
    } else {
        digest.short().to_string()
    }
}

/// The `history` table of one image, as `docker history` prints it: IMAGE, CREATED
/// (relative to `now`), CREATED BY (without [`NOP_PREFIX`] and the spaces after it,
/// tabs as spaces, cut to [`CREATED_BY_WIDTH`] characters with `…` unless `no_trunc`),
/// SIZE (the layer's uncompressed size in docker's units), COMMENT. Every text from
/// the config is escaped.
pub fn history_table(history: &ImageHistory, no_trunc: bool, now: SystemTime) -> String {
    let rows = history.history.iter().map(|row| {
        let id = match &row.id {
            Some(d) => whole_or_short(d, no_trunc),
            None => "<missing>".into(),
        };
        let created = match &row.created {
            None => "<missing>".into(),
            Some(c) => match parse_rfc3339(c) {
                Some(t) => relative_time(t, now),
                None => shown(c),
            },
        };
        let created_by = row.created_by.as_deref().unwrap_or("");
        let created_by = created_by
            .strip_prefix(NOP_PREFIX)
            .map_or(created_by, str::trim_start)
            .replace('\t', " ");
        let created_by = if no_trunc {
            created_by
        } else {
            ellipsis(&created_by, CREATED_BY_WIDTH)
        };
        [
            id,
            created,
            escape(&created_by),
            docker_size(row.size),
            escape(row.comment.as_deref().unwrap_or("")),
        ]
    });
    let header = ["IMAGE", "CREATED", "CREATED BY", "SIZE", "COMMENT"].map(String::from);
    columns(std::iter::once(header).chain(rows), "", 3)
}

/// The names of an image for one line of text: tags in the source's order, then OCI
/// ref names, escaped; past `most` names, how many more there are.
pub fn names_line(image: &Image, most: usize) -> String {
    let mut names: Vec<String> = image
        .tags
        .iter()
        .map(|t| t.to_string())
        .chain(
            image
                .ref_names
                .iter()
                .map(|n| format!("(ref) {}", shown(n))),
        )
        .take(most)
        .collect();
    let total = image.tags.len() + image.ref_names.len();
    if total > names.len() {
        names.push(format!("and {} more", total - names.len()));
    }
    if names.is_empty() {
        names.push("<none>".into());
    }
    if image.artifact {
        names.push(format!("[artifact {}]", shown(&image.config.media_type)));
    }
    names.join(", ")
}

/// The `inspect` table of the images of `source` at `selected`, numbered by their
/// position in the source, then each image's details and layers.
pub fn inspect_table(source: &Source, selected: &[usize], no_trunc: bool) -> String {
    let now = SystemTime::now();
    // Each image's config parsed once, for the table and for its details below.
    let summaries: Vec<ConfigSummary> = selected
        .iter()
        .map(|&i| ConfigSummary::of(&source.images[i]))
        .collect();
    let created_of = |summary: &ConfigSummary| -> (String, String) {
        match summary.created.as_deref() {
            Some(text) => {
                let relative = parse_rfc3339(text)
                    .map(|t| relative_time(t, now))
                    .unwrap_or_else(|| "?".into());
                (relative, shown(text))
            }
            None => ("-".into(), "-".into()),
        }
    };
    let mut out = format!("format: {}\n", source.format.name());
    let rows: Vec<[String; 7]> = selected
        .iter()
        .zip(&summaries)
        .map(|(&i, summary)| {
            let im = &source.images[i];
            let size: u64 = im.layers.iter().map(|l| l.size).sum();
            [
                format!("@{i}"),
                whole_or_short(&im.config.digest, no_trunc),
                shown(&im.platform.to_string()),
                created_of(summary).0,
                human_size(size),
                im.layers.len().to_string(),
                names_line(im, TABLE_NAMES),
            ]
        })
        .collect();
    let header = [
        "#", "IMAGE ID", "PLATFORM", "CREATED", "SIZE", "LAYERS", "NAMES",
    ];
    out.push_str(&columns(
        std::iter::once(header.map(String::from)).chain(rows),
        "",
        2,
    ));
    // How the images relate: each block names its parent and children.
    let family = dockhand::image_family(&source.images);
    let related = |list: &[usize]| -> String {
        let mut shown_ids: Vec<String> = list
            .iter()
            .take(SHARED_SHOWN)
            .map(|&j| {
                format!(
                    "@{j} {}",
                    whole_or_short(&source.images[j].config.digest, no_trunc)
                )
            })
            .collect();
        if list.len() > SHARED_SHOWN {
            shown_ids.push(format!("and {} more", list.len() - SHARED_SHOWN));
        }
        shown_ids.join(", ")
    };
    // Which images hold each layer, to say which others share it.
    let mut holders: HashMap<String, Vec<usize>> = HashMap::new();
    for (i, im) in source.images.iter().enumerate() {
        for layer in &im.layers {
            let entry = holders.entry(layer_key(layer)).or_default();
            if entry.last() != Some(&i) {
                entry.push(i);
            }
        }
    }
    for (&i, summary) in selected.iter().zip(&summaries) {
        let im = &source.images[i];
        let (relative, absolute) = created_of(summary);
        out.push_str(&format!(
            "\nimage @{i} {}\n",
            whole_or_short(&im.config.digest, no_trunc)
        ));
        let mut tags: Vec<String> = im.tags.iter().map(|t| t.to_string()).collect();
        tags.sort();
        let names: Vec<String> = tags
            .into_iter()
            .chain(im.ref_names.iter().map(|n| format!("(ref) {}", shown(n))))
            .collect();
        let field = |label: &str, value: &str| format!("  {label:<12}{value}\n");
        if names.is_empty() {
            out.push_str(&field("names:", "<none>"));
        }
        for (k, name) in names.iter().enumerate() {
            out.push_str(&field(if k == 0 { "names:" } else { "" }, name));
        }
        out.push_str(&field("platform:", &shown(&im.platform.to_string())));
        if absolute != "-" {
            out.push_str(&field("created:", &format!("{absolute} ({relative})")));
        }
        let json = |v: &Option<Vec<String>>| {
            v.as_ref()
                .map(|v| shown(&serde_json::to_string(v).unwrap_or_default()))
        };
        if let Some(e) = json(&summary.entrypoint) {
            out.push_str(&field("entrypoint:", &e));
        }
        if let Some(c) = json(&summary.cmd) {
            out.push_str(&field("cmd:", &c));
        }
        if im.layers.is_empty() {
            continue;
        }
        if let Some(parent) = family.parent[i] {
            out.push_str(&field("parent:", &related(&[parent])));
        }
        if family.is_head(i) {
            out.push_str(&field("children:", "none (a head)"));
        } else {
            out.push_str(&field("children:", &related(&family.children[i])));
        }
        let mut table = vec![["DIGEST", "SIZE", "COMPRESSION", "SHARED WITH"].map(String::from)];
        for layer in &im.layers {
            let digest = match &layer.digest {
                Some(d) => whole_or_short(d, no_trunc),
                None => "(not recorded)".into(),
            };
            // At most a few sharers per layer, so that many images sharing a long
            // chain cost lines, not lines times images.
            let others: Vec<usize> = holders
                .get(&layer_key(layer))
                .into_iter()
                .flatten()
                .copied()
                .filter(|&j| j != i)
                .collect();
            let mut shared: Vec<String> = others
                .iter()
                .take(SHARED_SHOWN)
                .map(|j| format!("@{j}"))
                .collect();
            if others.len() > SHARED_SHOWN {
                shared.push(format!("and {} more", others.len() - SHARED_SHOWN));
            }
            table.push([
                digest,
                human_size(layer.size),
                layer.compression.name().to_string(),
                if shared.is_empty() {
                    "-".into()
                } else {
                    shared.join(" ")
                },
            ]);
        }
        out.push_str("  layers:\n");
        out.push_str(&columns(table, "    ", 2));
    }
    out
}

/// The images at `selected` as trees of parents and children, as docker's old
/// `images --tree` drew them: a line per image, its children below it, indented; an
/// image whose parent is not among `selected` starts a tree.
pub fn family_tree(source: &Source, selected: &[usize], no_trunc: bool) -> String {
    let family = dockhand::image_family(&source.images);
    let shown_set: HashSet<usize> = selected.iter().copied().collect();
    let roots: Vec<usize> = selected
        .iter()
        .copied()
        .filter(|&i| family.parent[i].is_none_or(|p| !shown_set.contains(&p)))
        .collect();
    let mut out = String::new();
    // Depth-first without recursion (a chain can be as long as an image's layers):
    // each image with the prefix its line starts with and whether it is the last of
    // its siblings.
    let mut stack: Vec<(usize, String, bool)> = Vec::new();
    for (n, &root) in roots.iter().enumerate().rev() {
        stack.push((root, String::new(), n + 1 == roots.len()));
    }
    while let Some((i, prefix, last)) = stack.pop() {
        let im = &source.images[i];
        let size: u64 = im.layers.iter().map(|l| l.size).sum();
        let mut line = format!(
            "{prefix}{}{} @{i} Size: {}",
            if last { "└─" } else { "├─" },
            whole_or_short(&im.config.digest, no_trunc),
            human_size(size)
        );
        if !im.tags.is_empty() || !im.ref_names.is_empty() {
            line.push_str(&format!(" Tags: {}", names_line(im, TABLE_NAMES)));
        }
        out.push_str(&line);
        out.push('\n');
        let below = format!("{prefix}{}", if last { "  " } else { "│ " });
        let children: Vec<usize> = family.children[i]
            .iter()
            .copied()
            .filter(|c| shown_set.contains(c))
            .collect();
        for (n, &child) in children.iter().enumerate().rev() {
            stack.push((child, below.clone(), n + 1 == children.len()));
        }
    }
    out
}

/// What refers to the images at `selected` and to their indexes (`found`, from
/// `dockhand::image_referrers`), one block per manifest or index that has any; empty
/// when none has.
pub fn referrers_table(
    source: &Source,
    selected: &[usize],
    found: &BTreeMap<Digest, Vec<Referrer>>,
    no_trunc: bool,
) -> String {
    let mut out = String::new();
    let mut shown_for = HashSet::new();
    for &i in selected {
        let im = &source.images[i];
        let index = im.index.as_ref().map(|x| (&x.descriptor.digest, "index"));
        let manifest = im.manifest.as_ref().map(|m| (&m.digest, "manifest"));
        for (digest, what) in index.into_iter().chain(manifest) {
            let Some(list) = found.get(digest).filter(|l| !l.is_empty()) else {
                continue;
            };
            if !shown_for.insert(digest.clone()) {
                continue;
            }
            let label = if what == "index" {
                format!(
                    "\nreferrers of the index {}\n",
                    whole_or_short(digest, true)
                )
            } else {
                format!(
                    "\nreferrers of image @{i} (manifest {})\n",
                    whole_or_short(digest, true)
                )
            };
            out.push_str(&label);
            let mut table = vec![["KIND", "ARTIFACT TYPE", "DIGEST", "SIZE"].map(String::from)];
            fn rows(list: &[Referrer], depth: usize, no_trunc: bool, table: &mut Vec<[String; 4]>) {
                for r in list {
                    table.push([
                        format!("{}{}", "  ".repeat(depth), r.kind.name()),
                        shown(r.artifact_type.as_deref().unwrap_or("-")),
                        whole_or_short(&r.descriptor.digest, no_trunc),
                        human_size(r.descriptor.size),
                    ]);
                    rows(&r.referrers, depth + 1, no_trunc, table);
                }
            }
            rows(list, 0, no_trunc, &mut table);
            out.push_str(&columns(table, "  ", 2));
        }
    }
    out
}

/// A layer's identity across the images of one source: its digest, else its diff_id,
/// else its path.
fn layer_key(layer: &Layer) -> String {
    match (&layer.digest, &layer.diff_id) {
        (Some(d), _) => d.to_string(),
        (None, Some(d)) => format!("diff:{d}"),
        (None, None) => format!("path:{}", layer.path),
    }
}

/// Every platform the multi-platform indexes of `source` list, present or absent, as
/// a table (`inspect --platforms`; `--json` prints the library's `platforms_json`).
pub fn platforms_table(source: &Source, no_trunc: bool) -> String {
    let mut out = format!("format: {}\n", source.format.name());
    if source.platforms.is_empty() {
        out.push_str("no multi-platform index\n");
        return out;
    }
    let rows = source.platforms.iter().map(|p| {
        [
            whole_or_short(&p.index, no_trunc),
            shown(&p.platform.to_string()),
            whole_or_short(&p.manifest, no_trunc),
            if p.present { "yes" } else { "no" }.to_string(),
        ]
    });
    out.push_str(&columns(
        std::iter::once(["INDEX", "PLATFORM", "MANIFEST", "PRESENT"].map(String::from)).chain(rows),
        "",
        2,
    ));
    out
}

/// Rows as left-aligned columns `gap` spaces apart (the last column unpadded, trailing
/// spaces trimmed), each line starting with `indent`.
fn columns<const N: usize>(
    rows: impl IntoIterator<Item = [String; N]>,
    indent: &str,
    gap: usize,
) -> String {
    let rows: Vec<[String; N]> = rows.into_iter().collect();
    let mut widths = [0usize; N];
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    for row in &rows {
        let mut line = indent.to_string();
        for (i, (cell, w)) in row.iter().zip(widths).enumerate() {
            line.push_str(cell);
            if i + 1 < N {
                line.push_str(&" ".repeat(w - cell.chars().count() + gap));
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

/// `text` cut to `width` characters, the last one `…`, as docker's tables cut.
fn ellipsis(text: &str, width: usize) -> String {
    if text.chars().count() <= width {
        return text.to_string();
    }
    let mut out: String = text.chars().take(width.saturating_sub(1)).collect();
    out.push('…');
    out
}

/// Seconds since the Unix epoch of an RFC 3339 time (`2024-01-02T03:04:05.6Z`,
/// `...+02:00`); `None` when it is not one.
fn parse_rfc3339(text: &str) -> Option<i64> {
    use time::format_description::well_known::Rfc3339;
    time::OffsetDateTime::parse(text, &Rfc3339)
        .ok()
        .map(time::OffsetDateTime::unix_timestamp)
}

/// How long before `now` the time `then` (Unix seconds) was, in docker's words:
/// `3 days ago`, `About an hour ago`, `2 years ago`.
pub fn relative_time(then: i64, now: SystemTime) -> String {
    let now = match now.duration_since(UNIX_EPOCH) {
        Ok(d) => d.as_secs() as i64,
        Err(_) => 0,
    };
    format!("{} ago", human_duration(now.saturating_sub(then)))
}

/// A duration in docker's words (its `HumanDuration`).
fn human_duration(seconds: i64) -> String {
    let minutes = seconds / 60;
    // Hours are rounded to the nearest, as docker does.
    let hours = (seconds + 1800) / 3600;
    match () {
        _ if seconds < 1 => "Less than a second".into(),
        _ if seconds == 1 => "1 second".into(),
        _ if seconds < 60 => format!("{seconds} seconds"),
        _ if minutes == 1 => "About a minute".into(),
        _ if minutes < 60 => format!("{minutes} minutes"),
        _ if hours == 1 => "About an hour".into(),
        _ if hours < 48 => format!("{hours} hours"),
        _ if hours < 24 * 7 * 2 => format!("{} days", hours / 24),
        _ if hours < 24 * 30 * 2 => format!("{} weeks", hours / 24 / 7),
        _ if hours < 24 * 365 * 2 => format!("{} months", hours / 24 / 30),
        _ => format!("{} years", seconds / 3600 / 24 / 365),
    }
}

/// A byte count for people: `512 B`, `1.5 KiB`, `3.2 GiB` (binary units, as
/// `inspect` and the `convert` summary show sizes).
pub fn human_size(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = bytes as f64;
    let mut unit = 0;
    while v >= 1024.0 && unit + 1 < UNITS.len() {
        v /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else {
        format!("{v:.1} {}", UNITS[unit])
    }
}

/// A byte count as docker's tables write it (`docker history`, `docker images`):
/// decimal units, three significant digits, no space: `0B`, `55B`, `2.56kB`, `4.1kB`,
/// `1.23MB`. The `history` table uses it so that its SIZE column reads as docker's does;
/// [`human_size`] (binary units) is dockhand's own.
pub fn docker_size(bytes: u64) -> String {
    const UNITS: [&str; 7] = ["B", "kB", "MB", "GB", "TB", "PB", "EB"];
    let mut v = bytes as f64;
    let mut unit = 0;
    while v >= 1000.0 && unit + 1 < UNITS.len() {
        v /= 1000.0;
        unit += 1;
    }
    format!("{}{}", three_significant(v), UNITS[unit])
}

/// `v` as Go's `%.3g` writes it (docker formats sizes so): three significant digits,
/// trailing zeros dropped, and `1e+03` when rounding reaches a fourth digit.
fn three_significant(v: f64) -> String {
    if v == 0.0 {
        return "0".into();
    }
    let sci = format!("{v:.2e}");
    let (mantissa, exponent) = sci.split_once('e').unwrap_or((&sci, "0"));
    let exponent: i32 = exponent.parse().unwrap_or(0);
    let trim = |s: String| -> String {
        if s.contains('.') {
            s.trim_end_matches('0').trim_end_matches('.').to_string()
        } else {
            s
        }
    };
    if !(-4..3).contains(&exponent) {
        let sign = if exponent < 0 { '-' } else { '+' };
        return format!("{}e{sign}{:02}", trim(mantissa.to_string()), exponent.abs());
    }
    let decimals = (2 - exponent).max(0) as usize;
    trim(format!("{v:.decimals$}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use dockhand::{image_history, open_source, Location, ReadOptions};
    use std::time::Duration;

    fn fixture(name: &str) -> Source {
        let path = format!("{}/../fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
        open_source(&Location::parse(&path).unwrap(), &ReadOptions::default()).unwrap()
    }

    #[test]
    fn history_table_reads_as_dockers() {
        let source = fixture("docker-save-basic/input.tar");
        let history = image_history(&source.images[0], 0).unwrap();
        assert!(history.history[0]
            .created_by
            .as_deref()
            .unwrap()
            .starts_with(NOP_PREFIX));
        let now = UNIX_EPOCH + Duration::from_secs(1_795_376_104 + 3 * 86_400);
        let table = history_table(&history, false, now);
        let row = table.lines().nth(1).unwrap();
        assert!(row.starts_with("6f2d02a983f5   3 days ago   CMD [\"/bin/hello.sh\"]"));
        assert_eq!(table.lines().count(), 1 + 7);
        assert!(!table.contains("#(nop)"));
        // The LABEL step is longer than the column: cut, with an ellipsis.
        assert!(table.contains("LABEL org.opencontainers.image.title=dockhan…"));
        assert!(!history_table(&history, true, now).contains('…'));
    }

    #[test]
    fn names_line_counts_what_it_leaves_out() {
        let source = fixture("docker-save-basic/input.tar");
        let image = &source.images[0];
        assert_eq!(
            names_line(image, 10),
            "docker.io/dockhand-fixture/basic:1.0, docker.io/dockhand-fixture/basic:latest"
        );
        assert_eq!(
            names_line(image, 1),
            "docker.io/dockhand-fixture/basic:1.0, and 1 more"
        );
    }

    #[test]
    fn inspect_table_shows_the_selected_images() {
        let source = fixture("docker-save-multi/input.tar");
        let table = inspect_table(&source, &[2], false);
        assert!(table.starts_with("format: docker-archive\n"));
        assert!(table.contains("image @2 51914c0e66d5"));
        // No row or block for the others; the base image names them as its children.
        assert!(
            !table.contains("\n@0 ") && !table.contains("image @0"),
            "{table}"
        );
        assert!(
            table.contains("  children:   @0 60aab187e084, @1 8f7ee306570d\n"),
            "{table}"
        );
    }

    #[test]
    fn platforms_table_without_an_index() {
        let source = fixture("docker-save-basic/input.tar");
        assert_eq!(
            platforms_table(&source, false),
            "format: docker-archive\nno multi-platform index\n"
        );
    }

    #[test]
    fn rfc3339_times() {
        assert_eq!(parse_rfc3339("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(parse_rfc3339("1970-01-02T00:00:00Z"), Some(86_400));
        assert_eq!(
            parse_rfc3339("2026-11-22T19:35:04.18851048Z"),
            Some(1_795_376_104)
        );
        assert_eq!(parse_rfc3339("1970-01-01T01:00:00+01:00"), Some(0));
        assert_eq!(parse_rfc3339("1970-01-01T01:00:00.5+01:00"), Some(0));
        assert_eq!(parse_rfc3339("1970-01-01T00:00:00-00:30"), Some(1800));
        for bad in [
            "",
            "2020",
            "yesterday",
            "2020-13-01T00:00:00Z",
            "2020-01-01T00:00:00",
            "2021-02-29T00:00:00Z",
            "x".repeat(40).as_str(),
        ] {
            assert_eq!(parse_rfc3339(bad), None, "{bad}");
        }
    }

    #[test]
    fn durations_read_as_docker_writes_them() {
        let at = |s: i64| human_duration(s);
        assert_eq!(at(0), "Less than a second");
        assert_eq!(at(45), "45 seconds");
        assert_eq!(at(90), "About a minute");
        assert_eq!(at(3 * 86_400), "3 days");
        assert_eq!(at(20 * 86_400), "2 weeks");
        assert_eq!(at(90 * 86_400), "3 months");
        assert_eq!(at(800 * 86_400), "2 years");
        let now = UNIX_EPOCH + Duration::from_secs(10 * 86_400);
        assert_eq!(relative_time(7 * 86_400, now), "3 days ago");
        assert_eq!(relative_time(10 * 86_400 - 3600, now), "About an hour ago");
    }

    #[test]
    fn long_steps_are_cut_with_an_ellipsis() {
        assert_eq!(ellipsis("abc", 45), "abc");
        let cut = ellipsis(&"é".repeat(50), 45);
        assert_eq!(cut.chars().count(), 45);
        assert!(cut.ends_with('…'));
    }

    #[test]
    fn sizes() {
        assert_eq!(human_size(512), "512 B");
        assert_eq!(human_size(2560 + 3072 + 4096), "9.5 KiB");
        assert_eq!(human_size(3 << 30), "3.0 GiB");
        assert_eq!(docker_size(0), "0B");
        assert_eq!(docker_size(55), "55B");
        assert_eq!(docker_size(999), "999B");
        assert_eq!(docker_size(1000), "1kB");
        assert_eq!(docker_size(2560), "2.56kB");
        assert_eq!(docker_size(3072), "3.07kB");
        assert_eq!(docker_size(4096), "4.1kB");
        assert_eq!(docker_size(999_700), "1e+03kB");
        assert_eq!(docker_size(4_200_000), "4.2MB");
        assert_eq!(docker_size(7_340_032), "7.34MB");
        assert_eq!(docker_size(u64::MAX), "18.4EB");
    }
}
