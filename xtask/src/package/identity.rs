//! What a package file says it is, read from the package itself: an RPM's
//! header (`rpm -qp`, against a throwaway database), a .deb's control file
//! (from its `control.tar` member, so no dpkg is needed on an RPM host), an
//! OpenBSD package's `@name`; and the file name its format gives a package
//! of that identity.
//!
//! `verify` compares these with the file's own name and with the manifest:
//! one package of a release copied over another's file name, with
//! `SHA256SUMS` and the SBOM rewritten to match, passes every checksum, but
//! not this.

use std::{
    fs::File,
    io::{Read, Seek, SeekFrom},
    path::Path,
};

use crate::process::Command;

/// Most bytes of a .deb's control archive or an OpenBSD packing list read,
/// uncompressed: ours hold a few KiB; a bomb stops here.
const METADATA_LIMIT: u64 = 4 << 20;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Identity {
    Rpm {
        name: String,
        version: String,
        release: String,
        arch: String,
        /// A source package (SRPM): its file name says `src`, not the arch.
        source: bool,
    },
    Deb {
        package: String,
        /// `[epoch:]upstream-revision`, as the control file says.
        version: String,
        architecture: String,
    },
    Openbsd {
        /// `@name`: `<name>-<version>[pN]`.
        name: String,
    },
}

impl Identity {
    /// The file name rpm, dpkg-deb and OpenBSD's tools give a package of
    /// this identity.
    pub fn file_name(&self) -> String {
        match self {
            Identity::Rpm {
                name,
                version,
                release,
                source: true,
                ..
            } => format!("{name}-{version}-{release}.src.rpm"),
            Identity::Rpm {
                name,
                version,
                release,
                arch,
                ..
            } => format!("{name}-{version}-{release}.{arch}.rpm"),
            Identity::Deb {
                package,
                version,
                architecture,
            } => {
                let without_epoch = version.split_once(':').map_or(version.as_str(), |(_, v)| v);
                format!("{package}_{without_epoch}_{architecture}.deb")
            }
            Identity::Openbsd { name } => format!("{name}.tgz"),
        }
    }

    /// `name version-release arch`, as a failed check shows it.
    pub fn describe(&self) -> String {
        match self {
            Identity::Rpm {
                name,
                version,
                release,
                arch,
                source,
            } => {
                let arch = if *source { "source" } else { arch };
                format!("{name} {version}-{release} {arch}")
            }
            Identity::Deb {
                package,
                version,
                architecture,
            } => format!("{package} {version} {architecture}"),
            Identity::Openbsd { name } => name.clone(),
        }
    }

    /// `version-release`, as the SBOM records every artifact's; `None` for
    /// an OpenBSD package, whose `@name` does not split them.
    pub fn version_release(&self) -> Option<String> {
        match self {
            Identity::Rpm {
                version, release, ..
            } => Some(format!("{version}-{release}")),
            Identity::Deb { version, .. } => Some(version.clone()),
            Identity::Openbsd { .. } => None,
        }
    }

    /// Whether this is a package of the release the manifest describes:
    /// its name is `package` or a subpackage's (`<package>-<suffix>`), and
    /// its version and release are the manifest's.
    pub fn belongs_to(&self, package: &str, version: &str, release: &str) -> bool {
        let of_package = |name: &str| {
            name == package
                || name
                    .strip_prefix(package)
                    .is_some_and(|rest| rest.starts_with('-'))
        };
        match self {
            Identity::Rpm {
                name,
                version: own_version,
                release: own_release,
                ..
            } => of_package(name) && own_version == version && own_release == release,
            Identity::Deb {
                package: name,
                version: own_version,
                ..
            } => of_package(name) && *own_version == format!("{version}-{release}"),
            Identity::Openbsd { name } => {
                *name == super::openbsd::full_name_of(package, version, release)
            }
        }
    }
}

