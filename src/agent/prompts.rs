//! Prompt templates (minijinja) shared by every conversation.
//!
//! Owns `Prompts`, a cheaply clonable, `Send + Sync` handle to one compiled
//! template environment. Invariants:
//! - Undefined variables are errors (`UndefinedBehavior::Strict`), so a typo
//!   in a template fails loudly instead of sending a half-empty message.
//! - Every template is compiled once, when it is added; a template with a
//!   syntax error is never added (the error names the template and line).
//! - Rendered text is trimmed of surrounding whitespace.
//! - Inline flow texts can be precompiled with `with_flow_texts`; they live
//!   under `inline_key(flow_id, state)`, a name no `.j2` file stem can take.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use minijinja::{Environment, ErrorKind, UndefinedBehavior};

use super::flow::{Flow, PromptRef};

/// Name used in errors for templates rendered with `render_inline`.
pub const INLINE_NAME: &str = "<inline>";

/// Why a prompt could not be loaded or rendered.
#[derive(Debug, thiserror::Error)]
pub enum PromptError {
    /// The prompts directory or a template file could not be read.
    #[error("cannot read prompts from {path}: {source}")]
    Io {
        /// The directory or file that failed.
        path: PathBuf,
        /// The underlying I/O error.
        #[source]
        source: std::io::Error,
    },
    /// A template does not compile.
    #[error("template \"{name}\" has a syntax error{}: {detail}", at_line(*.line))]
    Syntax {
        /// Template name (file stem, inline key or `<inline>`).
        name: String,
        /// Line within the template, when known.
        line: Option<usize>,
        /// minijinja's error kind and detail.
        detail: String,
    },
    /// No template has this name.
    #[error("unknown template \"{0}\"")]
    NotFound(String),
    /// A template failed while rendering, e.g. on an undefined variable.
    #[error("template \"{name}\" failed to render{}: {detail}", at_line(*.line))]
    Render {
        /// Template name (file stem, inline key or `<inline>`).
        name: String,
        /// Line within the template, when known.
        line: Option<usize>,
        /// minijinja's error kind and detail.
        detail: String,
    },
}

fn at_line(line: Option<usize>) -> String {
    line.map(|l| format!(" at line {l}")).unwrap_or_default()
}

/// The compiled prompt templates.
#[derive(Clone)]
pub struct Prompts {
    env: Arc<Environment<'static>>,
}

impl std::fmt::Debug for Prompts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Prompts")
            .field("names", &self.names())
            .finish()
    }
}

impl Default for Prompts {
    fn default() -> Self {
        Self::new()
    }
}

/// Template name under which `with_flow_texts` stores a digression's `text:`.
pub fn digression_key(flow_id: &str, intent: &str) -> String {
    format!("{flow_id}#digression.{intent}.text")
}

/// Template name under which `with_flow_texts` stores a state's `text:`.
pub fn inline_key(flow_id: &str, state: &str) -> String {
    format!("{flow_id}#{state}.text")
}

impl Prompts {
    /// An empty set of prompts.
    pub fn new() -> Self {
        let mut env = Environment::new();
        env.set_undefined_behavior(UndefinedBehavior::Strict);
        env.set_trim_blocks(true);
        env.set_lstrip_blocks(true);
        env.add_filter("when", |v: minijinja::Value| {
            super::humanize::describe_when(&serde_json::to_value(&v).unwrap_or_default())
        });
        Prompts { env: Arc::new(env) }
    }

    /// Loads every `*.j2` file in `dir` (not recursive); name = file stem.
    pub fn from_dir(dir: impl AsRef<Path>) -> Result<Self, PromptError> {
        let dir = dir.as_ref();
        let io = |source| PromptError::Io {
            path: dir.to_path_buf(),
            source,
        };
        let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
            .map_err(io)?
            .map(|entry| entry.map(|e| e.path()))
            .collect::<Result<_, _>>()
            .map_err(io)?;
        files.retain(|p| p.extension().is_some_and(|e| e == "j2") && p.is_file());
        files.sort();
        files
            .iter()
            .try_fold(Self::new(), |prompts, path| prompts.with_file(path))
    }

