//! Shared pieces of loading TOML data files: located errors and span handling.
//!
//! Every error about a recipe or platform file names the file, the line and the
//! key, and is an [`InvalidInput`], which `main` turns into exit status 2.

use std::{fmt, ops::Range, path::Path};

use serde::de::DeserializeOwned;

/// Bad input from the user: a recipe, a platform file or a flag value.
/// `main` exits with status 2 for these, and 1 for every other failure.
#[derive(Debug)]
pub struct InvalidInput(pub String);

impl fmt::Display for InvalidInput {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for InvalidInput {}

/// Shorthand for returning an [`InvalidInput`] from a function.
pub fn invalid(message: impl Into<String>) -> anyhow::Error {
    InvalidInput(message.into()).into()
}

/// One TOML file's text, kept so that spans can be turned into lines.
pub struct Source<'a> {
    pub path: &'a Path,
    pub text: &'a str,
}

impl Source<'_> {
    /// 1-based line and column of a byte offset.
    pub fn line_col(&self, offset: usize) -> (usize, usize) {
        let before = &self.text[..offset.min(self.text.len())];
        let line = before.matches('\n').count() + 1;
        let column = before.len() - before.rfind('\n').map_or(0, |at| at + 1) + 1;
        (line, column)
    }

    /// An error about `key` at `span`: `path:line:column: key `key`: message`.
    pub fn error_at(
        &self,
        span: Range<usize>,
        key: &str,
        message: impl fmt::Display,
    ) -> anyhow::Error {
        let (line, column) = self.line_col(span.start);
        invalid(format!(
            "{}:{line}:{column}: key `{key}`: {message}",
            self.path.display()
        ))
    }

    /// Deserialize the whole file; serde's errors (unknown key, missing field,
    /// wrong type, unknown variant) come back located.
    pub fn parse<T: DeserializeOwned>(&self) -> anyhow::Result<T> {
        toml::from_str(self.text).map_err(|error| {
            let (line, column) = error
                .span()
                .map_or((1, 1), |span| self.line_col(span.start));
            let message = error.message().trim_end().replace('\n', " ");
            let key = key_of(self.text, error.span());
            invalid(format!(
                "{}:{line}:{column}: key `{key}`: {message}",
                self.path.display()
            ))
        })
    }
}

/// The dotted key an error span points into: the innermost `[table]` or
/// `[[array]]` header above it, joined with the key on the span's own line.
fn key_of(text: &str, span: Option<Range<usize>>) -> String {
    let Some(span) = span else {
        return "(file)".to_owned();
    };
    let line_start = text[..span.start.min(text.len())]
        .rfind('\n')
        .map_or(0, |at| at + 1);
    let line = text[line_start..].lines().next().unwrap_or("").trim();
    // The innermost header at or above the span's line.
    let table = std::iter::once(line)
        .chain(text[..line_start].lines().rev())
        .map(str::trim)
        .find(|candidate| candidate.starts_with('['))
        .map(|header| {
            header
                .trim_matches(|c| c == '[' || c == ']')
                .trim()
                .to_owned()
        });
    let own_key = if line.starts_with('[') {
        None
    } else {
        line.split_once('=').map(|(key, _)| key.trim().to_owned())
    };
    match (table, own_key) {
        (Some(table), Some(key)) => format!("{table}.{key}"),
        (Some(table), None) => table,
        (None, Some(key)) => key,
        (None, None) => "(top level)".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_and_column_are_one_based() {
        let source = Source {
            path: Path::new("x.toml"),
            text: "a = 1\nbb = 2\n",
        };
        assert_eq!(source.line_col(0), (1, 1));
        assert_eq!(source.line_col(6), (2, 1));
        assert_eq!(source.line_col(9), (2, 4));
    }

    #[test]
    fn key_joins_table_header_and_line_key() {
        let text = "[set]\nname = 1\n[[component]]\nversion = 2\n";
        let at = text.find("version").unwrap();
        assert_eq!(key_of(text, Some(at..at + 1)), "component.version");
        assert_eq!(key_of(text, Some(0..1)), "set");
    }
}
