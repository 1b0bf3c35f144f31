//! Signatures, after the reproducible artifacts are made: RPMs and the SRPM
//! with `rpmsign` (a GnuPG key), the OpenBSD package with a signify
//! signature embedded in its gzip header, and `SHA256SUMS.asc`, a detached
//! armored signature of the checksums. The public keys go beside them:
//! `RPM-GPG-KEY-<name>` and `<name>.signify.pub`.
//!
//! Keys are named, never copied: the secret stays in the caller's keyring
//! (`GNUPGHOME`, else ~/.gnupg) or signify file, and nothing of it is logged.
//! Every key is checked before anything is made, so a key that cannot sign
//! stops the run with exit status 2 and nothing written.

use std::{
    collections::BTreeMap,
    fs,
    path::{Path, PathBuf},
};

use anyhow::{bail, Context};
use base64::Engine as _;
use serde::{Deserialize, Serialize};

use crate::{
    files,
    input::{located::invalid, platform::PackageFormat},
    plan::Signing,
    process::Command,
};

/// The detached signature of `SHA256SUMS`.
pub const CHECKSUMS_SIGNATURE: &str = "SHA256SUMS.asc";

/// A GnuPG key that was checked to sign: what the user named, and its full
/// fingerprint, by which every later command names it (a user id could match
/// another key later).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GpgKey {
    pub requested: String,
    pub fingerprint: String,
}

/// A signify key pair: `KEY.sec` and the `KEY.pub` beside it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignifyKey {
    pub secret: PathBuf,
    pub public: PathBuf,
    /// signify's key number, in hex: what names the key in the report.
    pub number: String,
}

/// How one file was signed, as the dist report shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Signature {
    /// `rpm` (in the package's signature header), `signify` (in the gzip
    /// header) or `detached` (a `.asc` beside it).
    pub kind: String,
    /// The GnuPG fingerprint, or `signify:<key number>`.
    pub key: String,
}

/// The checked keys of one package step.
#[derive(Debug, Clone)]
pub struct Signer {
    pub gpg: Option<GpgKey>,
    pub signify: Option<SignifyKey>,
}

impl Signer {
    /// Check every key the plan names, before anything is made: `None` when
    /// the plan signs nothing.
    pub fn prepare(
        signing: Option<&Signing>,
        format: PackageFormat,
    ) -> anyhow::Result<Option<Signer>> {
        let Some(signing) = signing else {
            return Ok(None);
        };
        let gpg = match &signing.gpg_key {
            Some(key) => {
                if format == PackageFormat::Rpm {
                    require_program("rpmsign", "rpm")?;
                }
                Some(check_gpg_key(key)?)
            }
            None => None,
        };
        let signify = match &signing.signify_key {
            Some(path) => {
                if format == PackageFormat::Openbsd && which::which(signify_program()).is_err() {
                    return Err(invalid(
                        "`signify` is needed to sign the OpenBSD package: it is in OpenBSD's base \
                         system, and in the `signify-openbsd` package elsewhere",
                    ));
                }
                Some(check_signify_key(path)?)
            }
            None => None,
        };
        Ok(Some(Signer { gpg, signify }))
    }

    /// Sign what one format made, in place, and write the public keys beside
    /// them; returns the key files written (artifacts too) and the
    /// signature of each signed file.
    pub fn sign_artifacts(
        &self,
        format: PackageFormat,
        made: &[PathBuf],
        dist: &Path,
        package_name: &str,
    ) -> anyhow::Result<(Vec<PathBuf>, BTreeMap<PathBuf, Signature>)> {
        let mut keys = Vec::new();
        let mut signed = BTreeMap::new();
        if let Some(key) = &self.gpg {
            if format == PackageFormat::Rpm {
                let rpms: Vec<&PathBuf> = made
                    .iter()
                    .filter(|path| path.extension().is_some_and(|ext| ext == "rpm"))
                    .collect();
                sign_rpms(&rpms, key)?;
                for rpm in rpms {
                    signed.insert(rpm.clone(), Signature::gpg("rpm", key));
                }
            }
            keys.push(export_public_key(key, dist, package_name)?);
        }
        if let (Some(key), PackageFormat::Openbsd) = (&self.signify, format) {
            for package in made
                .iter()
                .filter(|path| path.extension().is_some_and(|ext| ext == "tgz"))
            {
                signify_package(package, key)?;
                signed.insert(
                    package.clone(),
                    Signature {
                        kind: "signify".into(),
                        key: format!("signify:{}", key.number),
                    },
                );
            }
            let public = dist.join(format!("{package_name}.signify.pub"));
            let text = fs::read(&key.public)
                .with_context(|| format!("cannot read {}", key.public.display()))?;
            files::write_atomically(&public, &text)?;
            keys.push(public);
        }
        Ok((keys, signed))
    }

