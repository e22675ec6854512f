//! Kubernetes label selectors: parse, evaluate against a label map, render.
//!
//! The grammar and the semantics are those of apimachinery's `labels.Parse`:
//! `key`, `!key`, `key=value`, `key==value`, `key!=value`,
//! `key in (a,b)`, `key notin (a,b)`, joined by commas (a logical AND).
//! `!=` and `notin` match objects that do not carry the key at all.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::str::FromStr;

use crate::FilterError;

/// Read access to an object's labels, so that evaluation borrows instead of copying.
pub trait Labels {
    /// The value of label `key`, if the object carries it.
    fn label(&self, key: &str) -> Option<&str>;
}

impl Labels for BTreeMap<String, String> {
    fn label(&self, key: &str) -> Option<&str> {
        self.get(key).map(String::as_str)
    }
}

impl<S: std::hash::BuildHasher> Labels for HashMap<String, String, S> {
    fn label(&self, key: &str) -> Option<&str> {
        self.get(key).map(String::as_str)
    }
}

impl<L: Labels + ?Sized> Labels for Option<&L> {
    fn label(&self, key: &str) -> Option<&str> {
        self.and_then(|labels| labels.label(key))
    }
}

impl<L: Labels + ?Sized> Labels for &L {
    fn label(&self, key: &str) -> Option<&str> {
        (**self).label(key)
    }
}

/// How one requirement compares a label.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Operator {
    /// `key=value` (also written `key==value`).
    Equals,
    /// `key!=value`: true when the key is absent.
    NotEquals,
    /// `key in (a,b)`.
    In,
    /// `key notin (a,b)`: true when the key is absent.
    NotIn,
    /// `key`.
    Exists,
    /// `!key`.
    DoesNotExist,
}

/// One comma-separated term of a label selector.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Requirement {
    key: String,
    operator: Operator,
    /// Sorted and free of duplicates; one value for `=`/`!=`, none for existence tests.
    values: Vec<String>,
}

impl Requirement {
    /// The label key this requirement tests.
    pub fn key(&self) -> &str {
        &self.key
    }

    /// The comparison.
    pub fn operator(&self) -> Operator {
        self.operator
    }

    /// The values compared against, sorted.
    pub fn values(&self) -> &[String] {
        &self.values
    }

    /// Whether `labels` satisfy this requirement.
    pub fn matches<L: Labels + ?Sized>(&self, labels: &L) -> bool {
        let value = labels.label(&self.key);
        match self.operator {
            Operator::Equals => value == Some(self.values[0].as_str()),
            Operator::NotEquals => value != Some(self.values[0].as_str()),
            Operator::In => value.is_some_and(|v| self.contains(v)),
            Operator::NotIn => !value.is_some_and(|v| self.contains(v)),
            Operator::Exists => value.is_some(),
            Operator::DoesNotExist => value.is_none(),
        }
    }

    fn contains(&self, value: &str) -> bool {
        self.values
            .binary_search_by(|candidate| candidate.as_str().cmp(value))
            .is_ok()
    }
}

impl fmt::Display for Requirement {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.operator {
            Operator::Equals => write!(f, "{}={}", self.key, self.values[0]),
            Operator::NotEquals => write!(f, "{}!={}", self.key, self.values[0]),
            Operator::In => write!(f, "{} in ({})", self.key, self.values.join(",")),
            Operator::NotIn => write!(f, "{} notin ({})", self.key, self.values.join(",")),
            Operator::Exists => f.write_str(&self.key),
            Operator::DoesNotExist => write!(f, "!{}", self.key),
        }
    }
}

/// A parsed label selector: the AND of its requirements.
///
/// Requirements are kept sorted by key, so two selectors that mean the same
/// render to the same canonical string (`app==web` and `app=web` both render
/// as `app=web`) and compare equal.
#[derive(Debug, Clone, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct LabelSelector {
    requirements: Vec<Requirement>,
}

impl LabelSelector {
    /// The selector that matches every object.
    pub fn everything() -> Self {
        Self::default()
    }

    /// Parses the Kubernetes label selector syntax.
    pub fn parse(text: &str) -> Result<Self, FilterError> {
        Parser::new(text).selector()
    }

    /// True for the selector that matches everything (the empty string).
    pub fn is_empty(&self) -> bool {
        self.requirements.is_empty()
    }

    /// The requirements, sorted by key.
    pub fn requirements(&self) -> &[Requirement] {
        &self.requirements
    }

    /// Whether `labels` satisfy every requirement. Allocates nothing.
    pub fn matches<L: Labels + ?Sized>(&self, labels: &L) -> bool {
        self.requirements.iter().all(|r| r.matches(labels))
    }
}

