// Runs the scripts of a viewer.html in node and checks what the page would show against the run's .npy files:
// every embedded map's rows ("from") and columns ("to") to float16 precision, the mean of the heads, the last rows
// and column means of runs without full P, the order of the strongest weights, and the tokens' text against the
// prompt. Then runs them again with a small stand-in for the browser's document and drives the page as a user
// would (every layer, head and direction, pointing at tokens, pinning one): nothing may throw, and what it lists
// must be what the functions above return.
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
  if (got.length !== want.length) fail(what + ': ' + got.length + ' values, want ' + want.length);
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
const absent = new Set(); // captured kinds the budget left out of the page
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
  if (kind('rows') && !kind('full') && AV.values(layer, heads[0], n - 1, 'from') === null) {
    absent.add('rows');
  } else if (kind('rows') && !kind('full')) {
    const r = npyOf(layer, '_rows'), W = kind('rows').count, at = (s, i, j) => r.data[(s * W + i) * n + j];
    for (const [head, entry] of [...heads.map((h, s) => [h, (i, j) => at(s, i, j)]), [-1, mean(at)]])
      for (let i = 0; i < W; i++)
        compare('layer ' + layer + ' head ' + head + ' row ' + (n - W + i), AV.values(layer, head, n - W + i, 'from'),
                range(n, (j) => entry(i, j)));
    if (AV.values(layer, heads[0], n - W - 1, 'from') !== null && n > W) fail('a row before the captured ones');
  }
  if (kind('colsum') && AV.values(layer, heads[0], 0, 'received') === null) {
    absent.add('colmean');
  } else if (kind('colsum')) {
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
console.log('left out: ' + ([...absent].join(' ') || 'none'));
console.log('checked ' + checked + ' rows and columns, max |error| ' + maxErr.toExponential(2));

// The tokens' text, with the gaps between them, gives the prompt back (special tokens aside).
const page = JSON.parse(scripts.find((s) => s.startsWith('AV.init(')).slice(8, -2));
const text = page.tokens.map((t) => (t.gap || '') + (t.special || t.part ? '' : t.text)).join('');
if (text !== meta.prompt.replace(/\s+$/, '')) fail('tokens give ' + JSON.stringify(text) + ', not the prompt');
console.log('tokens ok');

// ---- the page, driven through a stand-in document ----
class Element {
  constructor(tag, id) {
    this.tagName = tag;
    this.id = id;
    this.children = [];
    this.childNodes = [];
    this.style = {};
    this.className = '';
    this.title = '';
    this.value = '';
    this.src = '';
    this.text = '';
    const classes = new Set();
    this.classList = {toggle: (c, on) => (on ? classes.add(c) : classes.delete(c)), contains: (c) => classes.has(c)};
  }
  appendChild(child) {
    this.childNodes.push(child);
    if (child instanceof Element) this.children.push(child);
    return child;
  }
  set textContent(t) {
    this.text = String(t);
    this.children = [];
    this.childNodes = [];
  }
  get textContent() { return this.text + this.childNodes.map((c) => c.textContent).join(''); }
}
const byId = {};
for (const [id, tag] of [['info', 'span'], ['layer', 'select'], ['head', 'select'], ['text', 'div'],
                         ['detail', 'div'], ['map', 'img']]) byId[id] = new Element(tag, id);
const radios = ['from', 'to', 'received'].map((v) => Object.assign(new Element('input'), {value: v}));
const document = {
  title: '',
  getElementById: (id) => byId[id] || fail('the page asks for a missing element #' + id),
  createElement: (tag) => new Element(tag),
  createTextNode: (t) => ({textContent: t}),
  querySelectorAll: (sel) => (sel === 'input[name=dir]' ? radios : fail('unexpected selector ' + sel)),
};
const browser = vm.createContext({atob, document});
for (const s of scripts) vm.runInContext(s, browser);
const P = vm.runInContext('AV', browser);
const spans = byId.text.children, detail = byId.detail;
if (spans.length !== n) fail('the page shows ' + spans.length + ' tokens, want ' + n);
if (!detail.textContent) fail('the page opens with nothing beside the text');
const fileSet = new Set(meta.files);
let views = 0;
const shown = new Set();
function expectView(layer, head, dir, t) {
  const vals = P.values(layer, head, t, dir), text = detail.textContent;
  if (!vals) {
    if (detail.childNodes.length) fail('a list without values at layer ' + layer + ' head ' + head + ' ' + dir);
    if (text.includes('heatmap below') && byId.map.style.display === 'none')
      fail('layer ' + layer + ' head ' + head + ' ' + dir + ' points at a heatmap it does not show: ' + text);
    return;
  }
  const best = P.top(vals, 1)[0];
  if (vals[best] > 0 && !text.includes(' ' + best + ' ' + meta.tokens[best]))
    fail('layer ' + layer + ' head ' + head + ' ' + dir + ' token ' + t + ': the list lacks the strongest, ' + best);
  const shaded = spans.filter((sp) => sp.style.backgroundColor).length;
  if (shaded === 0) fail('nothing shaded at layer ' + layer + ' head ' + head + ' ' + dir);
  views++;
}
for (const layerOption of byId.layer.children) {
  byId.layer.value = layerOption.value;
  byId.layer.onchange();
  for (const headOption of byId.head.children) {
    byId.head.value = headOption.value;
    byId.head.onchange();
    for (const radio of radios) {
      radio.onchange();
      for (const t of [0, Math.floor(n / 2), n - 1]) {
        spans[t].onmouseenter();
        expectView(+layerOption.value, +headOption.value, radio.value, t);
      }
      if (byId.map.style.display !== 'none' && !fileSet.has(byId.map.src)) fail('the page shows ' + byId.map.src);
      if (byId.map.style.display !== 'none') shown.add(byId.map.src);
    }
  }
}
// Pinned: pointing elsewhere leaves the pinned token's view.
radios[0].onchange();
spans[0].onclick();
spans[n - 1].onmouseenter();
if (P.values(+byId.layer.value, +byId.head.value, 0, 'from') && !detail.textContent.includes('from token 0 '))
  fail('pointing at another token moved the pinned one: ' + detail.textContent.slice(0, 80));
console.log('page ok: ' + views + ' views with weights');
console.log('heatmaps shown: ' + [...shown].sort().join(' '));