    /// After `SHA256SUMS` is written: its detached signature, when a GnuPG
    /// key signs; otherwise an old signature is removed, since it no longer
    /// matches.
    pub fn sign_checksums(
        signer: Option<&Signer>,
        dist: &Path,
    ) -> anyhow::Result<Option<Signature>> {
        let path = dist.join(CHECKSUMS_SIGNATURE);
        match signer.and_then(|signer| signer.gpg.as_ref()) {
            Some(key) => {
                sign_detached(&dist.join("SHA256SUMS"), &path, key)?;
                Ok(Some(Signature::gpg("detached", key)))
            }
            None => {
                if path.exists() {
                    fs::remove_file(&path)
                        .with_context(|| format!("cannot remove the stale {}", path.display()))?;
                }
                Ok(None)
            }
        }
    }
}

/// Public keys an earlier, signed run wrote into `dist` that this run does
/// not sign with: left there, they would pass for this release's keys.
pub fn remove_stale_keys(
    signer: Option<&Signer>,
    dist: &Path,
    package_name: &str,
) -> anyhow::Result<()> {
    let gpg = signer.is_some_and(|signer| signer.gpg.is_some());
    let signify = signer.is_some_and(|signer| signer.signify.is_some());
    for (used, name) in [
        (gpg, format!("RPM-GPG-KEY-{package_name}")),
        (signify, format!("{package_name}.signify.pub")),
    ] {
        let path = dist.join(name);
        if !used && path.exists() {
            fs::remove_file(&path)
                .with_context(|| format!("cannot remove the stale {}", path.display()))?;
        }
    }
    Ok(())
}

/// Check the keys of every package step of `plan` before anything runs: a
/// key that cannot sign is found before the build, not after it.
pub fn check_plan(plan: &crate::plan::Plan) -> anyhow::Result<()> {
    for step in &plan.steps {
        if let crate::plan::Action::Package(package) = &step.action {
            Signer::prepare(package.signing.as_ref(), package.format)?;
        }
    }
    Ok(())
}

impl Signature {
    fn gpg(kind: &str, key: &GpgKey) -> Signature {
        Signature {
            kind: kind.into(),
            key: key.fingerprint.clone(),
        }
    }
}

fn require_program(program: &str, package: &str) -> anyhow::Result<()> {
    if which::which(program).is_err() {
        return Err(invalid(format!(
            "`{program}` is needed to sign: install the `{package}` package (or run `cargo xtask doctor --fix`)"
        )));
    }
    Ok(())
}

/// `gpg` with the caller's `GNUPGHOME` (the one variable of theirs it needs;
/// the rest of the environment stays scrubbed).
pub fn gnupg(program: &str) -> Command {
    let command = Command::new(program);
    match std::env::var("GNUPGHOME") {
        Ok(home) => command.env("GNUPGHOME", home),
        Err(_) => command,
    }
}

