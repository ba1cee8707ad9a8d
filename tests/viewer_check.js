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
const kind = (name) => meta.captured.kinds.find((k) => k.kind === name);
// float16 keeps 11 significant bits; below 2^-14 its step is 2^-24.
const within = (got, want) => Math.abs(got - want) <= Math.abs(want) * Math.pow(2, -11) + Math.pow(2, -25);
let maxErr = 0, checked = 0;
function compare(what, got, want) {
  if (!got) fail(what + ': the page has nothing');
  for (let j = 0; j < want.length; j++) {
    maxErr = Math.max(maxErr, Math.abs(got[j] - want[j]));
    if (!within(got[j], want[j])) fail(what + ' entry ' + j + ': ' + got[j] + ', want ' + want[j]);
  }
  checked++;
}
const range = (count, f) => Array.from({length: count}, (_, i) => f(i));
const mean = (f) => (i, j) => heads.reduce((acc, h, s) => acc + f(s, i, j), 0) / heads.length;
const npyOf = (layer, suffix) => loadNpy(path.join(out, 'attention', 'layer_' + String(layer).padStart(2, '0') +
                                                   suffix + '.npy'));
for (const layer of layers) {
  const maps = [];  // [head, entry(i, j)]: what the page's rows and columns must hold
  if (kind('full')) {
    const p = npyOf(layer, ''), packed = kind('full').layout === 'packed_causal', tri = n * (n + 1) / 2;
    const at = packed ? (s, i, j) => (j > i ? 0 : p.data[s * tri + i * (i + 1) / 2 + j])
                      : (s, i, j) => p.data[(s * n + i) * n + j];
    heads.forEach((h, s) => maps.push([h, (i, j) => at(s, i, j)]));
    if (heads.length > 1) maps.push([-1, mean(at)]);
  } else if (kind('headmean')) {
    const m = npyOf(layer, '_headmean');
    maps.push([heads.length > 1 ? -1 : heads[0], (i, j) => m.data[i * n + j]]);
  }
  for (const [head, entry] of maps) {
    if (!AV.has(layer, head)) continue;
    for (let t = 0; t < n; t++) {
      const from = AV.values(layer, head, t, 'from');
      compare('layer ' + layer + ' head ' + head + ' from ' + t, from, range(n, (j) => entry(t, j)));
      compare('layer ' + layer + ' head ' + head + ' to ' + t, AV.values(layer, head, t, 'to'),
              range(n, (i) => entry(i, t)));
      const order = AV.top(from, 5);
      for (let k = 1; k < order.length; k++)
        if (from[order[k]] > from[order[k - 1]]) fail('top weights out of order at layer ' + layer + ' token ' + t);
    }
  }
  if (kind('rows') && !kind('full')) {
    const r = npyOf(layer, '_rows'), W = kind('rows').count, at = (s, i, j) => r.data[(s * W + i) * n + j];
    for (const [head, entry] of [...heads.map((h, s) => [h, (i, j) => at(s, i, j)]), [-1, mean(at)]])
      for (let i = 0; i < W; i++)
        compare('layer ' + layer + ' head ' + head + ' row ' + (n - W + i), AV.values(layer, head, n - W + i, 'from'),
                range(n, (j) => entry(i, j)));
    if (AV.values(layer, heads[0], n - W - 1, 'from') !== null && n > W) fail('a row before the captured ones');
  }
  if (kind('colsum')) {
    const c = npyOf(layer, '_colmean'), at = (s, i, j) => c.data[s * n + j];
    for (const [head, entry] of [...heads.map((h, s) => [h, (i, j) => at(s, i, j)]), [-1, mean(at)]])
      compare('layer ' + layer + ' head ' + head + ' received', AV.values(layer, head, 0, 'received'),
              range(n, (j) => entry(0, j)));
  }
}
if (causal && kind('full') && AV.has(layers[0], heads[0])) {
  const v = AV.values(layers[0], heads[0], 0, 'from');
  for (let j = 1; j < n; j++) if (v[j] !== 0) fail('a causal row has weight past its token');
}
const embedded = [];
for (const layer of layers)
  for (const head of [-1, ...heads]) if (AV.has(layer, head)) embedded.push(layer + ':' + head);
console.log('maps ' + embedded.join(' '));
console.log('checked ' + checked + ' rows and columns, max |error| ' + maxErr.toExponential(2));

// The tokens' text, with the gaps between them, gives the prompt back (special tokens aside).
const page = JSON.parse(scripts.find((s) => s.startsWith('AV.init(')).slice(8, -2));
const text = page.tokens.map((t) => (t.gap || '') + (t.special || t.part ? '' : t.text)).join('');
if (text !== meta.prompt.replace(/\s+$/, '')) fail('tokens give ' + JSON.stringify(text) + ', not the prompt');
console.log('tokens ok');
