//! The software bill of materials: `dist/<stem>.spdx.json`, an SPDX 2.3 JSON
//! document of every artifact in `dist` (by sha256, as shipped: written after
//! signing), the sources they were generated from (sha256, URL, and the git
//! tree and commit as Software Heritage ids) and the tools that built them.
//!
//! Reproducible like the packages: the creation time is SOURCE_DATE_EPOCH,
//! the namespace is derived from the document's own content, and everything
//! is listed in a fixed order, so the same artifacts give the same bytes.

use std::{
    collections::BTreeSet,
    fs,
    path::{Path, PathBuf},
};

use serde::Serialize;
use sha2::{Digest, Sha256};

use super::{timestamp, Contents};
use crate::files;

/// What a dist directory holds that is no artifact: the checksums and their
/// signature, and the report of a `dist` run.
const NOT_ARTIFACTS: &[&str] = &["SHA256SUMS", "SHA256SUMS.asc", "report.json"];

/// SPDX license identifiers a recipe's `license` may use as they are: the
/// common ones, spelled as the SPDX license list spells them. Anything else
/// becomes a `LicenseRef-` carrying the recipe's words.
const LICENSES: &[&str] = &[
    "0BSD",
    "AGPL-3.0-only",
    "AGPL-3.0-or-later",
    "Apache-2.0",
    "Artistic-2.0",
    "BSD-2-Clause",
    "BSD-3-Clause",
    "BSL-1.0",
    "CC0-1.0",
    "GPL-2.0-only",
    "GPL-2.0-or-later",
    "GPL-3.0-only",
    "GPL-3.0-or-later",
    "ISC",
    "LGPL-2.0-only",
    "LGPL-2.0-or-later",
    "LGPL-2.1-only",
    "LGPL-2.1-or-later",
    "LGPL-3.0-only",
    "LGPL-3.0-or-later",
    "MIT",
    "MPL-2.0",
    "OpenSSL",
    "PostgreSQL",
    "Python-2.0",
    "Unlicense",
    "X11",
    "Zlib",
];

/// License exceptions, after `WITH`.
const EXCEPTIONS: &[&str] = &[
    "Classpath-exception-2.0",
    "GCC-exception-3.1",
    "LLVM-exception",
];

