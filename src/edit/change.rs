//! Changes to an image config: the Dockerfile instructions `docker import --change`
//! and `docker commit --change` take, parsed as Docker's builder parses them, and the
//! edits of `mutate`'s flags; applied to the config's `config` object, every other
//! field kept as it is.

use std::fmt;

use serde_json::{Map, Value};

use super::shell::{expand, go_duration, split_whitespace, split_words};
use crate::error::{Error, Result, Setting};
use crate::text::shown;

/// The instructions a change may hold, as Docker's daemon takes them for
/// `docker import --change` and `docker commit --change`.
pub const CHANGE_INSTRUCTIONS: &[&str] = &[
    "CMD",
    "ENTRYPOINT",
    "ENV",
    "EXPOSE",
    "HEALTHCHECK",
    "LABEL",
    "ONBUILD",
    "USER",
    "VOLUME",
    "WORKDIR",
];

/// One Dockerfile instruction of a `--change`, parsed (its syntax checked) but not
/// yet applied: the words of `ENV`, `LABEL`, `EXPOSE`, `USER`, `VOLUME` and `WORKDIR`
/// are expanded (`$VAR`, `${VAR:-default}`) against the config's `Env` as it is when
/// the instruction applies, as Docker's builder does.
///
/// ```
/// use dockhand::Instruction;
///
/// let all = Instruction::parse_all("ENV PATH=/opt/bin:$PATH\nCMD [\"app\", \"--serve\"]")?;
/// assert_eq!(all.len(), 2);
/// assert_eq!(all[1].to_string(), "CMD [\"app\", \"--serve\"]");
/// let err = Instruction::parse_all("FROM alpine").unwrap_err();
/// assert!(err.to_string().contains("FROM is not an instruction a change can hold"));
/// # Ok::<(), dockhand::Error>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Instruction {
    /// The line as given, for messages and history entries.
    text: String,
    kind: Kind,
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Kind {
    Cmd(Command),
    Entrypoint(Command),
    /// Raw (unexpanded) name and value words.
    Env(Vec<(String, String)>),
    Label(Vec<(String, String)>),
    Expose(Vec<String>),
    User(String),
    Volume(Vec<String>),
    Workdir(String),
    OnBuild(String),
    Healthcheck(Value),
}

/// What `CMD` or `ENTRYPOINT` gives.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Command {
    /// The JSON (exec) form.
    Exec(Vec<String>),
    /// The shell form: run by the config's `Shell`, `/bin/sh -c` by default; empty
    /// gives the shell alone.
    Shell(String),
    /// Nothing (an `ENTRYPOINT` without arguments): the field is cleared.
    Clear,
}

impl fmt::Display for Instruction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

/// A usage error about the change `text`.
fn bad(text: &str, problem: impl fmt::Display) -> Error {
    Error::Usage(format!("{} {}: {problem}", Setting::Change, shown(text)))
}

impl Instruction {
    /// Parse a change: one or more lines of a Dockerfile (a line ending in `\`
    /// continues on the next; empty lines and `#` comments are skipped), each an
    /// instruction of [`CHANGE_INSTRUCTIONS`], as `docker import --change` reads them.
    /// A line that is none of them, or malformed, is a usage error naming it.
    pub fn parse_all(text: &str) -> Result<Vec<Instruction>> {
        let mut out = Vec::new();
        let mut line = String::new();
        for raw in text.lines() {
            let trimmed = raw.trim();
            if line.is_empty() && (trimmed.is_empty() || trimmed.starts_with('#')) {
                continue;
            }
            match trimmed.strip_suffix('\\') {
                Some(head) => {
                    line.push_str(head);
                    continue;
                }
                None => line.push_str(trimmed),
            }
            out.push(Instruction::parse(std::mem::take(&mut line).trim())?);
        }
        if !line.trim().is_empty() {
            out.push(Instruction::parse(line.trim())?);
        }
        Ok(out)
    }

