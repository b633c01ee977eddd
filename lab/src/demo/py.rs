//! The demo's messages print what they checked the way python3 printed it (the checks and the summary were python
//! once, and their messages are what a reader of a test log knows): `str()` and `repr()` of what `json.load`
//! returns. So this module keeps a JSON document's key order ([`Dict`], [`Py`], [`Raw`]; `serde_json::Map` sorts
//! without its `preserve_order` feature, and enabling that would change every crate of the workspace) and formats
//! strings, numbers, lists and dicts as python does ([`PyFmt`]).

use serde::de::{self, DeserializeOwned, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;
use serde_json::Number;
use std::fmt;

/// `str()` and `repr()` of a value as python prints it.
pub trait PyFmt {
    fn repr(&self) -> String;
    /// What an f-string's `{x}` prints: a string as is, anything else as its repr.
    fn str(&self) -> String {
        self.repr()
    }
}

impl PyFmt for str {
    fn repr(&self) -> String {
        repr_str(self)
    }
    fn str(&self) -> String {
        self.to_string()
    }
}

impl PyFmt for String {
    fn repr(&self) -> String {
        repr_str(self)
    }
    fn str(&self) -> String {
        self.clone()
    }
}

impl PyFmt for bool {
    fn repr(&self) -> String {
        if *self { "True" } else { "False" }.to_string()
    }
}

impl PyFmt for Number {
    fn repr(&self) -> String {
        if let Some(i) = self.as_i64() {
            i.to_string()
        } else if let Some(u) = self.as_u64() {
            u.to_string()
        } else {
            repr_float(self.as_f64().unwrap_or(f64::NAN))
        }
    }
}

impl<T: PyFmt + ?Sized> PyFmt for &T {
    fn repr(&self) -> String {
        (**self).repr()
    }
    fn str(&self) -> String {
        (**self).str()
    }
}

impl<T: PyFmt> PyFmt for Option<T> {
    fn repr(&self) -> String {
        self.as_ref().map_or_else(|| "None".to_string(), T::repr)
    }
    fn str(&self) -> String {
        self.as_ref().map_or_else(|| "None".to_string(), T::str)
    }
}

impl<T: PyFmt> PyFmt for [T] {
    fn repr(&self) -> String {
        let items: Vec<String> = self.iter().map(T::repr).collect();
        format!("[{}]", items.join(", "))
    }
}

impl<T: PyFmt> PyFmt for Vec<T> {
    fn repr(&self) -> String {
        self.as_slice().repr()
    }
}

impl<T: PyFmt> PyFmt for Dict<T> {
    fn repr(&self) -> String {
        let items: Vec<String> = self
            .0
            .iter()
            .map(|(k, v)| format!("{}: {}", repr_str(k), v.repr()))
            .collect();
        format!("{{{}}}", items.join(", "))
    }
}

impl PyFmt for Py {
    fn repr(&self) -> String {
        match self {
            Py::None => "None".to_string(),
            Py::Bool(b) => b.repr(),
            Py::Num(n) => n.repr(),
            Py::Str(s) => repr_str(s),
            Py::List(l) => l.repr(),
            Py::Dict(d) => d.repr(),
        }
    }
    fn str(&self) -> String {
        match self {
            Py::Str(s) => s.clone(),
            other => other.repr(),
        }
    }
}

/// A number as a python float prints (`repr(float)`): the shortest digits that read back, always with a `.` or an
/// exponent, the exponent from 1e16 and below 1e-4 (`1e+16`, `1.5e-05`).
pub fn repr_float(f: f64) -> String {
    if f.is_nan() {
        return "nan".into();
    }
    if f.is_infinite() {
        return if f > 0.0 { "inf" } else { "-inf" }.into();
    }
    if f == 0.0 {
        return if f.is_sign_negative() { "-0.0" } else { "0.0" }.into();
    }
    // Rust's `{:e}` has the shortest round-trip digits too: "7.24e1", "1e16", "-1.5e-5".
    let sci = format!("{f:e}");
    let (mantissa, exp) = sci.split_once('e').expect("{:e} has an exponent");
    let exp: i32 = exp.parse().expect("{:e}'s exponent is an integer");
    let (sign, mantissa) = match mantissa.strip_prefix('-') {
        Some(m) => ("-", m),
        None => ("", mantissa),
    };
    if !(-4..16).contains(&exp) {
        let esign = if exp < 0 { '-' } else { '+' };
        return format!("{sign}{mantissa}e{esign}{:02}", exp.abs());
    }
    let digits: String = mantissa.chars().filter(|c| *c != '.').collect();
    let point = exp + 1; // digits before the decimal point
    let fixed = if point <= 0 {
        format!("0.{}{digits}", "0".repeat((-point) as usize))
    } else if (point as usize) >= digits.len() {
        format!("{digits}{}.0", "0".repeat(point as usize - digits.len()))
    } else {
        let (int, frac) = digits.split_at(point as usize);
        format!("{int}.{frac}")
    };
    format!("{sign}{fixed}")
}

/// `repr()` of a python str: single quotes unless the text has one and no double quote, backslash escapes for the
/// quote, `\\`, `\t`, `\n`, `\r` and the characters python does not print (`str.isprintable`). That last set is
/// approximated: control characters, the separators but the space, the common format characters and private use
/// (python's exact set comes from the Unicode database; result.json's texts are kubeadm's and the agents' ASCII).
pub fn repr_str(s: &str) -> String {
    let quote = if s.contains('\'') && !s.contains('"') {
        '"'
    } else {
        '\''
    };
    let mut out = String::with_capacity(s.len() + 2);
    out.push(quote);
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\t' => out.push_str("\\t"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            c if c == quote => {
                out.push('\\');
                out.push(c);
            }
            c if !printable(c) => {
                let n = c as u32;
                if n < 0x100 {
                    out.push_str(&format!("\\x{n:02x}"));
                } else if n < 0x10000 {
                    out.push_str(&format!("\\u{n:04x}"));
                } else {
                    out.push_str(&format!("\\U{n:08x}"));
                }
            }
            c => out.push(c),
        }
    }
    out.push(quote);
    out
}

