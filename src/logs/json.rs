//! A JSON document read in place, as log events travel from their text to the
//! WAL and the index: strings borrow the text they were read from (unless
//! they had escapes), numbers are serde_json's (read to the nearest double,
//! so a float is stored with the digits it came with), and objects are member lists
//! in the sender's order. A repeated key keeps its first place and its last
//! value, as in a map. Reading an event this way costs a vector per object
//! instead of a map node and a `String` per key and per value, and the index
//! takes its terms straight from it ([`View`]).

use std::borrow::Cow;
use std::fmt;

use foldhash::HashMap;
use serde::de::{Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::ser::{Serialize, SerializeMap, SerializeSeq, Serializer};
use serde_json::Number;
use tantivy::schema::document::{ReferenceValue, ReferenceValueLeaf};

/// One JSON value.
#[derive(Debug, Clone, PartialEq)]
pub enum Json<'a> {
    Null,
    Bool(bool),
    Number(Number),
    String(Cow<'a, str>),
    Array(Vec<Json<'a>>),
    Object(Object<'a>),
}

/// An object's members in order, keys unique. Past [`INDEXED`] members,
/// edits keep a position by key, so that merging two large objects (a
/// logstash `@fields`, an Elasticsearch partial update) is not quadratic.
#[derive(Debug, Clone, Default)]
pub struct Object<'a> {
    members: Vec<(Cow<'a, str>, Json<'a>)>,
    /// Built by the first edit past [`INDEXED`] members, dropped by a removal.
    index: Option<HashMap<String, usize>>,
}

/// Members an object has before its edits look keys up by hash.
const INDEXED: usize = 32;

impl PartialEq for Object<'_> {
    fn eq(&self, other: &Self) -> bool {
        self.members == other.members
    }
}

impl<'a> Json<'a> {
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Json::String(s) => Some(s),
            _ => None,
        }
    }

    pub fn as_bool(&self) -> Option<bool> {
        match self {
            Json::Bool(b) => Some(*b),
            _ => None,
        }
    }

    pub fn string(s: impl Into<Cow<'a, str>>) -> Json<'a> {
        Json::String(s.into())
    }

    /// A serde_json value's view: its strings borrowed.
    pub fn borrowing(v: &'a serde_json::Value) -> Json<'a> {
        match v {
            serde_json::Value::Null => Json::Null,
            serde_json::Value::Bool(b) => Json::Bool(*b),
            serde_json::Value::Number(n) => Json::Number(n.clone()),
            serde_json::Value::String(s) => Json::String(Cow::Borrowed(s)),
            serde_json::Value::Array(items) => Json::Array(items.iter().map(Json::borrowing).collect()),
            serde_json::Value::Object(map) => Json::Object(Object::borrowing(map)),
        }
    }

    /// Keys in the tree below this value.
    fn keys_below(&self) -> usize {
        match self {
            Json::Object(o) => o.keys(),
            Json::Array(items) => items.iter().map(Json::keys_below).sum(),
            _ => 0,
        }
    }
}

/// Compact JSON, as serde_json writes it.
impl fmt::Display for Json<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&serde_json::to_string(self).map_err(|_| fmt::Error)?)
    }
}

