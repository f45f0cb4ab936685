// Runs the core benchmark (json2grpc-bench-core compiled to wasm32-wasip1) inside Node's V8,
// with node:wasi (clock_time_get, file reads from the preopened directories).
//
//   node --no-liftoff bench/wasm-core/run.mjs CORE.wasm DIR [ARGS...]
//
// --no-liftoff: Envoy's V8 (proxy-wasm-cpp-host) turns Liftoff off, so every function is
// compiled by TurboFan before it first runs; the same here. DIR is preopened as /data; ARGS are
// passed on, with DIR's files under /data (e.g. --configure /data/synthetic-plugin.json).
import { readFile } from 'node:fs/promises';
import { WASI } from 'node:wasi';
import { argv, exit } from 'node:process';

const [wasmPath, dir, ...rest] = argv.slice(2);
if (!wasmPath || !dir) {
  console.error('usage: node --no-liftoff run.mjs CORE.wasm DIR [ARGS...]');
  exit(2);
}
const wasi = new WASI({
  version: 'preview1',
  args: ['json2grpc-bench-core', '/data', '--runtime', 'v8', ...rest],
  preopens: { '/data': dir },
  returnOnExit: true,
});
const module = await WebAssembly.compile(await readFile(wasmPath));
const instance = await WebAssembly.instantiate(module, wasi.getImportObject());
const status = wasi.start(instance);
if (rest.includes('--memory')) {
  // The pages the run touched (a page never written reads as zeros): what a VM's linear memory
  // costs in RSS, whatever the allocator's own accounting says.
  const memory = new Uint8Array(instance.exports.memory.buffer);
  let touched = 0;
  for (let page = 0; page < memory.length; page += 4096) {
    if (memory.subarray(page, page + 4096).some((b) => b !== 0)) touched += 1;
  }
  console.log(`TOUCHED runtime=v8 touched_kib=${touched * 4} linear_memory_kib=${memory.length / 1024}`);
}
exit(status);
