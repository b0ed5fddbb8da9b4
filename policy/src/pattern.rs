//! Wildcard patterns of policies: `*` matches any run of characters and `?` exactly one;
//! `${name}` policy variables are replaced by the request's condition key `name` before
//! matching (`${*}`, `${?}` and `${$}` stand for the literal characters).

use crate::context::{normalize_key, Context};

/// How a pattern's text is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Syntax {
    /// `*` and `?` are wildcards (otherwise literal characters).
    pub wildcards: bool,
    /// `${...}` are policy variables (policy version 2012-10-17).
    pub variables: bool,
}

/// One element of a parsed pattern.
#[derive(Debug, Clone, PartialEq)]
enum Piece {
    Char(char),
    AnyRun,
    AnyOne,
    Variable(String),
}

/// One element of a pattern once its variables have values.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Token {
    Char(char),
    AnyRun,
    AnyOne,
}

/// A parsed pattern, matched against request values.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Pattern {
    pieces: Vec<Piece>,
}

impl Pattern {
    /// Parses `text`; an unterminated `${` is literal text.
    pub(crate) fn parse(text: &str, syntax: Syntax) -> Self {
        let chars: Vec<char> = text.chars().collect();
        let mut pieces = Vec::with_capacity(chars.len());
        let mut i = 0;
        while i < chars.len() {
            let c = chars[i];
            if syntax.variables && c == '$' && chars.get(i + 1) == Some(&'{') {
                if let Some(end) = chars[i + 2..].iter().position(|&c| c == '}') {
                    let name: String = chars[i + 2..i + 2 + end].iter().collect();
                    pieces.push(match name.as_str() {
                        "*" | "?" | "$" => Piece::Char(name.chars().next().unwrap_or('$')),
                        _ => Piece::Variable(normalize_key(&name)),
                    });
                    i += end + 3;
                    continue;
                }
            }
            pieces.push(match c {
                '*' if syntax.wildcards => Piece::AnyRun,
                '?' if syntax.wildcards => Piece::AnyOne,
                c => Piece::Char(c),
            });
            i += 1;
        }
        Self { pieces }
    }

    /// Whether `text` matches, with variables taken from `context`; a variable the context
    /// has no single value for matches nothing.
    pub(crate) fn matches(&self, text: &str, context: &Context, fold_case: bool) -> bool {
        let Some(tokens) = self.tokens(context) else { return false };
        let text: Vec<char> = text.chars().collect();
        wildcard_match(&tokens, &text, fold_case)
    }

    /// Whether the pattern begins with the literal text `prefix` (ASCII case folded): every
    /// value it matches then does.
    pub(crate) fn has_literal_prefix(&self, prefix: &str) -> bool {
        let mut pieces = self.pieces.iter();
        prefix.chars().all(|wanted| matches!(pieces.next(), Some(Piece::Char(c)) if c.eq_ignore_ascii_case(&wanted)))
    }

    /// The variables the pattern names.
    pub(crate) fn variables(&self) -> impl Iterator<Item = &str> {
        self.pieces.iter().filter_map(|p| match p {
            Piece::Variable(name) => Some(name.as_str()),
            _ => None,
        })
    }

    /// Whether the pattern is only `*`.
    pub(crate) fn is_any(&self) -> bool {
        self.pieces == [Piece::AnyRun]
    }

    fn tokens(&self, context: &Context) -> Option<Vec<Token>> {
        let mut tokens = Vec::with_capacity(self.pieces.len());
        for piece in &self.pieces {
            match piece {
                Piece::Char(c) => tokens.push(Token::Char(*c)),
                Piece::AnyRun => tokens.push(Token::AnyRun),
                Piece::AnyOne => tokens.push(Token::AnyOne),
                Piece::Variable(name) => match context.get(name) {
                    Some([value]) => tokens.extend(value.chars().map(Token::Char)),
                    _ => return None,
                },
            }
        }
        Some(tokens)
    }
}