impl<'a> Object<'a> {
    pub fn new() -> Object<'a> {
        Object::default()
    }

    fn of(members: Vec<(Cow<'a, str>, Json<'a>)>) -> Object<'a> {
        Object { members, index: None }
    }

    /// A serde_json map's view: its keys and strings borrowed.
    pub fn borrowing(map: &'a serde_json::Map<String, serde_json::Value>) -> Object<'a> {
        Object::of(map.iter().map(|(k, v)| (Cow::Borrowed(k.as_str()), Json::borrowing(v))).collect())
    }

    pub fn len(&self) -> usize {
        self.members.len()
    }

    pub fn is_empty(&self) -> bool {
        self.members.is_empty()
    }

    fn position(&self, key: &str) -> Option<usize> {
        match &self.index {
            Some(index) => index.get(key).copied(),
            None => self.members.iter().position(|(k, _)| k == key),
        }
    }

    /// Positions by key, once the object is long enough to need them.
    fn indexed(&mut self) {
        if self.index.is_none() && self.members.len() > INDEXED {
            self.index = Some(self.members.iter().enumerate().map(|(at, (k, _))| (k.to_string(), at)).collect());
        }
    }

    pub fn get(&self, key: &str) -> Option<&Json<'a>> {
        self.position(key).map(|at| &self.members[at].1)
    }

    pub fn get_mut(&mut self, key: &str) -> Option<&mut Json<'a>> {
        self.indexed();
        self.position(key).map(|at| &mut self.members[at].1)
    }

    pub fn contains_key(&self, key: &str) -> bool {
        self.position(key).is_some()
    }

    /// Sets `key`: in its place if present (the old value returned), else last.
    pub fn insert(&mut self, key: impl Into<Cow<'a, str>>, value: Json<'a>) -> Option<Json<'a>> {
        let key = key.into();
        self.indexed();
        match self.position(&key) {
            Some(at) => Some(std::mem::replace(&mut self.members[at].1, value)),
            None => {
                if let Some(index) = &mut self.index {
                    index.insert(key.to_string(), self.members.len());
                }
                self.members.push((key, value));
                None
            }
        }
    }

    /// Sets `key` as the first member, wherever it was.
    pub fn insert_first(&mut self, key: impl Into<Cow<'a, str>>, value: Json<'a>) {
        let key = key.into();
        self.remove(&key);
        self.index = None;
        self.members.insert(0, (key, value));
    }

    /// Takes `key` out; the others keep their order.
    pub fn remove(&mut self, key: &str) -> Option<Json<'a>> {
        let at = self.position(key)?;
        self.index = None;
        Some(self.members.remove(at).1)
    }

    pub fn iter(&self) -> impl Iterator<Item = (&str, &Json<'a>)> {
        self.members.iter().map(|(k, v)| (k.as_ref(), v))
    }

    /// Keys in the whole tree: what `logs.max_fields` bounds.
    pub fn keys(&self) -> usize {
        self.members.iter().map(|(_, v)| 1 + v.keys_below()).sum()
    }

    /// After reading: a repeated key keeps its first place and its last value.
    fn dedupe(&mut self) {
        let n = self.members.len();
        if n < 2 {
            return;
        }
        let mut keep = vec![true; n];
        if n <= 16 {
            for i in 1..n {
                if let Some(first) = (0..i).find(|&j| keep[j] && self.members[j].0 == self.members[i].0) {
                    keep[i] = false;
                    let value = std::mem::replace(&mut self.members[i].1, Json::Null);
                    self.members[first].1 = value;
                }
            }
        } else {
            // Sorted by key, then place: each run's first keeps its place.
            let mut order: Vec<usize> = (0..n).collect();
            order.sort_by(|&a, &b| self.members[a].0.cmp(&self.members[b].0).then(a.cmp(&b)));
            let mut run = 0;
            while run < n {
                let mut end = run + 1;
                while end < n && self.members[order[end]].0 == self.members[order[run]].0 {
                    end += 1;
                }
                if end - run > 1 {
                    let value = std::mem::replace(&mut self.members[order[end - 1]].1, Json::Null);
                    self.members[order[run]].1 = value;
                    for &dup in &order[run + 1..end] {
                        keep[dup] = false;
                    }
                }
                run = end;
            }
        }
        if keep.iter().all(|k| *k) {
            return;
        }
        let mut at = 0;
        self.members.retain(|_| {
            at += 1;
            keep[at - 1]
        });
    }
}

impl<'a> IntoIterator for Object<'a> {
    type Item = (Cow<'a, str>, Json<'a>);
    type IntoIter = std::vec::IntoIter<(Cow<'a, str>, Json<'a>)>;

    fn into_iter(self) -> Self::IntoIter {
        self.members.into_iter()
    }
}

impl<'de> Deserialize<'de> for Json<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Json<'de>, D::Error> {
        d.deserialize_any(JsonVisitor)
    }
}

