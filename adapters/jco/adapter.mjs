#!/usr/bin/env node
// witness adapter (adapters/PROTOCOL.md, version 1) for jco: a component is transpiled by
// `@bytecodealliance/jco` into JS + core wasm, and run by Node's own wasm engine (V8).
//
// Run: `node adapters/jco/adapter.mjs` (after `adapters/jco/install.sh`). JSON lines on
// stdin/stdout. Every read of stdin is synchronous (fs.readSync on fd 0 with our own line
// buffer): an import is a synchronous JS host function called from wasm, and it must write
// its callback line and read witness's reply before it returns.
//
// jco is used with `instantiation: 'sync'`: the generated module exports
// `instantiate(getCoreModule, imports)`, so each `instantiate` request gets a fresh component
// instance (all of jco's runtime state lives inside that call) wired to our host functions.
//
// Resources (the protocol's feature `resources`, see "Resources" below): host resources are
// classes in jco's imports object whose objects stand for witness's reps; guest resources are
// the objects of jco's exported classes, numbered as the host receives them.
//
// Environment: WITNESS_JCO_KEEP=1 keeps the transpiled files (their directory is logged on
// stderr) for reading the generated JS; WITNESS_JCO_DEBUG=1 logs every line on stderr.

import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL, fileURLToPath } from 'node:url';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const KEEP = !!process.env.WITNESS_JCO_KEEP;
const DEBUG = !!process.env.WITNESS_JCO_DEBUG;

// stdout carries the protocol only: anything jco or Node would print goes to stderr.
for (const k of ['log', 'info', 'debug', 'warn', 'trace', 'dir']) {
  console[k] = (...args) => console.error(...args);
}
// jco registers every guest-resource object it hands the host with a FinalizationRegistry
// whose callback drops the handle and runs the guest's destructor when the object is garbage
// collected. That would run guest code (and possibly import callbacks) at whatever moment V8
// collects: between requests, or on an instance witness has already replaced. witness drops
// guest resources explicitly (`drop`), so the registry is made inert for the generated code.
globalThis.FinalizationRegistry = class InertFinalizationRegistry {
  register() {}
  unregister() {}
};
process.on('unhandledRejection', (e) => console.error('jco adapter: unhandled rejection:', e));

// ---------------------------------------------------------------------------------------------
// Lines on stdin/stdout, synchronously.

const STDIN = 0;
const STDOUT = 1;
const chunk = Buffer.alloc(1 << 16);
let pending = []; // Buffers read but not yet split into lines
let eof = false;
const sleepCell = new Int32Array(new SharedArrayBuffer(4));

function sleepMs(ms) {
  Atomics.wait(sleepCell, 0, 0, ms);
}

/** The next line of stdin without its `\n`, or null at end of input. */
function readLine() {
  for (;;) {
    // Is there a complete line in what we have?
    for (let i = 0; i < pending.length; i++) {
      const nl = pending[i].indexOf(10);
      if (nl >= 0) {
        const head = pending.slice(0, i);
        head.push(pending[i].subarray(0, nl));
        const rest = pending[i].subarray(nl + 1);
        pending = rest.length ? [rest, ...pending.slice(i + 1)] : pending.slice(i + 1);
        return Buffer.concat(head).toString('utf8');
      }
    }
    if (eof) {
      if (pending.length) {
        const last = Buffer.concat(pending).toString('utf8');
        pending = [];
        return last;
      }
      return null;
    }
    let n;
    try {
      n = fs.readSync(STDIN, chunk, 0, chunk.length, null);
    } catch (e) {
      if (e.code === 'EAGAIN' || e.code === 'EWOULDBLOCK') {
        sleepMs(2);
        continue;
      }
      if (e.code === 'EOF') {
        eof = true;
        continue;
      }
      throw e;
    }
    if (n === 0) {
      eof = true;
      continue;
    }
    pending.push(Buffer.from(chunk.subarray(0, n)));
  }
}

function writeLine(obj) {
  const line = JSON.stringify(obj) + '\n';
  if (DEBUG) console.error('<- ' + line.trimEnd().slice(0, 400));
  const buf = Buffer.from(line, 'utf8');
  let off = 0;
  while (off < buf.length) {
    try {
      off += fs.writeSync(STDOUT, buf, off, buf.length - off);
    } catch (e) {
      if (e.code === 'EAGAIN') {
        sleepMs(1);
        continue;
      }
      throw e;
    }
  }
}

function readRequest() {
  const line = readLine();
  if (line === null) return null;
  if (DEBUG) console.error('-> ' + line.slice(0, 400));
  if (line.trim() === '') return readRequest();
  return JSON.parse(line);
}

// ---------------------------------------------------------------------------------------------
// jco

const JCO_DIR = path.join(HERE, 'node_modules', '@bytecodealliance', 'jco');

function jcoVersion() {
  try {
    return JSON.parse(fs.readFileSync(path.join(JCO_DIR, 'package.json'), 'utf8')).version;
  } catch {
    return 'unknown';
  }
}

let jcoApi = null;
async function jco() {
  if (!jcoApi) jcoApi = await import(pathToFileURL(path.join(JCO_DIR, 'dist', 'api.js')).href);
  return jcoApi;
}

// ---------------------------------------------------------------------------------------------
// Names: jco names functions, record fields and flags in lowerCamelCase (heck's
// to_lower_camel_case over the kebab-case WIT name: `get-HTTP-req` -> `getHttpReq`); variant
// cases and enum cases keep their WIT names.