/// The one secret key `requested` names, checked to sign: it exists, is
/// neither expired nor revoked, has its secret part here, and signs a test
/// message. Any failure is invalid input naming the key.
pub fn check_gpg_key(requested: &str) -> anyhow::Result<GpgKey> {
    let where_ = match std::env::var("GNUPGHOME") {
        Ok(home) => format!("the keyring of GNUPGHOME={home}"),
        Err(_) => "the keyring of ~/.gnupg".to_owned(),
    };
    let output = gnupg("gpg")
        .args([
            "--batch",
            "--with-colons",
            "--list-secret-keys",
            "--",
            requested,
        ])
        .output()
        .context("cannot run gpg: install the `gpg` package")?;
    if !output.status.success() {
        return Err(invalid(format!(
            "gpg key `{requested}`: no secret key in {where_} (list them with `gpg --list-secret-keys`)"
        )));
    }
    let keys = secret_keys(&String::from_utf8_lossy(&output.stdout));
    let key = match keys.as_slice() {
        [] => {
            return Err(invalid(format!(
                "gpg key `{requested}`: no secret key in {where_}"
            )))
        }
        [key] => key,
        many => {
            let list: Vec<&str> = many.iter().map(|key| key.fingerprint.as_str()).collect();
            return Err(invalid(format!(
                "gpg key `{requested}` names {} secret keys ({}): give the fingerprint of one",
                many.len(),
                list.join(", ")
            )));
        }
    };
    if let Some(problem) = key.problem() {
        return Err(invalid(format!(
            "gpg key `{requested}` ({}) cannot sign: {problem}",
            key.fingerprint
        )));
    }
    // The only proof that a key signs: a signature. A passphrase nobody can
    // give or a missing smartcard shows here, before any package is made.
    let trial = gnupg("gpg")
        .args(["--batch", "--armor", "--detach-sign", "--local-user"])
        .arg(&key.fingerprint)
        .stdin_bytes(b"bdr-dist signing check\n".to_vec())
        .output()?;
    if !trial.status.success() {
        return Err(invalid(format!(
            "gpg key `{requested}` ({}) cannot sign: {}",
            key.fingerprint,
            String::from_utf8_lossy(&trial.stderr).trim_end()
        )));
    }
    Ok(GpgKey {
        requested: requested.to_owned(),
        fingerprint: key.fingerprint.clone(),
    })
}

/// One `sec` record of `gpg --with-colons` and its fingerprint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecretKey {
    pub fingerprint: String,
    validity: String,
    capabilities: String,
    /// `+` when the secret is here, `#` for a stub (the secret is elsewhere).
    secret: String,
}

impl SecretKey {
    /// Why this key cannot sign, if it cannot.
    fn problem(&self) -> Option<&'static str> {
        match self.validity.as_str() {
            "e" => return Some("it has expired"),
            "r" => return Some("it is revoked"),
            "d" => return Some("it is disabled"),
            _ => {}
        }
        if !self.capabilities.contains('S') {
            return Some("neither it nor a subkey has the sign capability");
        }
        if self.secret == "#" {
            return Some("its secret part is not in this keyring (a stub)");
        }
        None
    }
}

/// The secret keys of `gpg --with-colons --list-secret-keys` output.
pub fn secret_keys(colons: &str) -> Vec<SecretKey> {
    let mut keys: Vec<SecretKey> = Vec::new();
    let mut awaiting_fingerprint = false;
    for line in colons.lines() {
        let fields: Vec<&str> = line.split(':').collect();
        let field = |index: usize| fields.get(index).copied().unwrap_or("").to_owned();
        match fields[0] {
            "sec" => {
                keys.push(SecretKey {
                    fingerprint: String::new(),
                    validity: field(1),
                    capabilities: field(11),
                    secret: field(14),
                });
                awaiting_fingerprint = true;
            }
            "fpr" if awaiting_fingerprint => {
                if let Some(key) = keys.last_mut() {
                    key.fingerprint = field(9);
                }
                awaiting_fingerprint = false;
            }
            "ssb" | "sub" => awaiting_fingerprint = false,
            _ => {}
        }
    }
    keys
}

/// The command that signs `rpms` in place (rpmsign writes a temporary file
/// beside each and renames it over the package).
pub fn rpmsign_command(rpms: &[&PathBuf], key: &GpgKey, gpg: &Path) -> Command {
    let mut command = gnupg("rpmsign")
        .arg("--addsign")
        .args(["--define", &format!("_gpg_name {}", key.fingerprint)])
        // Debian's rpm calls /usr/bin/gpg2, which Debian does not ship.
        .args(["--define", &format!("__gpg {}", gpg.display())]);
    if let Ok(home) = std::env::var("GNUPGHOME") {
        command = command.args(["--define", &format!("_gpg_path {home}")]);
    }
    command.args(rpms)
}

