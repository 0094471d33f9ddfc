// Builds one JavaScript job into a component with componentize-js's JS API (its CLI fails on
// our WIT directory: "failed to get path metadata").
//
// Usage: node componentize.mjs <source.js> <wit dir> <world> <out.wasm> [--http]
// Without --http the engine's fetch() support is left out, so the component imports no
// wasi:http and targets the plain `job` world.
//
// Run from target/langs/js (make examples-langs copies it there), where the pinned
// @bytecodealliance/componentize-js is installed.
import { writeFile, rename } from 'node:fs/promises';
import { resolve } from 'node:path';
import { componentize } from '@bytecodealliance/componentize-js';

const [source, witPath, worldName, out, ...flags] = process.argv.slice(2);
if (!out) {
  console.error('usage: node componentize.mjs <source.js> <wit dir> <world> <out.wasm> [--http]');
  process.exit(2);
}
const http = flags.includes('--http');
const started = Date.now();
const { component } = await componentize({
  sourcePath: resolve(source),
  witPath: resolve(witPath),
  worldName,
  // `fetch-event` would export wasi:http/incoming-handler: a job is not a server.
  disableFeatures: http ? ['fetch-event'] : ['http', 'fetch-event'],
});
// Write next to the target, then rename: an interrupted build never leaves a truncated file
// that make would take for up to date.
const tmp = `${resolve(out)}.tmp`;
await writeFile(tmp, component);
await rename(tmp, resolve(out));
console.log(`${out}: ${component.byteLength} bytes in ${((Date.now() - started) / 1000).toFixed(1)} s`);