    /// Parse one instruction (one line).
    pub fn parse(line: &str) -> Result<Instruction> {
        let line = line.trim();
        let (keyword, rest) = match line.find(char::is_whitespace) {
            Some(at) => (&line[..at], line[at..].trim()),
            None => (line, ""),
        };
        let upper = keyword.to_ascii_uppercase();
        let kind = match upper.as_str() {
            "CMD" => Kind::Cmd(command(rest, false).map_err(|e| bad(line, e))?),
            "ENTRYPOINT" => Kind::Entrypoint(command(rest, true).map_err(|e| bad(line, e))?),
            "ENV" | "LABEL" => {
                let pairs = name_values(rest, &upper).map_err(|e| bad(line, e))?;
                if upper == "ENV" {
                    Kind::Env(pairs)
                } else {
                    Kind::Label(pairs)
                }
            }
            "EXPOSE" => {
                let ports = split_whitespace(rest);
                if ports.is_empty() {
                    return Err(bad(line, "EXPOSE requires at least one argument"));
                }
                Kind::Expose(ports)
            }
            "USER" => match split_whitespace(rest).as_slice() {
                [user] => Kind::User(user.clone()),
                _ => return Err(bad(line, "USER requires exactly one argument")),
            },
            "VOLUME" => {
                let volumes = match json_strings(rest).map_err(|e| bad(line, e))? {
                    Some(list) => list,
                    None => split_whitespace(rest),
                };
                if volumes.is_empty() {
                    return Err(bad(line, "VOLUME requires at least one argument"));
                }
                Kind::Volume(volumes)
            }
            "WORKDIR" => {
                if rest.is_empty() {
                    return Err(bad(line, "WORKDIR requires exactly one argument"));
                }
                Kind::Workdir(rest.to_string())
            }
            "ONBUILD" => {
                let trigger = rest
                    .split_whitespace()
                    .next()
                    .unwrap_or_default()
                    .to_ascii_uppercase();
                match trigger.as_str() {
                    "" => return Err(bad(line, "ONBUILD requires exactly one argument")),
                    "ONBUILD" => {
                        return Err(bad(
                            line,
                            "chaining ONBUILD via `ONBUILD ONBUILD` isn't allowed",
                        ))
                    }
                    "FROM" | "MAINTAINER" => {
                        return Err(bad(
                            line,
                            format!("{trigger} isn't allowed as an ONBUILD trigger"),
                        ))
                    }
                    _ => Kind::OnBuild(rest.to_string()),
                }
            }
            "HEALTHCHECK" => Kind::Healthcheck(healthcheck(rest).map_err(|e| bad(line, e))?),
            _ => {
                return Err(bad(
                    line,
                    format!(
                        "{} is not an instruction a change can hold (as with docker import --change: {})",
                        shown(&upper),
                        CHANGE_INSTRUCTIONS.join(", ")
                    ),
                ))
            }
        };
        Ok(Instruction {
            text: line.to_string(),
            kind,
        })
    }
}

/// `CMD` or `ENTRYPOINT`'s argument: the JSON form, or the shell form (Docker's
/// `parseMaybeJSON`); an empty `ENTRYPOINT` clears the field.
fn command(rest: &str, empty_clears: bool) -> Result<Command, String> {
    match json_strings(rest)? {
        Some(list) if list.is_empty() && empty_clears => Ok(Command::Clear),
        Some(list) => Ok(Command::Exec(list)),
        None if rest.is_empty() && empty_clears => Ok(Command::Clear),
        None => Ok(Command::Shell(rest.to_string())),
    }
}

/// `rest` as a JSON array of strings, when it is a JSON array; `None` when it is not
/// JSON at all (the shell form); an error for an array holding anything else.
fn json_strings(rest: &str) -> Result<Option<Vec<String>>, String> {
    if !rest.starts_with('[') {
        return Ok(None);
    }
    let Ok(Value::Array(items)) = serde_json::from_str::<Value>(rest) else {
        return Ok(None);
    };
    items
        .into_iter()
        .map(|item| match item {
            Value::String(s) => Ok(s),
            _ => Err(
                "when using JSON array syntax, arrays must be comprised of strings only"
                    .to_string(),
            ),
        })
        .collect::<Result<Vec<_>, _>>()
        .map(Some)
}

/// The `NAME=VALUE ...` pairs of `ENV` or `LABEL`, or the legacy `NAME VALUE...` (the
/// rest of the line is the value), raw: expanded when applied.
fn name_values(rest: &str, keyword: &str) -> Result<Vec<(String, String)>, String> {
    let words = split_words(rest);
    let Some(first) = words.first() else {
        return Err(format!("{keyword} requires at least one argument"));
    };
    if !first.contains('=') {
        let Some((name, value)) = rest.split_once(char::is_whitespace) else {
            return Err(format!("{keyword} must have two arguments"));
        };
        return Ok(vec![(name.to_string(), value.trim_start().to_string())]);
    }
    words
        .iter()
        .map(|word| match word.split_once('=') {
            Some((name, value)) => Ok((name.to_string(), value.to_string())),
            None => Err(format!(
                "syntax error - can't find = in {}. Must be of the form: name=value",
                shown(word)
            )),
        })
        .collect()
}