fn sign_rpms(rpms: &[&PathBuf], key: &GpgKey) -> anyhow::Result<()> {
    if rpms.is_empty() {
        return Ok(());
    }
    let gpg = which::which("gpg").context("cannot find gpg: install the `gpg` package")?;
    eprintln!(
        "{:>12} {} RPMs with {}",
        "Signing",
        rpms.len(),
        key.fingerprint
    );
    rpmsign_command(rpms, key, &gpg).checked_output()?;
    Ok(())
}

/// `RPM-GPG-KEY-<name>`: the armored public key, as rpm imports it.
fn export_public_key(key: &GpgKey, dist: &Path, package_name: &str) -> anyhow::Result<PathBuf> {
    let path = dist.join(format!("RPM-GPG-KEY-{package_name}"));
    files::write_atomically(&path, &public_key(&key.fingerprint, true)?)?;
    Ok(path)
}

/// The public key of `fingerprint` as it is published: minimal (its own
/// signatures only), armored (`RPM-GPG-KEY-*`) or binary (apt's keyring), so
/// every copy the tool writes has the same bytes.
pub fn public_key(fingerprint: &str, armor: bool) -> anyhow::Result<Vec<u8>> {
    let mut command = gnupg("gpg").args(["--batch", "--export-options", "export-minimal"]);
    if armor {
        command = command.arg("--armor");
    }
    let output = command
        .args(["--export", "--", fingerprint])
        .checked_output()?;
    if output.stdout.is_empty() {
        bail!("gpg exported no public key for {fingerprint}");
    }
    Ok(output.stdout)
}

/// A detached armored signature of `file`, written atomically to `signature`.
fn sign_detached(file: &Path, signature: &Path, key: &GpgKey) -> anyhow::Result<()> {
    let output = gnupg("gpg")
        .args(["--batch", "--armor", "--detach-sign", "--local-user"])
        .arg(&key.fingerprint)
        .args(["--output", "-", "--"])
        .arg(file)
        .checked_output()?;
    files::write_atomically(signature, &output.stdout)?;
    eprintln!("{:>12} {}", "Signed", signature.display());
    Ok(())
}

/// Check a signify secret key file and the public key beside it: both
/// decode, are Ed25519, and carry the same key number.
pub fn check_signify_key(secret: &Path) -> anyhow::Result<SignifyKey> {
    let named = secret.display();
    let Some(stem) = secret.to_str().and_then(|path| path.strip_suffix(".sec")) else {
        return Err(invalid(format!(
            "signify key {named}: secret keys are named KEY.sec, with KEY.pub beside them"
        )));
    };
    let public = PathBuf::from(format!("{stem}.pub"));
    let secret_bytes = signify_file(secret, "secret")?;
    let public_bytes = signify_file(&public, "public")?;
    // signify's formats: secret = "Ed" "BK" rounds(4) salt(16) checksum(8)
    // keynum(8) key(64); public = "Ed" keynum(8) key(32).
    if secret_bytes.len() != 104 || &secret_bytes[..4] != b"EdBK" {
        return Err(invalid(format!(
            "signify key {named} is not a signify secret key"
        )));
    }
    if public_bytes.len() != 42 || &public_bytes[..2] != b"Ed" {
        return Err(invalid(format!(
            "{} is not a signify public key",
            public.display()
        )));
    }
    // A passphrase (kdf rounds > 0) would make signify ask for it on the
    // terminal in the middle of the run: refuse it now.
    if secret_bytes[4..8] != [0, 0, 0, 0] {
        return Err(invalid(format!(
            "signify key {named} is protected by a passphrase, which signify would ask for \
             in the middle of the run: sign releases with a key made by `signify -G -n`, \
             kept where only the release machine reads it"
        )));
    }
    if secret_bytes[32..40] != public_bytes[2..10] {
        return Err(invalid(format!(
            "signify key {named} and {} are not one pair (their key numbers differ)",
            public.display()
        )));
    }
    Ok(SignifyKey {
        secret: secret.to_path_buf(),
        public,
        number: hex::encode(&public_bytes[2..10]),
    })
}

