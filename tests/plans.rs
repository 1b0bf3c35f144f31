//! Snapshots of the plan of every shipped set on every platform it names.
//!
//! Review a changed snapshot by hand against the reference procedure, then
//! accept it with `UPDATE_EXPECT=1 cargo test --test plans`.

use std::{collections::BTreeMap, path::PathBuf};

use xtask::{
    input::{platform, recipe, target},
    plan::{self, Action, Phase, PlanOptions},
};

fn snapshot_dir() -> PathBuf {
    xtask::project_root().join("tests/snapshots")
}

/// The options every snapshot is taken with: a fixed target, 2 jobs, not root.
fn snapshot_options(smoke_user: &str) -> PlanOptions {
    PlanOptions {
        target_dir: PathBuf::from("/bdr-dist/target"),
        jobs: 2,
        mirrors: Vec::new(),
        escalate: true,
        ccache_dir: None,
        install_prefix: None,
        formats: None,
        nodes: 2,
        run_as: Some(smoke_user.to_owned()),
        locked_sha256: BTreeMap::new(),
        smoke_from: plan::SmokeFrom::Stage,
        smoke_keep: false,
        smoke_checks: xtask::plan::checks::CheckId::ALL.to_vec(),
        smoke_network: Default::default(),
        smoke_tls: Default::default(),
        release: None,
        dist_dir: None,
        signing: None,
        repo: false,
        repo_url: None,
        target: None,
        rpm_dist: Default::default(),
    }
}

/// Every shipped set on Linux, for every shipped target: `(set, target)`.
fn shipped_targets() -> Vec<(recipe::RecipeSet, target::Target)> {
    let dir = target::targets_dir(None);
    let mut pairs = Vec::new();
    for (set, platform) in shipped() {
        for name in target::names(&dir).unwrap() {
            let Some(target) = target::load(&dir, &name).unwrap() else {
                continue;
            };
            if target.platform == platform.name {
                pairs.push((set.clone(), target));
            }
        }
    }
    pairs
}

fn target_plan(set: &recipe::RecipeSet, target: &target::Target) -> plan::Plan {
    let root = xtask::project_root();
    let platform = platform::load(&root.join("platforms"), &target.platform).unwrap();
    let mut options = snapshot_options(&platform.smoke_user);
    options.target = Some(target.clone());
    plan::plan(set, &platform, &options)
}

/// `plan --target debian-13` is as pure as any plan, and pinned the same way.
#[test]
fn every_set_for_every_target_matches_its_snapshot() {
    for (set, target) in shipped_targets() {
        let file = expect_test::ExpectFile {
            path: snapshot_dir().join(format!("{}-{}.plan", set.name, target.name)),
            position: file!(),
        };
        file.assert_eq(&target_plan(&set, &target).to_string());
    }
}

/// A target's builds and package tools run in its build root, with only
/// the set's own directory mounted in; its versions carry its suffix; its
/// servers run in a fresh root of its release; nothing installs here.
#[test]
fn a_targets_steps_run_in_its_roots_and_its_versions_say_so() {
    for (set, target) in shipped_targets() {
        let plan = target_plan(&set, &target);
        let root = PathBuf::from(format!("/bdr-dist/target/roots/{}/build", target.name));
        let set_dir = PathBuf::from(format!(
            "/bdr-dist/target/targets/{}/{}",
            target.name, set.name
        ));
        assert!(plan.stage.starts_with(&set_dir), "{}", plan.stage.display());
        let mut runs = 0;
        for step in &plan.steps {
            match &step.action {
                Action::Run(run) => {
                    runs += 1;
                    let in_root = run
                        .root
                        .as_ref()
                        .expect("a target's build runs in its root");
                    assert_eq!(in_root.root, root);
                    assert_eq!(in_root.binds, std::slice::from_ref(&set_dir));
                    assert!(run.cwd.starts_with(&set_dir), "{}", run.cwd.display());
                    assert_eq!(run.ccache_dir, None);
                }
                Action::Package(package) => {
                    assert!(
                        package.release.ends_with(&target.version_suffix),
                        "{}",
                        package.release
                    );
                    assert_eq!(package.root.as_ref().map(|r| &r.root), Some(&root));
                    assert!(target.formats.contains(&package.format));
                }
                Action::Smoke(smoke) => {
                    let proof = smoke.target.as_ref().expect("a target is proven");
                    assert_eq!(
                        proof.proof_root,
                        PathBuf::from(format!("/bdr-dist/target/roots/{}/proof", target.name))
                    );
                }
                Action::Install(_) => {
                    panic!("{}: a target's packages never install here", target.name)
                }
                _ => {}
            }
        }
        assert!(runs > 0);
    }
}

