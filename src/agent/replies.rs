//! Replies of a step: rendering a state's prompt or a named template with the conversation's
//! variables (business vars plus `slots`, `state`, `options`, `error`, `attempt`), and collecting
//! the rendered text with its quick-reply options. Rendering is pure: templates are compiled once
//! at load and never touch I/O.

use serde_json::{json, Map, Value};

use super::flow::{ChoiceOption, PromptRef, State};
use super::machine::{Extra, Reply, ReplyOption, Run, StepError};
use super::prompts::inline_key;

impl Run<'_> {
    /// Renders `template`, or returns `fallback` when the prompts have no such template.
    pub(super) fn render_or(
        &self,
        name: &str,
        template: &str,
        fallback: &str,
    ) -> Result<String, StepError> {
        if self.prompts.has(template) {
            self.render(name, PromptRef::Template(template), &Extra::default())
        } else {
            Ok(fallback.to_string())
        }
    }

    /// Replies with the state's prompt (and options), if it has one.
    pub(super) fn say(
        &mut self,
        name: &str,
        state: &State,
        extra: &Extra<'_>,
    ) -> Result<(), StepError> {
        let text = match state.prompt() {
            Some(prompt) => self.render(name, prompt, extra)?,
            None => String::new(),
        };
        self.push(text, extra.options);
        Ok(())
    }

    pub(super) fn push(&mut self, text: String, options: &[ChoiceOption]) {
        if text.is_empty() && options.is_empty() {
            return;
        }
        let options = options
            .iter()
            .map(|o| ReplyOption {
                id: o.id.clone(),
                label: o.label.clone(),
            })
            .collect();
        self.replies.push(Reply { text, options });
    }

    pub(super) fn render(
        &self,
        name: &str,
        prompt: PromptRef<'_>,
        extra: &Extra<'_>,
    ) -> Result<String, StepError> {
        let prompts = self.prompts;
        let vars = self.template_vars(name, extra);
        let text = match prompt {
            PromptRef::Template(t) => prompts.render(t, vars)?,
            PromptRef::Inline(src) => {
                let key = inline_key(&self.flow.id, name);
                if prompts.has(&key) {
                    prompts.render(&key, vars)?
                } else {
                    prompts.render_inline(src, vars)?
                }
            }
        };
        Ok(text)
    }

    /// `vars` plus `slots`, `state`, `options`, `error` and `attempt`.
    pub(super) fn template_vars(&self, name: &str, extra: &Extra<'_>) -> Value {
        let mut map = match self.ctx.vars {
            Value::Object(m) => m.clone(),
            _ => Map::new(),
        };
        let options: Vec<Value> = extra
            .options
            .iter()
            .enumerate()
            .map(|(i, o)| json!({"id": o.id, "label": o.label, "number": i + 1}))
            .collect();
        map.insert("slots".into(), Value::Object(self.state.slots.clone()));
        map.insert("state".into(), Value::String(name.to_string()));
        map.insert("options".into(), Value::Array(options));
        map.insert("error".into(), Value::String(extra.error.clone()));
        map.insert("attempt".into(), Value::from(self.state.attempts));
        if let Some(Value::Object(more)) = &extra.more {
            map.extend(more.clone());
        }
        Value::Object(map)
    }
}
