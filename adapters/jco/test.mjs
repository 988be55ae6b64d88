#!/usr/bin/env node
// A standalone check of the jco adapter: a hand-made component (core module in WAT, WIT
// embedded and componentized by jco's bundled wasm-tools) driven through the protocol of
// adapters/PROTOCOL.md. Run: `node adapters/jco/test.mjs` (after adapters/jco/install.sh).
// Prints one line per check and closes with "N passed, N failed".

import { spawn } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import assert from 'node:assert/strict';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const { parse, componentEmbed, componentNew } = await import(
  pathToFileURL(path.join(HERE, 'node_modules/@bytecodealliance/jco/dist/api.js')).href
);

const WIT = `
package witness:test;
interface host {
  log: func(s: string);
  twice: func(x: u32) -> u32;
  check: func(x: u32) -> result<u32, string>;
}
interface run {
  add: func(a: u64, b: u64) -> u64;
  echo: func(s: string) -> string;
  boom: func();
  call-twice: func(x: u32) -> u32;
  maybe: func(x: u32) -> option<u32>;
  even: func(x: u32) -> result<u32, u32>;
  host-check: func(x: u32) -> u32;
  bad-char: func() -> char;
  bad-option: func() -> option<u32>;
  misaligned: func() -> list<u32>;
}
world w {
  import host;
  export run;
  export neg: func(x: f64) -> f64;
}
`;

// The core module: legacy export names (`iface#func`), a bump allocator as cabi_realloc.
const WAT = `
(module
  (import "witness:test/host" "log" (func $log (param i32 i32)))
  (import "witness:test/host" "twice" (func $twice (param i32) (result i32)))
  (import "witness:test/host" "check" (func $check (param i32 i32)))
  (memory (export "memory") 1)
  (global $heap (mut i32) (i32.const 1024))
  (func (export "cabi_realloc") (param $old i32) (param $old_size i32) (param $align i32) (param $size i32) (result i32)
    (local $p i32)
    (local.set $p (i32.and (i32.add (global.get $heap) (i32.sub (local.get $align) (i32.const 1)))
                           (i32.sub (i32.const 0) (local.get $align))))
    (global.set $heap (i32.add (local.get $p) (local.get $size)))
    (local.get $p))
  (func (export "witness:test/run#add") (param i64 i64) (result i64)
    (i64.add (local.get 0) (local.get 1)))
  (func (export "witness:test/run#echo") (param $ptr i32) (param $len i32) (result i32)
    (call $log (local.get $ptr) (local.get $len))
    (i32.store (i32.const 16) (local.get $ptr))
    (i32.store (i32.const 20) (local.get $len))
    (i32.const 16))
  (func (export "witness:test/run#boom") unreachable)
  (func (export "witness:test/run#call-twice") (param i32) (result i32)
    (i32.add (call $twice (local.get 0)) (i32.const 1)))
  (func (export "witness:test/run#maybe") (param $x i32) (result i32)
    (i32.store8 (i32.const 32) (i32.ne (local.get $x) (i32.const 0)))
    (i32.store (i32.const 36) (local.get $x))
    (i32.const 32))
  (func (export "witness:test/run#even") (param $x i32) (result i32)
    (i32.store8 (i32.const 48) (i32.and (local.get $x) (i32.const 1)))
    (i32.store (i32.const 52) (local.get $x))
    (i32.const 48))
  ;; check(x) -> result<u32, string> at 64: ok -> its payload; err -> the string's length
  (func (export "witness:test/run#host-check") (param $x i32) (result i32)
    (call $check (local.get $x) (i32.const 64))
    (if (result i32) (i32.load8_u (i32.const 64))
      (then (i32.load (i32.const 72)))
      (else (i32.load (i32.const 68)))))
  (func (export "witness:test/run#bad-char") (result i32) (i32.const 0xd800))
  (func (export "witness:test/run#bad-option") (result i32)
    (i32.store8 (i32.const 80) (i32.const 7))
    (i32.const 80))
  (func (export "witness:test/run#misaligned") (result i32)
    (i32.store (i32.const 96) (i32.const 1026))
    (i32.store (i32.const 100) (i32.const 2))
    (i32.const 96))
  (func (export "neg") (param f64) (result f64) (f64.neg (local.get 0)))
)
`;