    fn with_file(self, path: &Path) -> Result<Self, PromptError> {
        let source = std::fs::read_to_string(path).map_err(|source| PromptError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        let name =
            path.file_stem()
                .and_then(|s| s.to_str())
                .ok_or_else(|| PromptError::Syntax {
                    name: path.display().to_string(),
                    line: None,
                    detail: "template file name is not valid UTF-8".to_string(),
                })?;
        self.with_override(name, &source)
    }

    /// Adds or replaces template `name`; fails (and adds nothing) on a
    /// syntax error.
    pub fn with_override(mut self, name: &str, source: &str) -> Result<Self, PromptError> {
        Arc::make_mut(&mut self.env)
            .add_template_owned(name.to_string(), source.to_string())
            .map_err(|e| syntax_error(name, &e))?;
        Ok(self)
    }

    /// Precompiles every `text:` of `flow` under `inline_key` (states) and `digression_key`.
    pub fn with_flow_texts(self, flow: &Flow) -> Result<Self, PromptError> {
        let states = flow
            .states
            .iter()
            .filter_map(|(name, st)| match st.prompt() {
                Some(PromptRef::Inline(src)) => Some((inline_key(&flow.id, name), src)),
                _ => None,
            });
        let digressions = flow.digressions.iter().filter_map(|d| {
            d.text
                .as_deref()
                .map(|src| (digression_key(&flow.id, &d.intent), src))
        });
        states
            .chain(digressions)
            .try_fold(self, |p, (key, src)| p.with_override(&key, src))
    }

    /// Whether template `name` exists.
    pub fn has(&self, name: &str) -> bool {
        self.env.get_template(name).is_ok()
    }

    /// Names of all templates, sorted.
    pub fn names(&self) -> Vec<String> {
        let mut names: Vec<String> = self.env.templates().map(|(n, _)| n.to_string()).collect();
        names.sort();
        names
    }

    /// Renders template `name` with `ctx`.
    pub fn render(&self, name: &str, ctx: serde_json::Value) -> Result<String, PromptError> {
        let template = self.env.get_template(name).map_err(|e| match e.kind() {
            ErrorKind::TemplateNotFound => PromptError::NotFound(name.to_string()),
            _ => syntax_error(name, &e),
        })?;
        template
            .render(ctx)
            .map(|s| s.trim().to_string())
            .map_err(|e| render_error(name, &e))
    }

    /// Compiles and renders `source` once; prefer named templates when hot.
    pub fn render_inline(
        &self,
        source: &str,
        ctx: serde_json::Value,
    ) -> Result<String, PromptError> {
        self.env
            .render_str(source, ctx)
            .map(|s| s.trim().to_string())
            .map_err(|e| match e.kind() {
                ErrorKind::SyntaxError => syntax_error(INLINE_NAME, &e),
                _ => render_error(INLINE_NAME, &e),
            })
    }
}

/// Checks that `source` compiles, giving `(line, detail)` when it does not.
pub fn check_syntax(source: &str) -> Result<(), (Option<usize>, String)> {
    let env = Environment::new();
    env.template_from_str(source)
        .map(|_| ())
        .map_err(|e| (e.line(), describe(&e)))
}

fn describe(e: &minijinja::Error) -> String {
    match e.detail() {
        Some(detail) => format!("{}: {detail}", e.kind()),
        None => e.kind().to_string(),
    }
}

fn syntax_error(name: &str, e: &minijinja::Error) -> PromptError {
    PromptError::Syntax {
        name: name.to_string(),
        line: e.line(),
        detail: describe(e),
    }
}

fn render_error(name: &str, e: &minijinja::Error) -> PromptError {
    PromptError::Render {
        name: name.to_string(),
        line: e.line(),
        detail: describe(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn assert_send_sync<T: Send + Sync>() {}

    #[test]
    fn prompts_are_send_sync() {
        assert_send_sync::<Prompts>();
    }

    #[test]
    fn strict_undefined_is_an_error() {
        let p = Prompts::new().with_override("hi", "Hi {{ nme }}").unwrap();
        let err = p.render("hi", json!({"name": "Ann"})).unwrap_err();
        assert!(matches!(err, PromptError::Render { .. }), "{err}");
    }

    #[test]
    fn syntax_error_names_template_and_line() {
        let err = Prompts::new()
            .with_override("bad", "line one\n{{ oops }")
            .unwrap_err();
        let text = err.to_string();
        assert!(text.contains("\"bad\""), "{text}");
        assert!(text.contains("line 2"), "{text}");
    }

    #[test]
    fn override_replaces_and_output_is_trimmed() {
        let p = Prompts::new()
            .with_override("x", "one")
            .and_then(|p| p.with_override("x", "  two\n"))
            .unwrap();
        assert_eq!(p.render("x", json!({})).unwrap(), "two");
        assert_eq!(p.names(), vec!["x".to_string()]);
    }

    #[test]
    fn missing_template_is_not_found() {
        let err = Prompts::new().render("nope", json!({})).unwrap_err();
        assert!(matches!(err, PromptError::NotFound(n) if n == "nope"));
    }

    #[test]
    fn inline_render_and_errors() {
        let p = Prompts::new();
        assert_eq!(p.render_inline("{{ a }}!", json!({"a": 1})).unwrap(), "1!");
        assert!(matches!(
            p.render_inline("{% if %}", json!({})),
            Err(PromptError::Syntax { .. })
        ));
        assert!(check_syntax("{{ a }").is_err());
        assert!(check_syntax("{{ a }}").is_ok());
    }
}