impl fmt::Display for LabelSelector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, requirement) in self.requirements.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            write!(f, "{requirement}")?;
        }
        Ok(())
    }
}

impl FromStr for LabelSelector {
    type Err = FilterError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Self::parse(text)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Token<'a> {
    Identifier(&'a str),
    Not,
    Equals,
    DoubleEquals,
    NotEquals,
    In,
    NotIn,
    Open,
    Close,
    Comma,
    Unsupported(&'a str),
}

impl Token<'_> {
    fn describe(&self) -> String {
        match self {
            Token::Identifier(text) | Token::Unsupported(text) => format!("{text:?}"),
            Token::Not => "\"!\"".into(),
            Token::Equals => "\"=\"".into(),
            Token::DoubleEquals => "\"==\"".into(),
            Token::NotEquals => "\"!=\"".into(),
            Token::In => "\"in\"".into(),
            Token::NotIn => "\"notin\"".into(),
            Token::Open => "\"(\"".into(),
            Token::Close => "\")\"".into(),
            Token::Comma => "\",\"".into(),
        }
    }
}

fn is_special(c: char) -> bool {
    matches!(c, '!' | '=' | '(' | ')' | ',' | '<' | '>')
}

fn lex(text: &str) -> Vec<(usize, Token<'_>)> {
    let mut tokens = Vec::new();
    let mut start = 0;
    while let Some(c) = text[start..].chars().next() {
        if c.is_whitespace() {
            start += c.len_utf8();
            continue;
        }
        let next_is_eq = text[start + c.len_utf8()..].starts_with('=');
        let (token, len) = match c {
            '!' if next_is_eq => (Token::NotEquals, 2),
            '!' => (Token::Not, 1),
            '=' if next_is_eq => (Token::DoubleEquals, 2),
            '=' => (Token::Equals, 1),
            '(' => (Token::Open, 1),
            ')' => (Token::Close, 1),
            ',' => (Token::Comma, 1),
            '<' | '>' => (Token::Unsupported(&text[start..start + 1]), 1),
            _ => {
                let len = text[start..]
                    .find(|c: char| c.is_whitespace() || is_special(c))
                    .unwrap_or(text.len() - start);
                let word = &text[start..start + len];
                let token = match word {
                    "in" => Token::In,
                    "notin" => Token::NotIn,
                    _ => Token::Identifier(word),
                };
                (token, len)
            }
        };
        tokens.push((start, token));
        start += len;
    }
    tokens
}

struct Parser<'a> {
    tokens: Vec<(usize, Token<'a>)>,
    next: usize,
}

impl<'a> Parser<'a> {
    fn new(text: &'a str) -> Self {
        Self {
            tokens: lex(text),
            next: 0,
        }
    }

    fn peek(&self) -> Option<&Token<'a>> {
        self.tokens.get(self.next).map(|(_, t)| t)
    }

