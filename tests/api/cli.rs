//! The command line as an operator uses it.

use std::process::Command;

/// The real binary, pointed at the repository's config and prompts.
pub fn switchboard() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_switchboard"));
    cmd.env(
        "SWITCHBOARD_CONFIG_DIR",
        concat!(env!("CARGO_MANIFEST_DIR"), "/config"),
    )
    .env(
        "SWITCHBOARD_AGENT__PROMPTS_DIR",
        concat!(env!("CARGO_MANIFEST_DIR"), "/prompts"),
    )
    .env_remove("REDIS_URL");
    cmd
}

#[test]
fn an_unreachable_database_gets_an_actionable_message_not_a_panic() {
    let out = switchboard()
        .arg("migrate")
        .env(
            "DATABASE_URL",
            "postgres://postgres@127.0.0.1:1/switchboard",
        )
        .output()
        .expect("run switchboard");
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("cannot reach PostgreSQL at 127.0.0.1:1"),
        "{stderr}"
    );
    assert!(stderr.contains("docker compose up -d postgres"), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    // The cause is stated once, inside the message, which ends with what to set.
    assert_eq!(stderr.matches("Connection refused").count(), 1, "{stderr}");
    assert!(
        stderr
            .trim_end()
            .ends_with("(currently database 'switchboard')."),
        "{stderr}"
    );
}

#[test]
fn flow_validate_accepts_the_demo_and_lists_every_problem_of_a_broken_flow() {
    let ok = switchboard()
        .args([
            "flow",
            "validate",
            concat!(env!("CARGO_MANIFEST_DIR"), "/flows/dental_demo.yaml"),
        ])
        .output()
        .expect("run");
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stdout)
    );

    let dir = std::env::temp_dir().join(format!("sb-flow-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let broken = dir.join("broken.yaml");
    std::fs::write(
        &broken,
        "id: broken\nname: Broken\nstart: greet\nstates:\n  greet:\n    kind: message\n    text: Hi\n    next: nowhere\n  menu:\n    kind: choice\n    text: Pick\n    options: []\n",
    )
    .expect("write");
    let out = switchboard()
        .args(["flow", "validate"])
        .arg(&broken)
        .output()
        .expect("run");
    assert!(!out.status.success());
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("states.greet.next"), "{stdout}");
    assert!(stdout.contains("states.menu.options"), "{stdout}");
    let _ = std::fs::remove_dir_all(dir);
}
