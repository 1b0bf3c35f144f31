//! TLS between the nodes: a throwaway CA and one certificate per node, made
//! with the `openssl` program as the server user in the cluster's `tls/`
//! directory (0700, the server user's; keys 0600, as PostgreSQL demands),
//! removed with the cluster. A certificate names its node's address, as
//! common name (what PostgreSQL 9.4's libpq compares) and as an IP
//! subjectAltName (what newer ones compare), so peers connect with
//! `sslmode=verify-full`.

use std::path::{Path, PathBuf};

use anyhow::Context;

use super::server::Server;

/// The CA's configuration: no system `openssl.cnf` is read.
const CA_CONFIG: &str = "[req]\ndistinguished_name = dn\nprompt = no\n\
                         [dn]\nCN = bdr-dist smoke CA\n\
                         [ca]\nbasicConstraints = critical,CA:TRUE\n\
                         keyUsage = critical,keyCertSign,cRLSign\n\
                         subjectKeyIdentifier = hash\n";

/// Where the CA's certificate is: `sslrootcert` of every DSN.
pub fn ca_certificate(dir: &Path) -> PathBuf {
    dir.join("ca.crt")
}

/// A node's certificate and key.
pub fn node_files(dir: &Path, number: u32) -> (PathBuf, PathBuf) {
    (
        dir.join(format!("n{number}.crt")),
        dir.join(format!("n{number}.key")),
    )
}

/// A node's certificate extensions: a server's, for its address.
fn node_extensions(address: &str) -> String {
    format!(
        "basicConstraints = CA:FALSE\nkeyUsage = critical,digitalSignature,keyEncipherment\n\
         extendedKeyUsage = serverAuth\nsubjectAltName = IP:{address}\n"
    )
}

/// The elliptic-curve key options: quick to make, understood since OpenSSL 1.0.
const NEW_KEY: [&str; 4] = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1"];

/// Make the CA in `dir` (an empty directory of the server user's).
pub fn make_ca(server: &Server, dir: &Path) -> anyhow::Result<()> {
    let config = dir.join("ca.cnf");
    server.write_as_server_user(&config, CA_CONFIG, false)?;
    openssl(
        server,
        dir,
        &[
            &[
                "req",
                "-x509",
                "-new",
                "-config",
                "ca.cnf",
                "-extensions",
                "ca",
            ],
            &NEW_KEY[..],
            &[
                "-nodes", "-keyout", "ca.key", "-out", "ca.crt", "-days", "2",
            ],
        ]
        .concat(),
    )
    .context("cannot make the smoke cluster's throwaway CA")
}

/// Make node `number`'s key and certificate, for `address`, signed by the CA.
pub fn make_node_certificate(
    server: &Server,
    dir: &Path,
    number: u32,
    address: &str,
) -> anyhow::Result<()> {
    let (stem, subject) = (format!("n{number}"), format!("/CN={address}"));
    let (csr, key, crt, ext) = (
        format!("{stem}.csr"),
        format!("{stem}.key"),
        format!("{stem}.crt"),
        format!("{stem}.ext"),
    );
    server.write_as_server_user(&dir.join(&ext), &node_extensions(address), false)?;
    let made = openssl(
        server,
        dir,
        &[
            &["req", "-new", "-config", "ca.cnf"],
            &NEW_KEY[..],
            &["-nodes", "-keyout", &key, "-out", &csr, "-subj", &subject],
        ]
        .concat(),
    )
    .and_then(|()| {
        openssl(
            server,
            dir,
            &[
                "x509",
                "-req",
                "-in",
                &csr,
                "-CA",
                "ca.crt",
                "-CAkey",
                "ca.key",
                "-set_serial",
                &(1000 + number).to_string(),
                "-days",
                "2",
                "-extfile",
                &ext,
                "-out",
                &crt,
            ],
        )
    });
    made.with_context(|| format!("cannot make node {number}'s certificate"))
}

fn openssl(server: &Server, dir: &Path, args: &[&str]) -> anyhow::Result<()> {
    // umask 077 for the keys: run through sh, which sets it for openssl.
    let line = std::iter::once("openssl")
        .chain(args.iter().copied())
        .map(crate::plan::shell_quote)
        .collect::<Vec<_>>()
        .join(" ");
    server
        .host_command(Path::new("/bin/sh"))
        .args(["-c", &format!("umask 077 && exec {line}")])
        .cwd(dir)
        .checked_output()
        .map(drop)
}
