//! `cargo xtask clean`: remove what the tool wrote under `target/`, one set
//! at a time and never while another run holds it.

use std::fs;

use anyhow::Context;

use crate::{exec, flags, host, input::recipe::check_set_name};

impl flags::Clean {
    pub fn run(self) -> anyhow::Result<()> {
        let layout = host::layout();
        let sets = match &self.set {
            Some(set) => {
                check_set_name(set)?;
                vec![set.clone()]
            }
            None => fs::read_dir(layout.sets())
                .map(|entries| {
                    entries
                        .filter_map(|entry| entry.ok())
                        .filter(|entry| entry.file_type().is_ok_and(|kind| kind.is_dir()))
                        .filter_map(|entry| entry.file_name().into_string().ok())
                        .filter(|name| check_set_name(name).is_ok())
                        .collect()
                })
                .unwrap_or_default(),
        };
        for set in sets {
            let dir = layout.set_dir(&set);
            if !dir.is_dir() {
                continue;
            }
            // Not while another run builds, packages or smoke-tests the set.
            let _lock = exec::lock_set(&layout, &set, true)?;
            fs::remove_dir_all(&dir).with_context(|| format!("cannot remove {}", dir.display()))?;
            eprintln!("{:>12} {}", "Removed", dir.display());
        }
        if self.downloads {
            let downloads = layout.downloads().dir;
            if downloads.exists() {
                fs::remove_dir_all(&downloads)
                    .with_context(|| format!("cannot remove {}", downloads.display()))?;
                eprintln!("{:>12} {}", "Removed", downloads.display());
            }
        }
        Ok(())
    }
}
