//! The rules for values that become paths, file names or account names.
//!
//! A recipe's component names, versions and source file names land in
//! `target/` paths (`sets/<set>/src/<name>-<version>`, stamps and logs named by
//! step); package names, versions and releases in package file names; prefixes
//! and other absolute paths in the stage and on the installed system; user and
//! group names in `useradd` and in archive headers. Loading checks each value
//! with one of these rules and reports it located; `layout` checks the plain
//! names again, so a value that slipped past loading cannot reach a path
//! outside `target/`.

/// Most bytes a name or version in a recipe or platform may hold: room for
/// any real package or version, and a bound that keeps a file name joined
/// from a few of them near the 255 bytes a file name may hold (a bound, not
/// a guarantee: too long a file name fails when it is written, naming it).
/// Loading checks it; `layout` does not, since the segments it joins are
/// made of several such names.
pub const MAX_NAME_BYTES: usize = 128;

/// Most bytes a user or group name may hold: OpenBSD's limit (31), one under
/// Linux's `useradd` (32).
pub const MAX_USER_BYTES: usize = 31;

/// A plain name is one path component that cannot climb (`..`), hide (`.x`),
/// be read as an option (`-x`) or a home directory (`~x`), or hold a
/// separator, space, quote, glob or control character: one or more ASCII
/// letters, digits, `.`, `_`, `-`, `+` and `~`, starting with a letter or
/// digit. What `layout` joins must be one.
pub fn is_plain_name(text: &str) -> bool {
    let mut bytes = text.bytes();
    bytes
        .next()
        .is_some_and(|first| first.is_ascii_alphanumeric())
        && bytes.all(|b| b.is_ascii_alphanumeric() || b"._-+~".contains(&b))
}

/// A plain name of at most [`MAX_NAME_BYTES`]: what a value of a recipe or
/// platform must be to become one path component.
fn is_short_plain_name(text: &str) -> bool {
    is_plain_name(text) && text.len() <= MAX_NAME_BYTES
}

/// [`is_plain_name`] and at most [`MAX_NAME_BYTES`], with the reason when not.
pub fn check_plain_name(text: &str) -> Result<(), String> {
    if is_short_plain_name(text) {
        Ok(())
    } else {
        Err(format!(
            "`{}` is not a plain name: letters, digits, `.`, `_`, `-`, `+` and `~`, starting with \
             a letter or digit, at most {MAX_NAME_BYTES} bytes (it becomes a file or directory name)",
            shown(text)
        ))
    }
}

/// A version or release: a plain name without `-` or `_`, which is what RPM
/// and dpkg both accept (letters, digits, `.`, `+`, `~`). `-` separates name,
/// version and release in a package's file name (`name-version-release.arch.rpm`),
/// so a version holding one would make that name ambiguous.
pub fn check_version(text: &str) -> Result<(), String> {
    if is_short_plain_name(text) && !text.contains(['-', '_']) {
        Ok(())
    } else {
        Err(format!(
            "`{}` is not a version: letters, digits, `.`, `+` and `~`, starting with a letter or \
             digit, at most {MAX_NAME_BYTES} bytes (what RPM and dpkg both accept; `-` separates \
             name, version and release in a package file name)",
            shown(text)
        ))
    }
}

/// One component of a path: a plain name of at most [`MAX_NAME_BYTES`],
/// or one with a single `.` before it (a hidden directory: `~/.local`), so
/// never `.` or `..`.
fn is_path_component(text: &str) -> bool {
    is_short_plain_name(text) || text.strip_prefix('.').is_some_and(is_short_plain_name)
}

/// An absolute path as prefixes, homes and header directories must be: `/`
/// followed by one or more path components (each a plain name,
/// [`is_plain_name`], maybe after one `.`) separated by single `/`s. So it
/// is normalized (no empty, `.` or `..` component, no trailing `/`), holds
/// nothing a shell, `sed` expression or spec file would read specially, and
/// is not `/` itself (a prefix of `/` would install into the root
/// directory, whose every directory the install step would have to own).
pub fn check_absolute_path(text: &str) -> Result<(), String> {
    let plain = text
        .strip_prefix('/')
        .is_some_and(|rest| rest.split('/').all(is_path_component));
    if plain {
        Ok(())
    } else {
        Err(format!(
            "`{}` is not a normalized absolute path: `/` then names of letters, digits, `.`, \
             `_`, `-`, `+` and `~` (each starting with a letter or digit, or with one `.` and \
             then one) separated by single `/`, so no `.` or `..` component and no trailing `/`",
            shown(text)
        ))
    }
}

/// A path relative to a directory it must stay in (a step's `dir` in the
/// source tree, a header below an include directory): path components as
/// [`check_absolute_path`] takes them, separated by single `/`s, so never
/// absolute, never `.` or `..`.
pub fn check_relative_path(text: &str) -> Result<(), String> {
    if text.split('/').all(is_path_component) {
        Ok(())
    } else {
        Err(format!(
            "`{}` is not a relative path that stays inside its directory: names of letters, \
             digits, `.`, `_`, `-`, `+` and `~` (each starting with a letter or digit, or with \
             one `.` and then one) separated by single `/`, not starting with `/`",
            shown(text)
        ))
    }
}

/// A user or group name both Linux's `useradd` and OpenBSD's accept, and
/// that no command reads as an option: ASCII letters, digits, `_`, `.` and
/// `-`, starting with a letter or `_`, 1 to [`MAX_USER_BYTES`] bytes.
pub fn check_user_name(text: &str) -> Result<(), String> {
    let mut bytes = text.bytes();
    let valid = bytes
        .next()
        .is_some_and(|first| first.is_ascii_alphabetic() || first == b'_')
        && text.len() <= MAX_USER_BYTES
        && bytes.all(|b| b.is_ascii_alphanumeric() || b"_.-".contains(&b));
    if valid {
        Ok(())
    } else {
        Err(format!(
            "`{}` is not a user or group name: letters, digits, `_`, `.` and `-`, starting with a \
             letter or `_`, at most {MAX_USER_BYTES} bytes",
            shown(text)
        ))
    }
}

