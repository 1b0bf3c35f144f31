//! A throwaway GnuPG home for the signing tests: keys made without a
//! passphrase; on drop its agent is stopped and the directory, key material
//! and all, removed, even when a test fails.

use std::{
    path::Path,
    process::{Command, Output},
};

pub struct GnupgHome {
    dir: xtask::files::TempDir,
}

impl GnupgHome {
    pub fn new() -> GnupgHome {
        let dir = xtask::files::TempDir::with_prefix("bdr-dist-gnupg-").unwrap();
        std::fs::set_permissions(
            dir.path(),
            std::os::unix::fs::PermissionsExt::from_mode(0o700),
        )
        .unwrap();
        GnupgHome { dir }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// `program` with this home as its `GNUPGHOME`.
    pub fn command(&self, program: &str) -> Command {
        let mut command = Command::new(program);
        command.env("GNUPGHOME", self.path());
        command
    }

    /// `gpg --batch --no-tty --yes ARGS`, whatever its status.
    pub fn gpg(&self, args: &[&str]) -> Output {
        self.command("gpg")
            .args(["--batch", "--no-tty", "--yes"])
            .args(args)
            .output()
            .unwrap()
    }

    /// `program ARGS`, which must succeed; its stdout.
    pub fn run(&self, program: &str, args: &[&str]) -> String {
        let output = self.command(program).args(args).output().unwrap();
        assert!(
            output.status.success(),
            "{program} {args:?}: {}",
            super::stderr(&output)
        );
        String::from_utf8_lossy(&output.stdout).into_owned()
    }

    /// A new RSA signing key without a passphrase; its fingerprint.
    pub fn generate(&self, user_id: &str) -> String {
        let output = self.gpg(&[
            "--passphrase",
            "",
            "--quick-gen-key",
            user_id,
            "rsa3072",
            "sign",
            "never",
        ]);
        assert!(output.status.success(), "{}", super::stderr(&output));
        let listing = self.gpg(&["--with-colons", "--list-secret-keys", user_id]);
        String::from_utf8_lossy(&listing.stdout)
            .lines()
            .find_map(|line| line.strip_prefix("fpr:"))
            .and_then(|rest| rest.split(':').nth(8))
            .expect("the new key's fingerprint")
            .to_owned()
    }
}

impl Drop for GnupgHome {
    fn drop(&mut self) {
        let _ = self.command("gpgconf").args(["--kill", "all"]).output();
    }
}