fn shipped() -> Vec<(recipe::RecipeSet, platform::Platform)> {
    let root = xtask::project_root();
    let platform_names = platform::names(&root.join("platforms")).unwrap();
    let mut pairs = Vec::new();
    for set_name in recipe::set_names(&root.join("recipes")).unwrap() {
        let set = recipe::load(&root.join("recipes"), &set_name, &platform_names).unwrap();
        for platform_name in &set.platforms {
            pairs.push((
                set.clone(),
                platform::load(&root.join("platforms"), platform_name).unwrap(),
            ));
        }
    }
    pairs
}

#[test]
fn every_set_on_every_platform_matches_its_snapshot() {
    for (set, platform) in shipped() {
        let plan = plan::plan(&set, &platform, &snapshot_options(&platform.smoke_user));
        let file = expect_test::ExpectFile {
            path: snapshot_dir().join(format!("{}-{}.plan", set.name, platform.name)),
            position: file!(),
        };
        file.assert_eq(&plan.to_string());
    }
}

#[test]
fn no_snapshot_is_left_unused() {
    let expected: Vec<String> = shipped()
        .iter()
        .map(|(set, platform)| format!("{}-{}.plan", set.name, platform.name))
        .chain(
            shipped_targets()
                .iter()
                .map(|(set, target)| format!("{}-{}.plan", set.name, target.name)),
        )
        .collect();
    for entry in std::fs::read_dir(snapshot_dir()).unwrap() {
        let name = entry.unwrap().file_name().into_string().unwrap();
        assert!(
            expected.contains(&name),
            "tests/snapshots/{name} belongs to no set x platform: delete it"
        );
    }
}

#[test]
fn only_the_install_step_escalates_and_it_uses_the_platforms_tool() {
    for (set, platform) in shipped() {
        let plan = plan::plan(&set, &platform, &snapshot_options(&platform.smoke_user));
        let expected_tool = if platform.name == "openbsd" {
            "doas"
        } else {
            "sudo"
        };
        let mut installs = 0;
        for step in &plan.steps {
            match &step.action {
                Action::Install(install) => {
                    installs += 1;
                    assert_eq!(step.phase, Phase::Install);
                    for line in install.command_lines() {
                        assert_eq!(line[0], expected_tool, "{line:?}");
                    }
                }
                Action::Run(run) => {
                    assert_eq!(
                        run.escalate, None,
                        "{} on {} must not escalate",
                        step.id, platform.name
                    );
                    assert!(
                        !run.argv.iter().any(|arg| arg == "sudo" || arg == "doas"),
                        "{}",
                        step.id
                    );
                }
                _ => {}
            }
        }
        assert_eq!(installs, 1, "set {} on {}", set.name, platform.name);
    }
}

