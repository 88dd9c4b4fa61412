//! Routing by the language of the customer's message: a `route` state's `when:` conditions see
//! `language` (an ISO 639-1 code, or null when it could not be told), and a `set` state can keep
//! it in a slot for later states.

use switchboard::agent::{parse_flow, Prompts};

use crate::common::{texts, Chat};

const BY_LANGUAGE: &str = r#"
id: by_language
name: Greeting desk by language
start: first
states:
  first:
    kind: set
    values:
      lang: language
    next: pick
  pick:
    kind: route
    routes:
      - when: "language == 'es'"
        to: spanish
      - when: "language in ['de', 'nl']"
        to: germanic
    default: other
  spanish:
    kind: end
    text: "Hola, le atendemos en español ({{ slots.lang }})."
  germanic:
    kind: end
    text: "desk {{ slots.lang }}"
  other:
    kind: end
    text: "{{ 'language ' ~ slots.lang if slots.lang is defined else 'no language' }}"
"#;

fn chat() -> Chat {
    let flow = parse_flow(BY_LANGUAGE).unwrap();
    let prompts = Prompts::new().with_flow_texts(&flow).unwrap();
    Chat::new(flow, prompts)
}

#[test]
fn a_spanish_message_is_routed_to_the_spanish_desk() {
    let mut chat = chat();
    let out = chat.send("Buenas tardes, quería pedir cita para mi hijo el martes");
    assert_eq!(chat.understood.language.as_deref(), Some("es"));
    assert_eq!(texts(&out), ["Hola, le atendemos en español (es)."]);
}

#[test]
fn a_condition_can_name_several_languages() {
    let mut chat = chat();
    let out = chat.send("Goedemiddag, kan ik morgen mijn fiets komen ophalen?");
    assert_eq!(texts(&out), ["desk nl"]);
    let mut chat = self::chat();
    let out = chat.send("Guten Tag, kann ich morgen mein Fahrrad abholen?");
    assert_eq!(texts(&out), ["desk de"]);
}

#[test]
fn other_languages_take_the_default_with_their_code() {
    let mut chat = chat();
    let out = chat.send("Merhaba, yarın bisikletimi almaya gelebilir miyim?");
    assert_eq!(texts(&out), ["language tr"]);
}

#[test]
fn a_message_without_a_language_leaves_it_unset() {
    let mut chat = chat();
    let out = chat.send("ok 👍");
    assert_eq!(chat.understood.language, None);
    assert_eq!(texts(&out), ["no language"]);
    assert_eq!(chat.state.slots.get("lang"), None);
}