/// The decoded second line of a signify key file.
fn signify_file(path: &Path, what: &str) -> anyhow::Result<Vec<u8>> {
    let text = fs::read_to_string(path).map_err(|error| {
        invalid(format!(
            "signify {what} key {}: cannot read it: {error}",
            path.display()
        ))
    })?;
    let mut lines = text.lines();
    let comment = lines.next().unwrap_or("");
    let encoded = lines.next().unwrap_or("");
    if !comment.starts_with("untrusted comment:") {
        return Err(invalid(format!(
            "{} is not a signify {what} key (no `untrusted comment:` line)",
            path.display()
        )));
    }
    base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .map_err(|_| invalid(format!("{} is not a signify {what} key", path.display())))
}

/// Sign an OpenBSD package as OpenBSD does (`signify -Sz`: the signature and
/// a sha512 per block in the gzip header), replacing it atomically.
pub fn signify_package(package: &Path, key: &SignifyKey) -> anyhow::Result<()> {
    let name = package.file_name().context("package without a name")?;
    let signed = package.with_file_name(format!(".{}.signing", name.to_string_lossy()));
    let result = Command::new(signify_program())
        .args(["-S", "-z", "-s"])
        .arg(&key.secret)
        .arg("-m")
        .arg(package)
        .arg("-x")
        .arg(&signed)
        .checked_output()
        .and_then(|_| {
            fs::rename(&signed, package)
                .with_context(|| format!("cannot replace {}", package.display()))
        });
    if result.is_err() {
        let _ = fs::remove_file(&signed);
    }
    result?;
    eprintln!("{:>12} {} (signify)", "Signed", package.display());
    Ok(())
}

/// signify: `signify` in OpenBSD's base system, `signify-openbsd` on
/// Debian (whose `signify` is another program).
pub fn signify_program() -> &'static str {
    if which::which("signify-openbsd").is_ok() {
        "signify-openbsd"
    } else {
        "signify"
    }
}

/// Whether a gzip file carries a signify signature: a header comment that
/// starts as signify's do.
pub fn has_signify_signature(bytes: &[u8]) -> bool {
    const FCOMMENT: u8 = 0x10;
    const FEXTRA: u8 = 0x04;
    const FNAME: u8 = 0x08;
    if bytes.len() < 10 || bytes[..2] != [0x1f, 0x8b] {
        return false;
    }
    let flags = bytes[3];
    if flags & FCOMMENT == 0 {
        return false;
    }
    let mut at = 10;
    if flags & FEXTRA != 0 {
        let Some(length) = bytes.get(at..at + 2) else {
            return false;
        };
        at += 2 + usize::from(u16::from_le_bytes([length[0], length[1]]));
    }
    if flags & FNAME != 0 {
        match bytes
            .get(at..)
            .and_then(|rest| rest.iter().position(|&b| b == 0))
        {
            Some(end) => at += end + 1,
            None => return false,
        }
    }
    bytes
        .get(at..)
        .is_some_and(|rest| rest.starts_with(b"untrusted comment:"))
}