// A second component with resources: the guest implements `thing` (its destructor tells the
// host the rep through `noted`), the host implements `handle`.
const RES_WIT = `
package witness:res;
interface host-api {
  resource handle {
    get: func() -> u32;
  }
  give: func(h: handle);
  peek: func(h: borrow<handle>) -> u32;
  fresh: func() -> handle;
  noted: func(x: u32);
}
interface api {
  use host-api.{handle};
  resource thing {
    constructor(seed: u32);
    peek: func() -> u32;
    make: static func(x: u32) -> thing;
  }
  consume: func(t: thing) -> u32;
  lend: func(h: borrow<handle>) -> u32;
  take: func(h: handle);
  pass: func(h: handle);
  back: func(h: handle) -> handle;
  fetch: func() -> handle;
  keep: func(h: borrow<handle>);
  double-drop: func();
}
world w {
  import host-api;
  export api;
}
`;

const RES_WAT = `
(module
  (import "witness:res/host-api" "[resource-drop]handle" (func $hdrop (param i32)))
  (import "witness:res/host-api" "[method]handle.get" (func $hget (param i32) (result i32)))
  (import "witness:res/host-api" "give" (func $give (param i32)))
  (import "witness:res/host-api" "peek" (func $hpeek (param i32) (result i32)))
  (import "witness:res/host-api" "fresh" (func $fresh (result i32)))
  (import "witness:res/host-api" "noted" (func $noted (param i32)))
  (import "[export]witness:res/api" "[resource-new]thing" (func $tnew (param i32) (result i32)))
  (import "[export]witness:res/api" "[resource-rep]thing" (func $trep (param i32) (result i32)))
  (import "[export]witness:res/api" "[resource-drop]thing" (func $tdrop (param i32)))
  (memory (export "memory") 1)
  (func (export "cabi_realloc") (param i32 i32 i32 i32) (result i32) (i32.const 1024))
  (func (export "witness:res/api#[constructor]thing") (param i32) (result i32)
    (call $tnew (i32.add (local.get 0) (i32.const 100))))
  (func (export "witness:res/api#[method]thing.peek") (param i32) (result i32) (local.get 0))
  (func (export "witness:res/api#[static]thing.make") (param i32) (result i32) (call $tnew (local.get 0)))
  (func (export "witness:res/api#consume") (param i32) (result i32) (local $r i32)
    (local.set $r (call $trep (local.get 0)))
    (call $tdrop (local.get 0))
    (local.get $r))
  (func (export "witness:res/api#lend") (param i32) (result i32) (local $s i32)
    (local.set $s (i32.add (call $hpeek (local.get 0)) (call $hget (local.get 0))))
    (call $hdrop (local.get 0))
    (local.get $s))
  (func (export "witness:res/api#take") (param i32) (call $hdrop (local.get 0)))
  (func (export "witness:res/api#pass") (param i32) (call $give (local.get 0)))
  (func (export "witness:res/api#back") (param i32) (result i32) (local.get 0))
  (func (export "witness:res/api#fetch") (result i32) (call $fresh))
  (func (export "witness:res/api#keep") (param i32))
  (func (export "witness:res/api#double-drop") (local $h i32)
    (local.set $h (call $tnew (i32.const 9)))
    (call $tdrop (local.get $h))
    (call $tdrop (local.get $h)))
  (func (export "witness:res/api#[dtor]thing") (param i32) (call $noted (local.get 0)))
)
`;

// A third: a resource of the world's own imports, with an imported constructor and method.
const TOP_WIT = `
package witness:top;
world w {
  resource top-r {
    constructor(x: u32);
    get: func() -> u32;
  }
  export run: func(r: top-r) -> u32;
}
`;

const TOP_WAT = `
(module
  (import "$root" "[resource-drop]top-r" (func $drop (param i32)))
  (import "$root" "[constructor]top-r" (func $new (param i32) (result i32)))
  (import "$root" "[method]top-r.get" (func $get (param i32) (result i32)))
  (memory (export "memory") 1)
  (func (export "cabi_realloc") (param i32 i32 i32 i32) (result i32) (i32.const 1024))
  (func (export "run") (param $r i32) (result i32) (local $n i32) (local $s i32)
    (local.set $n (call $new (i32.const 7)))
    (local.set $s (i32.add (call $get (local.get $r)) (call $get (local.get $n))))
    (call $drop (local.get $r))
    (call $drop (local.get $n))
    (local.get $s))
)
`;

const build = async (wat, wit) =>
  componentNew(await componentEmbed({ binary: await parse(wat), witSource: wit, world: 'w' }));
const component = await build(WAT, WIT);
const resComponent = await build(RES_WAT, RES_WIT);
const topComponent = await build(TOP_WAT, TOP_WIT);

// --- a protocol client ---------------------------------------------------------------------