function camel(name) {
  const words = name.split('-').filter((w) => w.length);
  return words
    .map((w, i) => {
      const lower = w.toLowerCase();
      return i === 0 ? lower : lower.charAt(0).toUpperCase() + lower.slice(1);
    })
    .join('');
}

/** jco's class name for a resource: heck's UpperCamelCase (`my-thing` -> `MyThing`). */
function upperCamel(name) {
  const c = camel(name);
  return c.charAt(0).toUpperCase() + c.slice(1);
}

function stripVersion(iface) {
  const at = iface.indexOf('@');
  return at < 0 ? iface : iface.slice(0, at);
}

/** `ns:pkg/name@1.0.0` -> `name`. */
function shortName(iface) {
  const s = stripVersion(iface);
  const slash = s.lastIndexOf('/');
  return slash < 0 ? s : s.slice(slash + 1);
}

// ---------------------------------------------------------------------------------------------
// Values: protocol JSON <-> jco's JS representation, driven by the declared type.
//
// jco's representation (js-component-bindgen; checked against generated code):
//   bool: boolean; s8..u32, f32, f64: number; s64/u64: bigint; char, string: string;
//   list<u8|s8|u16|s16|u32|s32|u64|s64|f32|f64>: the matching typed array; other lists and
//   fixed-length lists: arrays; tuple: array; record: object keyed by camelCase field;
//   variant: {tag, val}; enum: the case name; flags: object of booleans keyed by camelCase;
//   option<T>: T | undefined, except when T itself is represented as nullable (an option
//   whose payload is not nullable: `maybe_null`), then {tag:'none'} | {tag:'some', val};
//   result<T, E>: {tag:'ok'|'err', val}; a function's top-level result is unwrapped: an
//   export returns the ok value and throws ComponentError(payload) for err; an import may
//   return {tag:'ok'|'err', val} (or the ok value, or throw for err).

class AdapterError extends Error {}

const TYPED_ARRAYS = {
  u8: Uint8Array,
  s8: Int8Array,
  u16: Uint16Array,
  s16: Int16Array,
  u32: Uint32Array,
  s32: Int32Array,
  u64: BigUint64Array,
  s64: BigInt64Array,
  f32: Float32Array,
  f64: Float64Array,
};

/** js-component-bindgen's `maybe_null`: is `t` represented with null/undefined as a value? */
function maybeNull(t) {
  return t !== null && typeof t === 'object' && 'option' in t && !maybeNull(t.option);
}

function kindOf(t) {
  if (typeof t === 'string') return t;
  if (t && typeof t === 'object') {
    for (const k of ['list', 'map', 'record', 'tuple', 'variant', 'enum', 'option', 'result', 'flags', 'own', 'borrow']) {
      if (k in t) return k;
    }
  }
  throw new AdapterError(`unknown type ${JSON.stringify(t)}`);
}

function floatToJs(v) {
  if (typeof v === 'number') return v;
  switch (v) {
    case 'nan':
      return NaN;
    case 'inf':
      return Infinity;
    case '-inf':
      return -Infinity;
    case '-0':
      return -0;
  }
  throw new AdapterError(`not a float: ${JSON.stringify(v)}`);
}

function floatFromJs(x) {
  if (typeof x !== 'number') throw new AdapterError(`expected a number, got ${typeof x}`);
  if (Number.isNaN(x)) return 'nan';
  if (x === Infinity) return 'inf';
  if (x === -Infinity) return '-inf';
  if (x === 0 && Object.is(x, -0)) return '-0';
  return x;
}