/// `HEALTHCHECK NONE` or `HEALTHCHECK [--interval=D] [--timeout=D] [--start-period=D]
/// [--start-interval=D] [--retries=N] CMD command`, as Docker's `HealthConfig`.
fn healthcheck(rest: &str) -> Result<Value, String> {
    let mut rest = rest.trim_start();
    let mut health = Map::new();
    let mut options: Vec<(&str, &str)> = Vec::new();
    while let Some(option) = rest.strip_prefix("--") {
        let end = option.find(char::is_whitespace).unwrap_or(option.len());
        let (name, value) = option[..end]
            .split_once('=')
            .ok_or_else(|| format!("missing a value on flag --{}", shown(&option[..end])))?;
        options.push((name, value));
        rest = option[end..].trim_start();
    }
    let end = rest.find(char::is_whitespace).unwrap_or(rest.len());
    let kind = rest[..end].to_ascii_uppercase();
    let args = rest[end..].trim_start();
    match kind.as_str() {
        "" => return Err("HEALTHCHECK requires at least one argument".into()),
        "NONE" => {
            if !args.is_empty() || !options.is_empty() {
                return Err("HEALTHCHECK NONE takes no arguments".into());
            }
            health.insert("Test".into(), serde_json::json!(["NONE"]));
            return Ok(Value::Object(health));
        }
        "CMD" => {}
        _ => {
            return Err(format!(
                "unknown type {} in HEALTHCHECK (try CMD)",
                shown(&kind)
            ))
        }
    }
    let test = match json_strings(args)? {
        Some(list) if list.is_empty() => None,
        Some(list) => Some([vec!["CMD".to_string()], list].concat()),
        None if args.is_empty() => None,
        None => Some(vec!["CMD-SHELL".to_string(), args.to_string()]),
    };
    let test = test.ok_or("missing command after HEALTHCHECK CMD")?;
    health.insert("Test".into(), serde_json::json!(test));
    for (name, field) in [
        ("interval", "Interval"),
        ("timeout", "Timeout"),
        ("start-period", "StartPeriod"),
        ("start-interval", "StartInterval"),
    ] {
        let Some((_, text)) = options.iter().find(|(n, _)| *n == name) else {
            continue;
        };
        let nanos = go_duration(text)
            .ok_or_else(|| format!("--{name}: {} is not a duration", shown(text)))?;
        if nanos < 0 {
            return Err(format!("--{name}: {} cannot be negative", shown(text)));
        }
        if nanos != 0 && nanos < 1_000_000 {
            return Err(format!("--{name}: {} cannot be less than 1ms", shown(text)));
        }
        if nanos != 0 {
            health.insert(field.into(), nanos.into());
        }
    }
    if let Some((_, text)) = options.iter().find(|(n, _)| *n == "retries") {
        let retries: i32 = text
            .parse()
            .map_err(|_| format!("--retries: {} is not a number", shown(text)))?;
        if retries < 1 {
            return Err(format!("--retries must be at least 1 (not {retries})"));
        }
        health.insert("Retries".into(), retries.into());
    }
    let known = [
        "interval",
        "timeout",
        "start-period",
        "start-interval",
        "retries",
    ];
    if let Some((name, _)) = options.iter().find(|(n, _)| !known.contains(n)) {
        return Err(format!("unknown flag: --{}", shown(name)));
    }
    Ok(Value::Object(health))
}

/// One change to an image config: a Dockerfile instruction of `--change`, or one of
/// `mutate`'s edits, whose values are taken literally.
///
/// ```
/// use dockhand::ConfigChange;
///
/// let changes = ConfigChange::instructions("LABEL a=1 b=\"two words\"")?;
/// assert_eq!(changes.len(), 1);
/// let label = ConfigChange::Label { name: "team".into(), value: "core".into() };
/// assert_eq!(label.to_string(), "LABEL team=core");
/// # Ok::<(), dockhand::Error>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ConfigChange {
    /// A Dockerfile instruction, as `docker import --change` applies it.
    Instruction(Instruction),
    /// Set `Env`'s `NAME` to `VALUE`, in place when it is set already, else last.
    Env {
        /// The variable.
        name: String,
        /// Its value, literally.
        value: String,
    },
    /// Remove `NAME` from `Env`.
    UnsetEnv(String),
    /// Set the label `NAME` to `VALUE`.
    Label {
        /// The label.
        name: String,
        /// Its value.
        value: String,
    },
    /// Remove the label.
    UnsetLabel(String),
    /// Set `User`.
    User(String),
    /// Set `WorkingDir` (a relative path is taken from the one set, as `WORKDIR`).
    WorkingDir(String),
    /// Add an exposed port: `PORT[-PORT][/PROTO]` (tcp by default).
    Expose(String),
    /// Remove an exposed port (`PORT[/PROTO]`, tcp by default).
    UnsetExpose(String),
    /// Add a volume.
    Volume(String),
    /// Remove a volume.
    UnsetVolume(String),
    /// Clear `Cmd`.
    ClearCmd,
    /// Clear `Entrypoint`.
    ClearEntrypoint,
}

