//! Tests of loading prompt templates from disk.
//! Invariant: temporary directories are unique per test and removed after.

use crate::common;

use serde_json::json;
use switchboard::agent::{PromptError, Prompts};

fn temp_dir(tag: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("flowengine-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[test]
fn demo_prompts_load_by_file_stem() {
    let prompts = common::demo_prompts();
    for name in [
        "greeting",
        "main_menu",
        "choice_retry",
        "ask_retry",
        "handoff",
        "goodbye",
        "repair_cancelled",
    ] {
        assert!(prompts.has(name), "{name}");
    }
    assert_eq!(prompts.names().len(), 21);
    let text = prompts.render("greeting", common::vars()).unwrap();
    assert!(
        text.starts_with("Hello and welcome to Smile Dental!"),
        "{text}"
    );
}

#[test]
fn only_j2_files_are_loaded() {
    let dir = temp_dir("only-j2");
    std::fs::write(dir.join("a.j2"), "A {{ x }}").unwrap();
    std::fs::write(dir.join("notes.txt"), "{{ broken").unwrap();
    let prompts = Prompts::from_dir(&dir).unwrap();
    assert_eq!(prompts.names(), ["a"]);
    assert_eq!(prompts.render("a", json!({"x": 1})).unwrap(), "A 1");
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn syntax_error_in_file_names_template_and_line() {
    let dir = temp_dir("syntax");
    std::fs::write(dir.join("ok.j2"), "fine").unwrap();
    std::fs::write(dir.join("broken.j2"), "line one\nline two {% if %}").unwrap();
    let err = Prompts::from_dir(&dir).unwrap_err();
    assert!(
        matches!(&err, PromptError::Syntax { name, line: Some(2), .. } if name == "broken"),
        "{err:?}"
    );
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn missing_directory_is_an_io_error() {
    let err = Prompts::from_dir("/definitely/not/here").unwrap_err();
    assert!(matches!(err, PromptError::Io { .. }));
    assert!(err.to_string().contains("/definitely/not/here"));
}

#[test]
fn overrides_replace_file_templates_and_share_cheaply() {
    let base = common::demo_prompts();
    let custom = base
        .clone()
        .with_override("greeting", "Hey from {{ business.name }}")
        .unwrap();
    assert_eq!(
        custom.render("greeting", common::vars()).unwrap(),
        "Hey from Smile Dental"
    );
    let original = base.render("greeting", common::vars()).unwrap();
    assert!(original.starts_with("Hello"), "the original is untouched");
    let shared = std::sync::Arc::new(custom);
    let worker = std::thread::spawn(move || shared.has("greeting"));
    assert!(worker.join().unwrap());
}
