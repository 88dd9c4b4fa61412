//! Language identification on sentences written for these tests (in neither the corpora nor
//! the held-out evaluation file), the cases that must give no answer, and a cross-validation
//! report over the corpora (ignored; run with `--ignored --nocapture` when changing the model).

use super::*;

/// Two fresh sentences per language.
const SENTENCES: &[(&str, &str)] = &[
    (
        "en",
        "Could you let me know if the blue dress is back in stock?",
    ),
    (
        "en",
        "we are stuck in traffic and will be about half an hour late",
    ),
    (
        "es",
        "¿Podrían decirme si el vestido azul vuelve a estar disponible?",
    ),
    (
        "es",
        "estamos atascados en el tráfico, llegaremos media hora tarde",
    ),
    (
        "fr",
        "Pourriez-vous me dire si la robe bleue est de nouveau disponible ?",
    ),
    (
        "fr",
        "on est coincés dans les bouchons, on aura une demi-heure de retard",
    ),
    (
        "de",
        "Könnten Sie mir sagen, ob das blaue Kleid wieder vorrätig ist?",
    ),
    (
        "de",
        "wir stehen im Stau und kommen eine halbe Stunde später",
    ),
    (
        "pt",
        "Vocês podem me dizer se o vestido azul voltou ao estoque?",
    ),
    (
        "pt",
        "estamos presos no trânsito e vamos chegar meia hora atrasados",
    ),
    (
        "it",
        "Potreste dirmi se il vestito blu è di nuovo disponibile?",
    ),
    (
        "it",
        "siamo bloccati nel traffico, arriviamo con mezz'ora di ritardo",
    ),
    (
        "nl",
        "Kunnen jullie me laten weten of de blauwe jurk weer op voorraad is?",
    ),
    ("nl", "we staan in de file en zijn een half uur later"),
    (
        "tr",
        "Mavi elbisenin tekrar stoklara girip girmediğini söyleyebilir misiniz?",
    ),
    ("tr", "trafiğe takıldık, yarım saat geç kalacağız"),
    (
        "pl",
        "Czy możecie mi powiedzieć, czy niebieska sukienka jest znowu dostępna?",
    ),
    ("pl", "stoimy w korku, spóźnimy się jakieś pół godziny"),
    (
        "sv",
        "Kan ni säga om den blå klänningen finns i lager igen?",
    ),
    ("sv", "vi sitter fast i trafiken och blir en halvtimme sena"),
    ("id", "Kak, gaun biru yang kemarin sudah ready lagi belum?"),
    (
        "id",
        "kami kejebak macet nih, kayaknya bakal telat setengah jam",
    ),
    (
        "ms",
        "Boleh beritahu kalau baju biru tu dah ada stok semula?",
    ),
    ("ms", "Encik, boleh tak saya ambil barang tu esok petang?"),
];

#[test]
fn each_language_is_recognised_on_unseen_sentences() {
    for (code, text) in SENTENCES {
        let got = read(text);
        assert_eq!(
            got.language().map(|l| l.code),
            Some(*code),
            "{text:?}: {got:?}"
        );
    }
}

#[test]
fn confidence_is_a_probability() {
    for (_, text) in SENTENCES {
        let c = identify(text).map_or(0.0, |l| l.confidence);
        assert!(
            (reading::MIN_CONFIDENCE..=1.0).contains(&c),
            "{text:?}: {c}"
        );
    }
}

#[test]
fn short_or_wordless_messages_have_no_language() {
    for text in [
        "ok",
        "OK",
        "k",
        "12",
        "15:30",
        "+44 7700 900123",
        "ann.lee@example.com",
        "https://example.com/booking/77",
        "👍",
        "🙏🙏 😂",
        "ok 👍",
        "",
        "   ",
        "?!",
    ] {
        assert_eq!(identify(text), None, "{text:?}: {:?}", read(text));
    }
}

#[test]
fn loanwords_and_names_alone_have_no_language() {
    for text in ["hotel", "taxi", "wifi", "Netflix", "Sofia"] {
        assert_eq!(identify(text), None, "{text:?}: {:?}", read(text));
    }
}

