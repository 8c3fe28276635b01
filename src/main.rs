//! The `dockhand` command line: argument parsing, messages and exit codes only.

use std::io::{self, Write};
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand, ValueEnum};

use dockhand::convert::{candidates, select, Location, Selector};
use dockhand::inspect::{inspect_json, inspect_table, verify};
use dockhand::layout::DockerLayout;
use dockhand::{ConvertOptions, Format, Platform};

/// Move container images between docker-save archives, OCI layouts and dir: layouts.
#[derive(Parser)]
#[command(name = "dockhand", version, about, max_term_width = 100)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Convert images from SRC to DST, verifying every blob on the way.
    ///
    /// SRC and DST are a path, `-` (stdin/stdout), or TRANSPORT:PATH[:REF] with TRANSPORT
    /// one of docker-archive, docker-dir, oci, oci-archive, dir. Without --to, a DST
    /// ending in .tar or `-` gets docker-archive, anything else an OCI layout directory.
    Convert {
        /// Read SRC as this format (default: detect from the content).
        #[arg(long, value_enum)]
        from: Option<FormatArg>,
        /// Write DST in this format.
        #[arg(long, value_enum)]
        to: Option<FormatArg>,
        /// Take only this image (REF, matched after normalization, or @N); repeatable.
        #[arg(long = "image", value_name = "REF|@N")]
        images: Vec<String>,
        /// Name the (single) output image REF instead of its own names; repeatable.
        #[arg(long = "tag", value_name = "REF")]
        tags: Vec<String>,
        /// Pick this platform from multi-platform indexes (default: linux/<host arch>).
        #[arg(long, value_name = "OS/ARCH[/VARIANT]")]
        platform: Option<String>,
        /// Shape of docker-archive and docker-dir outputs.
        #[arg(long, value_enum, default_value_t = DockerLayoutArg::Legacy)]
        docker_layout: DockerLayoutArg,
        /// Replace DST if it exists.
        #[arg(long)]
        force: bool,
        /// Print nothing but errors.
        #[arg(short, long)]
        quiet: bool,
        /// The input.
        src: String,
        /// The output.
        dst: String,
    },
    /// Show the images in SRC (reads only headers and metadata from a tar file).
    Inspect {
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
        /// Show only this image (REF or @N); repeatable.
        #[arg(long = "image", value_name = "REF|@N")]
        images: Vec<String>,
        /// Pick this platform from multi-platform indexes.
        #[arg(long, value_name = "OS/ARCH[/VARIANT]")]
        platform: Option<String>,
        /// The input.
        src: String,
    },
    /// Check every digest, size and diff_id in SRC; exit 0 only if all match.
    Verify {
        /// Check only this image (REF or @N); repeatable.
        #[arg(long = "image", value_name = "REF|@N")]
        images: Vec<String>,
        /// Pick this platform from multi-platform indexes.
        #[arg(long, value_name = "OS/ARCH[/VARIANT]")]
        platform: Option<String>,
        /// The input.
        src: String,
    },
}

#[derive(Clone, Copy, ValueEnum)]
enum FormatArg {
    DockerArchive,
    DockerDir,
    Oci,
    OciArchive,
    Dir,
}

impl From<FormatArg> for Format {
    fn from(f: FormatArg) -> Format {
        match f {
            FormatArg::DockerArchive => Format::DockerArchive,
            FormatArg::DockerDir => Format::DockerDir,
            FormatArg::Oci => Format::Oci,
            FormatArg::OciArchive => Format::OciArchive,
            FormatArg::Dir => Format::Dir,
        }
    }
}

#[derive(Clone, Copy, ValueEnum)]
enum DockerLayoutArg {
    /// `<v1id>/layer.tar`, manifest.json and repositories (every Docker since 1.10).
    Legacy,
    /// The Docker >= 25 shape: an OCI layout plus manifest.json.
    Hybrid,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Err(e) = dockhand::cleanup::install_signal_handlers() {
        eprintln!("warning: cannot install signal handlers: {e}");
    }
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            if is_broken_pipe(&err) {
                return ExitCode::SUCCESS;
            }
            eprintln!("error: {err:#}");
            ExitCode::from(1)
        }
    }
}

