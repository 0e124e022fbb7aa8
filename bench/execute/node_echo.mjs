// Baseline: the same echo.wasm under Node.js node:wasi, compiled once and
// re-instantiated for every call inside one process. Prints
// "p50_ms p99_ms calls_per_s".
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { WASI } from 'node:wasi';

const [wasmPath, n = '2000'] = process.argv.slice(2);
const module = await WebAssembly.compile(fs.readFileSync(wasmPath));
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'clawbox-node-echo-'));
const inPath = path.join(dir, 'in');
fs.writeFileSync(inPath, '{"hello":"world"}');
const times = [];
// Answers host calls (the echo tool makes none) with a deny envelope.
const hostCall = () => -1;
const start = process.hrtime.bigint();
for (let i = 0; i < Number(n); i++) {
  const t0 = process.hrtime.bigint();
  const stdin = fs.openSync(inPath, 'r');
  const stdout = fs.openSync(path.join(dir, 'out'), 'w');
  const wasi = new WASI({ version: 'preview1', args: [], env: {}, stdin, stdout, returnOnExit: true });
  const inst = await WebAssembly.instantiate(module, {
    wasi_snapshot_preview1: wasi.wasiImport,
    clawbox: { host_call: hostCall },
  });
  wasi.start(inst);
  fs.closeSync(stdin);
  fs.closeSync(stdout);
  times.push(Number(process.hrtime.bigint() - t0) / 1e6);
  if (i % 200 === 199 && global.gc) global.gc();
}
const total = Number(process.hrtime.bigint() - start) / 1e9;
const out = fs.readFileSync(path.join(dir, 'out'), 'utf8');
if (!out.includes('"hello":"world"')) throw new Error(`unexpected output: ${out}`);
fs.rmSync(dir, { recursive: true });
times.sort((a, b) => a - b);
const pct = (p) => times[Math.min(times.length - 1, Math.floor(times.length * p))];
console.log(`${pct(0.5).toFixed(3)} ${pct(0.99).toFixed(3)} ${(times.length / total).toFixed(0)}`);