impl ConfigChange {
    /// The changes of a `--change` text ([`Instruction::parse_all`]).
    pub fn instructions(text: &str) -> Result<Vec<ConfigChange>> {
        Ok(Instruction::parse_all(text)?
            .into_iter()
            .map(ConfigChange::Instruction)
            .collect())
    }
}

impl fmt::Display for ConfigChange {
    /// The change as a history entry shows it: the instruction, or Dockerfile-like
    /// words for an edit.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConfigChange::Instruction(i) => write!(f, "{i}"),
            ConfigChange::Env { name, value } => write!(f, "ENV {name}={value}"),
            ConfigChange::UnsetEnv(name) => write!(f, "unset ENV {name}"),
            ConfigChange::Label { name, value } => write!(f, "LABEL {name}={value}"),
            ConfigChange::UnsetLabel(name) => write!(f, "unset LABEL {name}"),
            ConfigChange::User(user) => write!(f, "USER {user}"),
            ConfigChange::WorkingDir(dir) => write!(f, "WORKDIR {dir}"),
            ConfigChange::Expose(port) => write!(f, "EXPOSE {port}"),
            ConfigChange::UnsetExpose(port) => write!(f, "unset EXPOSE {port}"),
            ConfigChange::Volume(volume) => write!(f, "VOLUME {volume}"),
            ConfigChange::UnsetVolume(volume) => write!(f, "unset VOLUME {volume}"),
            ConfigChange::ClearCmd => write!(f, "unset CMD"),
            ConfigChange::ClearEntrypoint => write!(f, "unset ENTRYPOINT"),
        }
    }
}

/// Apply `changes` in order to the `config` object of the image config `doc`
/// (created when absent or null). Other fields stay as they are, in their place.
pub(crate) fn apply_changes(doc: &mut Map<String, Value>, changes: &[ConfigChange]) -> Result<()> {
    if changes.is_empty() {
        return Ok(());
    }
    let config = doc
        .entry("config")
        .or_insert_with(|| Value::Object(Map::new()));
    if config.is_null() {
        *config = Value::Object(Map::new());
    }
    let Value::Object(config) = config else {
        return Err(Error::Unsupported(
            "the image config's `config` is not an object, so it cannot be edited".into(),
        ));
    };
    // As in a Dockerfile, an ENTRYPOINT clears a CMD this edit did not set.
    let mut cmd_set = false;
    for change in changes {
        let text = change.to_string();
        let env = strings(config.get("Env"));
        let expanded = |word: &str| expand(word, &env).map_err(|e| bad(&text, e));
        match change {
            ConfigChange::Instruction(instruction) => match &instruction.kind {
                Kind::Cmd(command) => {
                    let value = command_value(command, config);
                    config.insert("Cmd".into(), value);
                    cmd_set = true;
                }
                Kind::Entrypoint(command) => {
                    match command_value(command, config) {
                        Value::Null => clear(config, "Entrypoint"),
                        value => {
                            config.insert("Entrypoint".into(), value);
                        }
                    }
                    if !cmd_set {
                        clear(config, "Cmd");
                    }
                }
                Kind::Env(pairs) => {
                    // Every pair is expanded first: none sees another of the same line.
                    let pairs = pairs
                        .iter()
                        .map(|(name, value)| Ok((expanded(name)?, expanded(value)?)))
                        .collect::<Result<Vec<_>>>()?;
                    for (name, value) in pairs {
                        if name.is_empty() {
                            return Err(bad(&text, "ENV names can not be blank"));
                        }
                        set_env(config, &name, &value);
                    }
                }
                Kind::Label(pairs) => {
                    for (name, value) in pairs {
                        set_in(
                            config,
                            "Labels",
                            &expanded(name)?,
                            Value::String(expanded(value)?),
                        );
                    }
                }
                Kind::Expose(ports) => {
                    for port in ports {
                        for port in port_specs(&expanded(port)?).map_err(|e| bad(&text, e))? {
                            set_in(config, "ExposedPorts", &port, Value::Object(Map::new()));
                        }
                    }
                }
                Kind::User(user) => {
                    config.insert("User".into(), Value::String(expanded(user)?));
                }
                Kind::Volume(volumes) => {
                    for volume in volumes {
                        let volume = expanded(volume)?;
                        if volume.is_empty() {
                            return Err(bad(&text, "VOLUME specified can not be an empty string"));
                        }
                        set_in(config, "Volumes", &volume, Value::Object(Map::new()));
                    }
                }
                Kind::Workdir(dir) => {
                    let dir = expanded(dir)?;
                    set_workdir(config, &dir).map_err(|e| bad(&text, e))?;
                }
                Kind::OnBuild(trigger) => {
                    let mut list = match config.get("OnBuild") {
                        Some(Value::Array(list)) => list.clone(),
                        _ => Vec::new(),
                    };
                    list.push(Value::String(trigger.clone()));
                    config.insert("OnBuild".into(), Value::Array(list));
                }
                Kind::Healthcheck(health) => {
                    config.insert("Healthcheck".into(), health.clone());
                }
            },
            ConfigChange::Env { name, value } => {
                if name.is_empty() || name.contains('=') {
                    return Err(bad(&text, "a variable's name is not empty and holds no ="));
                }
                set_env(config, name, value)
            }
            ConfigChange::UnsetEnv(name) => {
                if let Some(Value::Array(list)) = config.get_mut("Env") {
                    list.retain(|entry| {
                        let entry = entry.as_str().unwrap_or_default();
                        entry.split_once('=').map_or(entry, |(k, _)| k) != name
                    });
                }
            }
            ConfigChange::Label { name, value } => {
                set_in(config, "Labels", name, Value::String(value.clone()))
            }
            ConfigChange::UnsetLabel(name) => remove_in(config, "Labels", name),
            ConfigChange::User(user) => {
                config.insert("User".into(), Value::String(user.clone()));
            }
            ConfigChange::WorkingDir(dir) => {
                set_workdir(config, dir).map_err(|e| bad(&text, e))?;
            }
            ConfigChange::Expose(spec) => {
                for port in port_specs(spec).map_err(|e| bad(&text, e))? {
                    set_in(config, "ExposedPorts", &port, Value::Object(Map::new()));
                }
            }
            ConfigChange::UnsetExpose(spec) => {
                for port in port_specs(spec).map_err(|e| bad(&text, e))? {
                    remove_in(config, "ExposedPorts", &port);
                }
            }
            ConfigChange::Volume(volume) => {
                if volume.is_empty() {
                    return Err(bad(&text, "a volume is a path, not empty"));
                }
                set_in(config, "Volumes", volume, Value::Object(Map::new()))
            }
            ConfigChange::UnsetVolume(volume) => remove_in(config, "Volumes", volume),
            ConfigChange::ClearCmd => clear(config, "Cmd"),
            ConfigChange::ClearEntrypoint => clear(config, "Entrypoint"),
        }
    }
    Ok(())
}

