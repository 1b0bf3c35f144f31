//! `cargo xtask targets`: the distribution releases `--target` builds for.

use super::print_json;
use crate::{
    flags,
    input::target::{self, Target},
};

impl flags::Targets {
    pub fn run(self) -> anyhow::Result<()> {
        let dir = target::targets_dir(self.targets_dir.as_deref());
        let targets: Vec<Target> = target::names(&dir)?
            .iter()
            .filter_map(|name| target::load(&dir, name).transpose())
            .collect::<anyhow::Result<_>>()?;
        if self.json {
            return print_json(&targets);
        }
        let row = |name: &str, description: &str, suffix: &str, formats: &str, suites: &str| {
            println!("{name:<12} {description:<24} {suffix:<8} {formats:<12} {suites}");
        };
        row("TARGET", "RELEASE", "SUFFIX", "FORMATS", "SUITES");
        row(
            target::HOST,
            "this machine, as it is",
            "-",
            "platform's",
            "-",
        );
        for target in &targets {
            let formats: Vec<&str> = target.formats.iter().map(|f| f.as_str()).collect();
            row(
                &target.name,
                &target.description,
                &target.version_suffix,
                &formats.join(","),
                &target.suites.join(" "),
            );
        }
        Ok(())
    }
}
