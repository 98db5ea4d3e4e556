//! The visible text of an HTML page, and its title, from html5gum's tokens (a WHATWG tokenizer
//! without a tree builder: enough to tell text from markup, and small to build).
//!
//! Text inside `script`, `style`, `noscript`, `template`, `svg`, `math`, `iframe`, `object`,
//! `canvas` and elements with the `hidden` attribute is dropped; whitespace collapses as a browser
//! collapses it (kept in `pre` and `textarea`); block elements end lines, and paragraph-like ones
//! leave a blank line, so that chunking can cut there. Bytes are read as UTF-8 (invalid sequences
//! become U+FFFD): a page in another encoding comes out garbled, not refused.

use html5gum::{DefaultEmitter, Token, Tokenizer};

/// The text and title of a page.
#[derive(Debug, PartialEq)]
pub(super) struct Visible {
    pub text: String,
    pub title: Option<String>,
}

const SKIPPED: [&[u8]; 9] = [
    b"script",
    b"style",
    b"noscript",
    b"template",
    b"svg",
    b"math",
    b"iframe",
    b"object",
    b"canvas",
];

/// Elements that stand apart from the text around them by a blank line.
const PARAGRAPHS: [&[u8]; 25] = [
    b"p",
    b"h1",
    b"h2",
    b"h3",
    b"h4",
    b"h5",
    b"h6",
    b"blockquote",
    b"pre",
    b"section",
    b"article",
    b"header",
    b"footer",
    b"nav",
    b"aside",
    b"main",
    b"figure",
    b"table",
    b"ul",
    b"ol",
    b"dl",
    b"form",
    b"hr",
    b"address",
    b"details",
];

/// Elements that start a line of their own.
const LINES: [&[u8]; 11] = [
    b"br",
    b"li",
    b"tr",
    b"dt",
    b"dd",
    b"div",
    b"option",
    b"caption",
    b"figcaption",
    b"summary",
    b"body",
];

/// Void elements have no end tag, so they never open a skipped or hidden region.
const VOID: [&[u8]; 14] = [
    b"area", b"base", b"br", b"col", b"embed", b"hr", b"img", b"input", b"link", b"meta", b"param",
    b"source", b"track", b"wbr",
];

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Break {
    Space,
    Line,
    Paragraph,
}

#[derive(Default)]
struct Builder {
    text: String,
    pending: Option<Break>,
}

impl Builder {
    fn brk(&mut self, b: Break) {
        self.pending = Some(self.pending.map_or(b, |p| p.max(b)));
    }

    /// The break a start or end tag of element `name` makes.
    fn around(&mut self, name: &[u8]) {
        if PARAGRAPHS.contains(&name) {
            self.brk(Break::Paragraph);
        } else if LINES.contains(&name) {
            self.brk(Break::Line);
        } else if name == b"td" || name == b"th" {
            self.brk(Break::Space);
        }
    }

    fn flush(&mut self) {
        if let Some(b) = self.pending.take() {
            if !self.text.is_empty() {
                self.text.push_str(match b {
                    Break::Space => " ",
                    Break::Line => "\n",
                    Break::Paragraph => "\n\n",
                });
            }
        }
    }

    fn push(&mut self, s: &str, preformatted: bool) {
        if preformatted {
            if !s.is_empty() {
                self.flush();
                self.text.push_str(s);
            }
            return;
        }
        let html_space = |c: char| matches!(c, ' ' | '\t' | '\n' | '\r' | '\x0C');
        if s.starts_with(html_space) {
            self.brk(Break::Space);
        }
        let mut words = s.split(html_space).filter(|w| !w.is_empty()).peekable();
        while let Some(word) = words.next() {
            self.flush();
            self.text.push_str(word);
            if words.peek().is_some() {
                self.brk(Break::Space);
            }
        }
        if s.ends_with(html_space) && !s.trim_matches(html_space).is_empty() {
            self.brk(Break::Space);
        }
    }
}