fn same_char(a: char, b: char, fold_case: bool) -> bool {
    a == b || (fold_case && a.to_lowercase().eq(b.to_lowercase()))
}

/// Iterative wildcard matching: on a mismatch, retry from the last `*` one character further
/// on. Time is bounded by pattern length times text length (no exponential backtracking).
fn wildcard_match(pattern: &[Token], text: &[char], fold_case: bool) -> bool {
    let (mut p, mut t) = (0, 0);
    let mut retry: Option<(usize, usize)> = None;
    while t < text.len() {
        match pattern.get(p) {
            Some(Token::AnyRun) => {
                retry = Some((p, t));
                p += 1;
                continue;
            }
            Some(Token::AnyOne) => {
                p += 1;
                t += 1;
                continue;
            }
            Some(Token::Char(c)) if same_char(*c, text[t], fold_case) => {
                p += 1;
                t += 1;
                continue;
            }
            _ => {}
        }
        let Some((star, from)) = retry else { return false };
        p = star + 1;
        t = from + 1;
        retry = Some((star, from + 1));
    }
    pattern[p..].iter().all(|token| *token == Token::AnyRun)
}

#[cfg(test)]
mod tests {
    use super::*;

    const WILD: Syntax = Syntax { wildcards: true, variables: true };
    const LITERAL: Syntax = Syntax { wildcards: false, variables: true };

    fn matches(pattern: &str, text: &str) -> bool {
        Pattern::parse(pattern, WILD).matches(text, &Context::default(), false)
    }

    #[test]
    fn star_and_question_mark() {
        assert!(matches("*", ""));
        assert!(matches("*", "anything/at/all"));
        assert!(matches("arn:aws:s3:::b/*", "arn:aws:s3:::b/k/deep"));
        assert!(!matches("arn:aws:s3:::b/*", "arn:aws:s3:::bb/k"));
        assert!(matches("a?c", "abc"));
        assert!(!matches("a?c", "ac"));
        assert!(matches("a*b*c", "axxbyyc"));
        assert!(!matches("a*b*c", "axxbyy"));
        assert!(matches("*a*a*a*a*a*a*b", &format!("{}b", "a".repeat(200))));
        assert!(!matches("*a*a*a*a*a*a*b", &"a".repeat(200)), "no exponential blow-up either");
        assert!(!matches("abc", "abcd"));
        assert!(matches("", ""));
    }

    #[test]
    fn case_folding_is_opt_in() {
        let p = Pattern::parse("s3:Get*", WILD);
        assert!(p.matches("S3:GETOBJECT", &Context::default(), true));
        assert!(!p.matches("S3:GETOBJECT", &Context::default(), false));
    }

    #[test]
    fn variables_take_single_context_values_and_escapes_are_literal() {
        let mut context = Context::default();
        context.insert("aws:username", "alice");
        let p = Pattern::parse("arn:aws:s3:::home/${aws:username}/*", WILD);
        assert!(p.matches("arn:aws:s3:::home/alice/x", &context, false));
        assert!(!p.matches("arn:aws:s3:::home/bob/x", &context, false));
        assert!(!p.matches("arn:aws:s3:::home/alice/x", &Context::default(), false), "unset variable");
        let star = Pattern::parse("a${*}b${?}c${$}", WILD);
        assert!(star.matches("a*b?c$", &context, false));
        assert!(!star.matches("aXb?c$", &context, false), "${{*}} is a literal star");
        let value_star = Pattern::parse("${aws:username}", WILD);
        context.insert("aws:userid", "a*");
        assert!(!Pattern::parse("${aws:userid}", WILD).matches("abc", &context, false), "values are literal");
        assert!(value_star.matches("alice", &context, false));
        assert!(Pattern::parse("${unterminated", WILD).matches("${unterminated", &context, false));
    }

    #[test]
    fn literal_syntax_has_no_wildcards() {
        let p = Pattern::parse("a*", LITERAL);
        assert!(p.matches("a*", &Context::default(), false));
        assert!(!p.matches("ab", &Context::default(), false));
    }
}