impl<'de> Deserialize<'de> for Object<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Object<'de>, D::Error> {
        struct ObjectVisitor;
        impl<'de> Visitor<'de> for ObjectVisitor {
            type Value = Object<'de>;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a map")
            }

            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Object<'de>, A::Error> {
                read_object(map)
            }
        }
        d.deserialize_map(ObjectVisitor)
    }
}

struct JsonVisitor;

impl<'de> Visitor<'de> for JsonVisitor {
    type Value = Json<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_bool<E>(self, b: bool) -> Result<Json<'de>, E> {
        Ok(Json::Bool(b))
    }

    fn visit_i64<E>(self, n: i64) -> Result<Json<'de>, E> {
        Ok(Json::Number(n.into()))
    }

    fn visit_u64<E>(self, n: u64) -> Result<Json<'de>, E> {
        Ok(Json::Number(n.into()))
    }

    fn visit_f64<E>(self, n: f64) -> Result<Json<'de>, E> {
        Ok(Number::from_f64(n).map_or(Json::Null, Json::Number))
    }

    fn visit_borrowed_str<E>(self, s: &'de str) -> Result<Json<'de>, E> {
        Ok(Json::String(Cow::Borrowed(s)))
    }

    fn visit_str<E>(self, s: &str) -> Result<Json<'de>, E> {
        Ok(Json::String(Cow::Owned(s.to_owned())))
    }

    fn visit_string<E>(self, s: String) -> Result<Json<'de>, E> {
        Ok(Json::String(Cow::Owned(s)))
    }

    fn visit_unit<E>(self) -> Result<Json<'de>, E> {
        Ok(Json::Null)
    }

    fn visit_none<E>(self) -> Result<Json<'de>, E> {
        Ok(Json::Null)
    }

    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Json<'de>, D::Error> {
        Json::deserialize(d)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Json<'de>, A::Error> {
        let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(64));
        while let Some(item) = seq.next_element()? {
            items.push(item);
        }
        Ok(Json::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Json<'de>, A::Error> {
        read_object(map).map(Json::Object)
    }
}

/// An object's members as read, a repeated key deduplicated.
fn read_object<'de, A: MapAccess<'de>>(mut map: A) -> Result<Object<'de>, A::Error> {
    let mut members = Vec::with_capacity(map.size_hint().unwrap_or(0).clamp(8, 64));
    while let Some(Key(key)) = map.next_key()? {
        members.push((key, map.next_value()?));
    }
    let mut object = Object::of(members);
    object.dedupe();
    Ok(object)
}

/// An object key, borrowed where the text allows.
struct Key<'de>(Cow<'de, str>);

impl<'de> Deserialize<'de> for Key<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Key<'de>, D::Error> {
        struct KeyVisitor;
        impl<'de> Visitor<'de> for KeyVisitor {
            type Value = Key<'de>;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an object key")
            }

            fn visit_borrowed_str<E>(self, s: &'de str) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Borrowed(s)))
            }

            fn visit_str<E>(self, s: &str) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Owned(s.to_owned())))
            }

            fn visit_string<E>(self, s: String) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Owned(s)))
            }
        }
        d.deserialize_str(KeyVisitor)
    }
}

impl Serialize for Json<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Json::Null => s.serialize_unit(),
            Json::Bool(b) => s.serialize_bool(*b),
            Json::Number(n) => n.serialize(s),
            Json::String(text) => s.serialize_str(text),
            Json::Array(items) => {
                let mut seq = s.serialize_seq(Some(items.len()))?;
                for item in items {
                    seq.serialize_element(item)?;
                }
                seq.end()
            }
            Json::Object(o) => o.serialize(s),
        }
    }
}

impl Serialize for Object<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(Some(self.members.len()))?;
        for (k, v) in &self.members {
            map.serialize_entry(k.as_ref(), v)?;
        }
        map.end()
    }
}

