//! Static checks of the `http`, `wait`, `subflow` and `llm` states (the core kinds' checks are
//! in `validate.rs`; checks that need the called flows are `subflow::check_calls`).
//!
//! Invariants: like every check, each problem is reported with the path of the offending field
//! (`states.lookup.timeout_ms`), never only the first; transitions (`next`, `on_error`,
//! `on_timeout`, `exits.*`, `fallback`) are checked with every other state's by `check_state`.

use super::flow::{HttpMethod, HttpState, LlmState, LlmTool, SubflowState, WaitState};
use super::flow_kinds::{MAX_HTTP_RETRIES, MAX_HTTP_TIMEOUT_MS, MAX_LLM_TURNS, MAX_WAIT_SECS};
use super::prompts::check_syntax;
use super::validate::{is_identifier, Checker};

impl Checker<'_> {
    fn check_inline(&mut self, path: String, source: &str) {
        if let Err((line, detail)) = check_syntax(source) {
            let at = line.map(|l| format!(" at line {l}")).unwrap_or_default();
            self.error(path, format!("template syntax error{at}: {detail}"));
        }
    }

    fn check_slot_name(&mut self, path: String, slot: &str) {
        if !is_identifier(slot) {
            let msg = format!("slot name \"{slot}\" must use only a-z, 0-9 and _");
            self.error(path, msg);
        }
    }

    pub(super) fn check_http(&mut self, base: &str, h: &HttpState) {
        let path = format!("{base}.url");
        match literal_host(&h.url) {
            Err(msg) => self.error(path.clone(), msg.into()),
            Ok(()) => self.check_inline(path, &h.url),
        }
        for (field, source) in &h.body {
            self.check_expression(format!("{base}.body.{field}"), source);
        }
        if h.method == HttpMethod::Get && !h.body.is_empty() {
            let msg = "a GET request sends no body; use `method: POST`".to_string();
            self.warn(format!("{base}.body"), msg);
        }
        if let Some(ms) = h.timeout_ms {
            if !(1..=MAX_HTTP_TIMEOUT_MS).contains(&ms) {
                let msg = format!("must be between 1 and {MAX_HTTP_TIMEOUT_MS} milliseconds");
                self.error(format!("{base}.timeout_ms"), msg);
            }
        }
        if h.retries.is_some_and(|r| r > MAX_HTTP_RETRIES) {
            let msg = format!("at most {MAX_HTTP_RETRIES} retries");
            self.error(format!("{base}.retries"), msg);
        }
        for (slot, pointer) in &h.map {
            let path = format!("{base}.map.{slot}");
            self.check_slot_name(path.clone(), slot);
            if !pointer.is_empty() && !pointer.starts_with('/') {
                let msg =
                    format!("\"{pointer}\" is not a JSON pointer (write it like /slots/0/start)");
                self.error(path, msg);
            }
        }
    }

    pub(super) fn check_wait(&mut self, base: &str, w: &WaitState) {
        if let Some(slot) = &w.slot {
            self.check_slot_name(format!("{base}.slot"), slot);
        }
        if !(1..=MAX_WAIT_SECS).contains(&w.timeout_secs) {
            let msg = format!("must be between 1 and {MAX_WAIT_SECS} seconds (30 days)");
            self.error(format!("{base}.timeout_secs"), msg);
        }
    }

    pub(super) fn check_subflow(&mut self, base: &str, s: &SubflowState) {
        let path = format!("{base}.flow");
        if !is_identifier(&s.flow) {
            let msg = format!("flow key \"{}\" must use only a-z, 0-9 and _", s.flow);
            self.error(path, msg);
        } else if s.flow == self.flow.id {
            self.error(path, "a flow cannot call itself".into());
        }
    }

    pub(super) fn check_llm(&mut self, base: &str, l: &LlmState) {
        match (&l.prompt, &l.text) {
            (Some(_), Some(_)) => {
                let msg = "set either `prompt` (template name) or `text` (inline), not both";
                self.error(base.to_string(), msg.into());
            }
            (None, None) => {
                let msg = "an llm state needs `prompt` (template name) or `text` (inline)";
                self.error(base.to_string(), msg.into());
            }
            _ => {}
        }
        if let Some(name) = &l.prompt {
            self.check_template(&format!("{base}.prompt"), name);
        }
        if let Some(source) = &l.text {
            self.check_inline(format!("{base}.text"), source);
        }
        self.check_tools(base, l);
        for (slot, _) in &l.slots {
            self.check_slot_name(format!("{base}.slots.{slot}"), slot);
        }
        for (id, _) in &l.exits {
            if !is_identifier(id) {
                let msg = format!("exit id \"{id}\" must use only a-z, 0-9 and _");
                self.error(format!("{base}.exits.{id}"), msg);
            }
        }
        if l.max_turns
            .is_some_and(|t| !(1..=MAX_LLM_TURNS).contains(&t))
        {
            let msg = format!("must be between 1 and {MAX_LLM_TURNS}");
            self.error(format!("{base}.max_turns"), msg);
        }
    }

    fn check_tools(&mut self, base: &str, l: &LlmState) {
        for (i, tool) in l.tools.iter().enumerate() {
            if l.tools[..i].contains(tool) {
                let msg = format!("tool \"{}\" is listed twice", tool.name());
                self.error(format!("{base}.tools[{i}]"), msg);
            }
        }
        let pairs = [
            (LlmTool::SetSlot, l.slots.is_empty(), "slots"),
            (LlmTool::Goto, l.exits.is_empty(), "exits"),
        ];
        for (tool, empty, field) in pairs {
            match (l.offers(tool), empty) {
                (true, true) => {
                    let msg = format!("`{}` needs `{field}` to choose from", tool.name());
                    self.error(format!("{base}.tools"), msg);
                }
                (false, false) => {
                    let msg = format!("unused: the state does not offer `{}`", tool.name());
                    self.warn(format!("{base}.{field}"), msg);
                }
                _ => {}
            }
        }
    }
}

/// Checks that a webhook URL starts with `http://` or `https://` and a host with no template
/// in it, so no slot (or customer text) can choose where the request goes.
fn literal_host(url: &str) -> Result<(), &'static str> {
    let rest = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"))
        .ok_or("the URL must start with http:// or https://")?;
    let host = rest.split(['/', '?', '#']).next().unwrap_or_default();
    if host.is_empty() {
        return Err("the URL has no host");
    }
    if host.contains("{{") || host.contains("{%") || host.contains('}') {
        return Err("the URL's host must be written out, not templated");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::literal_host;

    #[test]
    fn hosts_must_be_literal() {
        assert!(literal_host("https://api.example.com/slots?d={{ slots.date }}").is_ok());
        assert!(literal_host("http://127.0.0.1:8080").is_ok());
        assert!(literal_host("ftp://x.test/").is_err());
        assert!(literal_host("https://{{ slots.host }}/x").is_err());
        assert!(literal_host("{{ slots.url }}").is_err());
        assert!(literal_host("https:///x").is_err());
    }
}
