//! Text shown to people (a terminal, a web page) that may come from a proof bundle, a
//! chain or a request: control and bidi characters are made visible, so what is drawn is
//! what the text says (a crafted issuer name cannot redraw a REVOKED line as VALID, nor a
//! right-to-left override reverse the words around it).

/// `text` with every control character (C0, C1, DEL) and every Unicode bidi control
/// escaped as `\u{..}`, so what a terminal draws is what the text says.
pub fn printable(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        let bidi = matches!(
            c,
            '\u{061C}' | '\u{200E}' | '\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}'
        );
        if c.is_control() || bidi {
            out.push_str(&c.escape_unicode().to_string());
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn printable_escapes_control_and_bidi_characters_only() {
        assert_eq!(printable("Université de Genève"), "Université de Genève");
        assert_eq!(printable("a\u{1b}[2Kb"), "a\\u{1b}[2Kb");
        assert_eq!(
            printable("x\ry\u{202e}z\u{7f}"),
            "x\\u{d}y\\u{202e}z\\u{7f}"
        );
    }
}
