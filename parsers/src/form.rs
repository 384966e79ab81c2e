//! Reading a request body field by field, so one 422 names every bad field: `Check` gathers
//! the problems, `Fields` reads an admin body's fields through it, and `Invalid` is what a
//! failed check becomes (the services map it to their `422` problem).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// One invalid input field and what is wrong with it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct FieldError {
    pub field: String,
    pub message: String,
}

impl FieldError {
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            message: message.into(),
        }
    }
}

/// Every problem a request's fields had (never empty).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invalid(pub Vec<FieldError>);

/// The problems found so far.
#[derive(Debug, Default)]
pub struct Check(pub Vec<FieldError>);

impl Check {
    pub fn require(&mut self, ok: bool, field: &str, message: &str) -> &mut Self {
        if !ok {
            self.0.push(FieldError::new(field, message));
        }
        self
    }

    pub fn text(&mut self, value: &str, field: &str, max: usize) -> &mut Self {
        let len = value.chars().count();
        self.require(
            len >= 1 && len <= max && !value.chars().any(char::is_control),
            field,
            &format!("must be 1 to {max} characters without control characters"),
        )
    }

    pub fn done(&mut self) -> Result<(), Invalid> {
        if self.0.is_empty() {
            Ok(())
        } else {
            Err(Invalid(std::mem::take(&mut self.0)))
        }
    }
}

pub struct Fields<'a> {
    pub map: &'a Map<String, Value>,
    pub check: Check,
}

impl<'a> Fields<'a> {
    pub fn new(body: &'a Value) -> Result<Self, Invalid> {
        match body.as_object() {
            Some(map) => Ok(Self {
                map,
                check: Check::default(),
            }),
            None => Err(Invalid(vec![FieldError::new(
                "body",
                "must be a JSON object",
            )])),
        }
    }

    /// Names fields this route does not know.
    pub fn only(&mut self, known: &[&str]) {
        let unknown: Vec<String> = self
            .map
            .keys()
            .filter(|k| !known.contains(&k.as_str()))
            .cloned()
            .collect();
        for k in unknown {
            self.check.require(false, &k, "is not a known field");
        }
    }

    pub fn text(&mut self, name: &str, max: usize, required: bool) -> Option<String> {
        match self.map.get(name) {
            None | Some(Value::Null) => {
                self.check.require(!required, name, "is required");
                None
            }
            Some(Value::String(s)) => {
                self.check.text(s, name, max);
                Some(s.clone())
            }
            Some(_) => {
                self.check.require(false, name, "must be a string");
                None
            }
        }
    }

    pub fn int(&mut self, name: &str, min: i64, max: i64, required: bool) -> Option<i64> {
        match self.map.get(name) {
            None | Some(Value::Null) => {
                self.check.require(!required, name, "is required");
                None
            }
            Some(v) => match v.as_i64() {
                Some(n) if (min..=max).contains(&n) => Some(n),
                _ => {
                    self.check.require(
                        false,
                        name,
                        &format!("must be a whole number from {min} to {max}"),
                    );
                    None
                }
            },
        }
    }

    pub fn time(&mut self, name: &str, required: bool) -> Option<DateTime<Utc>> {
        let raw = self.text(name, 64, required)?;
        match DateTime::parse_from_rfc3339(&raw) {
            Ok(t) => Some(t.with_timezone(&Utc)),
            Err(_) => {
                self.check
                    .require(false, name, "must be an RFC 3339 time with offset");
                None
            }
        }
    }

    pub fn done(&mut self) -> Result<(), Invalid> {
        self.check.done()
    }
}
