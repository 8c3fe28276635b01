//! The shape of the progress lines for a terminal's width, so that no line wraps:
//! a wrapped line breaks the redrawing of every line under it.

use std::io;

/// The width assumed when the terminal does not say (a pseudo-terminal nobody sized).
const DEFAULT_WIDTH: usize = 80;
/// The widest layer bar.
const MAX_BAR: usize = 30;
/// The most characters of a layer's name shown.
const MAX_NAME: usize = 40;
/// Room kept for a layer's name before the bar takes the rest.
const NAME_ROOM: usize = 16;

/// `{prefix:>5} ` before everything.
const PREFIX: usize = 6;
/// `{bytes:>11}/{total_bytes:<11}`.
const COUNTS: usize = 23;
/// ` {binary_bytes_per_sec:>13}`.
const RATE: usize = 14;
/// ` ETA {eta:<5}` (indicatif's short durations: `59s`, `3m`, `12h`).
const ETA: usize = 10;
/// `[` and `] ` around a bar.
const BAR_FRAME: usize = 3;

/// The templates of the overall line and of a layer line, and how many characters of
/// a layer's name fit after the layer line's template.
pub struct Layout {
    /// The line for the whole: bytes, rate, ETA.
    pub overall: String,
    /// The line for one layer: bytes, rate, then its name.
    pub layer: String,
    /// The most characters of a layer's name that fit (0: no name).
    pub name: usize,
}

/// The width of the terminal on stderr, or [`DEFAULT_WIDTH`] when it does not say:
/// read as indicatif reads it (a size with no rows is no size), so that its padding
/// and these lines agree.
pub fn stderr_width() -> usize {
    match rustix::termios::tcgetwinsize(io::stderr()) {
        Ok(size) if size.ws_col > 0 && size.ws_row > 0 => usize::from(size.ws_col),
        _ => DEFAULT_WIDTH,
    }
}

/// Lines that fit in `width` columns, one column spare (a line filling the last column
/// makes some terminals wrap): the bar shrinks first, then goes with the rate, then
/// the counts.
pub fn for_width(width: usize) -> Layout {
    let room = width.saturating_sub(1);
    let counts = "{bytes:>11}/{total_bytes:<11}";
    let rate = " {binary_bytes_per_sec:>13}";
    let eta = " ETA {eta:<5}";
    let with_bar = PREFIX + BAR_FRAME + COUNTS + RATE;
    if room >= with_bar + ETA + 10 {
        // The overall line has no name: its bar takes the room a name would.
        let overall_bar = (room - with_bar - ETA).min(MAX_BAR);
        let bar = (room - with_bar)
            .saturating_sub(NAME_ROOM)
            .clamp(10, MAX_BAR);
        return Layout {
            overall: format!("{{prefix:>5}} [{{bar:{overall_bar}}}] {counts}{rate}{eta}"),
            layer: format!("{{prefix:>5}} [{{bar:{bar}}}] {counts}{rate} {{msg}}"),
            name: (room - with_bar - bar).saturating_sub(1).min(MAX_NAME),
        };
    }
    if room >= PREFIX + COUNTS + RATE + ETA {
        return Layout {
            overall: format!("{{prefix:>5}} {counts}{rate}{eta}"),
            layer: format!("{{prefix:>5}} {counts}{rate} {{msg}}"),
            name: (room - PREFIX - COUNTS - RATE)
                .saturating_sub(1)
                .min(MAX_NAME),
        };
    }
    if room >= PREFIX + COUNTS {
        return Layout {
            overall: format!("{{prefix:>5}} {counts}"),
            layer: format!("{{prefix:>5}} {counts}"),
            name: 0,
        };
    }
    Layout {
        overall: "{percent:>3}%".into(),
        layer: "{percent:>3}%".into(),
        name: 0,
    }
}

/// `name` in at most `max` characters, keeping its end (where a layer's path differs).
pub fn shortened(name: &str, max: usize) -> String {
    let count = name.chars().count();
    if count <= max {
        return name.to_string();
    }
    if max == 0 {
        return String::new();
    }
    let tail: String = name.chars().skip(count - (max - 1)).collect();
    format!("…{tail}")
}