/// A program: a plain name looked up on `PATH`, or an absolute path by
/// [`check_absolute_path`].
pub fn check_program(text: &str) -> Result<(), String> {
    if is_short_plain_name(text) || check_absolute_path(text).is_ok() {
        Ok(())
    } else {
        Err(format!(
            "`{}` is not a program: a plain name looked up on PATH (letters, digits, `.`, `_`, \
             `-`, `+`, `~`, starting with a letter or digit) or a normalized absolute path",
            shown(text)
        ))
    }
}

/// The value as an error shows it: escaped and cut, since it is hostile.
/// Most bytes a line of package metadata may hold.
pub const MAX_LINE_BYTES: usize = 1024;

/// One line of package metadata (a summary, license, URL, maintainer): it is
/// written into an RPM spec's tag lines and a .deb's control fields, where a
/// newline would start a new tag or field (a `%post` scriptlet, a `Depends`),
/// so no control character at all, not empty, at most [`MAX_LINE_BYTES`].
pub fn check_one_line(text: &str) -> Result<(), String> {
    if !text.trim().is_empty()
        && text.len() <= MAX_LINE_BYTES
        && !text.chars().any(char::is_control)
    {
        Ok(())
    } else {
        Err(format!(
            "`{}` is not one line of text: no newline or other control character, not empty, \
             at most {MAX_LINE_BYTES} bytes (it becomes a line of the RPM spec and the .deb control file)",
            shown(text)
        ))
    }
}

fn shown(text: &str) -> String {
    crate::printable::printable(text, 200)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metadata_is_one_line() {
        assert!(check_one_line("PostgreSQL 15 with pglogical").is_ok());
        for bad in [
            "",
            "  ",
            "two\nlines",
            "x\n%post\nrm -rf /",
            "tab\there",
            "cr\r",
        ] {
            assert!(check_one_line(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn plain_names_are_single_components_that_cannot_climb_or_hide() {
        for good in ["bdr94", "pg15-pglogical", "a.b_c", "1.0+dfsg~rc1", "x"] {
            assert!(is_plain_name(good), "{good}");
        }
        let long = "a".repeat(MAX_NAME_BYTES + 1);
        for bad in [
            "",
            ".",
            "..",
            "/",
            "a/b",
            "../x",
            "../../../../bdr-dist-hostile-name",
            ".hidden",
            "-x",
            "~x",
            "+x",
            "a b",
            "a\nb",
            "a\\b",
            "a'b",
            "a*",
            "é",
        ] {
            assert!(!is_plain_name(bad), "{bad:?}");
            assert!(check_plain_name(bad).is_err(), "{bad:?}");
        }
        // Too long for a recipe, still one path component for layout.
        assert!(check_plain_name(&"a".repeat(MAX_NAME_BYTES)).is_ok());
        assert!(check_plain_name(&long).is_err());
        assert!(is_plain_name(&long));
    }

    #[test]
    fn versions_hold_no_separator_of_a_package_file_name() {
        for good in ["15.18", "9.4.13", "1.0~rc1", "2.4.2+dfsg", "1"] {
            assert!(check_version(good).is_ok(), "{good}");
        }
        for bad in ["1.0-1", "1_0", "", "../1", ".1", "1 0", "1/0"] {
            assert!(check_version(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn absolute_paths_are_normalized_and_plain() {
        for good in [
            "/usr/pgsql-15",
            "/usr/local/pgsql",
            "/var/lib/pgsql",
            "/opt",
            "/home/me/.local/pgsql",
        ] {
            assert!(check_absolute_path(good).is_ok(), "{good}");
        }
        for bad in [
            "",
            "/",
            "usr/pgsql",
            "/usr/",
            "//usr",
            "/usr//pgsql",
            "/usr/./pgsql",
            "/usr/../etc",
            "/usr/..hidden",
            "/usr/.",
            "/opt/my dir",
            "/opt/a|b",
            "/opt/a\nb",
        ] {
            assert!(check_absolute_path(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn relative_paths_stay_below_their_directory() {
        for good in ["contrib", "contrib/btree_gist", "openssl/ssl.h", ".libs"] {
            assert!(check_relative_path(good).is_ok(), "{good}");
        }
        for bad in ["", "/etc", "..", "../x", "a/../../x", "a/", "a//b", "./a"] {
            assert!(check_relative_path(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn user_names_are_what_useradd_takes_and_no_option() {
        for good in [
            "postgres",
            "_postgresql",
            "bdr-dist-smoke",
            "_bdrdistsmoke",
            "bin",
        ] {
            assert!(check_user_name(good).is_ok(), "{good}");
        }
        let long = "a".repeat(MAX_USER_BYTES + 1);
        for bad in [
            "",
            "-r",
            "1user",
            "a b",
            "a/b",
            "a:b",
            "root\n",
            long.as_str(),
        ] {
            assert!(check_user_name(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn programs_are_names_on_path_or_absolute_paths() {
        for good in ["make", "gmake", "pkg_add", "/usr/local/bin/gflex"] {
            assert!(check_program(good).is_ok(), "{good}");
        }
        for bad in ["", "bin/make", "../make", "-make", "make -k", "/usr/bin/"] {
            assert!(check_program(bad).is_err(), "{bad:?}");
        }
    }
}
