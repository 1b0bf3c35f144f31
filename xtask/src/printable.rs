//! Text from hostile sources (archive entry names, server logs, other
//! users' programs), made safe to print on a terminal: control characters
//! shown escaped, so no escape sequence reaches it, and long text cut.

/// `text` with control characters (but newlines and tabs) escaped, cut to
/// `max` characters with the length said.
pub fn printable(text: &str, max: usize) -> String {
    let mut out = String::new();
    for (count, c) in text.chars().enumerate() {
        if count == max {
            out.push_str(&format!("… ({} bytes in all)", text.len()));
            break;
        }
        match c {
            '\n' | '\t' => out.push(c),
            c if c.is_control() => out.extend(c.escape_default()),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_and_cuts() {
        assert_eq!(printable("a\u{1b}[2Jb\nc", 100), "a\\u{1b}[2Jb\nc");
        assert_eq!(printable("abcdef", 3), "abc… (6 bytes in all)");
    }
}