/** A protocol value `v` of type `t` as jco's JS value. */
function toJs(t, v) {
  const k = kindOf(t);
  switch (k) {
    case 'bool':
      if (typeof v !== 'boolean') throw new AdapterError(`not a bool: ${JSON.stringify(v)}`);
      return v;
    case 's8':
    case 'u8':
    case 's16':
    case 'u16':
    case 's32':
    case 'u32':
      if (typeof v !== 'number') throw new AdapterError(`not a ${k}: ${JSON.stringify(v)}`);
      return v;
    case 's64':
    case 'u64':
      return BigInt(v);
    case 'f32':
    case 'f64':
      return floatToJs(v);
    case 'char':
    case 'string':
      if (typeof v !== 'string') throw new AdapterError(`not a ${k}: ${JSON.stringify(v)}`);
      return v;
    case 'list': {
      if (!Array.isArray(v)) throw new AdapterError(`not a list: ${JSON.stringify(v)}`);
      const elem = t.list;
      const items = v.map((x) => toJs(elem, x));
      const TA = typeof elem === 'string' && t.length === undefined ? TYPED_ARRAYS[elem] : undefined;
      return TA ? TA.from(items) : items;
    }
    case 'tuple':
      return t.tuple.map((et, i) => toJs(et, v[i]));
    case 'map': {
      // The protocol sends a map as its list of [key, value] pairs; jco takes a JS Map.
      if (!Array.isArray(v)) throw new AdapterError(`not a map: ${JSON.stringify(v)}`);
      return new Map(v.map(([key, val]) => [toJs(t.map.key, key), toJs(t.map.value, val)]));
    }
    case 'record': {
      const o = {};
      for (const f of t.record) {
        if (!(f.name in v)) throw new AdapterError(`record field ${f.name} missing`);
        o[camel(f.name)] = toJs(f.type, v[f.name]);
      }
      return o;
    }
    case 'variant': {
      const c = t.variant.find((c) => c.name === v.tag);
      if (!c) throw new AdapterError(`no variant case ${JSON.stringify(v.tag)}`);
      return c.type === null || c.type === undefined ? { tag: c.name } : { tag: c.name, val: toJs(c.type, v.val) };
    }
    case 'enum':
      if (!t.enum.includes(v)) throw new AdapterError(`no enum case ${JSON.stringify(v)}`);
      return v;
    case 'option': {
      const tagged = maybeNull(t.option);
      if (v.tag === 'none') return tagged ? { tag: 'none' } : undefined;
      if (v.tag === 'some') {
        const x = toJs(t.option, v.val);
        return tagged ? { tag: 'some', val: x } : x;
      }
      throw new AdapterError(`bad option ${JSON.stringify(v)}`);
    }
    case 'result': {
      if (v.tag === 'ok') return { tag: 'ok', val: t.result.ok == null ? undefined : toJs(t.result.ok, v.val) };
      if (v.tag === 'error') return { tag: 'err', val: t.result.error == null ? undefined : toJs(t.result.error, v.val) };
      throw new AdapterError(`bad result ${JSON.stringify(v)}`);
    }
    case 'flags': {
      if (!Array.isArray(v)) throw new AdapterError(`not flags: ${JSON.stringify(v)}`);
      const o = {};
      for (const name of t.flags) o[camel(name)] = v.includes(name);
      return o;
    }
    case 'own':
    case 'borrow':
      return handleToJs(t[k], k === 'own', v);
  }
  throw new AdapterError(`unsupported type ${JSON.stringify(t)}`);
}

function intFromJs(k, x) {
  if (typeof x !== 'number' || !Number.isInteger(x)) throw new AdapterError(`not a ${k}: ${String(x)}`);
  return x;
}

/** jco's JS value `x` of type `t` as a protocol value. */
function fromJs(t, x) {
  const k = kindOf(t);
  switch (k) {
    case 'bool':
      if (typeof x === 'boolean') return x;
      if (typeof x === 'number') return x !== 0;
      throw new AdapterError(`not a bool: ${String(x)}`);
    case 's8':
    case 'u8':
    case 's16':
    case 'u16':
    case 's32':
    case 'u32':
      return intFromJs(k, x);
    case 's64':
    case 'u64':
      if (typeof x !== 'bigint' && typeof x !== 'number') throw new AdapterError(`not a ${k}: ${String(x)}`);
      return BigInt(x).toString();
    case 'f32':
    case 'f64':
      return floatFromJs(x);
    case 'char':
    case 'string':
      if (typeof x !== 'string') throw new AdapterError(`not a ${k}: ${String(x)}`);
      return x;
    case 'list': {
      if (!Array.isArray(x) && !ArrayBuffer.isView(x)) throw new AdapterError(`not a list: ${String(x)}`);
      return Array.from(x, (e) => fromJs(t.list, e));
    }
    case 'tuple':
      if (!Array.isArray(x)) throw new AdapterError(`not a tuple: ${String(x)}`);
      return t.tuple.map((et, i) => fromJs(et, x[i]));
    case 'map': {
      // A JS Map (or a list of pairs) as the protocol's list of [key, value] pairs, in order.
      const pairs = x instanceof Map ? Array.from(x.entries()) : x;
      if (!Array.isArray(pairs)) throw new AdapterError(`not a map: ${String(x)}`);
      return pairs.map(([key, val]) => [fromJs(t.map.key, key), fromJs(t.map.value, val)]);
    }
    case 'record': {
      if (x === null || typeof x !== 'object') throw new AdapterError(`not a record: ${String(x)}`);
      const o = {};
      for (const f of t.record) o[f.name] = fromJs(f.type, x[camel(f.name)]);
      return o;
    }
    case 'variant': {
      if (x === null || typeof x !== 'object') throw new AdapterError(`not a variant: ${String(x)}`);
      const c = t.variant.find((c) => c.name === x.tag);
      if (!c) throw new AdapterError(`no variant case ${JSON.stringify(x.tag)}`);
      return c.type === null || c.type === undefined ? { tag: c.name } : { tag: c.name, val: fromJs(c.type, x.val) };
    }
    case 'enum':
      if (!t.enum.includes(x)) throw new AdapterError(`no enum case ${JSON.stringify(x)}`);
      return x;
    case 'option': {
      if (maybeNull(t.option)) {
        if (x && x.tag === 'none') return { tag: 'none' };
        if (x && x.tag === 'some') return { tag: 'some', val: fromJs(t.option, x.val) };
        throw new AdapterError(`bad tagged option ${String(x)}`);
      }
      if (x === undefined || x === null) return { tag: 'none' };
      return { tag: 'some', val: fromJs(t.option, x) };
    }
    case 'result': {
      if (x === null || typeof x !== 'object') throw new AdapterError(`not a result: ${String(x)}`);
      if (x.tag === 'ok') return t.result.ok == null ? { tag: 'ok' } : { tag: 'ok', val: fromJs(t.result.ok, x.val) };
      if (x.tag === 'err')
        return t.result.error == null ? { tag: 'error' } : { tag: 'error', val: fromJs(t.result.error, x.val) };
      throw new AdapterError(`bad result tag ${JSON.stringify(x.tag)}`);
    }
    case 'flags': {
      if (x === null || typeof x !== 'object') throw new AdapterError(`not flags: ${String(x)}`);
      return t.flags.filter((name) => !!x[camel(name)]);
    }
    case 'own':
    case 'borrow':
      return handleFromJs(t[k], x);
  }
  throw new AdapterError(`unsupported type ${JSON.stringify(t)}`);
}

