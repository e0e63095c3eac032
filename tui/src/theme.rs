//! Colours: a dark theme, a light one, and none at all (`NO_COLOR`, `--no-color`), where only
//! bold and reverse video mark what colour would.

use ratatui::style::{Color, Modifier, Style};

/// The styles every view draws with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Theme {
    /// Ordinary text.
    pub text: Style,
    /// Labels, units, unknown values.
    pub dim: Style,
    /// Titles and the active tab.
    pub accent: Style,
    /// Healthy values.
    pub ok: Style,
    /// Warnings and a wide utilization/SM gap.
    pub warn: Style,
    /// Critical findings, lost GPUs.
    pub crit: Style,
    /// The selected row.
    pub selected: Style,
    /// Rows a selected finding concerns.
    pub marked: Style,
}

impl Theme {
    /// Light text on a dark terminal.
    pub fn dark() -> Theme {
        Theme {
            text: Style::new().fg(Color::Gray),
            dim: Style::new().fg(Color::DarkGray),
            accent: Style::new().fg(Color::Cyan).add_modifier(Modifier::BOLD),
            ok: Style::new().fg(Color::Green),
            warn: Style::new().fg(Color::Yellow),
            crit: Style::new().fg(Color::Red).add_modifier(Modifier::BOLD),
            selected: Style::new().bg(Color::DarkGray).fg(Color::White),
            marked: Style::new().fg(Color::Magenta).add_modifier(Modifier::BOLD),
        }
    }

    /// Dark text on a light terminal.
    pub fn light() -> Theme {
        Theme {
            text: Style::new().fg(Color::Black),
            dim: Style::new().fg(Color::Gray),
            accent: Style::new().fg(Color::Blue).add_modifier(Modifier::BOLD),
            ok: Style::new().fg(Color::Green),
            warn: Style::new().fg(Color::Rgb(160, 100, 0)),
            crit: Style::new().fg(Color::Red).add_modifier(Modifier::BOLD),
            selected: Style::new().bg(Color::Rgb(210, 210, 230)).fg(Color::Black),
            marked: Style::new().fg(Color::Magenta).add_modifier(Modifier::BOLD),
        }
    }

    /// No colour: emphasis by bold and reverse video only.
    pub fn plain() -> Theme {
        let bold = Style::new().add_modifier(Modifier::BOLD);
        Theme {
            text: Style::new(),
            dim: Style::new(),
            accent: bold,
            ok: Style::new(),
            warn: bold,
            crit: bold,
            selected: Style::new().add_modifier(Modifier::REVERSED),
            marked: Style::new().add_modifier(Modifier::UNDERLINED),
        }
    }

    /// The theme named on the command line (`dark`, `light`), plain when colour is off.
    pub fn pick(name: &str, color: bool) -> Option<Theme> {
        if !color {
            return Some(Theme::plain());
        }
        match name {
            "dark" => Some(Theme::dark()),
            "light" => Some(Theme::light()),
            _ => None,
        }
    }
}
