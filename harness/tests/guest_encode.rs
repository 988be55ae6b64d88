//! The scripted guest of a world encodes, validates and componentizes under both name schemes
//! and all three string encodings.

use witness::encode::component::componentize;
use witness::encode::guest::{GuestModule, add_control, encode_guest};
use witness::encode::names::NameScheme;
use witness::reference::StringEncoding;
use witness::world::wit::Wit;

const WORLD: &str = "package local:demo@1.2.3;
interface api {
  record point { x: f32, y: u8 }
  variant shape { circle(f32), rect(point), empty }
  resource counter { constructor(start: u32); incr: func() -> u32; make: static func() -> counter; }
  area: func(s: shape) -> f32;
  echo: func(s: string) -> string;
  take: func(c: borrow<counter>, d: own<counter>) -> list<u8>;
  many: func(a: u8, b: u8, c: u8, d: u8, e: u8, f: u8, g: u8, h: u8, i: u8, j: u8, k: u8, l: u8, m: u8, n: u8, o: u8, p: u8, q: u8) -> tuple<u32, u32>;
}
world w {
  import api;
  export api;
  import hello: func(name: string) -> option<string>;
  export run: func(n: u64) -> f64;
}
";

#[test]
fn guest_encodes_and_componentizes() {
    for scheme in [NameScheme::Standard, NameScheme::Legacy] {
        let mut wit = Wit::parse("demo.wit", WORLD).unwrap();
        let world = wit.world(Some("w")).unwrap();
        add_control(&mut wit.resolve, world, witness::encode::guest::CONTROL_PACKAGE).unwrap();
        let spec = GuestModule::new(&wit.resolve, world, scheme).unwrap();
        let core = encode_guest(&spec).unwrap();
        for enc in StringEncoding::ALL {
            let component = componentize(&wit.resolve, world, &core, enc, scheme)
                .unwrap_or_else(|e| panic!("{scheme:?} {enc}: {e:?}"));
            assert!(wasmparser::Parser::is_component(&component));
        }
    }
}