/// Where an RPM's main header starts: after the 96-byte lead and the
/// signature header, padded to 8 bytes. Everything from here on (the main
/// header and the payload) is what signing leaves alone.
pub fn rpm_main_header_offset(bytes: &[u8]) -> anyhow::Result<usize> {
    const LEAD: usize = 96;
    const MAGIC: [u8; 3] = [0x8e, 0xad, 0xe8];
    let header = bytes.get(LEAD..LEAD + 16).context("too short for an RPM")?;
    if header[..3] != MAGIC {
        bail!("no signature header after the lead");
    }
    let entries = u32::from_be_bytes(header[8..12].try_into()?) as usize;
    let data = u32::from_be_bytes(header[12..16].try_into()?) as usize;
    let end = LEAD + 16 + entries * 16 + data;
    let main = end.div_ceil(8) * 8;
    if bytes.get(main..main + 3) != Some(&MAGIC[..]) {
        bail!("no main header where the signature header ends");
    }
    Ok(main)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unsigned_run_removes_the_keys_a_signed_one_left() {
        let dist = crate::files::tempdir().unwrap();
        let (gpg, signify) = (
            dist.path().join("RPM-GPG-KEY-p"),
            dist.path().join("p.signify.pub"),
        );
        fs::write(&gpg, "old").unwrap();
        fs::write(&signify, "old").unwrap();
        let only_gpg = Signer {
            gpg: Some(GpgKey {
                requested: "k".into(),
                fingerprint: "F".into(),
            }),
            signify: None,
        };
        remove_stale_keys(Some(&only_gpg), dist.path(), "p").unwrap();
        assert!(gpg.exists() && !signify.exists());
        remove_stale_keys(None, dist.path(), "p").unwrap();
        assert!(!gpg.exists());
    }

    #[test]
    fn the_fingerprint_is_the_primary_keys_not_a_subkeys() {
        let colons = "\
sec:u:3072:1:5FE00A2A26522F81:1795818445:::u:::scSC:::+:::23::0:
fpr:::::::::82A3280A278E401C6A74D08F5FE00A2A26522F81:
grp:::::::::355A63F721DB9DC16E562A40765DB01B53B7C852:
uid:u::::1795818445::BA93::bdr-dist test <test@example.invalid>::::::::::0:
ssb:u:3072:1:1111111111111111:1795818445::::::e:::+:::23:
fpr:::::::::AAAA111111111111111111111111111111111111:
sec:e:3072:1:2222222222222222:1::::::sc:::#:::23::0:
fpr:::::::::BBBB222222222222222222222222222222222222:
";
        let keys = secret_keys(colons);
        assert_eq!(keys.len(), 2);
        assert_eq!(
            keys[0].fingerprint,
            "82A3280A278E401C6A74D08F5FE00A2A26522F81"
        );
        assert_eq!(keys[0].problem(), None);
        assert_eq!(keys[1].problem(), Some("it has expired"));
        let stub = SecretKey {
            validity: "u".into(),
            capabilities: "scSC".into(),
            ..keys[1].clone()
        };
        assert_eq!(
            stub.problem(),
            Some("its secret part is not in this keyring (a stub)")
        );
        let encrypt_only = SecretKey {
            capabilities: "eE".into(),
            secret: "+".into(),
            ..stub
        };
        assert!(encrypt_only.problem().unwrap().contains("sign capability"));
    }

    #[test]
    fn rpmsign_names_the_key_by_fingerprint_and_gpg_by_path() {
        let key = GpgKey {
            requested: "test@example.invalid".into(),
            fingerprint: "82A3280A278E401C6A74D08F5FE00A2A26522F81".into(),
        };
        let rpm = PathBuf::from("/d/a.rpm");
        let line = rpmsign_command(&[&rpm], &key, Path::new("/usr/bin/gpg")).line();
        assert!(
            line.starts_with(
                "rpmsign --addsign --define '_gpg_name 82A3280A278E401C6A74D08F5FE00A2A26522F81' --define '__gpg /usr/bin/gpg'"
            ),
            "{line}"
        );
        assert!(line.ends_with(" /d/a.rpm"), "{line}");
    }

    #[test]
    fn a_signify_key_is_checked_before_use() {
        let dir = crate::files::tempdir().unwrap();
        let no_suffix = dir.path().join("key");
        let error = check_signify_key(&no_suffix).unwrap_err().to_string();
        assert!(error.contains("named KEY.sec"), "{error}");
        let missing = dir.path().join("key.sec");
        let error = check_signify_key(&missing).unwrap_err();
        assert!(error
            .downcast_ref::<crate::input::located::InvalidInput>()
            .is_some());
        assert!(error.to_string().contains("cannot read it"), "{error}");
        fs::write(&missing, "untrusted comment: x\nbm90IGEga2V5\n").unwrap();
        fs::write(
            dir.path().join("key.pub"),
            "untrusted comment: x\nbm90IGEga2V5\n",
        )
        .unwrap();
        let error = check_signify_key(&missing).unwrap_err().to_string();
        assert!(error.contains("is not a signify secret key"), "{error}");
    }

    #[test]
    fn signify_signatures_are_found_in_the_gzip_header_only() {
        let plain = [0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3, 1, 2, 3];
        assert!(!has_signify_signature(&plain));
        let mut commented = vec![0x1f, 0x8b, 8, 0x10, 0, 0, 0, 0, 0, 3];
        commented.extend_from_slice(b"untrusted comment: verify with k.pub\n\0");
        assert!(has_signify_signature(&commented));
        commented[3] = 0;
        assert!(!has_signify_signature(&commented));
    }
}
