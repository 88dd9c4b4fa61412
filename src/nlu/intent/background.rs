//! A small built-in corpus of generic, off-topic messages: the "background" class the intent
//! model is trained against so that texts unlike any intent get a flat distribution.
//!
//! Owns [`SENTENCES`] only. Invariants: written for this project; deliberately avoids the
//! vocabulary of typical business requests (booking, prices, orders, accounts, opening hours,
//! locations, people to talk to) and conversational acts that flows often model as intents
//! (greetings, thanks, yes/no, goodbyes). Sentences too close to a flow's own examples are
//! dropped at training time (see [`select`]).

use super::features::{FeatureConfig, Vocabulary};

/// Word n-grams only: closeness to a flow's examples is judged on words.
const WORDS: FeatureConfig = FeatureConfig {
    word_max: 2,
    char_min: 1,
    char_max: 0,
    char_share: 0.0,
};

/// The background sentences whose word-level TF-IDF cosine similarity to every one of `texts`
/// is below `max_similarity`, with that highest similarity.
pub fn select(texts: &[&str], max_similarity: f32) -> Vec<(&'static str, f32)> {
    let vocab = Vocabulary::build(texts, &WORDS);
    let examples: Vec<_> = texts.iter().map(|t| vocab.vectorize(t)).collect();
    SENTENCES
        .iter()
        .map(|s| {
            let v = vocab.vectorize(s);
            let best = examples.iter().map(|x| x.dot(&v)).fold(0.0f32, f32::max);
            (*s, best)
        })
        .filter(|(_, sim)| *sim < max_similarity)
        .collect()
}