/// The strings of a JSON array (others skipped); none for anything else.
fn strings(value: Option<&Value>) -> Vec<String> {
    match value {
        Some(Value::Array(items)) => items
            .iter()
            .filter_map(|v| v.as_str().map(String::from))
            .collect(),
        _ => Vec::new(),
    }
}

/// The JSON value `CMD` or `ENTRYPOINT` sets: a shell form runs by the config's
/// `Shell` (`/bin/sh -c` when it has none).
fn command_value(command: &Command, config: &Map<String, Value>) -> Value {
    match command {
        Command::Exec(list) => serde_json::json!(list),
        Command::Clear => Value::Null,
        Command::Shell(line) => {
            let mut shell = strings(config.get("Shell"));
            if shell.is_empty() {
                shell = vec!["/bin/sh".into(), "-c".into()];
            }
            if !line.is_empty() {
                shell.push(line.clone());
            }
            serde_json::json!(shell)
        }
    }
}

/// Clear `field`: null where it is set (its place kept, as Docker writes a cleared
/// field); nothing where it is absent.
fn clear(config: &mut Map<String, Value>, field: &str) {
    if let Some(value) = config.get_mut(field) {
        *value = Value::Null;
    }
}

/// Set `Env`'s `name` in place when it is there, else last.
fn set_env(config: &mut Map<String, Value>, name: &str, value: &str) {
    let entry = Value::String(format!("{name}={value}"));
    let list = config
        .entry("Env")
        .or_insert_with(|| Value::Array(Vec::new()));
    if !list.is_array() {
        *list = Value::Array(Vec::new());
    }
    let Value::Array(list) = list else {
        unreachable!("made an array above")
    };
    let same = |v: &Value| {
        let text = v.as_str().unwrap_or_default();
        text.split_once('=').map_or(text, |(k, _)| k) == name
    };
    match list.iter_mut().find(|v| same(v)) {
        Some(slot) => *slot = entry,
        None => list.push(entry),
    }
}

/// Set `key` in the object `field` (created when absent or not an object).
fn set_in(config: &mut Map<String, Value>, field: &str, key: &str, value: Value) {
    let object = config
        .entry(field)
        .or_insert_with(|| Value::Object(Map::new()));
    if !object.is_object() {
        *object = Value::Object(Map::new());
    }
    if let Value::Object(object) = object {
        object.insert(key.to_string(), value);
    }
}