const NOASSERTION: &str = "NOASSERTION";

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Document {
    spdx_version: &'static str,
    data_license: &'static str,
    #[serde(rename = "SPDXID")]
    spdx_id: &'static str,
    name: String,
    document_namespace: String,
    creation_info: CreationInfo,
    comment: String,
    packages: Vec<SpdxPackage>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    has_extracted_licensing_infos: Vec<ExtractedLicense>,
    relationships: Vec<Relationship>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct CreationInfo {
    created: String,
    creators: Vec<String>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct SpdxPackage {
    #[serde(rename = "SPDXID")]
    spdx_id: String,
    name: String,
    version_info: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    package_file_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    supplier: Option<String>,
    download_location: String,
    files_analyzed: bool,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    checksums: Vec<Checksum>,
    license_concluded: String,
    license_declared: String,
    copyright_text: String,
    primary_package_purpose: &'static str,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    external_refs: Vec<ExternalRef>,
    #[serde(skip_serializing_if = "Option::is_none")]
    comment: Option<String>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct Checksum {
    algorithm: &'static str,
    checksum_value: String,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct ExternalRef {
    reference_category: &'static str,
    reference_type: &'static str,
    reference_locator: String,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct ExtractedLicense {
    license_id: String,
    name: String,
    extracted_text: String,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct Relationship {
    spdx_element_id: String,
    relationship_type: &'static str,
    related_spdx_element: String,
}

/// One file of `dist` the SBOM describes.
#[derive(Debug, Clone)]
pub struct Artifact {
    pub name: String,
    pub sha256: String,
}

/// `<stem>.spdx.json`: the SBOM's file name in `dist`.
pub fn file_name(contents: &Contents<'_>) -> String {
    format!("{}.spdx.json", contents.stem())
}

/// Write the SBOM of everything now in the package's `dist`.
pub fn write(contents: &Contents<'_>) -> anyhow::Result<PathBuf> {
    let dist = &contents.package.dist;
    let name = file_name(contents);
    let artifacts = artifacts(dist, &name)?;
    let text = to_json(&document(contents, &artifacts))?;
    let path = dist.join(&name);
    files::write_atomically(&path, text.as_bytes())?;
    eprintln!(
        "{:>12} {} ({} artifacts, {})",
        "Wrote",
        path.display(),
        artifacts.len(),
        files::human_bytes(text.len() as u64)
    );
    Ok(path)
}

/// The document as it is written: pretty JSON with a final newline.
pub fn to_json(document: &Document) -> anyhow::Result<String> {
    Ok(serde_json::to_string_pretty(document)? + "\n")
}

/// Every regular file in `dist` but the checksums, their signature, the
/// report, hidden files and the SBOM itself (`own`), by name, with its sha256.
pub fn artifacts(dist: &Path, own: &str) -> anyhow::Result<Vec<Artifact>> {
    let mut names: Vec<String> = fs::read_dir(dist)?
        .filter_map(|entry| entry.ok())
        .filter(|entry| entry.file_type().is_ok_and(|kind| kind.is_file()))
        .map(|entry| entry.file_name().to_string_lossy().into_owned())
        .filter(|name| !name.starts_with('.') && name != own && !NOT_ARTIFACTS.contains(&&**name))
        .collect();
    names.sort();
    names
        .into_iter()
        .map(|name| {
            let sha256 = files::sha256_file(&dist.join(&name))?;
            Ok(Artifact { name, sha256 })
        })
        .collect()
}

/// The SBOM of `artifacts`, made from `contents`.
pub fn document(contents: &Contents<'_>, artifacts: &[Artifact]) -> Document {
    let package = contents.package;
    let manifest = &contents.manifest;
    let mut ids = Ids::default();
    let (license, extracted) = license_expression(&package.license);
    let mut packages = Vec::new();
    let mut relationships = Vec::new();

    let mut artifact_ids = Vec::new();
    for artifact in artifacts {
        let id = ids.make("Artifact", &artifact.name);
        artifact_ids.push(id.clone());
        packages.push(SpdxPackage {
            spdx_id: id,
            name: artifact.name.clone(),
            version_info: artifact_version(&artifact.name, &package.version, &package.release),
            package_file_name: Some(artifact.name.clone()),
            supplier: Some(supplier(&package.maintainer)),
            download_location: NOASSERTION.into(),
            files_analyzed: false,
            checksums: vec![sha256(&artifact.sha256)],
            license_concluded: NOASSERTION.into(),
            license_declared: license.clone(),
            copyright_text: NOASSERTION.into(),
            primary_package_purpose: purpose(&artifact.name),
            external_refs: Vec::new(),
            comment: None,
        });
    }

    let mut source_ids = Vec::new();
    for source in &manifest.sources {
        let id = ids.make("Source", &source.component);
        source_ids.push(id.clone());
        let mut external_refs = Vec::new();
        for (kind, object) in [("dir", &source.tree), ("rev", &source.commit)] {
            if let Some(object) = object.as_deref().filter(|object| is_sha1(object)) {
                external_refs.push(ExternalRef {
                    reference_category: "PERSISTENT-ID",
                    reference_type: "swh",
                    reference_locator: format!("swh:1:{kind}:{object}"),
                });
            }
        }
        packages.push(SpdxPackage {
            spdx_id: id,
            name: source.component.clone(),
            version_info: source.version.clone(),
            package_file_name: Some(source.file.clone()),
            supplier: None,
            download_location: source
                .urls
                .first()
                .cloned()
                .unwrap_or_else(|| NOASSERTION.into()),
            files_analyzed: false,
            checksums: vec![sha256(&source.sha256)],
            license_concluded: NOASSERTION.into(),
            license_declared: license.clone(),
            copyright_text: NOASSERTION.into(),
            primary_package_purpose: "SOURCE",
            external_refs,
            comment: None,
        });
    }

    let mut tool_ids = Vec::new();
    for (role, tool) in &manifest.tools {
        let id = ids.make("Tool", role);
        tool_ids.push(id.clone());
        packages.push(SpdxPackage {
            spdx_id: id,
            name: tool.program.clone(),
            version_info: tool.version.clone(),
            package_file_name: None,
            supplier: None,
            download_location: NOASSERTION.into(),
            files_analyzed: false,
            checksums: Vec::new(),
            license_concluded: NOASSERTION.into(),
            license_declared: NOASSERTION.into(),
            copyright_text: NOASSERTION.into(),
            primary_package_purpose: "APPLICATION",
            external_refs: Vec::new(),
            comment: Some(format!("The build's {role}.")),
        });
    }

    let relate = |from: &str, kind: &'static str, to: &str| Relationship {
        spdx_element_id: from.to_owned(),
        relationship_type: kind,
        related_spdx_element: to.to_owned(),
    };
    for artifact in &artifact_ids {
        relationships.push(relate("SPDXRef-DOCUMENT", "DESCRIBES", artifact));
    }
    for artifact in &artifact_ids {
        for source in &source_ids {
            relationships.push(relate(artifact, "GENERATED_FROM", source));
        }
    }
    for tool in &tool_ids {
        for artifact in &artifact_ids {
            relationships.push(relate(tool, "BUILD_TOOL_OF", artifact));
        }
    }

    let mut document = Document {
        spdx_version: "SPDX-2.3",
        data_license: "CC0-1.0",
        spdx_id: "SPDXRef-DOCUMENT",
        name: contents.stem(),
        document_namespace: String::new(),
        creation_info: CreationInfo {
            created: timestamp(contents.epoch),
            creators: vec![format!("Tool: bdr-dist-{}", env!("CARGO_PKG_VERSION"))],
        },
        comment: format!(
            "The artifacts of set {} for {} ({} {}-{}), the sources they were generated from and the tools that built them.{}",
            manifest.set,
            manifest.platform,
            package.name,
            package.version,
            package.release,
            manifest.target.as_ref().map_or_else(String::new, |target| format!(
                " Built for {} {} ({}) in a clean root of it: glibc {}, root key {}.",
                target.distribution,
                target.release,
                target.codename,
                target.glibc.as_deref().unwrap_or("unknown"),
                target.root_key
            ))
        ),
        packages,
        has_extracted_licensing_infos: extracted,
        relationships,
    };
    // Named by what it says: the same artifacts, sources and tools give the
    // same namespace, and any change gives another.
    let content = serde_json::to_vec(&document).expect("the document serializes");
    document.document_namespace = format!(
        "https://spdx.org/spdxdocs/{}-{}",
        document.name,
        hex::encode(Sha256::digest(&content))
    );
    document
}

fn sha256(value: &str) -> Checksum {
    Checksum {
        algorithm: "SHA256",
        checksum_value: value.to_owned(),
    }
}

/// 40 lowercase hex digits: a git object id as a Software Heritage id takes it.
fn is_sha1(object: &str) -> bool {
    object.len() == 40
        && object
            .bytes()
            .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// `version-release` of an artifact: an RPM's release carries the dist tag
/// its step gave it (`1.el9`), read from the name rpmbuild gave it
/// (`<name>-<version>-<release>[.<tag>].<arch>.rpm`), since the SBOM is
/// rewritten by every format's step, with or without `--dist`.
fn artifact_version(name: &str, version: &str, release: &str) -> String {
    let plain = format!("{version}-{release}");
    let tagged = name
        .strip_suffix(".rpm")
        .and_then(|rest| rest.rsplit_once('.'))
        .and_then(|(rest, _arch)| rest.rsplit_once(&format!("-{plain}")))
        .map(|(_, tag)| tag)
        .filter(|tag| {
            tag.strip_prefix('.')
                .is_some_and(|tag| crate::input::dist_tag::check(tag).is_ok())
        });
    match tagged {
        Some(tag) => format!("{plain}{tag}"),
        None => plain,
    }
}

/// What an artifact is for, by its name.
fn purpose(name: &str) -> &'static str {
    if name.ends_with(".src.rpm") {
        "SOURCE"
    } else if [".rpm", ".deb", ".tgz"]
        .iter()
        .any(|ext| name.ends_with(ext))
    {
        // The OpenBSD package is the one `.tgz`.
        "INSTALL"
    } else if name.ends_with(".tar.gz") {
        "ARCHIVE"
    } else {
        "FILE"
    }
}

/// `Organization: Release Engineering (release-engineering@example.com)`
/// from the recipe's `Name <email>`.
fn supplier(maintainer: &str) -> String {
    let clean = |text: &str| {
        text.chars()
            .filter(|c| !matches!(c, '(' | ')' | '<' | '>' | '\n'))
            .collect::<String>()
            .trim()
            .to_owned()
    };
    match maintainer.split_once('<') {
        Some((name, email)) if !clean(name).is_empty() => {
            format!("Organization: {} ({})", clean(name), clean(email))
        }
        _ => format!("Organization: {}", clean(maintainer)),
    }
}

/// SPDX ids, each unique in the document: `SPDXRef-<kind>-<name>` with the
/// characters SPDX does not allow in an id made `-`.
#[derive(Default)]
struct Ids(BTreeSet<String>);

impl Ids {
    fn make(&mut self, kind: &str, name: &str) -> String {
        let base = format!("SPDXRef-{kind}-{}", id_characters(name));
        let mut id = base.clone();
        let mut n = 2;
        while !self.0.insert(id.clone()) {
            id = format!("{base}-{n}");
            n += 1;
        }
        id
    }
}

/// `name` with every character other than letters, digits, `.` and `-` made `-`.
fn id_characters(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '.' || c == '-' {
                c
            } else {
                '-'
            }
        })
        .collect()
}

/// The recipe's `license` as an SPDX license expression, and the
/// `LicenseRef-`s it needs declared. An expression of known identifiers
/// (`PostgreSQL`, `MIT OR Apache-2.0`) is kept, in the list's spelling;
/// anything else becomes one `LicenseRef-` whose text is the recipe's words.
fn license_expression(license: &str) -> (String, Vec<ExtractedLicense>) {
    if license.trim().is_empty() {
        return (NOASSERTION.into(), Vec::new());
    }
    if let Some((expression, references)) = parse_license(license) {
        let extracted = references
            .into_iter()
            .map(|id| ExtractedLicense {
                name: id.clone(),
                extracted_text: format!("The license the recipe names as {id}."),
                license_id: id,
            })
            .collect();
        return (expression, extracted);
    }
    let id = format!("LicenseRef-{}", id_characters(license.trim()));
    let extracted = ExtractedLicense {
        license_id: id.clone(),
        name: license.trim().to_owned(),
        extracted_text: format!("The license the recipe names: {}", license.trim()),
    };
    (id, vec![extracted])
}

/// `Some((expression, license refs))` when `license` is an expression of
/// known identifiers, `LicenseRef-`s, `AND`, `OR`, `WITH` and parentheses.
fn parse_license(license: &str) -> Option<(String, BTreeSet<String>)> {
    let spaced = license.replace('(', " ( ").replace(')', " ) ");
    let mut out = Vec::new();
    let mut references = BTreeSet::new();
    let mut depth = 0usize;
    // What may come next: an operand (or `(`), or an operator (or `)`).
    let mut want_operand = true;
    let mut after_with = false;
    for token in spaced.split_whitespace() {
        let known = |list: &[&str]| {
            list.iter()
                .find(|id| id.eq_ignore_ascii_case(token))
                .map(|id| (*id).to_owned())
        };
        match (want_operand, token) {
            (true, "(") if !after_with => {
                depth += 1;
                out.push("(".to_owned());
            }
            (true, _) if after_with => {
                out.push(known(EXCEPTIONS)?);
                after_with = false;
                want_operand = false;
            }
            (true, _) => {
                let id = if token.starts_with("LicenseRef-") && id_characters(token) == token {
                    references.insert(token.to_owned());
                    token.to_owned()
                } else {
                    known(LICENSES)?
                };
                out.push(id);
                want_operand = false;
            }
            (false, ")") if depth > 0 => {
                depth -= 1;
                out.push(")".to_owned());
            }
            (false, _) => {
                let operator = token.to_ascii_uppercase();
                if !matches!(operator.as_str(), "AND" | "OR" | "WITH") {
                    return None;
                }
                after_with = operator == "WITH";
                out.push(operator);
                want_operand = true;
            }
        }
    }
    if want_operand || depth != 0 {
        return None;
    }
    Some((
        out.join(" ").replace("( ", "(").replace(" )", ")"),
        references,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::package::{
        manifest::{ManifestSource, Tool},
        tests::fixture,
    };

    /// The fixture's package with two sources, one pinned by tree and commit,
    /// and the tools a build records.
    fn with_sources<'a>(contents: &Contents<'a>) -> Contents<'a> {
        let mut contents = contents.clone();
        contents.manifest.sources = vec![
            ManifestSource {
                component: "postgresql".into(),
                version: "15.18".into(),
                file: "postgresql-15.18.tar.bz2".into(),
                urls: vec![
                    "https://ftp.postgresql.org/pub/source/v15.18/postgresql-15.18.tar.bz2".into(),
                ],
                sha256: "11df0df97fe3ea4ba9a791faaf39cee1d2fe571e78885b5b55d8517d27c323b4".into(),
                tree: Some("fb024538b88f80d5d01748f8c6518bfed06b13e8".into()),
                commit: Some("b24c0a397f394fe3356c8734a8a8368ee3d22dc4".into()),
            },
            ManifestSource {
                component: "pglogical".into(),
                version: "2.4.2".into(),
                file: "pglogical-2.4.2.tar.gz".into(),
                urls: vec![],
                sha256: "4dcd407948a76b524ed03da3d67c5d4e1cb80fdff8694642cfc261838bcb05e0".into(),
                tree: None,
                commit: None,
            },
        ];
        for (role, program, version) in [
            ("bdr-dist", "bdr-dist", "0.1.0"),
            ("cc", "cc", "cc (Debian 12.2.0-14+deb12u1) 12.2.0"),
            ("make", "make", "GNU Make 4.3"),
        ] {
            contents.manifest.tools.insert(
                role.into(),
                Tool {
                    program: program.into(),
                    version: version.into(),
                },
            );
        }
        contents
    }

    fn artifacts() -> Vec<Artifact> {
        [
            "postgresql15-pglogical-15.18-1.linux-x86_64.tar.gz",
            "postgresql15-pglogical-15.18-1.src.rpm",
            "postgresql15-pglogical-server_15.18-1_amd64.deb",
        ]
        .iter()
        .enumerate()
        .map(|(i, name)| Artifact {
            name: (*name).to_owned(),
            sha256: format!("{i}").repeat(64),
        })
        .collect()
    }

    /// The whole document, as a release engineer would read it; the suite
    /// (tests/sbom.rs) gives this file to the SPDX validator.
    #[test]
    fn the_sbom_of_the_fixture() {
        fixture(|contents| {
            let contents = with_sources(contents);
            let text = to_json(&document(&contents, &artifacts())).unwrap();
            expect_test::expect_file!["../../../tests/golden/sbom.spdx.json"].assert_eq(&text);
        });
    }

    #[test]
    fn the_namespace_follows_the_content() {
        fixture(|contents| {
            let contents = with_sources(contents);
            let one = document(&contents, &artifacts());
            assert_eq!(
                to_json(&one).unwrap(),
                to_json(&document(&contents, &artifacts())).unwrap()
            );
            let mut changed = artifacts();
            changed[0].sha256 = "f".repeat(64);
            let other = document(&contents, &changed);
            assert_ne!(one.document_namespace, other.document_namespace);
            assert!(one.document_namespace.starts_with(
                "https://spdx.org/spdxdocs/postgresql15-pglogical-15.18-1.linux-x86_64-"
            ));
        });
    }

    #[test]
    fn artifacts_are_the_shipped_files_but_checksums_report_and_sbom() {
        let dist = crate::files::tempdir().unwrap();
        for name in [
            "b.rpm",
            "a.deb",
            "SHA256SUMS",
            "SHA256SUMS.asc",
            "report.json",
            ".hidden",
            "x.spdx.json",
            "other.spdx.json",
        ] {
            fs::write(dist.path().join(name), name).unwrap();
        }
        fs::create_dir(dist.path().join("repo")).unwrap();
        let names: Vec<String> = artifacts_in(dist.path());
        assert_eq!(names, ["a.deb", "b.rpm", "other.spdx.json"]);
    }

    fn artifacts_in(dist: &Path) -> Vec<String> {
        super::artifacts(dist, "x.spdx.json")
            .unwrap()
            .into_iter()
            .map(|artifact| {
                assert_eq!(artifact.sha256.len(), 64);
                artifact.name
            })
            .collect()
    }

    #[test]
    fn recipe_licenses_become_spdx_expressions() {
        let expression = |license: &str| license_expression(license);
        assert_eq!(expression("PostgreSQL").0, "PostgreSQL");
        assert!(expression("PostgreSQL").1.is_empty());
        assert_eq!(expression("postgresql").0, "PostgreSQL");
        assert_eq!(
            expression("mit or (Apache-2.0 AND BSD-3-Clause)").0,
            "MIT OR (Apache-2.0 AND BSD-3-Clause)"
        );
        assert_eq!(
            expression("GPL-2.0-or-later WITH Classpath-exception-2.0").0,
            "GPL-2.0-or-later WITH Classpath-exception-2.0"
        );
        let (id, extracted) = expression("PostgreSQL License");
        assert_eq!(id, "LicenseRef-PostgreSQL-License");
        assert_eq!(extracted[0].name, "PostgreSQL License");
        let (id, extracted) = expression("LicenseRef-Ours OR MIT");
        assert_eq!(id, "LicenseRef-Ours OR MIT");
        assert_eq!(extracted[0].license_id, "LicenseRef-Ours");
        assert_eq!(expression(" ").0, "NOASSERTION");
        for broken in [
            "MIT OR",
            "(MIT",
            "MIT)",
            "MIT Apache-2.0",
            "MIT WITH MIT",
            "()",
        ] {
            assert!(
                expression(broken).0.starts_with("LicenseRef-"),
                "{broken:?} is no expression"
            );
        }
    }

    #[test]
    fn ids_are_spdx_ids_and_unique() {
        let mut ids = Ids::default();
        assert_eq!(
            ids.make("Artifact", "a_1.0~rc1+x.deb"),
            "SPDXRef-Artifact-a-1.0-rc1-x.deb"
        );
        assert_eq!(
            ids.make("Artifact", "a-1.0-rc1-x.deb"),
            "SPDXRef-Artifact-a-1.0-rc1-x.deb-2"
        );
        assert_eq!(
            supplier("Release Engineering <re@example.com>"),
            "Organization: Release Engineering (re@example.com)"
        );
        assert_eq!(supplier("bdr-dist"), "Organization: bdr-dist");
    }

    /// An RPM's version carries the dist tag of its file name; nothing else does.
    #[test]
    fn an_rpms_version_has_its_dist_tag() {
        let version = |name: &str| artifact_version(name, "15.18", "1");
        assert_eq!(version("pg-server-15.18-1.el9.x86_64.rpm"), "15.18-1.el9");
        assert_eq!(version("pg-15.18-1.fc40.src.rpm"), "15.18-1.fc40");
        assert_eq!(version("pg-server-15.18-1.x86_64.rpm"), "15.18-1");
        assert_eq!(version("pg-15.18-1.linux-x86_64.tar.gz"), "15.18-1");
        assert_eq!(version("pg-server_15.18-1_amd64.deb"), "15.18-1");
        assert_eq!(version("pg-15.18-1.rpm.manifest.json"), "15.18-1");
        // Not a tag --dist gives: the release as planned.
        assert_eq!(version("pg-15.18-1.El_9.x86_64.rpm"), "15.18-1");
    }
}
