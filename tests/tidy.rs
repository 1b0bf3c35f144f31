//! Checks of the repository itself.

use xtask::{platform, recipe};

#[test]
fn every_shipped_recipe_parses_pins_its_sources_and_names_existing_platforms() {
    let root = xtask::project_root();
    let platforms = platform::names(&root.join("platforms")).unwrap();
    assert_eq!(platforms, ["linux", "openbsd"]);
    for name in &platforms {
        platform::load(&root.join("platforms"), name).unwrap();
    }
    let sets = recipe::set_names(&root.join("recipes")).unwrap();
    assert!(
        sets.contains(&"bdr94".to_owned()) && sets.contains(&"pg15-pglogical".to_owned()),
        "{sets:?}"
    );
    for set_name in sets {
        let set = recipe::load(&root.join("recipes"), &set_name, &platforms).unwrap();
        assert!(!set.platforms.is_empty());
        for component in &set.components {
            let source = &component.source;
            assert!(
                source.sha256.is_some() || source.commit.is_some(),
                "{set_name}/{}: unpinned",
                component.name
            );
            assert!(
                source.urls.iter().all(|url| url.starts_with("https://")),
                "{set_name}/{}: plain http",
                component.name
            );
        }
    }
}

#[test]
fn default_set_pins_the_tags_not_the_branch_head() {
    let root = xtask::project_root();
    let platforms = platform::names(&root.join("platforms")).unwrap();
    let set = recipe::load(&root.join("recipes"), "bdr94", &platforms).unwrap();
    let commits: Vec<_> = set
        .components
        .iter()
        .map(|c| c.source.commit.clone().unwrap())
        .collect();
    // bdr-pg/REL9_4_13-1 and bdr-plugin/1.0.7; the branch head ad11c123 breaks SERIAL columns.
    assert_eq!(
        commits,
        [
            "b24c0a397f394fe3356c8734a8a8368ee3d22dc4",
            "7e8d53388b86b3363ac3a28e0778bdb24dfc4c9d"
        ]
    );
    assert_eq!(
        set.components[0].source.file,
        "postgresql-bdr-9.4.13_bdr1.tar.gz"
    );
    assert_eq!(set.components[1].source.file, "bdr-1.0.7.tar.gz");
}
