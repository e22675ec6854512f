//! Kubernetes field selectors: parse, evaluate, render.
//!
//! Terms are `field=value`, `field==value` or `field!=value`, joined by commas.
//! As in apimachinery, `\` escapes `,`, `=`, `!` and `\` inside a value, and a
//! field an object does not have reads as the empty string.

use std::fmt;
use std::str::FromStr;

use crate::FilterError;

/// Read access to the fields a selector may name.
pub trait Fields {
    /// The value of `path` (such as `metadata.name`), if the object has it.
    fn field(&self, path: &str) -> Option<&str>;
}

/// How a term compares a field.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum FieldOperator {
    /// `field=value` or `field==value`.
    Equals,
    /// `field!=value`.
    NotEquals,
}

/// One comma-separated term.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct FieldTerm {
    field: String,
    operator: FieldOperator,
    value: String,
}

impl FieldTerm {
    /// The field path, such as `metadata.name`.
    pub fn field(&self) -> &str {
        &self.field
    }

    /// The comparison.
    pub fn operator(&self) -> FieldOperator {
        self.operator
    }

    /// The value compared against (unescaped).
    pub fn value(&self) -> &str {
        &self.value
    }

    fn matches<F: Fields + ?Sized>(&self, fields: &F) -> bool {
        let actual = fields.field(&self.field).unwrap_or("");
        match self.operator {
            FieldOperator::Equals => actual == self.value,
            FieldOperator::NotEquals => actual != self.value,
        }
    }
}

impl fmt::Display for FieldTerm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let op = match self.operator {
            FieldOperator::Equals => "=",
            FieldOperator::NotEquals => "!=",
        };
        write!(f, "{}{op}", self.field)?;
        for c in self.value.chars() {
            if matches!(c, ',' | '=' | '!' | '\\') {
                f.write_str("\\")?;
            }
            write!(f, "{c}")?;
        }
        Ok(())
    }
}

/// A parsed field selector: the AND of its terms, kept in canonical order.
#[derive(Debug, Clone, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct FieldSelector {
    terms: Vec<FieldTerm>,
}

impl FieldSelector {
    /// The selector that matches everything.
    pub fn everything() -> Self {
        Self::default()
    }

    /// `metadata.name=<name>`.
    pub fn name_equals(name: &str) -> Self {
        Self {
            terms: vec![FieldTerm {
                field: "metadata.name".to_string(),
                operator: FieldOperator::Equals,
                value: name.to_string(),
            }],
        }
    }

    /// Parses the Kubernetes field selector syntax.
    pub fn parse(text: &str) -> Result<Self, FilterError> {
        let mut terms = Vec::new();
        for raw in split_unescaped(text, ',') {
            if raw.trim().is_empty() {
                if text.trim().is_empty() {
                    continue;
                }
                return Err(FilterError::FieldSelector(
                    "empty term; expected field=value, field==value or field!=value between commas"
                        .to_string(),
                ));
            }
            terms.push(parse_term(raw)?);
        }
        terms.sort();
        terms.dedup();
        Ok(Self { terms })
    }

    /// True for the selector that matches everything.
    pub fn is_empty(&self) -> bool {
        self.terms.is_empty()
    }

    /// The terms, in canonical order.
    pub fn terms(&self) -> &[FieldTerm] {
        &self.terms
    }

    /// The value this selector requires of `field` with `=`, if any.
    pub fn required(&self, field: &str) -> Option<&str> {
        self.terms
            .iter()
            .find(|t| t.field == field && t.operator == FieldOperator::Equals)
            .map(|t| t.value.as_str())
    }

    /// The AND of both selectors.
    #[must_use]
    pub fn and(mut self, other: &FieldSelector) -> Self {
        self.terms.extend(other.terms.iter().cloned());
        self.terms.sort();
        self.terms.dedup();
        self
    }

    /// Whether `fields` satisfy every term. Allocates nothing.
    pub fn matches<F: Fields + ?Sized>(&self, fields: &F) -> bool {
        self.terms.iter().all(|t| t.matches(fields))
    }
}

impl fmt::Display for FieldSelector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, term) in self.terms.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            write!(f, "{term}")?;
        }
        Ok(())
    }
}

impl FromStr for FieldSelector {
    type Err = FilterError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Self::parse(text)
    }
}

/// Splits on `sep` where it is not escaped by a backslash.
fn split_unescaped(text: &str, sep: char) -> Vec<&str> {
    let mut parts = Vec::new();
    let mut start = 0;
    let mut escaped = false;
    for (i, c) in text.char_indices() {
        if escaped {
            escaped = false;
        } else if c == '\\' {
            escaped = true;
        } else if c == sep {
            parts.push(&text[start..i]);
            start = i + 1;
        }
    }
    parts.push(&text[start..]);
    parts
}

fn parse_term(raw: &str) -> Result<FieldTerm, FilterError> {
    let expected = "expected field=value, field==value or field!=value";
    // The operator is the first unescaped `=`, `==` or `!=`.
    let mut escaped = false;
    for (i, c) in raw.char_indices() {
        if escaped {
            escaped = false;
            continue;
        }
        let (operator, op_len) = match c {
            '\\' => {
                escaped = true;
                continue;
            }
            '!' if raw[i + 1..].starts_with('=') => (FieldOperator::NotEquals, 2),
            '=' if raw[i + 1..].starts_with('=') => (FieldOperator::Equals, 2),
            '=' => (FieldOperator::Equals, 1),
            _ => continue,
        };
        let field = raw[..i].trim();
        if field.is_empty() {
            return Err(FilterError::FieldSelector(format!(
                "term {raw:?} has no field; {expected}"
            )));
        }
        if !field
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_'))
        {
            return Err(FilterError::FieldSelector(format!(
                "field {field:?} is invalid; expected a dotted path such as metadata.name"
            )));
        }
        let value = unescape(raw[i + op_len..].trim())?;
        return Ok(FieldTerm {
            field: field.to_string(),
            operator,
            value,
        });
    }
    Err(FilterError::FieldSelector(format!(
        "term {raw:?} has no operator; {expected}"
    )))
}

fn unescape(text: &str) -> Result<String, FilterError> {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => match chars.next() {
                Some(e @ (',' | '=' | '!' | '\\')) => out.push(e),
                Some(other) => {
                    return Err(FilterError::FieldSelector(format!(
                        "invalid escape \"\\{other}\"; only \\, \\= \\! and \\\\ are escapes"
                    )));
                }
                None => {
                    return Err(FilterError::FieldSelector(
                        "value ends with a lone \"\\\"; expected an escaped character after it"
                            .to_string(),
                    ));
                }
            },
            '=' | '!' | ',' => {
                return Err(FilterError::FieldSelector(format!(
                    "value {text:?} has an unescaped {c:?}; escape it with a backslash"
                )));
            }
            _ => out.push(c),
        }
    }
    Ok(out)
}