/// An RPM's name, version, release and arch from its header, queried with
/// `db` as rpm's database so that the host's is never read.
pub fn of_rpm(path: &Path, db: &Path) -> Result<Identity, String> {
    let output = Command::new("rpm")
        .arg("--dbpath")
        .arg(db)
        .args([
            "-qp",
            "--qf",
            "%{NAME}\\n%{VERSION}\\n%{RELEASE}\\n%{ARCH}\\n%|SOURCERPM?{binary}:{source}|\\n",
        ])
        .arg(path)
        .output()
        .map_err(|error| format!("cannot run rpm: install the `rpm` package ({error:#})"))?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    let fields: Vec<&str> = stdout.lines().collect();
    match (output.status.success(), fields.as_slice()) {
        (true, [name, version, release, arch, kind]) => Ok(Identity::Rpm {
            name: (*name).to_owned(),
            version: (*version).to_owned(),
            release: (*release).to_owned(),
            arch: (*arch).to_owned(),
            source: *kind == "source",
        }),
        _ => Err(format!(
            "rpm -qp cannot read its header: {}",
            String::from_utf8_lossy(&output.stderr)
                .lines()
                .rev()
                .find(|line| !line.trim().is_empty())
                .unwrap_or("no output")
                .trim()
        )),
    }
}

/// A .deb's `Package`, `Version` and `Architecture`, from the `control`
/// file of its `control.tar[.gz|.xz]` ar member.
pub fn of_deb(path: &Path) -> Result<Identity, String> {
    let mut file = File::open(path).map_err(|error| error.to_string())?;
    let mut magic = [0u8; 8];
    file.read_exact(&mut magic)
        .map_err(|_| "not an ar archive".to_owned())?;
    if &magic != b"!<arch>\n" {
        return Err("not an ar archive".into());
    }
    loop {
        let mut header = [0u8; 60];
        file.read_exact(&mut header)
            .map_err(|_| "no control.tar member".to_owned())?;
        if &header[58..] != b"`\n" {
            return Err("a malformed ar member header".into());
        }
        let name = String::from_utf8_lossy(&header[..16])
            .trim_end()
            .trim_end_matches('/')
            .to_owned();
        let size: u64 = std::str::from_utf8(&header[48..58])
            .ok()
            .and_then(|text| text.trim().parse().ok())
            .ok_or_else(|| format!("ar member {name} has a malformed size"))?;
        if name.starts_with("control.tar") {
            let member = (&mut file).take(size);
            let reader: Box<dyn Read + '_> = match name.as_str() {
                "control.tar" => Box::new(member),
                "control.tar.gz" => Box::new(flate2::read::GzDecoder::new(member)),
                "control.tar.xz" => Box::new(xz2::read::XzDecoder::new(member)),
                other => return Err(format!("{other}: a compression verify cannot read")),
            };
            return control_identity(&read_member(reader, &["control", "./control"])?);
        }
        // Members are padded to an even offset.
        file.seek(SeekFrom::Current((size + size % 2) as i64))
            .map_err(|error| error.to_string())?;
    }
}

/// An OpenBSD package's `@name`, the first line of `+CONTENTS`, its first
/// entry.
pub fn of_openbsd(path: &Path) -> Result<Identity, String> {
    let file = File::open(path).map_err(|error| error.to_string())?;
    // The package is gzip in fixed-size members (and signify's signature
    // rides in the first one's header): read them all as one stream.
    let mut archive = tar::Archive::new(flate2::read::MultiGzDecoder::new(file));
    let mut entries = archive
        .entries()
        .map_err(|error| format!("not a tar.gz: {error}"))?;
    let mut first = entries
        .next()
        .ok_or("an empty archive")?
        .map_err(|error| format!("not a tar.gz: {error}"))?;
    if first.path_bytes().as_ref() != b"+CONTENTS" {
        return Err("its first entry is not +CONTENTS".into());
    }
    let mut plist = String::new();
    (&mut first)
        .take(METADATA_LIMIT)
        .read_to_string(&mut plist)
        .map_err(|error| format!("+CONTENTS cannot be read: {error}"))?;
    let name = plist
        .lines()
        .next()
        .and_then(|line| line.strip_prefix("@name "))
        .ok_or("+CONTENTS does not start with @name")?;
    Ok(Identity::Openbsd {
        name: name.trim().to_owned(),
    })
}

