//! `cargo xtask clean`: remove what the tool wrote under `target/`, one set
//! at a time and never while another run holds it.

use std::fs;

use anyhow::Context;

use crate::{exec, flags, host, input::recipe::check_set_name};

impl flags::Clean {
    pub fn run(self) -> anyhow::Result<()> {
        let top = host::layout();
        // This host's sets, then every target's.
        let mut layouts = vec![top.clone()];
        if let Ok(entries) = fs::read_dir(top.all_targets()) {
            let mut names: Vec<String> = entries
                .filter_map(|entry| entry.ok())
                .filter_map(|entry| entry.file_name().into_string().ok())
                .filter(|name| crate::input::names::check_plain_name(name).is_ok())
                .collect();
            names.sort();
            layouts.extend(names.iter().map(|name| top.for_target(Some(name))));
        }
        for layout in &layouts {
            self.clean_sets(layout)?;
        }
        if self.roots {
            let roots = top.all_roots();
            if roots.exists() {
                crate::roots::remove(&roots)?;
                eprintln!("{:>12} {}", "Removed", roots.display());
            }
        }
        if self.downloads {
            let downloads = top.downloads().dir;
            if downloads.exists() {
                fs::remove_dir_all(&downloads)
                    .with_context(|| format!("cannot remove {}", downloads.display()))?;
                eprintln!("{:>12} {}", "Removed", downloads.display());
            }
        }
        Ok(())
    }

    fn clean_sets(&self, layout: &crate::layout::Layout) -> anyhow::Result<()> {
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
            let _lock = exec::lock_set(layout, &set, true)?;
            fs::remove_dir_all(&dir).with_context(|| format!("cannot remove {}", dir.display()))?;
            eprintln!("{:>12} {}", "Removed", dir.display());
        }
        Ok(())
    }
}