fn is_broken_pipe(err: &anyhow::Error) -> bool {
    err.chain().any(|cause| {
        cause
            .downcast_ref::<io::Error>()
            .is_some_and(|e| e.kind() == io::ErrorKind::BrokenPipe)
            || cause
                .downcast_ref::<dockhand::Error>()
                .is_some_and(|e| e.is_broken_pipe())
    })
}

/// Name the input in errors about its content (a path inside an archive alone does not
/// say which archive), unless the message names it already.
fn in_source(err: dockhand::Error, src: &str) -> anyhow::Error {
    use dockhand::Error as E;
    let about_input = matches!(
        err,
        E::Malformed { .. }
            | E::Missing { .. }
            | E::DigestMismatch { .. }
            | E::SizeMismatch { .. }
            | E::DiffIdMismatch { .. }
            | E::Truncated { .. }
            | E::NotAnImage { .. }
    );
    let shown = Location::parse(src).path;
    if about_input && !err.to_string().contains(&shown) {
        anyhow::Error::new(err).context(shown)
    } else {
        err.into()
    }
}

fn platform(arg: Option<String>) -> anyhow::Result<Option<Platform>> {
    arg.map(|p| Platform::parse(&p).map_err(anyhow::Error::msg))
        .transpose()
}

fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Convert {
            from,
            to,
            images,
            tags,
            platform: p,
            docker_layout,
            force,
            quiet,
            src,
            dst,
        } => {
            let options = ConvertOptions {
                from: from.map(Format::from),
                to: to.map(Format::from),
                images,
                tags,
                force,
                platform: platform(p)?,
                docker_layout: match docker_layout {
                    DockerLayoutArg::Legacy => DockerLayout::Legacy,
                    DockerLayoutArg::Hybrid => DockerLayout::Hybrid,
                },
            };
            let report = dockhand::convert(&src, &dst, &options).map_err(|e| in_source(e, &src))?;
            if !quiet {
                for w in &report.warnings {
                    eprintln!("warning: {w}");
                }
                eprintln!(
                    "converted {} image(s) from {} to {}: {}",
                    report.images.len(),
                    report.from.map_or("?", Format::name),
                    report.to.map_or("?", Format::name),
                    candidates(&report.images)
                );
            }
            Ok(())
        }
        Command::Inspect {
            json,
            images,
            platform: p,
            src,
        } => {
            let (source, selected) = open_selected(&src, &images, platform(p)?)?;
            let text = if json {
                let mut s = serde_json::to_string_pretty(&inspect_json(&source, &selected))?;
                s.push('\n');
                s
            } else {
                inspect_table(&source, &selected)
            };
            for w in &source.warnings {
                eprintln!("warning: {w}");
            }
            let mut out = io::stdout().lock();
            out.write_all(text.as_bytes())
                .context("writing to stdout")?;
            out.flush().context("writing to stdout")?;
            Ok(())
        }
        Command::Verify {
            images,
            platform: p,
            src,
        } => {
            let (source, selected) = open_selected(&src, &images, platform(p)?)?;
            let report = verify(&selected).map_err(|e| in_source(e, &src))?;
            for w in &source.warnings {
                eprintln!("warning: {w}");
            }
            eprintln!(
                "verified {} image(s), {} layer(s), {} bytes: all digests and diff_ids match",
                report.images, report.layers, report.bytes
            );
            Ok(())
        }
    }
}

fn open_selected(
    src: &str,
    images: &[String],
    platform: Option<Platform>,
) -> anyhow::Result<(dockhand::layout::Source, Vec<dockhand::Image>)> {
    let location = Location::parse(src);
    let source = dockhand::open_source(&location, None, platform).map_err(|e| in_source(e, src))?;
    let mut selectors = Vec::new();
    if let Some(r) = &location.reference {
        selectors.push(Selector::parse(r)?);
    }
    for s in images {
        selectors.push(Selector::parse(s)?);
    }
    let selected = select(&source.images, &selectors)?;
    Ok((source, selected))
}