function isResult(t) {
  return t !== null && typeof t === 'object' && 'result' in t;
}

// ---------------------------------------------------------------------------------------------
// Traps: jco's and V8's messages, by witness trap class (harness/src/reference/trap.rs). The
// first matching pattern wins; a message matching none is class null (unclassified).
//
// Where each comes from (jco 1.35.0, js-component-bindgen's generated JS):
// * WebAssembly.RuntimeError from V8 while core wasm runs (guest code, realloc, post-return):
//   "unreachable", "memory access out of bounds", ...; jco rewrites some of them into
//   Wasmtime's wording (CORE_TRAP_MESSAGES / _normalizeCoreTrap: "wasm trap: wasm
//   `unreachable` instruction executed", ...). Both spellings are matched.
// * jco's lifting/lowering glue is JS: it reads memory through DataView and typed arrays, so
//   a pointer past the end of memory there is a JS RangeError ("Offset is outside the bounds
//   of the DataView", "Start offset N is outside the bounds of the buffer", "Invalid typed
//   array length: N"), never a wasm trap.
// * jco's own checks: `list pointer [P] is not aligned to A` (TypeError), `invalid variant
//   discriminant for T` / `invalid discriminant specified for E` (TypeError), `not a valid
//   char` (validateGuestChar), `cannot leave component instance`, `cannot enter component
//   instance`, `borrow handles still remain at the end of the call`.
const TRAP_TABLE = [
  // 🔀 jco's async runtime (feature `async`), each the message of one of its checks
  [/waitable set still contains waitables/, 'waitable-set-busy'],
  [/task \[\d+\] exited without resolution/, 'task-not-resolved'],
  [/task \[\d+\]\s+is already resolved/, 'task-already-resolved'],
  [/invalid async return value \[\d+\], outside callback code range/, 'invalid-callback-code'],
  [/cannot drop future write end without first writing a value/, 'future-not-written'],
  [/cannot write to stream after being notified that the readable end dropped/, 'copy-state'],
  [/stream end is not copying, cannot cancel/, 'copy-state'],
  [/cannot drop busy stream/, 'copy-state'],
  [/deadlock detected: event loop cannot make further progress/, 'would-deadlock'],
  [/missing waitable set \[\d+\]/, 'unknown-handle'],
  [/missing waitable obj \(rep \[\d+\]\)/, 'unknown-handle'],
  [/missing stream end \(tableIdx/, 'unknown-handle'],
  [/missing error context \(handle \[\d+\]\)/, 'unknown-handle'],
  [/invalid task state \[\w+\] for cancellation/, 'cancel-not-delivered'],
  [/cannot have concurrent operations active on a future\/stream/, 'copy-state'],
  [/cannot read from (stream|future) after (being notified|previous read succeeded)/, 'copy-state'],
  [/streams must be in idle state/, 'copy-state'],
  [/cannot lift stream while it's in a waitable set/, 'in-waitable-set'],
  // jco's own checks
  [/is not aligned to \d+/, 'misaligned-pointer'],
  [/invalid alignment: type with 32bit alignment/, 'misaligned-pointer'],
  [/invalid variant discriminant for bool/, null], // the spec lifts any non-zero as true
  [/invalid variant discriminant for /, 'invalid-discriminant'],
  [/invalid discriminant specified for /, 'invalid-discriminant'],
  [/not a valid char/, 'invalid-char'],
  [/^Error: invalid i32(,| out of range)/, 'invalid-char'], // i32ToChar
  [/i32 must be greater than zero/, 'invalid-char'],
  // validateGuestChar lets a negative i32 through to String.fromCodePoint, which refuses it
  [/^RangeError: Invalid code point/, 'invalid-char'],
  [/cannot leave component instance/, 'may-not-leave'],
  [/cannot enter component instance/, 'reentrance'],
  [/borrow handles still remain/, 'borrow-not-dropped'],
  // rscTableGet / rscTableRemove (an empty or freed slot, index 0)
  [/unknown handle index \d+/, 'unknown-handle'],
  // rscTableRemove of an own handle whose scope is set (lent; sync code in jco 1.35 never sets
  // it, see expectations/jco.toml)
  [/cannot remove owned resource while borrowed/, 'handle-lent'],
  [/Resource borrow was not dropped/, 'borrow-not-dropped'],
  [/borrows not dropped for resource call/, 'borrow-not-dropped'],
  // decoders (jco 1.35 uses non-fatal TextDecoders, so these only matter if that changes)
  [/^TypeError: The encoded data was not valid for encoding utf-8/i, 'invalid-utf8'],
  [/^TypeError: The encoded data was not valid for encoding utf-16/i, 'invalid-utf16'],
  // V8 refusing an access that jco's JS glue makes through DataView / typed arrays
  [/^RangeError: Offset is outside the bounds of the DataView/, 'out-of-bounds'],
  [/^RangeError: Start offset -?\d+ is outside the bounds of the buffer/, 'out-of-bounds'],
  [/^RangeError: Invalid typed array length/, 'out-of-bounds'],
  [/^RangeError: Invalid DataView length/, 'out-of-bounds'],
  // `new Uint32Array(memory.buffer.slice(ptr, ptr + len*4))`: slice() clamps a range that
  // runs past the end of memory, and the shortened copy is no whole number of elements.
  [/^RangeError: byte length of \w+Array should be a multiple of \d+/, 'out-of-bounds'],
  // `new Uint16Array(memory.buffer, ptr, n)` at an odd ptr
  [/^RangeError: start offset of \w+Array should be a multiple of \d+/, 'misaligned-pointer'],
  // core wasm trapped by itself (V8's messages, and jco's Wasmtime-style rewrites)
  [/^RuntimeError: (wasm trap: )?(wasm `)?unreachable/, 'guest-trap'],
  [/^RuntimeError: (wasm trap: )?(out of bounds )?memory access( out of bounds)?/, 'guest-trap'],
  [/^RuntimeError: .*(divide by zero|remainder by zero|divide result unrepresentable|integer overflow)/, 'guest-trap'],
  [/^RuntimeError: .*(float unrepresentable in integer range|invalid conversion to integer)/, 'guest-trap'],
  [/^RuntimeError: .*(table index is out of bounds|undefined element|function signature mismatch|indirect call type mismatch)/, 'guest-trap'],
  [/^RuntimeError: .*(null function|call stack exhausted)/, 'guest-trap'],
  [/^RangeError: Maximum call stack size exceeded/, 'guest-trap'],
];

function describe(e) {
  if (e instanceof Error) return `${e.name}: ${e.message}`;
  return `thrown non-error: ${String(e)}`;
}

function classify(e) {
  const message = describe(e);
  for (const [re, cls] of TRAP_TABLE) {
    if (re.test(message)) return { class: cls, message };
  }
  return { class: null, message };
}

// ---------------------------------------------------------------------------------------------
// The adapter's state: one compiled component, one instance at a time.

class ImportFailed extends Error {}

/**
 * jco handed the host a resource it cannot stand for: an object jco made itself for a handle
 * index its table does not hold (it lifts some invalid handles without trapping, see
 * expectations/jco.toml), or one of the wrong type. The call is answered as an unclassified
 * trap whose message says so: there is no value to answer with.
 */
class BadHandle extends Error {}

let compiled = null; // { mod, getCoreModule, imports, exports, resources, dir }
let instance = null; // jco's Root object
let inCall = false;

/** A callback line to witness during a call (an import, a destructor); witness's `ok` value. */
function callback(message, what) {
  return callbackReply(message, what).ok;
}

/** `callback`, the whole reply (an import's `later` too). */
function callbackReply(message, what) {
  if (!inCall) throw new AdapterError(`${what} called outside a call`);
  writeLine(message);
  const reply = readRequest();
  if (reply === null) {
    // witness is gone: nothing more to do.
    process.exit(0);
  }
  if ('error' in reply) throw new ImportFailed(`witness failed the ${what}: ${reply.error}`);
  if (!('ok' in reply)) throw new AdapterError(`bad reply to the ${what}: ${JSON.stringify(reply)}`);
  return reply;
}

// ---------------------------------------------------------------------------------------------
// Resources (feature `resources`; adapters/PROTOCOL.md, "Resources").
//
// What jco 1.35.0 does with them (js-component-bindgen's generated JS):
// * A host resource R of an imported interface I is the class `imports[I][UpperCamel(R)]` (a
//   resource of the world's own imports: `imports[R].default`). Lowering an object of it into
//   the guest (own or borrow; `instanceof R` is checked) puts the object in a capture table
//   under a rep jco counts itself (`++captureCnt`) and adds a handle to R's handle table (one
//   table per resource type). Lifting a handle out of the guest (an import's argument, an
//   export's result) finds the object again by that rep (`captureTable.get(rep)`), or, when
//   there is none, makes one with `Object.create(R.prototype)`. `[resource-drop]R` of an own
//   handle calls the captured object's `[Symbol.dispose]()`: the host destructor.
//   An imported `[constructor]R` is called as `new R(...)`, `[method]R.m` as `obj.m(...)`,
//   `[static]R.s` as `R.s(...)`.
// * A guest resource R of an exported interface I is the class `root[I][UpperCamel(R)]`:
//   `[constructor]R` is `new R(...)`, `[method]R.m` is `R.prototype.m` called on the object,
//   `[static]R.s` is `R.s(...)`. Each object lifted out of the guest (own) keeps its guest
//   handle index; its `[Symbol.dispose]()` drops that handle and runs the guest's destructor.
//
// The adapter: one class per host resource type per instance, whose objects stand for
// witness's reps (one object per rep per instance); the guest-resource objects jco hands the
// host are numbered 0, 1, 2, ... per instance.

/** A symbol-keyed slot on a host resource class: its imported constructor, if any. */
const CONSTRUCT = Symbol('witness imported constructor');
const DISPOSE_KEYS = [...new Set([Symbol.dispose, Symbol.for('dispose')].filter((k) => k !== undefined))];
const RESOURCE_FN = /^\[(constructor|method|static)\]([^.]+)(?:\.(.+))?$/;

let res = null; // per instance: { hostClasses, hostObjects, guest, nextGuestId }
const hostRep = new WeakMap(); // host resource object -> { key, rep }

function rtKey(rt) {
  return JSON.stringify([rt.interface ?? null, rt.name, rt.side]);
}

function freshResourceState() {
  return { hostClasses: new Map(), hostObjects: new Map(), guest: new Map(), nextGuestId: 0 };
}

/** The class standing for host resource `rt` in one instance. */
function makeHostClass(rt) {
  const Cls = class {
    // jco calls it only for an imported `[constructor]R` (`new R(...)`): the callback's answer,
    // an own<R>, is our object for witness's rep, and `new` yields it.
    constructor(...args) {
      const ctor = Cls[CONSTRUCT];
      if (!ctor) throw new AdapterError(`jco constructed host resource ${rt.name}, which has no imported constructor`);
      return ctor(...args);
    }
  };
  Object.defineProperty(Cls, 'name', { value: upperCamel(rt.name) });
  const dispose = function () {
    const info = hostRep.get(this);
    if (!info) throw new BadHandle(`jco ran the destructor of a ${rt.name} the host never gave it`);
    callback({ op: 'dtor', resource: rt, rep: info.rep }, `destructor of ${rt.name}`);
  };
  for (const k of DISPOSE_KEYS) Cls.prototype[k] = dispose;
  return Cls;
}

/** The object standing for host resource `rt`'s rep `rep` in this instance. */
function hostObject(rt, rep) {
  if (!Number.isInteger(rep) || rep < 0 || rep > 0xffffffff) throw new AdapterError(`not a rep: ${JSON.stringify(rep)}`);
  const key = rtKey(rt);
  const Cls = res.hostClasses.get(key);
  if (!Cls) throw new AdapterError(`host resource ${JSON.stringify(rt)} is not in compile's resources`);
  let objects = res.hostObjects.get(key);
  if (!objects) res.hostObjects.set(key, (objects = new Map()));
  let o = objects.get(rep);
  if (!o) {
    o = Object.create(Cls.prototype);
    hostRep.set(o, { key, rep });
    objects.set(rep, o);
  }
  return o;
}

/** The exported class of guest resource `rt` in this instance, if jco has it. */
function guestClass(rt) {
  try {
    return exportHolder(instance, rt.interface ?? null)[upperCamel(rt.name)];
  } catch {
    return undefined;
  }
}

/** Protocol value `v` of own<rt> (`own`) or borrow<rt> as jco's JS value. */
function handleToJs(rt, own, v) {
  if (!res) throw new AdapterError('a handle outside an instance');
  if (rt.side === 'import') return hostObject(rt, v);
  const entry = res.guest.get(v);
  if (!entry) throw new AdapterError(`no guest resource ${JSON.stringify(v)} (never received, moved or dropped)`);
  if (entry.key !== rtKey(rt)) throw new AdapterError(`guest resource ${v} is not a ${rt.name}`);
  if (own) res.guest.delete(v); // moved to the guest
  return entry.obj;
}

/** jco's JS value `x` of own<rt> or borrow<rt> as a protocol value. */
function handleFromJs(rt, x) {
  if (!res) throw new AdapterError('a handle outside an instance');
  const key = rtKey(rt);
  if (rt.side === 'import') {
    const info = x !== null && typeof x === 'object' ? hostRep.get(x) : undefined;
    if (!info || info.key !== key) {
      throw new BadHandle(
        `jco handed the host a ${rt.name} the host never gave it (an object jco made for a handle ` +
          `it did not find in its table: jco lifted an invalid handle without trapping)`,
      );
    }
    return info.rep;
  }
  const Cls = guestClass(rt);
  if (x === null || typeof x !== 'object' || (typeof Cls === 'function' && !(x instanceof Cls))) {
    throw new BadHandle(`jco handed the host something that is not a ${rt.name}: ${String(x)}`);
  }
  const id = res.nextGuestId++;
  res.guest.set(id, { obj: x, key });
  return id;
}

// ---------------------------------------------------------------------------------------------

function exportHolder(root, iface) {
  if (iface === null || iface === undefined) return root;
  const holder = root[iface] ?? root[stripVersion(iface)] ?? root[camel(shortName(iface))];
  if (!holder) throw new AdapterError(`jco instance has no export for interface ${iface}`);
  return holder;
}

/** Export `name` of `iface` as a JS function of its declared params' JS values. */
function findExport(root, iface, name) {
  const holder = exportHolder(root, iface);
  const where = iface ?? 'the world';
  const m = RESOURCE_FN.exec(name);
  if (m) {
    const [, kind, resource, fname] = m;
    const Cls = holder[upperCamel(resource)];
    if (typeof Cls !== 'function') throw new AdapterError(`jco instance has no class ${upperCamel(resource)} in ${where}`);
    if (kind === 'constructor') return (...args) => new Cls(...args);
    const f = kind === 'method' ? Cls.prototype[camel(fname)] : Cls[camel(fname)];
    if (typeof f !== 'function') throw new AdapterError(`jco's ${Cls.name} has no ${kind} ${camel(fname)} (${name})`);
    // A method's first param is self (a borrow of the resource): the object it is called on.
    return kind === 'method' ? (self, ...args) => f.apply(self, args) : (...args) => f(...args);
  }
  const fn = holder[camel(name)] ?? holder[name];
  if (typeof fn !== 'function') throw new AdapterError(`jco instance has no function ${name} in ${where}`);
  return fn;
}

function makeImport(decl) {
  return function (...jsArgs) {
    if (!inCall) throw new AdapterError(`import ${decl.name} called outside a call`);
    let args;
    try {
      args = decl.params.map((p, i) => fromJs(p.type, jsArgs[i]));
    } catch (e) {
      throw e instanceof AdapterError || e instanceof BadHandle ? e : new AdapterError(`import ${decl.name} args: ${describe(e)}`);
    }
    const message = { op: 'import', interface: decl.interface ?? null, name: decl.name, args };
    const reply = callbackReply(message, `import ${decl.name}`);
    // A top-level result is handed back as {tag:'ok'|'err', val}: jco's import wrapper takes
    // an object with such a tag as the result itself (and would treat anything else as ok).
    const result = decl.result === null || decl.result === undefined ? undefined : toJs(decl.result, reply.ok);
    // Feature `async`: an answer given later is a promise settled once the event loop has run
    // what was ready (a macrotask), so the guest's call gets a STARTED subtask.
    if (decl.async && reply.later === true) return new Promise((resolve) => setImmediate(() => resolve(result)));
    return result;
  };
}

/** jco's imports object for one instance, with this instance's host resource classes. */
function buildImports(decls, resources) {
  const obj = {};
  for (const rt of resources) {
    if (rt.side !== 'import') continue;
    const Cls = makeHostClass(rt);
    res.hostClasses.set(rtKey(rt), Cls);
    if (rt.interface === null || rt.interface === undefined) {
      // A resource of the world's own imports: `imports['r'].default`.
      for (const key of new Set([rt.name, camel(rt.name)])) obj[key] = { default: Cls, [upperCamel(rt.name)]: Cls };
    } else {
      for (const key of new Set([rt.interface, stripVersion(rt.interface)])) {
        obj[key] ??= {};
        obj[key][upperCamel(rt.name)] = Cls;
      }
    }
  }
  for (const d of decls) {
    const fn = makeImport(d);
    const m = RESOURCE_FN.exec(d.name);
    if (m) {
      const [, kind, resource, fname] = m;
      const Cls = res.hostClasses.get(rtKey({ interface: d.interface ?? null, name: resource, side: 'import' }));
      if (!Cls) throw new AdapterError(`import ${d.name}: resource ${resource} is not in compile's resources`);
      if (kind === 'constructor') Cls[CONSTRUCT] = fn;
      else if (kind === 'static') Cls[camel(fname)] = fn;
      else
        Cls.prototype[camel(fname)] = function (...args) {
          return fn(this, ...args); // self first
        };
    } else if (d.interface === null || d.interface === undefined) {
      // A world-level function import is its own "instance" with a default export.
      for (const key of new Set([d.name, camel(d.name)])) {
        obj[key] = { default: fn, [camel(d.name)]: fn };
      }
    } else {
      for (const key of new Set([d.interface, stripVersion(d.interface)])) {
        obj[key] ??= {};
        obj[key][camel(d.name)] = fn;
      }
    }
  }
  return obj;
}

async function compile(req) {
  if (req.kind !== 'component') throw new AdapterError(`kind ${req.kind} is not supported`);
  if (compiled && !KEEP) fs.rmSync(compiled.dir, { recursive: true, force: true });
  compiled = null;
  instance = null;
  res = null;
  const bytes = Buffer.from(req.wasm, 'base64');
  const { transpile } = await jco();
  let files;
  try {
    ({ files } = await transpile(new Uint8Array(bytes), {
      name: 'component',
      instantiation: 'sync',
      noTypescript: true,
      emitTypescriptDeclarations: false,
      quiet: true,
    }));
  } catch (e) {
    // js-component-bindgen runs as wasm: a panic of it is a bare `unreachable` here, and its
    // message (e.g. an unsupported string encoding) went to stderr.
    throw new AdapterError(`jco transpile failed: ${describe(e)} (js-component-bindgen's message is on stderr)`);
  }
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'witness-jco-'));
  let jsFile = null;
  const wasm = new Map();
  for (const [name, data] of Object.entries(files)) {
    const rel = name.replace(/^\/+/, '');
    const out = path.join(dir, rel);
    fs.mkdirSync(path.dirname(out), { recursive: true });
    fs.writeFileSync(out, data);
    if (rel.endsWith('.wasm')) wasm.set(rel, data);
    if (rel.endsWith('.js') && !rel.includes('/')) jsFile = out;
  }
  if (KEEP) console.error(`jco adapter: transpiled files in ${dir}`);
  if (!jsFile) throw new AdapterError('jco produced no JS module');
  const mod = await import(pathToFileURL(jsFile).href);
  if (typeof mod.instantiate !== 'function') throw new AdapterError('the generated module has no instantiate()');
  const coreModules = new Map();
  const getCoreModule = (p) => {
    const rel = p.replace(/^\.\//, '');
    let m = coreModules.get(rel);
    if (!m) {
      const data = wasm.get(rel) ?? wasm.get(path.basename(rel));
      if (!data) throw new AdapterError(`jco asked for an unknown core module ${p}`);
      m = new WebAssembly.Module(data);
      coreModules.set(rel, m);
    }
    return m;
  };
  for (const rel of wasm.keys()) getCoreModule(rel); // compile now: errors belong to `compile`
  compiled = {
    mod,
    getCoreModule,
    imports: req.imports ?? [],
    exports: req.exports ?? [],
    resources: req.resources ?? [],
    dir,
  };
}

function instantiate() {
  if (!compiled) throw new AdapterError('instantiate before compile');
  instance = null;
  res = freshResourceState(); // guest handle ids start at 0 again; new host classes and objects
  const root = compiled.mod.instantiate(compiled.getCoreModule, buildImports(compiled.imports, compiled.resources));
  if (root && typeof root.then === 'function') throw new AdapterError('jco instantiated asynchronously');
  instance = root;
}

/** Run `f` as a call into the guest (imports and destructor callbacks allowed). */
function running(f) {
  inCall = true;
  try {
    return { threw: false, value: f() };
  } catch (e) {
    return { threw: true, value: e };
  } finally {
    inCall = false;
  }
}

/** The reply for an exception out of a call into the guest. */
function failureReply(e) {
  if (e instanceof AdapterError) return { error: `adapter: ${e.message}` };
  if (e instanceof ImportFailed) return { trap: { class: null, message: e.message } };
  if (e instanceof BadHandle) return { trap: { class: null, message: `adapter: ${e.message}` } };
  return { trap: classify(e) };
}

/** The reply for a result that did not convert. */
function conversionReply(e) {
  if (e instanceof BadHandle) return { trap: { class: null, message: `adapter: ${e.message}` } };
  return { error: `adapter: ${describe(e)}` };
}

async function call(req) {
  if (!instance) return { error: 'call before instantiate' };
  const iface = req.interface ?? null;
  const decl = compiled.exports.find((d) => (d.interface ?? null) === iface && d.name === req.name);
  if (!decl) return { error: `export ${iface ?? ''}#${req.name} was not declared at compile` };
  let fn, jsArgs;
  try {
    fn = findExport(instance, iface, req.name);
    jsArgs = decl.params.map((p, i) => toJs(p.type, req.args[i]));
  } catch (e) {
    return { error: `adapter: ${describe(e)}` };
  }
  let { threw, value } = running(() => fn(...jsArgs));
  // Feature `async`: jco's async export returns a promise, settled when the task resolves.
  if (!threw && decl.async && value && typeof value.then === 'function') {
    inCall = true;
    try {
      value = await value;
    } catch (e) {
      threw = true;
      value = e;
    } finally {
      inCall = false;
    }
  }
  const topResult = decl.result !== null && decl.result !== undefined && isResult(decl.result);
  if (threw) {
    const e = value;
    // A top-level result's err: jco throws ComponentError with the payload.
    if (topResult && e instanceof Error && e.constructor?.name === 'ComponentError' && Object.hasOwn(e, 'payload')) {
      try {
        return { ok: fromJs(decl.result, { tag: 'err', val: e.payload }) };
      } catch (ce) {
        return conversionReply(ce);
      }
    }
    return failureReply(e);
  }
  if (decl.result === null || decl.result === undefined) return { ok: null };
  try {
    return { ok: fromJs(decl.result, topResult ? { tag: 'ok', val: value } : value) };
  } catch (e) {
    return conversionReply(e);
  }
}

/** `drop`: the host drops guest resource `handle` (jco: the object's `[Symbol.dispose]()`). */
function drop(req) {
  if (!instance) return { error: 'drop before instantiate' };
  const entry = res.guest.get(req.handle);
  if (!entry) return { error: `adapter: no guest resource ${JSON.stringify(req.handle)} (never received, moved or dropped)` };
  res.guest.delete(req.handle);
  const dispose = DISPOSE_KEYS.map((k) => entry.obj[k]).find((f) => typeof f === 'function');
  if (!dispose) return { error: `adapter: jco's guest resource ${req.handle} has no [Symbol.dispose]` };
  const { threw, value } = running(() => dispose.call(entry.obj));
  return threw ? failureReply(value) : { ok: null };
}

// ---------------------------------------------------------------------------------------------

async function main() {
  // Feature `async` needs JSPI, which jco's async code uses (`WebAssembly.Suspending`): Node.js
  // 24 with --experimental-wasm-jspi has it, Node.js 20 has not.
  const features = typeof WebAssembly.Suspending === 'function' ? ['resources', 'async'] : ['resources'];
  writeLine({ adapter: 'jco', version: jcoVersion(), protocol: 2, features });
  for (;;) {
    let req;
    try {
      req = readRequest();
    } catch (e) {
      writeLine({ error: `adapter: bad request line: ${describe(e)}` });
      continue;
    }
    if (req === null) break;
    let reply;
    try {
      switch (req.op) {
        case 'compile':
          await compile(req);
          reply = { ok: null };
          break;
        case 'instantiate':
          instantiate();
          reply = { ok: null };
          break;
        case 'call':
          reply = await call(req);
          break;
        case 'drop':
          reply = drop(req);
          break;
        default:
          reply = { error: `adapter: unknown op ${JSON.stringify(req.op)}` };
      }
    } catch (e) {
      reply = { error: e instanceof AdapterError ? e.message : `${req.op}: ${describe(e)}` };
    }
    // The final reply names its request's id (protocol 2), so witness matches the two.
    writeLine({ ...reply, id: req.id });
  }
  if (compiled && !KEEP) fs.rmSync(compiled.dir, { recursive: true, force: true });
  process.exit(0);
}

main().catch((e) => {
  console.error('jco adapter: fatal:', e);
  process.exit(1);
});
