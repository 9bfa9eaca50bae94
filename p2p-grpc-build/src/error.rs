//! The error returned by the code generator.

use std::{
    fmt, io,
    path::{Path, PathBuf},
};

use miette::Diagnostic;

/// Why code generation failed.
///
/// Both `Display` and `Debug` print the same readable text, because a `build.rs` whose `main`
/// returns `Err` shows the error with `Debug`. For a mistake in a `.proto` file the text starts
/// with `path/to/file.proto:LINE:COLUMN:` and shows the offending line:
///
/// ```text
/// proto/helloworld.proto:7:3: expected ';', but found 'rpc'
///     7 |   rpc SayHello (HelloRequest) returns (HelloReply) {}
///       |   ^^^
/// ```
pub struct Error {
    message: String,
    file: Option<PathBuf>,
    line: Option<usize>,
    source: Option<Box<dyn std::error::Error + Send + Sync + 'static>>,
}

impl Error {
    /// The `.proto` file the error is about, when there is one: the path on disk when the file
    /// was found under an include directory, else its import name.
    pub fn file(&self) -> Option<&Path> {
        self.file.as_deref()
    }

    /// The 1-based line in [`file`](Self::file) the error points at, when known.
    pub fn line(&self) -> Option<usize> {
        self.line
    }

    /// Wraps an error from protox, locating it in the files under `includes`.
    pub(crate) fn from_protox(err: protox::Error, includes: &[PathBuf]) -> Self {
        let file_name = err.file().map(str::to_owned);
        // The path on disk reads better than the import name ("proto/a.proto" vs "a.proto").
        let file = file_name.as_deref().map(|name| {
            includes
                .iter()
                .map(|dir| dir.join(name))
                .find(|path| path.is_file())
                .unwrap_or_else(|| PathBuf::from(name))
        });

        let location = locate(&err);
        let width = location.map_or(1, |(_, _, len)| len.max(1));
        let location = location.map(|(line, column, _)| (line, column));
        let mut message = String::new();
        match (&file, location) {
            (Some(file), Some((line, column))) => {
                message = format!("{}:{line}:{column}: {err}", file.display());
                if let Some(text) = std::fs::read_to_string(file)
                    .ok()
                    .and_then(|source| source.lines().nth(line - 1).map(str::to_owned))
                {
                    let gutter = line.to_string();
                    let pad = " ".repeat(gutter.len());
                    let indent = " ".repeat(column.saturating_sub(1));
                    let rest = text.len().saturating_sub(column - 1).max(1);
                    let carets = "^".repeat(width.min(rest));
                    message.push_str(&format!(
                        "\n    {gutter} | {text}\n    {pad} | {indent}{carets}"
                    ));
                }
            }
            (Some(file), None) => {
                message = format!("{}: {err}", file.display());
            }
            (None, _) => message.push_str(&format!("{err:?}")),
        }
        if let Some(help) = err.help() {
            message.push_str(&format!("\n  help: {help}"));
        }
        // Errors such as a failed `open` keep their cause in `source()`.
        let mut cause = std::error::Error::source(&err);
        while let Some(inner) = cause {
            message.push_str(&format!("\n  caused by: {inner}"));
            cause = inner.source();
        }
        Error {
            message,
            file,
            line: location.map(|(line, _)| line),
            source: Some(Box::new(err)),
        }
    }

    /// Wraps an IO error from prost-build or from writing files.
    pub(crate) fn io(context: impl fmt::Display, err: io::Error) -> Self {
        Error {
            message: format!("{context}: {err}"),
            file: None,
            line: None,
            source: Some(Box::new(err)),
        }
    }

    /// An error with only a message.
    pub(crate) fn msg(message: impl Into<String>) -> Self {
        Error {
            message: message.into(),
            file: None,
            line: None,
            source: None,
        }
    }
}

/// The 1-based line and column, and the length, of the first labelled span of a diagnostic.
fn locate(err: &protox::Error) -> Option<(usize, usize, usize)> {
    let source = err.source_code()?;
    let label = err.labels()?.next()?;
    let contents = source.read_span(label.inner(), 0, 0).ok()?;
    Some((contents.line() + 1, contents.column() + 1, label.len()))
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source
            .as_deref()
            .map(|err| err as &(dyn std::error::Error + 'static))
    }
}
