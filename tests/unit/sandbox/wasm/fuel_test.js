// Runs metered modules in node's WebAssembly engine and checks the fuel
// accounting: exact charges for fuel.wat's functions, traps with
// `unreachable` when the budget is too small, unchanged results otherwise,
// and a full WASI program run to completion and stopped by a small budget.
//
// usage: node fuel_test.js WASM_TOOL FUEL.wasm [WASI_PROGRAM.wasm...]
'use strict';
const assert = require('node:assert/strict');
const { execFileSync } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');

const [tool, fuelWasm, ...programs] = process.argv.slice(2);
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'cb-fuel-'));

function instrument(file) {
  const out = path.join(tmp, path.basename(file) + '.inst');
  execFileSync(tool, ['instrument', file, out]);
  return new WebAssembly.Module(fs.readFileSync(out));
}

function expectTrap(fn) {
  assert.throws(fn, (e) => e instanceof WebAssembly.RuntimeError && /unreachable/.test(e.message));
}

// Calls exports[name](...args) with `budget` fuel; returns [result, used].
function metered(inst, budget, name, ...args) {
  const fuel = inst.exports.__clawbox_fuel;
  fuel.value = BigInt(budget);
  const result = inst.exports[name](...args);
  return [result, BigInt(budget) - fuel.value];
}

function fuelTests() {
  const plain = new WebAssembly.Instance(new WebAssembly.Module(fs.readFileSync(fuelWasm)));
  const inst = new WebAssembly.Instance(instrument(fuelWasm));
  assert.equal(inst.exports.__clawbox_fuel.value, 2n ** 63n - 1n); // INT64_MAX until set

  for (const n of [0, 1, 100, 1000]) {
    const want = 14n + 10n * BigInt(n);
    assert.deepEqual(metered(inst, 1e9, 'count', n), [n, want]);
    // The exact budget suffices; one less traps.
    assert.deepEqual(metered(inst, want, 'count', n), [n, want]);
    expectTrap(() => metered(inst, want - 1n, 'count', n));
  }
  assert.deepEqual(metered(inst, 1, 'empty'), [undefined, 1n]);
  expectTrap(() => metered(inst, 0, 'empty'));

  // fib(10) makes 89 calls that take the then arm (7 instructions) and 88
  // that take the else arm (15): an arm not taken is not charged.
  assert.deepEqual(metered(inst, 1e9, 'fib', 10), [55, 89n * 7n + 88n * 15n]);
  assert.deepEqual(metered(inst, 1e9, 'fib', 1), [1, 7n]);
  // nested(n): 3 at entry, 12 per outer and 13 per inner iteration.
  for (const n of [1, 7, 50]) {
    const N = BigInt(n);
    assert.deepEqual(metered(inst, 1e9, 'nested', n), [n * n, 3n + 12n * N + 13n * N * N]);
  }
  // An endless loop is stopped, and fuel ends below zero.
  expectTrap(() => metered(inst, 100000, 'spin'));
  assert.ok(inst.exports.__clawbox_fuel.value < 0n);

  for (const [name, args] of [['dispatch', [0, 7, 5]], ['dispatch', [1, 7, 5]],
                              ['switch', [0]], ['switch', [1]], ['switch', [9]]]) {
    const [got, used] = metered(inst, 1e6, name, ...args);
    assert.equal(got, plain.exports[name](...args));
    assert.ok(used > 0n && used < 20n, `${name} used ${used}`);
  }
}

function runWasi(mod, budget) {
  const { WASI } = require('node:wasi');
  const outFile = path.join(tmp, 'stdout');
  const fd = fs.openSync(outFile, 'w');
  const wasi = new WASI({ version: 'preview1', args: ['prog'], env: {}, stdout: fd,
                          returnOnExit: true });
  const inst = new WebAssembly.Instance(mod, wasi.getImportObject());
  inst.exports.__clawbox_fuel.value = BigInt(budget);
  try {
    const code = wasi.start(inst);
    return { code, used: BigInt(budget) - inst.exports.__clawbox_fuel.value,
             out: fs.readFileSync(outFile, 'utf8') };
  } finally {
    fs.closeSync(fd);
  }
}

function programTests(file) {
  const mod = instrument(file);
  const full = runWasi(mod, 1e12);
  assert.equal(full.code, 0);
  assert.ok(full.out.length > 0);
  // Thousands of loop iterations: fuel use must be in the right range.
  assert.ok(full.used > 10000n && full.used < 100000000n, `used ${full.used}`);
  const again = runWasi(mod, full.used);
  assert.equal(again.out, full.out);
  expectTrap(() => runWasi(mod, full.used / 2n));
  console.log(`ok ${path.basename(file)}: ${full.used} fuel, output ${JSON.stringify(full.out)}`);
}

process.removeAllListeners('warning'); // the WASI module is "experimental"
try {
  fuelTests();
  console.log('ok fuel.wasm');
  for (const p of programs)
    programTests(p);
} finally {
  fs.rmSync(tmp, { recursive: true, force: true });
}