/// A value as the index takes it (Tantivy's document `Value`): nulls are
/// left out of arrays and objects, strings stay strings (no date sniffing),
/// numbers are i64, else u64, else f64. `Members` is an event's top level
/// less the members `skip` names, which the index keeps elsewhere.
#[derive(Debug, Clone, Copy)]
pub enum View<'b, 'a> {
    Value(&'b Json<'a>),
    Members { object: &'b Object<'a>, skip: fn(&str, &Json<'_>) -> bool },
}

impl<'b, 'a: 'b> tantivy::schema::Value<'b> for View<'b, 'a> {
    type ArrayIter = Items<'b, 'a>;
    type ObjectIter = Members<'b, 'a>;

    fn as_value(&self) -> ReferenceValue<'b, Self> {
        let value = match *self {
            View::Members { object, skip } => return ReferenceValue::Object(Members { members: object.members.iter(), skip: Some(skip) }),
            View::Value(value) => value,
        };
        match value {
            Json::Null => ReferenceValueLeaf::Null.into(),
            Json::Bool(b) => ReferenceValueLeaf::Bool(*b).into(),
            Json::Number(n) => match (n.as_i64(), n.as_u64()) {
                (Some(i), _) => ReferenceValueLeaf::I64(i).into(),
                (None, Some(u)) => ReferenceValueLeaf::U64(u).into(),
                (None, None) => ReferenceValueLeaf::F64(n.as_f64().unwrap_or(0.0)).into(),
            },
            Json::String(s) => ReferenceValueLeaf::Str(s.as_ref()).into(),
            Json::Array(items) => ReferenceValue::Array(Items(items.iter())),
            Json::Object(o) => ReferenceValue::Object(Members { members: o.members.iter(), skip: None }),
        }
    }
}

/// An array's items but its nulls.
pub struct Items<'b, 'a>(std::slice::Iter<'b, Json<'a>>);

impl<'b, 'a> Iterator for Items<'b, 'a> {
    type Item = View<'b, 'a>;