fn collapse(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

pub(super) fn visible_text(bytes: &[u8]) -> Visible {
    let mut emitter = DefaultEmitter::default();
    // Switch to raw text inside script, style and title as a tree builder would, so that a
    // `<` in a script is not taken for a tag.
    emitter.naively_switch_states(true);
    let mut out = Builder::default();
    let mut title: Option<String> = None;
    let mut in_title = false;
    let mut title_text = String::new();
    // The element whose content is being dropped, and how deeply it is nested in itself.
    let mut dropping: Option<(Vec<u8>, usize)> = None;
    let mut preformatted = 0usize;
    for token in Tokenizer::new_with_emitter(bytes, emitter) {
        let Ok(token) = token;
        match token {
            Token::StartTag(tag) => {
                let name = tag.name.as_slice();
                let void = VOID.contains(&name) || tag.self_closing;
                if let Some((open, depth)) = &mut dropping {
                    if open.as_slice() == name && !void {
                        *depth += 1;
                    }
                    continue;
                }
                if !void
                    && (SKIPPED.contains(&name)
                        || tag.attributes.keys().any(|k| k.as_slice() == b"hidden"))
                {
                    dropping = Some((name.to_vec(), 1));
                    continue;
                }
                match name {
                    b"title" if title.is_none() => in_title = true,
                    b"pre" | b"textarea" => preformatted += 1,
                    _ => {}
                }
                out.around(name);
            }
            Token::EndTag(tag) => {
                let name = tag.name.as_slice();
                if let Some((open, depth)) = &mut dropping {
                    if open.as_slice() == name {
                        *depth -= 1;
                        if *depth == 0 {
                            dropping = None;
                        }
                    }
                    continue;
                }
                match name {
                    b"title" if in_title => {
                        in_title = false;
                        let t = collapse(&title_text);
                        title = (!t.is_empty()).then_some(t);
                    }
                    b"pre" | b"textarea" => preformatted = preformatted.saturating_sub(1),
                    _ => {}
                }
                out.around(name);
            }
            Token::String(s) => {
                if dropping.is_some() {
                    continue;
                }
                let s = String::from_utf8_lossy(&s.value);
                if in_title {
                    title_text.push_str(&s);
                } else {
                    out.push(&s, preformatted > 0);
                }
            }
            Token::Comment(_) | Token::Doctype(_) | Token::Error(_) => {}
        }
    }
    if in_title {
        let t = collapse(&title_text);
        title = (!t.is_empty()).then_some(t);
    }
    Visible {
        text: out.text,
        title,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(html: &str) -> String {
        visible_text(html.as_bytes()).text
    }

    #[test]
    fn title_and_visible_text_without_scripts_or_styles() {
        let page = visible_text(
            br#"<!DOCTYPE html><html><head><meta charset="utf-8"><title> Quiver &amp; friends </title>
            <style>body { color: red } p < a {}</style>
            <script>if (a < b && c > d) { document.write("<p>no</p>") }</script></head>
            <body><h1>Vector   search</h1>
            <p>Fast &lt;and&gt;
               small.<br>Second line</p>
            <noscript>enable JS</noscript><template><p>later</p></template>
            <div hidden><p>secret</p><div>nested</div></div>
            <svg><title>icon</title><text>svg text</text></svg>
            <ul><li>one</li><li>two &mdash; 2</li></ul>
            <table><tr><td>a</td><td>b</td></tr><tr><td>c</td><td>d</td></tr></table>
            <pre>  keep
   this</pre><!-- a comment --><p>end</p></body></html>"#,
        );
        assert_eq!(page.title.as_deref(), Some("Quiver & friends"));
        assert_eq!(
            page.text,
            "Vector search\n\nFast <and> small.\nSecond line\n\none\ntwo — 2\n\na b\nc d\n\n  keep\n   this\n\nend"
        );
    }

    #[test]
    fn inline_markup_keeps_words_together_and_apart() {
        assert_eq!(
            text("<p>in<b>line</b> and <i>spaced</i> words</p>"),
            "inline and spaced words"
        );
        assert_eq!(text("no markup at all"), "no markup at all");
        assert_eq!(text("<p></p><p>  </p>"), "");
        assert_eq!(visible_text(b"<p>x</p>").title, None);
    }

    #[test]
    fn broken_markup_and_bytes_still_give_text() {
        assert_eq!(
            text("<p>unclosed <b>bold <div>block"),
            "unclosed bold\nblock"
        );
        assert_eq!(visible_text(b"<p>caf\xE9</p>").text, "caf\u{FFFD}");
        // An unclosed script swallows the rest, as in a browser.
        assert_eq!(text("<p>before</p><script>var x = 1;"), "before");
    }
}