const child = spawn(process.execPath, [path.join(HERE, 'adapter.mjs')], { stdio: ['pipe', 'pipe', 'inherit'] });
let buffered = '';
const lines = [];
let waiter = null;
child.stdout.setEncoding('utf8');
child.stdout.on('data', (d) => {
  buffered += d;
  let nl;
  while ((nl = buffered.indexOf('\n')) >= 0) {
    lines.push(buffered.slice(0, nl));
    buffered = buffered.slice(nl + 1);
  }
  if (waiter && lines.length) {
    const w = waiter;
    waiter = null;
    w();
  }
});

async function nextLine() {
  while (!lines.length) await new Promise((r) => (waiter = r));
  return JSON.parse(lines.shift());
}

const importLog = [];
let importHandler = (req) => ({ ok: null });

let lastId = 0;

/** Send one request (numbered, as witness does); answer import callbacks with importHandler;
 * return the final reply, whose id must be the request's, without it. */
async function request(obj) {
  const id = ++lastId;
  child.stdin.write(JSON.stringify({ ...obj, id }) + '\n');
  for (;;) {
    const msg = await nextLine();
    if (msg.op === 'import' || msg.op === 'dtor') {
      importLog.push(msg);
      child.stdin.write(JSON.stringify(importHandler(msg)) + '\n');
      continue;
    }
    const { id: answered, ...reply } = msg;
    assert.equal(answered, id, `the final reply to request ${id} names request ${answered}`);
    return reply;
  }
}

// --- checks ------------------------------------------------------------------------------------

let passed = 0;
let failed = 0;
async function check(name, f) {
  try {
    await f();
    passed++;
    console.log(`ok: ${name}`);
  } catch (e) {
    failed++;
    console.log(`FAILED: ${name}: ${e.message}`);
  }
}

const RUN = 'witness:test/run';
const HOST = 'witness:test/host';
const fn = (iface, name, params, result) => ({
  interface: iface,
  name,
  params: params.map((type, i) => ({ name: `p${i}`, type })),
  result,
});

const greeting = await nextLine();
await check('greeting', () => {
  assert.equal(greeting.adapter, 'jco');
  assert.equal(greeting.protocol, 2);
  assert.match(greeting.version, /^\d+\.\d+\.\d+/);
});

const compileReply = await request({
  op: 'compile',
  kind: 'component',
  wasm: Buffer.from(component).toString('base64'),
  imports: [
    fn(HOST, 'log', ['string'], null),
    fn(HOST, 'twice', ['u32'], 'u32'),
    fn(HOST, 'check', ['u32'], { result: { ok: 'u32', error: 'string' } }),
  ],
  exports: [
    fn(RUN, 'add', ['u64', 'u64'], 'u64'),
    fn(RUN, 'echo', ['string'], 'string'),
    fn(RUN, 'boom', [], null),
    fn(RUN, 'call-twice', ['u32'], 'u32'),
    fn(RUN, 'maybe', ['u32'], { option: 'u32' }),
    fn(RUN, 'even', ['u32'], { result: { ok: 'u32', error: 'u32' } }),
    fn(RUN, 'host-check', ['u32'], 'u32'),
    fn(RUN, 'bad-char', [], 'char'),
    fn(RUN, 'bad-option', [], { option: 'u32' }),
    fn(RUN, 'misaligned', [], { list: 'u32' }),
    fn(null, 'neg', ['f64'], 'f64'),
  ],
});
await check('compile', () => assert.deepEqual(compileReply, { ok: null }));

const fresh = async () => assert.deepEqual(await request({ op: 'instantiate' }), { ok: null });
const call = (iface, name, args) => request({ op: 'call', interface: iface, name, args });

await check('u64 round trip (wrapping add)', async () => {
  await fresh();
  assert.deepEqual(await call(RUN, 'add', ['18446744073709551615', '2']), { ok: '1' });
});

await check('string round trip, with an import callback', async () => {
  await fresh();
  importLog.length = 0;
  assert.deepEqual(await call(RUN, 'echo', ['héllo €𝄞']), { ok: 'héllo €𝄞' });
  assert.deepEqual(importLog, [{ op: 'import', interface: HOST, name: 'log', args: ['héllo €𝄞'] }]);
});

await check('import result comes back to the guest', async () => {
  await fresh();
  importHandler = (req) => ({ ok: req.args[0] * 2 });
  assert.deepEqual(await call(RUN, 'call-twice', [20]), { ok: 41 });
});

await check('import returning result: ok and error', async () => {
  await fresh();
  importHandler = (req) => (req.args[0] ? { ok: { tag: 'ok', val: 5 } } : { ok: { tag: 'error', val: 'four' } });
  assert.deepEqual(await call(RUN, 'host-check', [1]), { ok: 5 });
  assert.deepEqual(await call(RUN, 'host-check', [0]), { ok: 4 });
});