#[test]
fn a_message_in_an_unknown_script_has_no_language() {
    assert_eq!(
        read("Здравствуйте, можно записаться?"),
        Verdict::Rejected(Rejection::OtherScript)
    );
    assert_eq!(
        read("予約をお願いします"),
        Verdict::Rejected(Rejection::OtherScript)
    );
    assert_eq!(identify("مرحبا، هل يمكنني الحجز اليوم؟"), None);
}

#[test]
fn a_few_foreign_letters_do_not_hide_the_language() {
    let l = identify("Hola, soy Wei 王伟, quería saber si mañana tienen hora libre");
    assert_eq!(l.map(|l| l.code), Some("es"));
    let l = identify("Guten Tag, hier ist Olga (Ольга), ich brauche einen neuen Termin");
    assert_eq!(l.map(|l| l.code), Some("de"));
}

#[test]
fn two_languages_half_and_half_have_no_language() {
    for text in [
        "muchas gracias por la ayuda, but I still need the receipt",
        "ich hätte gerne einen Termin, je peux venir mardi après-midi",
    ] {
        assert_eq!(identify(text), None, "{text:?}: {:?}", read(text));
    }
}

#[test]
fn a_loanword_does_not_make_a_mix() {
    let l = identify("hola, quería cambiar el booking del sábado para el domingo");
    assert_eq!(l.map(|l| l.code), Some("es"));
}

#[test]
fn numbers_addresses_and_emoji_inside_a_sentence_are_ignored() {
    let l = identify("Bonjour 👋 je n'ai pas reçu la commande 4471, écrivez-moi à lea@exemple.fr");
    assert_eq!(l.map(|l| l.code), Some("fr"));
}

#[test]
fn the_same_text_always_gets_the_same_reading() {
    let text = "vorrei spostare il mio turno a giovedì";
    assert_eq!(read(text), read(text));
    let retrained = Profiles::train(CORPORA);
    assert_eq!(retrained.read(text), read(text));
}

/// 5-fold cross-validation over the corpora (sentences and 2–5-word pieces of them).
#[test]
#[ignore = "a report for tuning, not a check"]
fn cross_validation_report() {
    const K: usize = 5;
    let mut rows: Vec<(String, [usize; 6])> = Vec::new();
    for (code, _) in CORPORA {
        rows.push((code.to_string(), [0; 6]));
    }
    for fold in 0..K {
        let kept: Vec<String> = CORPORA
            .iter()
            .map(|(_, text)| {
                let lines = text.lines().enumerate().filter(|(i, _)| i % K != fold);
                lines.map(|(_, l)| l).collect::<Vec<_>>().join("\n")
            })
            .collect();
        let train: Vec<(&'static str, &str)> = CORPORA
            .iter()
            .zip(&kept)
            .map(|((c, _), t)| (*c, t.as_str()))
            .collect();
        let model = Profiles::train(&train);
        for (row, (code, text)) in rows.iter_mut().zip(CORPORA) {
            for (i, line) in text.lines().enumerate().filter(|(i, _)| i % K == fold) {
                let words: Vec<&str> = line.split_whitespace().collect();
                let n = 2 + i % 4;
                let start = (i * 7) % words.len().saturating_sub(n).max(1);
                let piece = words[start..(start + n).min(words.len())].join(" ");
                for (offset, t) in [(0, line.to_string()), (3, piece)] {
                    let slot = match model.read(&t).language() {
                        Some(l) if l.code == *code => 0,
                        Some(_) => 2,
                        None => 1,
                    };
                    row.1[offset + slot] += 1;
                }
            }
        }
    }
    let mut all = [0usize; 6];
    for (_, c) in &rows {
        all.iter_mut().zip(c).for_each(|(a, c)| *a += c);
    }
    rows.push(("all".into(), all));
    println!("{} features in the full profiles", profiles().features());
    println!("lang  sentences: right rejected wrong | pieces: right rejected wrong");
    for (code, c) in &rows {
        let (s, p) = (c[0] + c[1] + c[2], c[3] + c[4] + c[5]);
        let pct = |x: usize, n: usize| 100.0 * x as f64 / n.max(1) as f64;
        println!(
            "{code:<5} {:5.1} {:5.1} {:5.1} | {:5.1} {:5.1} {:5.1}",
            pct(c[0], s),
            pct(c[1], s),
            pct(c[2], s),
            pct(c[3], p),
            pct(c[4], p),
            pct(c[5], p)
        );
    }
}
