//! Differential test of the Python float formatting that graphite-web's JSON,
//! CSV and names use: Python itself writes `repr()` of 200,000 values (random
//! bit patterns, decimals, exact binary ties between two shortest candidates,
//! and averages as rollups and moving windows make them), and every one must
//! come out of `py_repr` byte for byte.

use instantops::graphite::series::py_repr;

use crate::harness::python;

const SCRIPT: &str = r#"
import random, struct
random.seed(20261128)
out = []
while len(out) < 200000:
    k = len(out) % 5
    if k == 0:
        v = struct.unpack('<d', struct.pack('<Q', random.getrandbits(64)))[0]
        if v != v or v in (float('inf'), float('-inf')):
            continue
    elif k == 1:
        v = random.randrange(10**17) / 4.0 / 10**random.randrange(0, 5)
    elif k == 2:
        v = random.randrange(-10**10, 10**10) / 10**random.randrange(0, 12)
    elif k == 3:
        v = random.randrange(10**10) / 7.0 / 10**random.randrange(0, 12)
    else:
        v = sum(random.randrange(10**6) / 100 for _ in range(6)) / 6
    out.append('%d %s' % (struct.unpack('<Q', struct.pack('<d', v))[0], repr(v)))
print('\n'.join(out))
"#;

#[test]
fn py_repr_matches_python_on_every_value() {
    let text = python(SCRIPT, &[]);
    let mut checked = 0;
    let mut wrong = Vec::new();
    for line in text.lines() {
        let (bits, expected) = line.split_once(' ').expect("bits and repr");
        let v = f64::from_bits(bits.parse().expect("u64 bits"));
        let got = py_repr(v);
        if got != expected && wrong.len() < 10 {
            wrong.push(format!("{v:e}: python {expected}, instantops {got}"));
        }
        checked += 1;
    }
    assert_eq!(checked, 200_000, "python wrote {checked} values");
    assert!(wrong.is_empty(), "py_repr differs from Python's repr:\n{}", wrong.join("\n"));
}