await check('option', async () => {
  await fresh();
  assert.deepEqual(await call(RUN, 'maybe', [7]), { ok: { tag: 'some', val: 7 } });
  assert.deepEqual(await call(RUN, 'maybe', [0]), { ok: { tag: 'none' } });
});

await check('result: ok and error (ComponentError)', async () => {
  await fresh();
  assert.deepEqual(await call(RUN, 'even', [4]), { ok: { tag: 'ok', val: 4 } });
  assert.deepEqual(await call(RUN, 'even', [5]), { ok: { tag: 'error', val: 5 } });
});

await check('f64 specials', async () => {
  await fresh();
  assert.deepEqual(await call(null, 'neg', [1.5]), { ok: -1.5 });
  assert.deepEqual(await call(null, 'neg', ['inf']), { ok: '-inf' });
  assert.deepEqual(await call(null, 'neg', [0]), { ok: '-0' });
  assert.deepEqual(await call(null, 'neg', ['nan']), { ok: 'nan' });
});

await check('unreachable is a guest-trap', async () => {
  await fresh();
  const r = await call(RUN, 'boom', []);
  assert.equal(r.trap?.class, 'guest-trap', JSON.stringify(r));
});

await check('a surrogate char is invalid-char', async () => {
  await fresh();
  const r = await call(RUN, 'bad-char', []);
  assert.equal(r.trap?.class, 'invalid-char', JSON.stringify(r));
});

await check('option discriminant 7 is invalid-discriminant', async () => {
  await fresh();
  const r = await call(RUN, 'bad-option', []);
  assert.equal(r.trap?.class, 'invalid-discriminant', JSON.stringify(r));
});

await check('a list<u32> at an odd pointer is misaligned-pointer', async () => {
  await fresh();
  const r = await call(RUN, 'misaligned', []);
  assert.equal(r.trap?.class, 'misaligned-pointer', JSON.stringify(r));
});

await check('an import witness fails makes the call fail', async () => {
  await fresh();
  importHandler = () => ({ error: 'no' });
  const r = await call(RUN, 'call-twice', [1]);
  assert.ok(r.trap, JSON.stringify(r));
});

await check('a fresh instance after a trap works', async () => {
  await fresh();
  assert.deepEqual(await call(RUN, 'add', ['1', '2']), { ok: '3' });
});

await check('an undeclared export is an error', async () => {
  const r = await call(RUN, 'nope', []);
  assert.ok(r.error, JSON.stringify(r));
});

// --- resources ---------------------------------------------------------------------------------

const RAPI = 'witness:res/api';
const RHOST = 'witness:res/host-api';
const HANDLE = { interface: RHOST, name: 'handle', side: 'import' };
const THING = { interface: RAPI, name: 'thing', side: 'export' };

await check('greeting lists the resources feature', () => assert.deepEqual(greeting.features, ['resources']));

const resCompile = await request({
  op: 'compile',
  kind: 'component',
  wasm: Buffer.from(resComponent).toString('base64'),
  resources: [HANDLE],
  imports: [
    fn(RHOST, '[method]handle.get', [{ borrow: HANDLE }], 'u32'),
    fn(RHOST, 'give', [{ own: HANDLE }], null),
    fn(RHOST, 'peek', [{ borrow: HANDLE }], 'u32'),
    fn(RHOST, 'fresh', [], { own: HANDLE }),
    fn(RHOST, 'noted', ['u32'], null),
  ],
  exports: [
    fn(RAPI, '[constructor]thing', ['u32'], { own: THING }),
    fn(RAPI, '[method]thing.peek', [{ borrow: THING }], 'u32'),
    fn(RAPI, '[static]thing.make', ['u32'], { own: THING }),
    fn(RAPI, 'consume', [{ own: THING }], 'u32'),
    fn(RAPI, 'lend', [{ borrow: HANDLE }], 'u32'),
    fn(RAPI, 'take', [{ own: HANDLE }], null),
    fn(RAPI, 'pass', [{ own: HANDLE }], null),
    fn(RAPI, 'back', [{ own: HANDLE }], { own: HANDLE }),
    fn(RAPI, 'fetch', [], { own: HANDLE }),
    fn(RAPI, 'keep', [{ borrow: HANDLE }], null),
    fn(RAPI, 'double-drop', [], null),
  ],
});
await check('compile (resources)', () => assert.deepEqual(resCompile, { ok: null }));

const callbacks = async (f) => {
  importLog.length = 0;
  const r = await f();
  return [r, importLog.map(({ op, name, resource, rep, args }) => (op === 'dtor' ? { dtor: rep, resource } : { [name]: args }))];
};

