//! The widget script and the demo page, embedded in the binary.

use axum::{
    extract::Path,
    http::header,
    response::{Html, IntoResponse},
};

const WIDGET_JS: &str = include_str!("../../../static/widget.js");
const DEMO_HTML: &str = include_str!("../../../static/demo.html");

/// `GET /widget.js`
pub async fn widget_js() -> impl IntoResponse {
    (
        [
            (
                header::CONTENT_TYPE,
                "application/javascript; charset=utf-8",
            ),
            (header::CACHE_CONTROL, "public, max-age=300"),
        ],
        WIDGET_JS,
    )
}

/// `GET /demo/{channel_key}`: a fake business site with the widget embedded.
pub async fn demo_page(Path(channel_key): Path<String>) -> Html<String> {
    Html(DEMO_HTML.replace("__CHANNEL_KEY__", &escape_html(&channel_key)))
}

fn escape_html(text: &str) -> String {
    text.chars()
        .map(|c| match c {
            '&' => "&amp;".to_string(),
            '<' => "&lt;".to_string(),
            '>' => "&gt;".to_string(),
            '"' => "&quot;".to_string(),
            '\'' => "&#39;".to_string(),
            c => c.to_string(),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::escape_html;

    #[test]
    fn channel_keys_are_escaped_into_the_page() {
        assert_eq!(escape_html("a\"><script>"), "a&quot;&gt;&lt;script&gt;");
    }
}