    fn bump(&mut self) -> Option<Token<'a>> {
        let token = self.tokens.get(self.next).map(|(_, t)| t.clone());
        self.next += 1;
        token
    }

    fn error(&self, expected: &str) -> FilterError {
        let found = match self.tokens.get(self.next) {
            Some((at, token)) => format!("{} at position {}", token.describe(), at + 1),
            None => "the end of the selector".to_string(),
        };
        FilterError::LabelSelector(format!("expected {expected}, found {found}"))
    }

    fn selector(mut self) -> Result<LabelSelector, FilterError> {
        let mut requirements = Vec::new();
        if self.peek().is_none() {
            return Ok(LabelSelector::everything());
        }
        loop {
            requirements.push(self.requirement()?);
            match self.peek() {
                None => break,
                Some(Token::Comma) => {
                    self.next += 1;
                }
                Some(_) => return Err(self.error("\",\" or the end of the selector")),
            }
        }
        requirements.sort_by(|a: &Requirement, b| a.key.cmp(&b.key));
        Ok(LabelSelector { requirements })
    }

    fn key(&mut self) -> Result<String, FilterError> {
        match self.peek() {
            Some(Token::Identifier(key)) => {
                let key = *key;
                validate_key(key)?;
                self.next += 1;
                Ok(key.to_string())
            }
            _ => Err(self.error("a label key")),
        }
    }

    fn requirement(&mut self) -> Result<Requirement, FilterError> {
        if self.peek() == Some(&Token::Not) {
            self.next += 1;
            let key = self.key()?;
            return Ok(Requirement {
                key,
                operator: Operator::DoesNotExist,
                values: Vec::new(),
            });
        }
        let key = self.key()?;
        let operator = match self.peek() {
            None | Some(Token::Comma) => {
                return Ok(Requirement {
                    key,
                    operator: Operator::Exists,
                    values: Vec::new(),
                });
            }
            Some(Token::Equals | Token::DoubleEquals) => Operator::Equals,
            Some(Token::NotEquals) => Operator::NotEquals,
            Some(Token::In) => Operator::In,
            Some(Token::NotIn) => Operator::NotIn,
            Some(Token::Unsupported(op)) => {
                let op = *op;
                return Err(FilterError::LabelSelector(format!(
                    "operator {op:?} is not supported; expected =, ==, !=, in or notin"
                )));
            }
            Some(_) => return Err(self.error("an operator (=, ==, !=, in, notin)")),
        };
        self.next += 1;
        let values = match operator {
            Operator::In | Operator::NotIn => self.value_set(&key)?,
            _ => vec![self.single_value()?],
        };
        Ok(Requirement {
            key,
            operator,
            values,
        })
    }

    fn single_value(&mut self) -> Result<String, FilterError> {
        match self.peek() {
            // `key=` selects the empty value, as in Kubernetes.
            None | Some(Token::Comma) => Ok(String::new()),
            Some(Token::Identifier(value)) => {
                let value = *value;
                validate_value(value)?;
                self.next += 1;
                Ok(value.to_string())
            }
            Some(_) => Err(self.error("a label value")),
        }
    }

    fn value_set(&mut self, key: &str) -> Result<Vec<String>, FilterError> {
        if self.peek() != Some(&Token::Open) {
            return Err(self.error("\"(\""));
        }
        self.next += 1;
        if self.peek() == Some(&Token::Close) {
            return Err(FilterError::LabelSelector(format!(
                "the value set of {key:?} is empty; expected at least one value for in/notin"
            )));
        }
        let mut values = Vec::new();
        loop {
            match self.peek() {
                Some(Token::Identifier(value)) => {
                    let value = *value;
                    validate_value(value)?;
                    values.push(value.to_string());
                    self.next += 1;
                }
                Some(Token::Comma | Token::Close) => values.push(String::new()),
                _ => return Err(self.error("a value or \")\"")),
            }
            match self.bump() {
                Some(Token::Comma) => continue,
                Some(Token::Close) => break,
                _ => {
                    self.next -= 1;
                    return Err(self.error("\",\" or \")\""));
                }
            }
        }
        values.sort();
        values.dedup();
        Ok(values)
    }
}

/// `[prefix/]name`: prefix a DNS-1123 subdomain, name up to 63 characters of
/// alphanumerics, `-`, `_`, `.`, beginning and ending with an alphanumeric.
fn validate_key(key: &str) -> Result<(), FilterError> {
    let (prefix, name) = match key.split_once('/') {
        Some((prefix, name)) => (Some(prefix), name),
        None => (None, key),
    };
    if let Some(prefix) = prefix
        && !is_dns_subdomain(prefix)
    {
        return Err(FilterError::LabelSelector(format!(
            "label key {key:?} has an invalid prefix; expected a DNS subdomain such as example.com"
        )));
    }
    if name.is_empty() || !is_label_name(name) {
        return Err(FilterError::LabelSelector(format!(
            "label key {key:?} is invalid; expected at most 63 characters of [A-Za-z0-9-_.], beginning and ending with an alphanumeric, with an optional DNS-subdomain prefix and '/'"
        )));
    }
    Ok(())
}

fn validate_value(value: &str) -> Result<(), FilterError> {
    if value.is_empty() || is_label_name(value) {
        Ok(())
    } else {
        Err(FilterError::LabelSelector(format!(
            "label value {value:?} is invalid; expected at most 63 characters of [A-Za-z0-9-_.], beginning and ending with an alphanumeric"
        )))
    }
}

/// The shape shared by label names and label values.
pub(crate) fn is_label_name(text: &str) -> bool {
    let bytes = text.as_bytes();
    !bytes.is_empty()
        && bytes.len() <= 63
        && bytes[0].is_ascii_alphanumeric()
        && bytes[bytes.len() - 1].is_ascii_alphanumeric()
        && bytes
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

/// A DNS-1123 subdomain: dot-separated lowercase labels, at most 253 characters.
pub fn is_dns_subdomain(text: &str) -> bool {
    !text.is_empty() && text.len() <= 253 && text.split('.').all(is_dns_label)
}

/// A DNS-1123 label: lowercase alphanumerics and `-`, at most 63, alphanumeric at both ends.
pub fn is_dns_label(text: &str) -> bool {
    let bytes = text.as_bytes();
    !bytes.is_empty()
        && bytes.len() <= 63
        && bytes[0].is_ascii_alphanumeric()
        && bytes[bytes.len() - 1].is_ascii_alphanumeric()
        && bytes
            .iter()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'-')
}
