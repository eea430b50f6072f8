//! `tracing` set-up: one subscriber per process, filtered by `RUST_LOG`, text or JSON lines.
//!
//! Request values reach the logs (`client_id = %presented.client_id`, a username, a path), and
//! the text format writes `%` (Display) values as they are: a `client_id` with a newline once
//! forged a second log line. So the text format here escapes control characters in every field
//! value and message ([`EscapedFields`]), whatever the call site wrote; the JSON format escapes
//! them as JSON already. Call sites need no rule of their own.

use std::fmt::{self, Write as _};

use tracing::field::{Field, Visit};
use tracing_subscriber::EnvFilter;
use tracing_subscriber::field::RecordFields;
use tracing_subscriber::fmt::format::{FormatFields, Writer};
use tracing_subscriber::fmt::{FormattedFields, MakeWriter};
use tracing_subscriber::util::SubscriberInitExt as _;

/// Initialises `tracing`: `RUST_LOG` filters (default `info`), `LOG_FORMAT=json` for JSON lines.
/// Logs go to standard error: standard output is the operator commands' result (`auth-server
/// clients create` prints the secret as JSON there), and a warning must not corrupt it.
/// Safe to call twice (the second call does nothing), which tests rely on.
pub fn init_telemetry() {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let json = std::env::var("LOG_FORMAT").is_ok_and(|format| format.eq_ignore_ascii_case("json"));
    if json {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_target(false)
            .with_writer(std::io::stderr)
            .json()
            .try_init();
    } else {
        let _ = text_subscriber(filter, std::io::stderr).try_init();
    }
}

/// The text-format subscriber, writing to `writer`.
fn text_subscriber<W>(filter: EnvFilter, writer: W) -> impl tracing::Subscriber + Send + Sync + 'static
where
    W: for<'writer> MakeWriter<'writer> + Send + Sync + 'static,
{
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(false)
        .fmt_fields(EscapedFields)
        .with_writer(writer)
        .finish()
}

/// Formats fields like tracing-subscriber's default (`message name=value ...`), but with
/// control characters in values escaped (`\n`, `\u{1b}`), so one event is always one line and
/// a value cannot send escape sequences to a terminal.
#[derive(Debug, Clone, Copy, Default)]
pub struct EscapedFields;

impl<'writer> FormatFields<'writer> for EscapedFields {
    fn format_fields<R: RecordFields>(&self, writer: Writer<'writer>, fields: R) -> fmt::Result {
        let mut visitor = EscapingVisitor { writer, first: true, result: Ok(()) };
        fields.record(&mut visitor);
        visitor.result
    }

    fn add_fields(
        &self,
        current: &'writer mut FormattedFields<Self>,
        fields: &tracing::span::Record<'_>,
    ) -> fmt::Result {
        if !current.fields.is_empty() {
            current.fields.push(' ');
        }
        self.format_fields(current.as_writer(), fields)
    }
}

struct EscapingVisitor<'writer> {
    writer: Writer<'writer>,
    first: bool,
    result: fmt::Result,
}

impl EscapingVisitor<'_> {
    /// `name=value`, space-separated; the message without its name, as the default format.
    fn write_field(&mut self, name: &str, value: &dyn fmt::Debug) {
        if self.result.is_err() {
            return;
        }
        let separator = if std::mem::take(&mut self.first) { "" } else { " " };
        let name = name.strip_prefix("r#").unwrap_or(name);
        let writer = &mut self.writer;
        self.result = writer
            .write_str(separator)
            .and_then(|()| if name == "message" { Ok(()) } else { write!(writer, "{name}=") })
            .and_then(|()| write!(Escaping(writer), "{value:?}"));
    }
}

impl Visit for EscapingVisitor<'_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        // As the default format: a message as it is, other strings quoted.
        if field.name() == "message" {
            self.write_field(field.name(), &format_args!("{value}"));
        } else {
            self.write_field(field.name(), &value);
        }
    }

    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        self.write_field(field.name(), &format_args!("{value}"));
        if value.source().is_some() {
            self.write_field(&format!("{}.sources", field.name()), &Sources(value.source()));
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.write_field(field.name(), value);
    }
}

