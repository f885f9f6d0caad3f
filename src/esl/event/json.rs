//! The event-json reader: a serde visitor that walks FreeSWITCH's JSON object without building a map, so
//! duplicate keys and wire order survive, multi-valued variables (JSON arrays) are joined into the plain form
//! `ARRAY::a|:b`, and unescaped strings are borrowed from the frame.

use serde::de::{self, Deserializer, MapAccess, SeqAccess, Visitor};
use std::fmt;

use super::{Builder, HeaderSpan};

/// serde visitor that walks the JSON object without building a map, so duplicate keys and order survive and
/// unescaped strings are borrowed from the frame.
pub(super) struct JsonEvent<'b> {
    pub(super) b: &'b mut Builder,
}

impl<'de> Visitor<'de> for JsonEvent<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON object of event headers")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        while let Some(key) = map.next_key::<JsonText<'de>>()? {
            let value = map.next_value::<JsonValue<'de>>()?;
            let key_text = key.as_str();
            if key_text == "_body" {
                let span = match &value {
                    JsonValue::Text(t) => self.b.span_for_str(t.as_str()),
                    JsonValue::Joined(s) => self.b.push_decoded(s.as_bytes()),
                };
                self.b.body = Some(span);
                continue;
            }
            let name = self.b.span_for_str(key_text);
            let value = match &value {
                JsonValue::Text(t) => self.b.span_for_str(t.as_str()),
                JsonValue::Joined(s) => self.b.push_decoded(s.as_bytes()),
            };
            self.b.headers.push(HeaderSpan { name, value });
        }
        Ok(())
    }
}

/// A JSON string, borrowed when it had no escapes.
enum JsonText<'de> {
    Borrowed(&'de str),
    Owned(String),
}

impl JsonText<'_> {
    fn as_str(&self) -> &str {
        match self {
            JsonText::Borrowed(s) => s,
            JsonText::Owned(s) => s,
        }
    }
}

impl<'de> de::Deserialize<'de> for JsonText<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = JsonText<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(JsonText::Borrowed(v))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Ok(JsonText::Owned(v.to_owned()))
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<Self::Value, E> {
                Ok(JsonText::Owned(v))
            }
        }
        d.deserialize_str(V)
    }
}

/// A header value in event-json: a string, or an array of strings (joined to FreeSWITCH's `ARRAY::a|:b`).
/// Numbers, booleans and null, which FreeSWITCH never sends, are accepted as their JSON text.
enum JsonValue<'de> {
    Text(JsonText<'de>),
    Joined(String),
}

impl<'de> de::Deserialize<'de> for JsonValue<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = JsonValue<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string or an array of strings")
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(JsonValue::Text(JsonText::Borrowed(v)))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Ok(JsonValue::Text(JsonText::Owned(v.to_owned())))
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<Self::Value, E> {
                Ok(JsonValue::Text(JsonText::Owned(v)))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
                Ok(JsonValue::Joined(v.to_string()))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
                Ok(JsonValue::Joined(v.to_string()))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Self::Value, E> {
                Ok(JsonValue::Joined(v.to_string()))
            }
            fn visit_bool<E: de::Error>(self, v: bool) -> Result<Self::Value, E> {
                Ok(JsonValue::Joined(v.to_string()))
            }
            fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
                Ok(JsonValue::Joined(String::new()))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                let mut joined = String::from("ARRAY::");
                let mut first = true;
                while let Some(item) = seq.next_element::<JsonText<'de>>()? {
                    if !first {
                        joined.push_str("|:");
                    }
                    first = false;
                    joined.push_str(item.as_str());
                }
                Ok(JsonValue::Joined(joined))
            }
        }
        d.deserialize_any(V)
    }
}