#[test]
fn openbsd_uses_gmake_with_jobs_and_gflex_for_configure() {
    let openbsd: Vec<_> = shipped()
        .into_iter()
        .filter(|(_, p)| p.name == "openbsd")
        .collect();
    assert_eq!(openbsd.len(), 2, "both sets are planned for OpenBSD");
    for (set, platform) in openbsd {
        let plan = plan::plan(&set, &platform, &snapshot_options(&platform.smoke_user));
        let (mut configures, mut parallel) = (0, 0);
        for step in &plan.steps {
            let Action::Run(run) = &step.action else {
                continue;
            };
            if step.phase != Phase::Build {
                continue;
            }
            let line = run.command_line();
            assert_ne!(
                line[0], "make",
                "{}: OpenBSD's make is not GNU make",
                step.id
            );
            if line[0] == "gmake" && !line.contains(&"install".to_owned()) {
                assert_eq!(line[1], "-j2", "{} in set {}", step.id, set.name);
                parallel += 1;
            }
            let has_gflex = run
                .env
                .iter()
                .any(|var| var.name == "FLEX" && var.value == "/usr/local/bin/gflex");
            let configures_here = run.kind == recipe::StepKind::Configure;
            assert_eq!(has_gflex, configures_here, "{}", step.id);
            configures += usize::from(configures_here);
        }
        // bdr94 configures the server and the plugin; pg15-pglogical only the server.
        let expected = if set.name == "bdr94" { 2 } else { 1 };
        assert_eq!(configures, expected, "configure steps of {}", set.name);
        assert_eq!(
            parallel, 3,
            "server, contrib and plugin compile with -j2 in {}",
            set.name
        );
    }
}

#[test]
fn plugin_is_configured_against_the_staged_server() {
    for (set, platform) in shipped() {
        let plan = plan::plan(&set, &platform, &snapshot_options(&platform.smoke_user));
        let staged_bin = plan::join_prefix(&plan.stage, &plan.prefix).join("bin");
        let plugin = set
            .components
            .iter()
            .find(|c| c.role == recipe::Role::Plugin)
            .unwrap();
        let plugin_runs: Vec<_> = plan
            .steps
            .iter()
            .filter(|step| step.phase == Phase::Build)
            .filter(|step| step.id.as_str().starts_with(&format!("{}-", plugin.name)))
            .collect();
        let expected = plugin.steps.len();
        assert_eq!(plugin_runs.len(), expected, "plugin steps of {}", set.name);
        for step in plugin_runs {
            if let Action::Run(run) = &step.action {
                let path = run
                    .env
                    .iter()
                    .find(|var| var.name == "PATH")
                    .expect("plugin steps set PATH");
                assert!(path.prepend);
                assert_eq!(path.value, staged_bin.display().to_string());
            }
        }
    }
}

#[test]
fn mirrors_come_before_recipe_urls() {
    let (set, platform) = shipped().into_iter().next().unwrap();
    let mut options = snapshot_options("postgres");
    options.mirrors = vec!["http://127.0.0.1:8000/m/".into(), "/srv/mirror".into()];
    let plan = plan::plan(&set, &platform, &options);
    let Action::Fetch(fetch) = &plan.steps[0].action else {
        panic!("first step fetches")
    };
    assert_eq!(
        fetch.urls[0],
        format!("http://127.0.0.1:8000/m/{}", fetch.file)
    );
    assert_eq!(fetch.urls[1], format!("/srv/mirror/{}", fetch.file));
    assert_eq!(&fetch.urls[2..], set.components[0].source.urls.as_slice());
}