/// An error's causes, as the default format lists them: `[first, second]`.
struct Sources<'a>(Option<&'a (dyn std::error::Error + 'static)>);

impl fmt::Debug for Sources<'_> {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        struct Shown<'a>(&'a (dyn std::error::Error + 'static));
        impl fmt::Debug for Shown<'_> {
            fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(formatter, "{}", self.0)
            }
        }
        let mut list = formatter.debug_list();
        let mut next = self.0;
        while let Some(error) = next {
            list.entry(&Shown(error));
            next = error.source();
        }
        list.finish()
    }
}

/// Writes through, escaping every character that could end a line or steer a terminal.
struct Escaping<'a, 'writer>(&'a mut Writer<'writer>);

impl fmt::Write for Escaping<'_, '_> {
    fn write_str(&mut self, text: &str) -> fmt::Result {
        let mut rest = text;
        while let Some(position) = rest.find(needs_escape) {
            let (plain, tail) = rest.split_at(position);
            self.0.write_str(plain)?;
            let mut chars = tail.chars();
            if let Some(character) = chars.next() {
                match character {
                    '\n' => self.0.write_str("\\n")?,
                    '\r' => self.0.write_str("\\r")?,
                    '\t' => self.0.write_str("\\t")?,
                    other => write!(self.0, "{}", other.escape_unicode())?,
                }
            }
            rest = chars.as_str();
        }
        self.0.write_str(rest)
    }
}

/// Control characters (C0, DEL, C1), the Unicode line and paragraph separators, and the
/// bidirectional overrides that make a terminal show text in another order than it was written.
fn needs_escape(character: char) -> bool {
    character.is_control()
        || matches!(character, '\u{2028}' | '\u{2029}' | '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use super::*;

    /// Collects what the subscriber writes.
    #[derive(Clone, Default)]
    struct Captured(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Captured {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(bytes);
            Ok(bytes.len())
        }

        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    fn logged(emit: impl FnOnce()) -> String {
        let captured = Captured::default();
        let writer = captured.clone();
        let subscriber = text_subscriber(EnvFilter::new("info"), move || writer.clone());
        tracing::subscriber::with_default(subscriber, emit);
        String::from_utf8(captured.0.lock().unwrap().clone()).unwrap()
    }

    #[test]
    fn a_value_with_a_newline_stays_on_one_log_line() {
        let forged = "evil\n2026-01-01T00:00:00Z  INFO login succeeded user_id=admin";

        let output = logged(|| tracing::info!(client_id = %forged, "client authentication failed"));

        assert_eq!(output.lines().count(), 1, "{output}");
        assert!(output.contains(r"client_id=evil\n2026-01-01T00:00:00Z"), "{output}");
    }

    #[test]
    fn messages_span_fields_and_terminal_escapes_are_escaped_too() {
        let hostile = "a\r\nb\u{1b}[2Jc\u{2028}d\u{202e}e";

        let output = logged(|| {
            let span = tracing::info_span!("request", route = %hostile);
            let _entered = span.enter();
            tracing::info!(name = ?hostile, "user said {hostile}");
        });

        assert_eq!(output.lines().count(), 1, "{output}");
        assert!(!output.contains("\u{1b}[2J"), "{output}");
        assert!(
            !output.contains('\r') && !output.contains('\u{2028}') && !output.contains('\u{202e}'),
            "{output}"
        );
        assert!(output.contains(r"user said a\r\nb\u{1b}[2Jc\u{2028}d\u{202e}e"), "{output}");
        assert!(output.contains(r"route=a\r\nb"), "{output}");
    }

    #[test]
    fn ordinary_values_are_written_as_they_are() {
        let output =
            logged(|| tracing::info!(user_id = %"u-1", name = "alice", count = 3, "login succeeded"));

        assert!(
            output.trim_end().ends_with(r#"login succeeded user_id=u-1 name="alice" count=3"#),
            "{output}"
        );
    }
}
