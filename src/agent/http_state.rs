//! `http` states inside a step: rendering the webhook request on entry (the step stops there
//! with an [`Effect::Http`]) and applying the gateway's result when the step is resumed.
//!
//! Invariants: pure; the URL is rendered with the same variables as templates and the body
//! values are evaluated as expressions with the same variables as `route`/`set`; a request
//! that cannot be rendered fails like a call does (to `on_error`, else a handoff naming why),
//! never as a step error; mapping a reply only touches the slots named in `map`.

use serde_json::{Map, Value};

use super::effect::{Effect, HttpRequest, HttpResult};
use super::expr;
use super::flow::{HttpMethod, HttpState, State};
use super::flow_kinds::{MAX_HTTP_RETRIES, MAX_HTTP_TIMEOUT_MS};
use super::machine::{Extra, FlowStatus, Run, StepError};

impl<'f> Run<'f> {
    /// Renders the state's request and leaves it as the step's effect.
    pub(super) fn request_http(&mut self, name: &str, h: &'f HttpState) -> Result<(), StepError> {
        match self.render_request(name, h) {
            Ok(request) => {
                self.effect = Some(Effect::Http(request));
                Ok(())
            }
            Err(reason) => self.http_failed(name, h, &reason),
        }
    }

    fn render_request(&self, name: &str, h: &HttpState) -> Result<HttpRequest, String> {
        let url = self
            .prompts
            .render_inline(&h.url, self.template_vars(name, &Extra::default()))
            .map_err(|e| format!("the URL could not be rendered: {e}"))?;
        let body = match h.method {
            HttpMethod::Get => None,
            HttpMethod::Post => {
                let vars = self.expr_vars(name);
                let mut object = Map::new();
                for (field, source) in &h.body {
                    let value = expr::value(source, &vars)
                        .map_err(|e| format!("body.{field} could not be evaluated: {e}"))?;
                    object.insert(field.clone(), value);
                }
                Some(Value::Object(object))
            }
        };
        Ok(HttpRequest {
            state: name.to_string(),
            method: h.method,
            url,
            body,
            timeout_ms: h.timeout_ms().clamp(1, MAX_HTTP_TIMEOUT_MS),
            retries: h.retries().min(MAX_HTTP_RETRIES),
        })
    }

    /// Applies a webhook result at the current `http` state.
    pub(super) fn resume_http(&mut self, result: &HttpResult) -> Result<(), StepError> {
        let (name, state) = self.lookup(&self.state.state)?;
        let h = match state {
            State::Http(h) if self.state.status == FlowStatus::Active && self.state.started => h,
            other => {
                return Err(StepError::NotWaiting {
                    state: name.to_string(),
                    kind: other.kind_name(),
                })
            }
        };
        match result {
            HttpResult::Ok(reply) => {
                for (slot, pointer) in &h.map {
                    match reply.pointer(pointer) {
                        Some(value) if !value.is_null() => {
                            self.state.slots.insert(slot.clone(), value.clone());
                        }
                        _ => {
                            self.state.slots.remove(slot);
                        }
                    }
                }
                self.enter(&h.next)
            }
            HttpResult::Failed(reason) => self.http_failed(name, h, reason),
        }
    }

    fn http_failed(&mut self, name: &str, h: &'f HttpState, reason: &str) -> Result<(), StepError> {
        match &h.on_error {
            Some(target) => self.enter(target),
            None => self.handoff_now(name, format!("webhook at \"{name}\" failed: {reason}")),
        }
    }
}