/// The text of the first entry named one of `names` in a tar stream.
fn read_member(reader: impl Read, names: &[&str]) -> Result<String, String> {
    let mut archive = tar::Archive::new(reader.take(METADATA_LIMIT));
    let entries = archive
        .entries()
        .map_err(|error| format!("control archive: {error}"))?;
    for entry in entries {
        let mut entry = entry.map_err(|error| format!("control archive: {error}"))?;
        let path = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
        if names.contains(&path.as_str()) {
            let mut text = String::new();
            entry
                .read_to_string(&mut text)
                .map_err(|error| format!("{path}: {error}"))?;
            return Ok(text);
        }
    }
    Err("the control archive has no control file".into())
}

/// `Package`, `Version` and `Architecture` of a control file.
fn control_identity(control: &str) -> Result<Identity, String> {
    let field = |key: &str| {
        control
            .lines()
            .find_map(|line| line.strip_prefix(key)?.strip_prefix(':'))
            .map(|value| value.trim().to_owned())
            .filter(|value| !value.is_empty())
            .ok_or_else(|| format!("the control file has no {key} field"))
    };
    Ok(Identity::Deb {
        package: field("Package")?,
        version: field("Version")?,
        architecture: field("Architecture")?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_names_follow_each_formats_convention() {
        let rpm = |source| Identity::Rpm {
            name: "pg-libs".into(),
            version: "15.18".into(),
            release: "1".into(),
            arch: "x86_64".into(),
            source,
        };
        assert_eq!(rpm(false).file_name(), "pg-libs-15.18-1.x86_64.rpm");
        assert_eq!(rpm(true).file_name(), "pg-libs-15.18-1.src.rpm");
        let deb = Identity::Deb {
            package: "pg-libs".into(),
            version: "1:15.18-1".into(),
            architecture: "amd64".into(),
        };
        assert_eq!(deb.file_name(), "pg-libs_15.18-1_amd64.deb");
        let openbsd = Identity::Openbsd {
            name: "pg-15.18p1".into(),
        };
        assert_eq!(openbsd.file_name(), "pg-15.18p1.tgz");
    }

    #[test]
    fn a_package_belongs_to_its_release_and_to_no_other() {
        let rpm = Identity::Rpm {
            name: "pg-server".into(),
            version: "15.18".into(),
            release: "1".into(),
            arch: "x86_64".into(),
            source: false,
        };
        assert!(rpm.belongs_to("pg", "15.18", "1"));
        assert!(!rpm.belongs_to("pg", "15.17", "1"));
        assert!(!rpm.belongs_to("pg", "15.18", "2"));
        // `pgx` is not a subpackage of `pg`.
        assert!(!rpm.belongs_to("pg-s", "15.18", "1"));
        let deb = Identity::Deb {
            package: "pg".into(),
            version: "15.18-1".into(),
            architecture: "amd64".into(),
        };
        assert!(deb.belongs_to("pg", "15.18", "1"));
        assert!(!deb.belongs_to("pg", "15.18", "2"));
        let openbsd = Identity::Openbsd {
            name: "pg-15.18p1".into(),
        };
        assert!(openbsd.belongs_to("pg", "15.18", "2"));
        assert!(!openbsd.belongs_to("pg", "15.18", "1"));
    }

    #[test]
    fn control_fields_are_read_by_name() {
        let identity =
            control_identity("Package: pg\nSource: pg\nVersion: 15.18-1\nArchitecture: amd64\n")
                .unwrap();
        assert_eq!(identity.file_name(), "pg_15.18-1_amd64.deb");
        assert!(control_identity("Package: pg\nVersion: 1\n").is_err());
        // A field is matched whole: `Package-Type` is not `Package`.
        assert!(control_identity("Package-Type: udeb\nVersion: 1\nArchitecture: all\n").is_err());
    }
}