    fn next(&mut self) -> Option<View<'b, 'a>> {
        self.0.find(|v| !matches!(v, Json::Null)).map(View::Value)
    }
}

/// An object's members but those with null values, and those `skip` names.
pub struct Members<'b, 'a> {
    members: std::slice::Iter<'b, (Cow<'a, str>, Json<'a>)>,
    skip: Option<fn(&str, &Json<'_>) -> bool>,
}

impl<'b, 'a> Iterator for Members<'b, 'a> {
    type Item = (&'b str, View<'b, 'a>);

    fn next(&mut self) -> Option<(&'b str, View<'b, 'a>)> {
        let skip = self.skip;
        self.members
            .find(|(k, v)| !matches!(v, Json::Null) && !skip.is_some_and(|skip| skip(k, v)))
            .map(|(k, v)| (k.as_ref(), View::Value(v)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn read(text: &str) -> Json<'_> {
        serde_json::from_str(text).unwrap()
    }

    #[test]
    fn strings_borrow_the_text_unless_escaped_and_order_is_kept() {
        let Json::Object(o) = read(r#"{"b":"plain","a":"tab\there","c":[1,-2,2.5,18446744073709551615,null]}"#) else { panic!() };
        let keys: Vec<&str> = o.iter().map(|(k, _)| k).collect();
        assert_eq!(keys, ["b", "a", "c"]);
        assert!(matches!(o.get("b"), Some(Json::String(Cow::Borrowed("plain")))));
        assert!(matches!(o.get("a"), Some(Json::String(Cow::Owned(s))) if s == "tab\there"));
        assert_eq!(o.keys(), 3);
        assert_eq!(Json::Object(o).to_string(), r#"{"b":"plain","a":"tab\there","c":[1,-2,2.5,18446744073709551615,null]}"#);
    }

    #[test]
    fn a_repeated_key_keeps_its_first_place_and_last_value() {
        assert_eq!(read(r#"{"a":1,"b":2,"a":3}"#).to_string(), r#"{"a":3,"b":2}"#);
        // Past the small-object path too.
        let many: Vec<String> = (0..40).map(|i| format!("\"k{}\":{i}", i % 20)).collect();
        let text = format!("{{{}}}", many.join(","));
        let Json::Object(o) = read(&text) else { panic!() };
        assert_eq!(o.len(), 20);
        assert_eq!(o.get("k3"), Some(&Json::Number(23.into())));
        assert_eq!(o.iter().next().map(|(k, _)| k), Some("k0"));
    }

    #[test]
    fn long_objects_look_keys_up_by_position_and_stay_right() {
        let mut o = Object::new();
        for i in 0..200 {
            o.insert(format!("k{i}"), Json::Number(i.into()));
        }
        assert!(o.index.is_some());
        assert_eq!(o.insert("k7", Json::Null), Some(Json::Number(7.into())));
        assert_eq!(o.remove("k3"), Some(Json::Number(3.into())));
        assert!(o.index.is_none());
        assert_eq!(o.get("k150"), Some(&Json::Number(150.into())));
        o.insert("new", Json::Bool(true));
        assert_eq!(o.get("k199"), Some(&Json::Number(199.into())));
        assert_eq!(o.get("new"), Some(&Json::Bool(true)));
        assert_eq!(o.len(), 200);
        let keys: Vec<&str> = o.iter().map(|(k, _)| k).take(4).collect();
        assert_eq!(keys, ["k0", "k1", "k2", "k4"]);
        // What the index holds is where each key is.
        o.insert("again", Json::Null);
        let index = o.index.clone().expect("rebuilt by the insert");
        assert_eq!(index.len(), o.len());
        assert!(o.iter().enumerate().all(|(at, (k, _))| index[k] == at));
    }

    #[test]
    fn edits_keep_the_order_of_the_others() {
        let Json::Object(mut o) = read(r#"{"a":1,"b":2,"c":3}"#) else { panic!() };
        assert_eq!(o.remove("b"), Some(Json::Number(2.into())));
        assert_eq!(o.insert("a", Json::Bool(true)), Some(Json::Number(1.into())));
        o.insert("d", Json::Null);
        o.insert_first("@timestamp", Json::string("t"));
        assert_eq!(Json::Object(o).to_string(), r#"{"@timestamp":"t","a":true,"c":3,"d":null}"#);
    }

    fn arbitrary_json() -> impl Strategy<Value = serde_json::Value> {
        let leaf = prop_oneof![
            Just(serde_json::Value::Null),
            any::<bool>().prop_map(serde_json::Value::Bool),
            any::<i64>().prop_map(|n| serde_json::Value::Number(n.into())),
            any::<u64>().prop_map(|n| serde_json::Value::Number(n.into())),
            (-1e300f64..1e300).prop_map(|f| serde_json::json!(f)),
            "[a-z\"\\\\\\x00-\\x1fé☃]{0,8}".prop_map(serde_json::Value::String),
        ];
        leaf.prop_recursive(4, 48, 6, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..6).prop_map(serde_json::Value::Array),
                prop::collection::vec(("[a-c\\\\\"]{0,3}", inner), 0..8)
                    .prop_map(|members| serde_json::Value::Object(members.into_iter().collect())),
            ]
        })
    }

    proptest! {
        /// Read as serde_json reads it, and written back as serde_json writes it.
        #[test]
        fn reads_and_writes_as_serde_json_does(v in arbitrary_json()) {
            let text = serde_json::to_string(&v).unwrap();
            let ours: Json = serde_json::from_str(&text).unwrap();
            let theirs: serde_json::Value = serde_json::from_str(&text).unwrap();
            prop_assert_eq!(ours.to_string(), serde_json::to_string(&theirs).unwrap());
            prop_assert_eq!(Json::borrowing(&theirs), ours);
        }

        /// Text with repeated keys reads to what serde_json's map keeps.
        #[test]
        fn repeated_keys_read_as_a_map_would(pairs in prop::collection::vec(("[a-e]", any::<i16>()), 0..40)) {
            let text = format!("{{{}}}", pairs.iter().map(|(k, v)| format!("\"{k}\":{v}")).collect::<Vec<_>>().join(","));
            let ours: Json = serde_json::from_str(&text).unwrap();
            let theirs: serde_json::Value = serde_json::from_str(&text).unwrap();
            prop_assert_eq!(serde_json::from_str::<serde_json::Value>(&ours.to_string()).unwrap(), theirs);
        }
    }
}
