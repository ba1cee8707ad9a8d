// Runs the scripts of a viewer.html in node (no document: the page part is skipped) and checks what the page would
// show against the run's .npy files: every embedded map's rows ("from") and columns ("to") to float16 precision,
// the mean of the heads, the order of the strongest weights, and the tokens' text against the prompt.
// Usage: node tests/viewer_check.js OUT_DIR
// Prints one line per check and exits 1 on the first failure.
'use strict';
const fs = require('fs');
const path = require('path');
const vm = require('vm');

const out = process.argv[2];
const html = fs.readFileSync(path.join(out, 'viewer.html'), 'utf8');
const meta = JSON.parse(fs.readFileSync(path.join(out, 'meta.json'), 'utf8'));

function fail(message) {
  console.log('FAIL ' + message);
  process.exit(1);
}

// float32 .npy, version 1.0, C order: {shape, data}.
function loadNpy(file) {
  const buf = fs.readFileSync(file);
  const headerLen = buf.readUInt16LE(8);
  const header = buf.toString('latin1', 10, 10 + headerLen);
  if (!header.includes("'descr': '<f4'") || !header.includes("'fortran_order': False")) fail(file + ': ' + header);
  const shape = header.match(/'shape': \(([^)]*)\)/)[1].split(',').filter((s) => s.trim()).map(Number);
  const bytes = buf.subarray(10 + headerLen);
  const data = new Float32Array(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.length));
  return {shape, data};
}

const scripts = [...html.matchAll(/<script>([\s\S]*?)<\/script>/g)].map((m) => m[1]);
if (scripts.length < 3) fail('expected the page script, AV.init and AV.start, found ' + scripts.length + ' scripts');
if ((html.match(/<script/g) || []).length !== scripts.length) fail('a script element is not closed where it should be');
// The page's data (the prompt's tokens, the model's name, file names) carries no '<' at all: nothing of it can end
// the script element or open an HTML comment inside it.
for (const s of scripts.slice(1)) if (s.includes('<')) fail("a data script holds '<': " + s.slice(0, 200));
const context = vm.createContext({atob});
for (const s of scripts) vm.runInContext(s, context);
const AV = vm.runInContext('AV', context);

const n = meta.n_tokens, causal = meta.model.model_type === 'gpt2';
const layers = meta.captured.layers, heads = meta.captured.heads;
// float16 keeps 11 significant bits; below 2^-14 its step is 2^-24.
const within = (got, want) => Math.abs(got - want) <= Math.abs(want) * Math.pow(2, -11) + Math.pow(2, -25);
let maxErr = 0, checked = 0;
function compare(what, got, want) {
  for (let j = 0; j < n; j++) {
    maxErr = Math.max(maxErr, Math.abs(got[j] - want[j]));
    if (!within(got[j], want[j])) fail(what + ' entry ' + j + ': ' + got[j] + ', want ' + want[j]);
  }
  checked++;
}
for (const layer of layers) {
  const p = loadNpy(path.join(out, 'attention', 'layer_' + String(layer).padStart(2, '0') + '.npy'));
  const at = (s, i, j) => p.data[(s * n + i) * n + j];
  const mean = (i, j) => heads.reduce((acc, h, s) => acc + at(s, i, j), 0) / heads.length;
  const maps = heads.map((h, s) => [h, (i, j) => at(s, i, j)]);
  if (heads.length > 1) maps.push([-1, mean]);
  for (const [head, entry] of maps) {
    if (!AV.has(layer, head)) continue;
    for (let t = 0; t < n; t++) {
      const row = Array.from({length: n}, (_, j) => entry(t, j));
      const col = Array.from({length: n}, (_, i) => entry(i, t));
      compare('layer ' + layer + ' head ' + head + ' from ' + t, AV.values(layer, head, t, 'from'), row);
      compare('layer ' + layer + ' head ' + head + ' to ' + t, AV.values(layer, head, t, 'to'), col);
      const order = AV.top(AV.values(layer, head, t, 'from'), 5);
      for (let k = 1; k < order.length; k++) {
        const v = AV.values(layer, head, t, 'from');
        if (v[order[k]] > v[order[k - 1]]) fail('top weights out of order at layer ' + layer + ' token ' + t);
      }
    }
  }
}
if (causal) {
  const v = AV.values(layers[0], heads[0], 0, 'from');
  for (let j = 1; j < n; j++) if (v[j] !== 0) fail('a causal row has weight past its token');
}
const embedded = [];
for (const layer of layers) for (const head of [-1, ...heads]) if (AV.has(layer, head)) embedded.push(layer + ':' + head);
console.log('maps ' + embedded.join(' '));
console.log('checked ' + checked + ' rows and columns, max |error| ' + maxErr.toExponential(2));

// The tokens' text, with the gaps between them, gives the prompt back (special tokens aside).
const page = JSON.parse(scripts.find((s) => s.startsWith('AV.init(')).slice(8, -2));
const text = page.tokens.map((t) => (t.gap || '') + (t.special || t.part ? '' : t.text)).join('');
if (text !== meta.prompt.replace(/\s+$/, '')) fail('tokens give ' + JSON.stringify(text) + ', not the prompt');
console.log('tokens ok');