fn printable(c: char) -> bool {
    !(c.is_control()
        || matches!(c,
            '\u{a0}' | '\u{ad}' | '\u{61c}' | '\u{1680}' | '\u{180e}' | '\u{2000}'..='\u{200f}'
            | '\u{2028}'..='\u{202f}' | '\u{205f}'..='\u{206f}' | '\u{3000}' | '\u{feff}'
            | '\u{fff9}'..='\u{fffb}' | '\u{e000}'..='\u{f8ff}' | '\u{f0000}'..='\u{10ffff}'))
}

/// A JSON object in its document's key order, as python's dict keeps it (a repeated key keeps its first place and
/// its last value, as `json.load` does).
#[derive(Clone, Debug, PartialEq)]
pub struct Dict<V>(pub Vec<(String, V)>);

impl<V> Default for Dict<V> {
    fn default() -> Self {
        Dict(Vec::new())
    }
}

impl<V> Dict<V> {
    pub fn get(&self, key: &str) -> Option<&V> {
        self.0.iter().find(|(k, _)| k == key).map(|(_, v)| v)
    }
    pub fn contains_key(&self, key: &str) -> bool {
        self.get(key).is_some()
    }
    pub fn iter(&self) -> impl Iterator<Item = (&str, &V)> {
        self.0.iter().map(|(k, v)| (k.as_str(), v))
    }
    pub fn len(&self) -> usize {
        self.0.len()
    }
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
    fn insert(&mut self, key: String, value: V) {
        match self.0.iter_mut().find(|(k, _)| *k == key) {
            Some((_, v)) => *v = value,
            None => self.0.push((key, value)),
        }
    }
}

impl<'de, V: Deserialize<'de>> Deserialize<'de> for Dict<V> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V_<V>(std::marker::PhantomData<V>);
        impl<'de, V: Deserialize<'de>> Visitor<'de> for V_<V> {
            type Value = Dict<V>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut m: A) -> Result<Dict<V>, A::Error> {
                let mut d = Dict::default();
                while let Some((k, v)) = m.next_entry::<String, V>()? {
                    d.insert(k, v);
                }
                Ok(d)
            }
        }
        d.deserialize_map(V_(std::marker::PhantomData))
    }
}

/// Any JSON value as python holds it after `json.load`: objects keep their key order. For the parts of result.json
/// whose shape is open (a message prints them whole).
#[derive(Clone, Debug, PartialEq)]
pub enum Py {
    None,
    Bool(bool),
    Num(Number),
    Str(String),
    List(Vec<Py>),
    Dict(Dict<Py>),
}

impl Py {
    /// A dict's value for `key` (None for anything else).
    pub fn get(&self, key: &str) -> Option<&Py> {
        match self {
            Py::Dict(d) => d.get(key),
            _ => None,
        }
    }

    /// Python's truth value: None, False, 0, "", [] and {} are false.
    pub fn truthy(&self) -> bool {
        match self {
            Py::None => false,
            Py::Bool(b) => *b,
            Py::Num(n) => n.as_f64().is_some_and(|f| f != 0.0),
            Py::Str(s) => !s.is_empty(),
            Py::List(l) => !l.is_empty(),
            Py::Dict(d) => !d.is_empty(),
        }
    }
}

/// A typed view deserializes from a [`Py`] as from the document (nested [`Raw`] parts keep their key order too).
impl<'de> Deserializer<'de> for Py {
    type Error = serde_json::Error;