/// `--dist` reaches the RPM step only (the tarball's bytes do not depend on
/// it), and the plan says it with the glibc it holds the RPMs to.
#[test]
fn the_dist_tag_is_the_rpm_steps_and_the_plan_shows_it() {
    let (set, platform) = shipped()
        .into_iter()
        .find(|(set, platform)| set.name == "pg15-pglogical" && platform.name == "linux")
        .unwrap();
    let mut options = snapshot_options("postgres");
    options.rpm_dist = plan::RpmDist {
        tag: Some("el9".into()),
        from_flag: true,
    };
    let plan = plan::plan(&set, &platform, &options);
    let dists: Vec<_> = plan
        .steps_in(&[Phase::Package])
        .map(|step| match &step.action {
            Action::Package(package) => (package.format.as_str(), package.rpm_dist.clone()),
            _ => panic!("{} is not a package step", step.id),
        })
        .collect();
    assert_eq!(
        dists,
        [("rpm", Some(options.rpm_dist.clone())), ("tarball", None)]
    );
    let text = plan.to_string();
    assert!(
        text.contains(
            "    into    /bdr-dist/target/sets/pg15-pglogical/dist\n    \
             dist    .el9 (from --dist; RPMs needing glibc above 2.34 refused)\n"
        ),
        "{text}"
    );
    let json = serde_json::to_value(&plan).unwrap();
    assert!(
        json.to_string()
            .contains(r#""rpm_dist":{"from_flag":true,"tag":"el9"}"#),
        "{json}"
    );
}

/// Packages name the programs their platform's build runs (the manifest
/// records their versions) and the platform's service account.
#[test]
fn package_steps_carry_their_platforms_tools_and_service_account() {
    let mut checked = 0;
    for (set, platform) in shipped() {
        let plan = plan::plan(&set, &platform, &snapshot_options(&platform.smoke_user));
        for step in plan.steps_in(&[Phase::Package]) {
            let Action::Package(package) = &step.action else {
                panic!("{} is not a package step", step.id);
            };
            let (make, flex) = (&package.tools["make"], &package.tools["flex"]);
            match platform.name.as_str() {
                "openbsd" => {
                    assert_eq!(
                        (make.as_str(), flex.as_str()),
                        ("gmake", "/usr/local/bin/gflex")
                    );
                    assert_eq!(package.service.user, "_postgresql");
                    assert_eq!(package.service.id, Some(503));
                }
                _ => {
                    assert_eq!((make.as_str(), flex.as_str()), ("make", "flex"));
                    assert_eq!(package.service.user, "postgres");
                }
            }
            assert_eq!(package.os, platform.os);
            checked += 1;
        }
    }
    // Two sets on two platforms, each with its platform's default formats.
    assert_eq!(checked, 8);
}

/// Each build step comes after exactly what it uses, which is what lets the
/// executor run steps side by side: contrib compiles in the source tree
/// while the server installs, and a plugin builds against the server's own
/// files, not its contrib part.
#[test]
fn build_steps_come_after_what_they_use() {
    for (set, platform) in shipped() {
        let plan = plan::plan(&set, &platform, &snapshot_options(&platform.smoke_user));
        let after = |id: String| -> Vec<String> {
            let step = plan
                .steps
                .iter()
                .find(|step| step.id.to_string() == id)
                .unwrap_or_else(|| panic!("no step {id} in {}", set.name));
            step.after.iter().map(ToString::to_string).collect()
        };
        let server = &set.components[0].name;
        let plugin = &set.components[1].name;
        let context = format!("set {} on {}", set.name, platform.name);
        assert_eq!(
            after(format!("{server}-install")),
            [format!("{server}-compile")],
            "{context}"
        );
        assert_eq!(
            after(format!("{server}-contrib-compile")),
            [format!("{server}-compile")],
            "{context}"
        );
        let contrib_install = after(format!("{server}-contrib-install"));
        assert!(
            contrib_install.contains(&format!("{server}-contrib-compile")),
            "{context}"
        );
        assert!(
            contrib_install.contains(&format!("{server}-pgxs-install")),
            "{context}"
        );
        let first_plugin_step = plan
            .steps
            .iter()
            .find(|step| {
                step.phase == Phase::Build && step.id.to_string().starts_with(&format!("{plugin}-"))
            })
            .expect("the plugin builds");
        let plugin_after: Vec<String> = first_plugin_step
            .after
            .iter()
            .map(ToString::to_string)
            .collect();
        assert!(
            plugin_after.contains(&format!("{server}-pgxs-install")),
            "{context}: {plugin_after:?}"
        );
        assert!(
            !plugin_after.iter().any(|id| id.contains("contrib")),
            "{context}: {plugin_after:?}"
        );
        // A plugin whose recipe forgets `depends` still waits for the server.
        let mut forgetful = set.clone();
        forgetful.components[1].depends.clear();
        let forgetful_plan = plan::plan(
            &forgetful,
            &platform,
            &snapshot_options(&platform.smoke_user),
        );
        let first = forgetful_plan
            .steps
            .iter()
            .find(|step| step.id.to_string() == first_plugin_step.id.to_string())
            .unwrap();
        assert!(
            first
                .after
                .iter()
                .any(|id| id.to_string() == format!("{server}-pgxs-install")),
            "{context}: {:?}",
            first.after
        );
        // Installs land in plan order across components.
        let plugin_install = after(format!("{plugin}-install"));
        assert!(
            plugin_install.contains(&format!("{server}-contrib-install")),
            "{context}: {plugin_install:?}"
        );
    }
}

/// The executor's schedule over a real plan, with steps finishing in the
/// order they started: which steps overlap, and the rules that always hold.
#[test]
fn the_schedule_overlaps_independent_steps_and_never_two_installs() {
    use xtask::exec::schedule::Schedule;
    let (set, platform) = shipped()
        .into_iter()
        .find(|(set, platform)| set.name == "bdr94" && platform.name == "linux")
        .unwrap();
    let plan = plan::plan(&set, &platform, &snapshot_options(&platform.smoke_user));
    let work: Vec<&plan::Step> = plan
        .steps
        .iter()
        .filter(|step| !matches!(step.action, Action::Fetch(_)))
        .collect();
    let name = |index: usize| work[index].id.to_string();
    let installs = |index: usize| matches!(&work[index].action, Action::Run(run) if run.installs || run.fresh_dir.is_some());
    let mut schedule = Schedule::new(&work);
    let mut running: Vec<usize> = Vec::new();
    let mut finished: Vec<usize> = Vec::new();
    let mut beside: Vec<(String, String)> = Vec::new();
    loop {
        while let Some(index) = schedule.start_next() {
            for &other in &running {
                beside.push((name(other), name(index)));
                assert!(
                    !(installs(other) && installs(index)),
                    "{} and {} both install",
                    name(other),
                    name(index)
                );
                assert!(
                    Schedule::side_by_side(work[other]) && Schedule::side_by_side(work[index]),
                    "{} runs beside {}",
                    name(index),
                    name(other)
                );
            }
            for id in &work[index].after {
                let done = work
                    .iter()
                    .position(|step| &step.id == id)
                    .is_none_or(|i| finished.contains(&i));
                assert!(done, "{} started before {id}", name(index));
            }
            if !Schedule::side_by_side(work[index]) {
                // Package, smoke and install steps start alone, after every
                // step before them.
                assert!(
                    running.is_empty() && (0..index).all(|i| finished.contains(&i)),
                    "{}",
                    name(index)
                );
            }
            running.push(index);
            assert!(running.len() <= 2, "{running:?}");
        }
        if running.is_empty() {
            break;
        }
        let index = running.remove(0);
        schedule.finished(index);
        finished.push(index);
    }
    assert_eq!(finished.len(), work.len(), "every step ran");
    let together = |a: &str, b: &str| {
        beside
            .iter()
            .any(|(x, y)| (x == a && y == b) || (x == b && y == a))
    };
    assert!(
        together("postgres-bdr-install", "postgres-bdr-contrib-compile"),
        "{beside:?}"
    );
    assert!(
        beside
            .iter()
            .any(|(x, y)| (x.starts_with("bdr-") && y.contains("contrib"))
                || (y.starts_with("bdr-") && x.contains("contrib"))),
        "the plugin builds beside contrib: {beside:?}"
    );
    assert!(
        work.iter().any(|step| !Schedule::side_by_side(step)),
        "the plan packages"
    );
}
