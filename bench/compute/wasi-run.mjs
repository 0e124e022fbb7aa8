// Runs a wasm32-wasi (preview 1) module under Node's WASI, the way a user
// would run the same .wasm on V8: node wasi-run.mjs module.wasm [args...].
// The module's stdout goes to ours; on stderr, one line with the time spent
// compiling + instantiating and the total wall time, in ms.
import { readFileSync } from 'node:fs';
import { WASI } from 'node:wasi';

const [path, ...args] = process.argv.slice(2);
const t0 = performance.now();
const wasi = new WASI({ version: 'preview1', args: [path, ...args], env: {}, returnOnExit: true });
const module = await WebAssembly.compile(readFileSync(path));
const instance = await WebAssembly.instantiate(module, wasi.getImportObject());
const t1 = performance.now();
const code = wasi.start(instance);
const t2 = performance.now();
process.stderr.write(`node-wasi: compile+instantiate ${(t1 - t0).toFixed(1)} ms, total ${(t2 - t0).toFixed(1)} ms\n`);
process.exitCode = code;
