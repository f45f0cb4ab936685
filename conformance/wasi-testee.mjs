// Runs the wasm32-wasip1 build of conformance-testee under Node's WASI (V8, the engine Envoy
// embeds): `node wasi-testee.mjs conformance-testee.wasm --proto-root DIR [--editions-set FILE]`.
// The proto directory (and the editions set's directory) is preopened at its own absolute
// path; stdin/stdout are the runner's pipes.
import { readFile } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import { WASI } from 'node:wasi';

const [wasmPath, ...args] = process.argv.slice(2);
if (!wasmPath) {
  console.error('usage: node wasi-testee.mjs TESTEE.wasm [--proto-root DIR] [testee args]');
  process.exit(2);
}
// Forward the arguments, with the proto root made absolute and preopened at that same path.
let root = process.env.PROTOBUF_SRC_DIR;
let editions;
const rest = [];
for (let i = 0; i < args.length; i++) {
  if (args[i] === '--proto-root' && i + 1 < args.length) root = args[++i];
  else if (args[i].startsWith('--proto-root=')) root = args[i].slice('--proto-root='.length);
  else if (args[i] === '--editions-set' && i + 1 < args.length) editions = args[++i];
  else rest.push(args[i]);
}
const preopens = {};
const wasiArgs = ['conformance-testee', ...rest];
if (editions) {
  editions = resolve(editions);
  preopens[dirname(editions)] = dirname(editions);
  wasiArgs.push('--editions-set', editions);
}
if (root) {
  root = resolve(root);
  preopens[root] = root;
  wasiArgs.push('--proto-root', root);
}
const wasi = new WASI({ version: 'preview1', args: wasiArgs, env: {}, preopens, returnOnExit: true });
const module = await WebAssembly.compile(await readFile(wasmPath));
// The testee links the json2grpc core without its proxy-wasm layer, so WASI is all it imports.
const instance = await WebAssembly.instantiate(module, wasi.getImportObject());
process.exitCode = wasi.start(instance);