/// Generic messages no business flow is expected to handle.
pub const SENTENCES: &[&str] = &[
    // weather and nature
    "will it snow this weekend",
    "how hot is it outside right now",
    "is it sunny in madrid",
    "what's the forecast for saturday",
    "do i need an umbrella",
    "how cold does it get in winter here",
    "why is the sky blue",
    "what causes thunder",
    "is there a storm coming",
    "how windy is it at the beach",
    "what's the humidity today",
    "when does spring start",
    "how many stars are in the sky",
    "is the moon full tonight",
    "what time is sunset",
    // trivia and knowledge
    "who wrote hamlet",
    "how far away is the moon",
    "what is the population of china",
    "when did the second world war end",
    "who painted the mona lisa",
    "what is the longest river in the world",
    "how many bones are in the human body",
    "what is the speed of light",
    "who discovered penicillin",
    "what language do they speak in brazil",
    "how old is the universe",
    "what is the biggest animal on earth",
    "who invented the telephone",
    "what's the tallest building in the world",
    "how deep is the ocean",
    "what is photosynthesis",
    "who was the first person on the moon",
    "how many countries are there in africa",
    "what is the chemical symbol for gold",
    "why do cats purr",
    "how do magnets work",
    "what do whales eat",
    "how long do elephants live",
    "what is the smallest planet",
    "which ocean is the largest",
    "who is the richest person alive",
    "when was the eiffel tower built",
    "what does dna stand for",
    "how does the internet work",
    "what is quantum physics",
    "explain black holes to me",
    "how are rainbows made",
    "what is the capital of australia",
    "name all the planets",
    "how many teeth does a shark have",
    // maths and logic
    "what is 15 times 3",
    "square root of 81",
    "what's 100 divided by 7",
    "is 17 a prime number",
    "convert 10 miles to kilometers",
    "how many grams in a pound",
    "what is pi",
    "solve x squared equals nine",
    "count to ten",
    "what comes after a million",
    "what's 12 percent of 250",
    "how many seconds in a day",
    // entertainment and culture
    "play a song by queen",
    "recommend a tv series",
    "who won best actor at the oscars",
    "what's a good book to read",
    "tell me a riddle",
    "do you know any funny stories",
    "who sings bohemian rhapsody",
    "what's your favourite film",
    "i love watching cartoons",
    "put on some jazz",
    "who is the best footballer ever",
    "did the lakers win last night",
    "when is the next world cup",
    "what's the score of the match",
    "who is playing in the final",
    "how do you play chess",
    "let's play a game",
    "tell me a fun fact",
    "write me a poem about the sea",
    "what's trending on social media",
    "show me pictures of puppies",
    "which marvel movie should i watch",
    "how does the story end",
    "i finished my novel yesterday",
    "do you like video games",
    "what's the best pizza topping",
    "guess what i had for lunch",
    // cooking and food
    "recipe for chocolate cake",
    "how long do i boil an egg",
    "what can i make with rice and beans",
    "is a tomato a fruit",
    "how do you make pancakes",
    "what wine goes with fish",
    "i'm making soup tonight",
    "how many calories in an apple",
    "is coffee bad for you",
    "my bread didn't rise",
    "how do i sharpen a kitchen knife",
    "what spices go in curry",
    // personal remarks and chit-chat
    "i'm so tired today",
    "you are funny",
    "what's your name",
    "how old are you",
    "do you have feelings",
    "are you married",
    "where do you come from",
    "do you dream",
    "i had a weird dream last night",
    "my dog is so cute",
    "i just got a new kitten",
    "my sister is getting married",
    "i can't sleep",
    "i'm feeling lonely",
    "life is good",
    "what should i do this weekend",
    "do you believe in ghosts",
    "i love the summer",
    "my neighbour plays loud music",
    "i forgot my keys again",
    "my plants keep dying",
    "i want to learn the guitar",
    "should i dye my hair",
    "i think i'm in love",
    "do aliens exist",
    "is time travel possible",
    "what happens when we die",
    "can you keep a secret",
    "i'm going on holiday soon",
    "my team lost again",
    "i just ran a marathon",
    "the traffic was terrible",
    "it's my birthday next month",
    "i got a promotion at work",
    "my phone screen cracked",
    "my flatmate never cleans",
    "we adopted a puppy",
    "i'm learning french",
    "my feet hurt from walking",
    "the train was late again",
    "what a lovely morning",
    "i miss my grandmother",
    "do you like cats or dogs",
    // assistant-style commands
    "turn on the lights",
    "remind me to water the plants",
    "set a timer for ten minutes",
    "wake me up at six",
    "turn the volume up",
    "send a text to john",
    "what's on my calendar",
    "add milk to my shopping list",
    "how long will it take to drive to london",
    "translate thank you into german",
    "spell necessary",
    "what does serendipity mean",
    "define the word ubiquitous",
    "flip a coin",
    "roll a dice",
    "pick a random number",
    "what day is it today",
    "what year is it",
    "what's the time in tokyo",
    "take a note",
    "read me the news",
    "open my email",
    "turn off the tv",
    "start a workout",
    "how many steps did i walk",
    "find my phone",
    // technology
    "my laptop is really slow",
    "how do i install python",
    "what is artificial intelligence",
    "my wifi keeps dropping",
    "how do i take a screenshot",
    "which phone has the best camera",
    "how do i delete my browser history",
    "what is the cloud",
    "my printer is jammed",
    "how do i make a website",
    "is linux better than windows",
    "what's the latest version of android",
    "my headphones won't connect",
    "how much storage do i need",
    "can robots think",
    // travel and places (generic, not about a business)
    "what's the best time to visit japan",
    "how long is a flight to new york",
    "do i need a visa for canada",
    "what currency do they use in switzerland",
    "is venice sinking",
    "what's there to see in rome",
    "how big is texas",
    "which country has the most islands",
    "what's the highest mountain in europe",
    // health and body, generic
    "how much water should i drink",
    "why do we yawn",
    "is it bad to crack your knuckles",
    "how do i stop hiccups",
    "how many hours of sleep do adults need",
    "why do onions make you cry",
    "can dogs eat chocolate",
    // money and world, generic
    "what's the exchange rate for yen",
    "how is the stock market doing",
    "what is inflation",
    "should i invest in gold",
    "who is the prime minister of canada",
    "when is the next election",
    "what's happening in the news",
    // keyboard noise and fillers
    "asdfgh",
    "qwertyuiop",
    "hjkl hjkl",
    "zzzzzz",
    "aaaaaaa",
    "blah blah blah",
    "lorem ipsum dolor sit amet",
    "test test",
    "testing one two three",
    "hmm",
    "lol ok",
    "haha",
    "jdjdjdjd",
    "sdkfj weoir",
    "xkcd",
    "nothing",
    "whatever",
    "never mind that",
    "random words here",
    "the cat sat on the mat",
    "colourless green ideas sleep furiously",
    "purple monkey dishwasher",
    "i am a banana",
    "beep boop",
    "banana pancakes and rainbows",
    "blue",
    "potato",
    "why",
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn corpus_is_nonempty_lowercase_and_unique() {
        assert!(SENTENCES.len() >= 200);
        let mut seen = std::collections::HashSet::new();
        for s in SENTENCES {
            assert!(!s.trim().is_empty());
            assert_eq!(s.to_lowercase(), *s);
            assert!(seen.insert(*s), "duplicate {s}");
        }
    }

    #[test]
    fn select_drops_sentences_close_to_the_examples() {
        let texts = ["will it snow tomorrow", "is it going to snow this weekend"];
        let kept = select(&texts, 0.5);
        assert!(kept.iter().all(|(s, _)| *s != "will it snow this weekend"));
        assert!(kept.iter().any(|(s, _)| *s == "who wrote hamlet"));
        assert!(kept.len() > SENTENCES.len() - 10);
    }
}