    fn deserialize_any<V: Visitor<'de>>(self, v: V) -> Result<V::Value, Self::Error> {
        match self {
            Py::None => v.visit_unit(),
            Py::Bool(b) => v.visit_bool(b),
            Py::Num(n) => n.deserialize_any(v),
            Py::Str(s) => v.visit_string(s),
            Py::List(l) => {
                let mut seq = de::value::SeqDeserializer::new(l.into_iter());
                let value = v.visit_seq(&mut seq)?;
                seq.end()?;
                Ok(value)
            }
            Py::Dict(d) => {
                let mut map = de::value::MapDeserializer::new(d.0.into_iter());
                let value = v.visit_map(&mut map)?;
                map.end()?;
                Ok(value)
            }
        }
    }

    fn deserialize_option<V: Visitor<'de>>(self, v: V) -> Result<V::Value, Self::Error> {
        match self {
            Py::None => v.visit_none(),
            other => v.visit_some(other),
        }
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf unit unit_struct
        newtype_struct seq tuple tuple_struct map struct enum identifier ignored_any
    }
}

impl<'de> de::IntoDeserializer<'de, serde_json::Error> for Py {
    type Deserializer = Py;
    fn into_deserializer(self) -> Py {
        self
    }
}

impl<'de> Deserialize<'de> for Py {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V_;
        impl<'de> Visitor<'de> for V_ {
            type Value = Py;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a JSON value")
            }
            fn visit_unit<E: de::Error>(self) -> Result<Py, E> {
                Ok(Py::None)
            }
            fn visit_none<E: de::Error>(self) -> Result<Py, E> {
                Ok(Py::None)
            }
            fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Py, D::Error> {
                Py::deserialize(d)
            }
            fn visit_bool<E: de::Error>(self, b: bool) -> Result<Py, E> {
                Ok(Py::Bool(b))
            }
            fn visit_i64<E: de::Error>(self, n: i64) -> Result<Py, E> {
                Ok(Py::Num(n.into()))
            }
            fn visit_u64<E: de::Error>(self, n: u64) -> Result<Py, E> {
                Ok(Py::Num(n.into()))
            }
            fn visit_f64<E: de::Error>(self, n: f64) -> Result<Py, E> {
                Number::from_f64(n)
                    .map(Py::Num)
                    .ok_or_else(|| E::custom("a number JSON cannot carry"))
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<Py, E> {
                Ok(Py::Str(s.to_string()))
            }
            fn visit_string<E: de::Error>(self, s: String) -> Result<Py, E> {
                Ok(Py::Str(s))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut s: A) -> Result<Py, A::Error> {
                let mut l = Vec::new();
                while let Some(v) = s.next_element()? {
                    l.push(v);
                }
                Ok(Py::List(l))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut m: A) -> Result<Py, A::Error> {
                let mut d = Dict::default();
                while let Some((k, v)) = m.next_entry::<String, Py>()? {
                    d.insert(k, v);
                }
                Ok(Py::Dict(d))
            }
        }
        d.deserialize_any(V_)
    }
}

/// A typed view of a part of the document together with the part as written (its `repr` is what python printed
/// for the whole dict).
#[derive(Clone, Debug)]
pub struct Raw<T> {
    pub typed: T,
    pub raw: Py,
}

impl<T> std::ops::Deref for Raw<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.typed
    }
}

impl<'de, T: DeserializeOwned> Deserialize<'de> for Raw<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw = Py::deserialize(d)?;
        let typed = T::deserialize(raw.clone()).map_err(de::Error::custom)?;
        Ok(Raw { typed, raw })
    }
}

impl<T> PyFmt for Raw<T> {
    fn repr(&self) -> String {
        self.raw.repr()
    }
}

/// For a field whose absence and `null` read differently (python's `d.get(k, default)`): absent is `None`, `null`
/// is `Some(None)`.
pub fn present<'de, D: Deserializer<'de>, T: Deserialize<'de>>(
    d: D,
) -> Result<Option<Option<T>>, D::Error> {
    Option::<T>::deserialize(d).map(Some)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn floats_print_as_python_does() {
        for (f, want) in [
            (4.5, "4.5"),
            (72.0, "72.0"),
            (168.1, "168.1"),
            (0.1, "0.1"),
            (0.0001, "0.0001"),
            (0.000015, "1.5e-05"),
            (1e16, "1e+16"),
            (123456789012345.6, "123456789012345.6"),
            (-2.5, "-2.5"),
            (1e22, "1e+22"),
        ] {
            assert_eq!(repr_float(f), want, "{f}");
        }
    }

    #[test]
    fn strings_and_dicts_repr_as_python_does() {
        assert_eq!(repr_str("a'b"), "\"a'b\"");
        assert_eq!(repr_str("a'b\""), "'a\\'b\"'");
        assert_eq!(repr_str("x\ny\\\u{1b}é"), "'x\\ny\\\\\\x1bé'");
        let v: Py =
            serde_json::from_str(r#"{"b": [1, 2.0, null, true], "a": {"s": "x"}}"#).unwrap();
        assert_eq!(v.repr(), "{'b': [1, 2.0, None, True], 'a': {'s': 'x'}}");
        assert_eq!(Py::Str("x".into()).str(), "x");
        assert_eq!(None::<String>.str(), "None");
    }
}
