//! Reading an admin request body field by field, so one 422 names every bad field.

use chrono::{DateTime, Utc};
use serde_json::{Map, Value};

use crate::model::Check;

pub struct Fields<'a> {
    pub map: &'a Map<String, Value>,
    pub check: Check,
}

impl<'a> Fields<'a> {
    pub fn new(body: &'a Value) -> Result<Self, crate::error::ApiError> {
        match body.as_object() {
            Some(map) => Ok(Self {
                map,
                check: Check::default(),
            }),
            None => Err(crate::error::ApiError::field(
                "body",
                "must be a JSON object",
            )),
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

    pub fn done(&mut self) -> Result<(), crate::error::ApiError> {
        self.check.done()
    }
}