/// Remove `key` from the object `field`, keeping the order of the others.
fn remove_in(config: &mut Map<String, Value>, field: &str, key: &str) {
    if let Some(Value::Object(object)) = config.get_mut(field) {
        object.shift_remove(key);
    }
}

/// `WORKDIR`: an absolute path as given, a relative one joined to the one set (and
/// cleaned), as Docker's `normalizeWorkdir`.
fn set_workdir(config: &mut Map<String, Value>, dir: &str) -> Result<(), String> {
    if dir.is_empty() {
        return Err("WORKDIR cannot be empty".into());
    }
    let dir = if dir.starts_with('/') {
        dir.to_string()
    } else {
        let current = config
            .get("WorkingDir")
            .and_then(Value::as_str)
            .unwrap_or_default();
        clean_path(&format!("/{current}/{dir}"))
    };
    config.insert("WorkingDir".into(), Value::String(dir));
    Ok(())
}

/// An absolute path cleaned as Go's `filepath.Clean` cleans one.
fn clean_path(path: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            _ => parts.push(part),
        }
    }
    format!("/{}", parts.join("/"))
}

/// The ports a spec `[[IP:]HOST_PORT:]PORT[-PORT][/PROTO]` exposes, each `PORT/proto`,
/// as Docker's `nat.ParsePortSpec` reads it for `EXPOSE`: the container port (tcp by
/// default; tcp, udp or sctp), a host part checked (an IP address, bracketed for IPv6,
/// and a port or range) and dropped, as an image exposes container ports only.
fn port_specs(spec: &str) -> Result<Vec<String>, String> {
    let parts: Vec<&str> = spec.split(':').collect();
    let container = parts[parts.len() - 1];
    let (ip, host_port) = match parts.len() {
        1 => ("".to_string(), ""),
        2 => ("".to_string(), parts[0]),
        n => (parts[..n - 2].join(":"), parts[n - 2]),
    };
    // The protocol follows the container port: `80/udp`, or `80` (tcp).
    let (ports, proto) = match container.split('/').collect::<Vec<_>>()[..] {
        [ports] => (ports, "tcp".to_string()),
        [ports, ""] => (ports, "tcp".to_string()),
        [ports, proto, ..] => (ports, proto.to_ascii_lowercase()),
        [] => ("", String::new()),
    };
    let ip = ip
        .strip_prefix('[')
        .and_then(|rest| rest.strip_suffix(']'))
        .unwrap_or(&ip);
    if !ip.is_empty() && ip.parse::<std::net::IpAddr>().is_err() {
        return Err(format!("invalid IP address: {}", shown(ip)));
    }
    if ports.is_empty() {
        return Err(format!("no port specified: {}<empty>", shown(spec)));
    }
    let number = |text: &str| text.parse::<u16>().ok();
    let range = |text: &str| match text.split_once('-') {
        Some((a, b)) => number(a).zip(number(b)),
        None => number(text).map(|p| (p, p)),
    };
    let (start, end) =
        range(ports).ok_or_else(|| format!("invalid containerPort: {}", shown(ports)))?;
    if end < start {
        return Err(format!(
            "invalid range specified for the port: {}",
            shown(ports)
        ));
    }
    if !host_port.is_empty() {
        let (host_start, host_end) = range(host_port)
            .filter(|(a, b)| a <= b)
            .ok_or_else(|| format!("invalid hostPort: {}", shown(host_port)))?;
        if end != start && end - start != host_end - host_start {
            return Err(format!(
                "invalid ranges specified for container and host Ports: {} and {}",
                shown(ports),
                shown(host_port)
            ));
        }
    }
    if !["tcp", "udp", "sctp"].contains(&proto.as_str()) {
        return Err(format!("invalid proto: {}", shown(&proto)));
    }
    Ok((start..=end).map(|p| format!("{p}/{proto}")).collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// The `config` object after `changes` (each a `--change`) on an empty config.
    fn after(changes: &[&str]) -> Result<Value> {
        after_on(json!({}), changes)
    }

    fn after_on(config: Value, changes: &[&str]) -> Result<Value> {
        let mut doc = json!({ "config": config });
        let mut all = Vec::new();
        for change in changes {
            all.extend(ConfigChange::instructions(change)?);
        }
        apply_changes(doc.as_object_mut().unwrap(), &all)?;
        Ok(doc["config"].clone())
    }

    /// What `docker import --change` made of these with the Docker 20.10 daemon here.
    #[test]
    fn instructions_give_what_docker_import_gives() {
        let cases: Vec<(Vec<&str>, Value)> = vec![
            (
                vec![
                    "ENV A=1",
                    r#"ENV B=$A-2 C=${A}x D="q $A" E='s $A' F=a\ b"#,
                    "ENV G ${A:-z} and ${H:-def} ${A:+alt}",
                ],
                json!({"Env": ["A=1", "B=1-2", "C=1x", "D=q 1", "E=s $A", "F=a b", "G=1 and def alt"]}),
            ),
            (
                vec!["LABEL k v w", r#"LABEL "x y"=1 z=2"#],
                json!({"Labels": {"k": "v w", "x y": "1", "z": "2"}}),
            ),
            (
                vec!["EXPOSE 8000-8002/udp 90", "WORKDIR /a", "WORKDIR b/c", "ONBUILD run ls  -l"],
                json!({
                    "ExposedPorts": {"8000/udp": {}, "8001/udp": {}, "8002/udp": {}, "90/tcp": {}},
                    "WorkingDir": "/a/b/c",
                    "OnBuild": ["run ls  -l"],
                }),
            ),
            (
                vec![r#"CMD ["a","b"]"#, r#"ENTRYPOINT ["e"]"#],
                json!({"Cmd": ["a", "b"], "Entrypoint": ["e"]}),
            ),
            (
                vec![r#"cmd echo "x y""#, "user 1000:1000", r#"volume ["/a", "/b"]"#],
                json!({"Cmd": ["/bin/sh", "-c", "echo \"x y\""], "User": "1000:1000", "Volumes": {"/a": {}, "/b": {}}}),
            ),
            (
                vec!["ENV A=1", "ENTRYPOINT x $A y", "ENV G   a   b  "],
                json!({"Env": ["A=1", "G=a   b"], "Entrypoint": ["/bin/sh", "-c", "x $A y"]}),
            ),
            (
                vec![r#"ENV H="a\"b" I=a\\b J=\$A K='x\y' L="x\y" N=$ O=a$"#],
                json!({"Env": ["H=a\"b", "I=a\\b", "J=$A", "K=x\\y", "L=x\\y", "N=$", "O=a$"]}),
            ),
            (
                vec!["HEALTHCHECK --interval=5s --timeout=1m30s --start-period=100ms --retries=3 CMD curl -f http://x/ || exit 1"],
                json!({"Healthcheck": {"Test": ["CMD-SHELL", "curl -f http://x/ || exit 1"], "Interval": 5_000_000_000u64, "Timeout": 90_000_000_000u64, "StartPeriod": 100_000_000, "Retries": 3}}),
            ),
            (
                vec![r#"HEALTHCHECK CMD ["curl","x"]"#],
                json!({"Healthcheck": {"Test": ["CMD", "curl", "x"]}}),
            ),
            (
                vec![r#"LABEL a="x\"y" b=c\ d e="#],
                json!({"Labels": {"a": "x\"y", "b": "c d", "e": ""}}),
            ),
            (vec!["CMD []"], json!({"Cmd": []})),
            (vec!["CMD"], json!({"Cmd": ["/bin/sh", "-c"]})),
            (vec!["WORKDIR rel"], json!({"WorkingDir": "/rel"})),
            (
                vec!["EXPOSE 80/sctp 1-2"],
                json!({"ExposedPorts": {"80/sctp": {}, "1/tcp": {}, "2/tcp": {}}}),
            ),
            (
                vec!["ENV A=1\nCMD x"],
                json!({"Env": ["A=1"], "Cmd": ["/bin/sh", "-c", "x"]}),
            ),
            (vec!["ENTRYPOINT"], json!({})),
            (vec!["ENTRYPOINT []"], json!({})),
            (vec!["ENV A=1 B=$A"], json!({"Env": ["A=1", "B="]})),
            (vec!["EXPOSE 80/TCP"], json!({"ExposedPorts": {"80/tcp": {}}})),
            // A host part is checked and dropped, as Docker does (tried on 20.10).
            (
                vec!["EXPOSE 1.2.3.4:80:80 8080:81 :82 1.2.3.4::83/udp [::1]:8080:84"],
                json!({"ExposedPorts": {
                    "80/tcp": {}, "81/tcp": {}, "82/tcp": {}, "83/udp": {}, "84/tcp": {}
                }}),
            ),
            (
                vec!["ENV A=1", "LABEL l=$A", "EXPOSE $A", "WORKDIR /x/../$A", "USER $A", "VOLUME $A"],
                json!({
                    "Env": ["A=1"], "Labels": {"l": "1"}, "ExposedPorts": {"1/tcp": {}},
                    "WorkingDir": "/x/../1", "User": "1", "Volumes": {"1": {}},
                }),
            ),
        ];
        for (changes, want) in cases {
            assert_eq!(after(&changes).unwrap(), want, "{changes:?}");
        }
    }

    #[test]
    fn refused_as_docker_refuses_them() {
        for (change, words) in [
            ("STOPSIGNAL 9", "STOPSIGNAL is not an instruction"),
            ("FROM x", "FROM is not an instruction"),
            ("ENV", "ENV requires at least one argument"),
            ("ENV A", "ENV must have two arguments"),
            ("ENV A=1 B", "can't find = in B"),
            ("ENV =x", "ENV names can not be blank"),
            ("ONBUILD ONBUILD x", "chaining ONBUILD"),
            ("ONBUILD MAINTAINER x", "MAINTAINER isn't allowed"),
            ("ONBUILD from x", "FROM isn't allowed"),
            ("VOLUME", "VOLUME requires at least one argument"),
            ("VOLUME []", "VOLUME requires at least one argument"),
            ("USER", "USER requires exactly one argument"),
            ("USER a b", "USER requires exactly one argument"),
            (r#"CMD ["a", 1]"#, "strings only"),
            ("HEALTHCHECK NONE x", "takes no arguments"),
            ("HEALTHCHECK --retries=0 CMD x", "at least 1"),
            ("HEALTHCHECK --interval=1us CMD x", "less than 1ms"),
            ("HEALTHCHECK --bogus=1 CMD x", "unknown flag"),
            ("HEALTHCHECK CMD", "missing command"),
        ] {
            let err = after(&[change]).unwrap_err();
            assert!(err.is_usage(), "{change}: {err}");
            assert!(err.to_string().contains(words), "{change}: {err}");
        }
        for change in [
            "EXPOSE abc",
            "EXPOSE 80/xyz",
            "EXPOSE 9-1",
            "EXPOSE 70000",
            "EXPOSE 1.2.3:80:80",
            "EXPOSE x:80",
            "EXPOSE 1.2.3.4:80:",
            "EXPOSE 8080-8081:80-85",
            "EXPOSE 9-8:80",
        ] {
            let err = after(&[change]).unwrap_err();
            assert!(err.is_usage(), "{change}: {err}");
        }
    }

    #[test]
    fn an_entrypoint_clears_a_cmd_this_edit_did_not_set() {
        let base = json!({"Cmd": ["nginx"], "Env": ["PATH=/bin"], "Shell": ["/bin/bash", "-c"]});
        let out = after_on(base.clone(), &["ENTRYPOINT [\"/init\"]"]).unwrap();
        assert_eq!(out["Cmd"], Value::Null);
        let out = after_on(base.clone(), &["CMD [\"x\"]", "ENTRYPOINT [\"/init\"]"]).unwrap();
        assert_eq!(out["Cmd"], json!(["x"]));
        // The shell form runs by the config's Shell; ENV sees the base's variables.
        let out = after_on(base, &["CMD run it", "ENV PATH=/opt:$PATH"]).unwrap();
        assert_eq!(out["Cmd"], json!(["/bin/bash", "-c", "run it"]));
        assert_eq!(out["Env"], json!(["PATH=/opt:/bin"]));
    }

    #[test]
    fn edits_change_their_field_only_and_keep_the_order() {
        let base = json!({
            "Env": ["A=1", "B=2"],
            "Labels": {"x": "1", "y": "2"},
            "ExposedPorts": {"80/tcp": {}},
            "Volumes": {"/v": {}},
            "Entrypoint": ["/e"],
            "Custom": {"kept": true},
        });
        let mut doc = json!({ "config": base, "unknown": [1] });
        let changes = vec![
            ConfigChange::Env {
                name: "A".into(),
                value: "x y".into(),
            },
            ConfigChange::UnsetEnv("B".into()),
            ConfigChange::UnsetLabel("x".into()),
            ConfigChange::Label {
                name: "z".into(),
                value: "$HOME".into(),
            },
            ConfigChange::UnsetExpose("80".into()),
            ConfigChange::Expose("53/udp".into()),
            ConfigChange::UnsetVolume("/v".into()),
            ConfigChange::ClearEntrypoint,
            ConfigChange::WorkingDir("/srv/../app".into()),
        ];
        apply_changes(doc.as_object_mut().unwrap(), &changes).unwrap();
        assert_eq!(
            doc,
            json!({
                "config": {
                    "Env": ["A=x y"],
                    "Labels": {"y": "2", "z": "$HOME"},
                    "ExposedPorts": {"53/udp": {}},
                    "Volumes": {},
                    "Entrypoint": null,
                    "Custom": {"kept": true},
                    "WorkingDir": "/srv/../app",
                },
                "unknown": [1],
            })
        );
    }
}