await check('guest resources: constructor, method, static, own back, drop', async () => {
  await fresh();
  importHandler = () => ({ ok: null });
  assert.deepEqual(await call(RAPI, '[constructor]thing', [5]), { ok: 0 });
  assert.deepEqual(await call(RAPI, '[method]thing.peek', [0]), { ok: 105 });
  assert.deepEqual(await call(RAPI, '[static]thing.make', [7]), { ok: 1 });
  // The own moves to the guest, which drops it: its destructor runs (and calls `noted`).
  assert.deepEqual(await callbacks(() => call(RAPI, 'consume', [1])), [{ ok: 7 }, [{ noted: [7] }]]);
  assert.deepEqual(await callbacks(() => request({ op: 'drop', handle: 0 })), [{ ok: null }, [{ noted: [105] }]]);
  // Dropped and moved handles are gone; numbering goes on.
  assert.ok((await request({ op: 'drop', handle: 0 })).error);
  assert.ok((await request({ op: 'drop', handle: 1 })).error);
  assert.deepEqual(await call(RAPI, '[constructor]thing', [6]), { ok: 2 });
});

await check('guest resource numbering starts at 0 in each instance', async () => {
  await fresh();
  assert.deepEqual(await call(RAPI, '[static]thing.make', [3]), { ok: 0 });
});

await check('host resources: own dropped by the guest runs the destructor', async () => {
  await fresh();
  assert.deepEqual(await callbacks(() => call(RAPI, 'take', [42])), [{ ok: null }, [{ dtor: 42, resource: HANDLE }]]);
});

await check('host resources: a borrow to imports, and its methods', async () => {
  await fresh();
  importHandler = (req) => ({ ok: req.name === 'peek' ? 1000 : 7 });
  assert.deepEqual(await callbacks(() => call(RAPI, 'lend', [43])), [
    { ok: 1007 },
    [{ peek: [43] }, { '[method]handle.get': [43] }],
  ]);
});

await check('host resources: own to an import, back as a result, from an import', async () => {
  await fresh();
  importHandler = (req) => ({ ok: req.name === 'fresh' ? 46 : null });
  assert.deepEqual(await callbacks(() => call(RAPI, 'pass', [44])), [{ ok: null }, [{ give: [44] }]]);
  assert.deepEqual(await callbacks(() => call(RAPI, 'back', [45])), [{ ok: 45 }, []]);
  assert.deepEqual(await callbacks(() => call(RAPI, 'fetch', [])), [{ ok: 46 }, [{ fresh: [] }]]);
});

await check('a borrow not dropped: jco does not trap (expectations/jco.toml)', async () => {
  await fresh();
  // The spec traps (borrow-not-dropped); jco puts a sync export's borrows in no task's scope.
  assert.deepEqual(await call(RAPI, 'keep', [47]), { ok: null });
});

await check('dropping a handle twice is unknown-handle', async () => {
  await fresh();
  importHandler = () => ({ ok: null });
  const r = await call(RAPI, 'double-drop', []);
  assert.equal(r.trap?.class, 'unknown-handle', JSON.stringify(r));
});

await check('a resource of the world imports: constructor, method, destructors', async () => {
  const TOP = { interface: null, name: 'top-r', side: 'import' };
  const r = await request({
    op: 'compile',
    kind: 'component',
    wasm: Buffer.from(topComponent).toString('base64'),
    resources: [TOP],
    imports: [
      fn(null, '[constructor]top-r', ['u32'], { own: TOP }),
      fn(null, '[method]top-r.get', [{ borrow: TOP }], 'u32'),
    ],
    exports: [fn(null, 'run', [{ own: TOP }], 'u32')],
  });
  assert.deepEqual(r, { ok: null });
  await fresh();
  importHandler = (req) =>
    req.op === 'dtor' ? { ok: null } : { ok: req.name === '[constructor]top-r' ? 50 : req.args[0] === 42 ? 1000 : 5 };
  assert.deepEqual(await callbacks(() => call(null, 'run', [42])), [
    { ok: 1005 },
    [
      { '[constructor]top-r': [7] },
      { '[method]top-r.get': [42] },
      { '[method]top-r.get': [50] },
      { dtor: 42, resource: TOP },
      { dtor: 50, resource: TOP },
    ],
  ]);
});

child.stdin.end();
const code = await new Promise((r) => child.on('exit', r));
await check('adapter exits 0 when stdin closes', () => assert.equal(code, 0));

console.log(`${passed} passed, ${failed} failed`);
process.exit(failed ? 1 : 0);
