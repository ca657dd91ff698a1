// attncli's page: head view (lines), model view (layers × heads), heatmap view, details.
// Plain JavaScript written for this page; no library, no network. Token text is data:
// it is only ever set with textContent.
(() => {
  'use strict';
  const D = JSON.parse(document.getElementById('attn-data').textContent);
  const LUT = bytes(D.lut);
  const S = { s: 0, l: 0, h: 0, on: new Set(), view: 'head', pin: null, hover: null, thr: 0 };
  const cache = new Map();
  const LONG = 128; // tokens
  let ui = {};

  function bytes(b64) {
    const s = atob(b64), out = new Uint8Array(s.length);
    for (let k = 0; k < s.length; k++) out[k] = s.charCodeAt(k);
    return out;
  }
  function el(tag, props, ...kids) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(props || {})) {
      if (k === 'text') e.textContent = v;
      else if (k === 'cls') e.className = v;
      else if (k.startsWith('on')) e.addEventListener(k.slice(2), v);
      else e.setAttribute(k, v);
    }
    for (const kid of kids) if (kid != null) e.append(kid);
    return e;
  }
  const sen = () => D.sentences[S.s];
  const colour = h => D.palette[(sen().heads[h] - 1) % D.palette.length];
  const css = name => getComputedStyle(document.body).getPropertyValue(name).trim();
  const fmt = w => w.toFixed(3);
  const shown = w => (w === 0 && sen().floor > 0 ? `<${sen().floor}` : fmt(w)); // under the floor: stored as 0
  const label = (t, k) => `${k + 1} ${t.replace(/\n/g, '⏎').replace(/\t/g, '⇥')}`;

  // One head's A′ (n×n, keys down, queries across) as a Float32Array, inflated on first use.
  async function head(s, l, h) {
    const key = `${s}:${l}:${h}`;
    if (!cache.has(key)) cache.set(key, decode(D.sentences[s], l, h));
    return cache.get(key);
  }
  async function decode(x, l, h) {
    let b = bytes(x.data[l][h]);
    if (x.enc === 'deflate') {
      const stream = new Blob([b]).stream().pipeThrough(new DecompressionStream('deflate'));
      b = new Uint8Array(await new Response(stream).arrayBuffer());
    }
    const lo = x.lo[l][h], sc = x.scale[l][h] / 255, W = new Float32Array(b.length);
    for (let k = 0; k < b.length; k++) W[k] = lo + b[k] * sc;
    return W;
  }

  // ---------- page skeleton ----------
  function build() {
    const views = ['head', 'model', 'heatmap'].map(v =>
      el('button', { cls: 'tab', 'data-view': v, role: 'tab', text: v === 'head' ? 'Head view' : v === 'model' ? 'Model view' : 'Heatmap', onclick: () => setView(v) }));
    const picker = D.sentences.length > 1 ? el('label', { cls: 'picker' }, 'Sentence ',
      el('select', { id: 'sentence', onchange: e => setSentence(+e.target.value) },
        ...D.sentences.map((x, k) => el('option', { value: k, text: `${k + 1}: ${x.text.slice(0, 50)}` })))) : null;
    ui.layer = el('select', { id: 'layer', onchange: e => { S.l = sen().layers.indexOf(+e.target.value); draw(); } });
    ui.heads = el('div', { id: 'heads', cls: 'chips', role: 'group', 'aria-label': 'heads' });
    ui.thr = el('input', { id: 'thr', type: 'number', min: 0, max: 1, step: 0.005, onchange: e => { S.thr = Math.max(0, Math.min(1, +e.target.value || 0)); draw(); } });
    ui.readout = el('div', { id: 'readout', 'aria-live': 'polite' });
    ui.main = el('main', { id: 'view' });
    ui.text = el('p', { id: 'text', cls: 'text' });
    ui.details = el('section', { id: 'details' });
    document.body.append(
      el('header', {}, el('h1', { text: 'attncli' }), picker, el('nav', { role: 'tablist' }, ...views)),
      ui.text,
      el('div', { cls: 'controls' }, el('label', {}, 'Layer ', ui.layer), ui.heads,
        el('label', { cls: 'thr' }, 'Hide lines under ', ui.thr)),
      ui.readout, ui.main, ui.details,
      el('footer', { text: 'Keys: ← → head, ↑ ↓ layer, Esc unpin. Written by attncli; works offline.' }));
    document.addEventListener('keydown', key);
    new ResizeObserver(() => draw()).observe(ui.main);
  }

  function setSentence(s) {
    const x = D.sentences[s];
    S.s = s; S.l = 0; S.h = 0; S.pin = null; S.hover = null;
    // long inputs start with one head and fewer lines: a browser without a GPU rasterises
    // ~5,000 long lines a second, and 12 heads × 512 tokens would be tens of thousands
    S.on = new Set(x.n > LONG ? [0] : x.heads.map((_, k) => k));
    S.thr = x.n <= 32 ? 0 : x.n <= LONG ? 0.01 : 0.02;
    ui.thr.value = S.thr;
    ui.text.textContent = x.text;
    ui.layer.replaceChildren(...x.layers.map(l => el('option', { value: l, text: String(l) })));
    ui.layer.disabled = x.layers.length < 2;
    ui.heads.replaceChildren(
      ...x.heads.map((h, k) => el('button', { cls: 'chip', 'data-h': k, style: `--c:${colour(k)}`, text: `head ${h}`, title: 'click: show or hide; shift-click: only this head', onclick: e => chip(k, e.shiftKey) })),
      el('button', { cls: 'chip all', text: 'all', onclick: () => { S.on = new Set(x.heads.map((_, k) => k)); draw(); } }));
    details(x);
    draw();
  }
  function chip(k, only) {
    if (only) S.on = new Set([k]);
    else if (S.on.has(k) && S.on.size > 1) S.on.delete(k);
    else S.on.add(k);
    if (S.on.has(k)) S.h = k;
    else if (!S.on.has(S.h)) S.h = [...S.on][0];
    draw();
  }
  function setView(v) { S.view = v; draw(); }

  function key(e) {
    if (e.target.closest && e.target.closest('input, select, textarea')) return;
    const x = sen(), single = S.on.size === 1;
    const moves = { ArrowLeft: [0, -1], ArrowRight: [0, 1], ArrowUp: [-1, 0], ArrowDown: [1, 0] };
    if (e.key === 'Escape') { S.pin = null; draw(); return; }
    if (!moves[e.key]) return;
    const [dl, dh] = moves[e.key];
    S.l = Math.max(0, Math.min(x.layers.length - 1, S.l + dl));
    S.h = Math.max(0, Math.min(x.heads.length - 1, S.h + dh));
    if (single) S.on = new Set([S.h]); else S.on.add(S.h);
    e.preventDefault();
    draw();
  }

  function details(x) {
    const table = (rows, head) => el('table', {}, el('thead', {}, el('tr', {}, ...head.map(h => el('th', { text: h })))),
      el('tbody', {}, ...rows.map(r => el('tr', {}, ...r.map(c => el('td', { text: c === null ? '—' : String(c) }))))));
    const what = x.kind === 'model' ? `${x.model_layers} layers × ${x.model_heads} heads${x.kv_heads ? ` (${x.kv_heads} key/value heads)` : ''}` : `${x.model_heads} head${x.model_heads > 1 ? 's' : ''}`;
    ui.details.replaceChildren(...[
      el('h2', { text: 'How these numbers were made' }),
      el('p', { text: `${x.n} tokens, ${what}; ${x.norm}${x.causal ? ', causal' : ''}. Matrices in the notes' layout: A′[i, j] is the weight of key i for query j, so each column of A′ sums to 1.` }),
      el('div', { cls: 'cols' },
        el('div', {}, el('h3', { text: 'Dimension trace' }), table(x.trace, ['matrix', 'shape', 'here'])),
        el('div', {}, el('h3', { text: x.kind === 'model' ? 'Checkpoint' : 'Settings' }), table(x.source, ['', 'value']))),
      x.warnings.length ? el('ul', { cls: 'warn' }, ...x.warnings.map(w => el('li', { text: w }))) : null,
      el('p', { cls: 'note', text: `Weights are stored in 8 bits per head: value = lo + byte × scale / 255 (scale 1 for weights in [0, 1], so a shown weight is within ${fmt(maxScale(x) / 510)} of the true one)${x.floor > 0 ? `; weights under ${x.floor} are stored as 0 and shown as <${x.floor}` : ''}.` })].filter(Boolean));
  }
  const maxScale = x => Math.max(...x.scale.flat());

  // ---------- drawing ----------
  let pending = 0;
  function draw() {
    const ticket = ++pending;
    for (const b of document.querySelectorAll('.tab')) b.setAttribute('aria-selected', b.dataset.view === S.view);
    for (const b of ui.heads.querySelectorAll('.chip[data-h]')) {
      b.classList.toggle('on', S.on.has(+b.dataset.h));
      b.classList.toggle('current', +b.dataset.h === S.h);
    }
    ui.layer.value = sen().layers[S.l];
    document.body.dataset.view = S.view;
    const job = S.view === 'head' ? headView : S.view === 'model' ? modelView : heatmapView;
    job(ticket).then(() => {
      if (ticket !== pending) return;
      if (!document.body.dataset.ready) document.body.dataset.paintMs = performance.now().toFixed(1); // since navigation
      document.body.dataset.ready = '1';
    }).catch(err => { ui.readout.textContent = `Could not draw: ${err.message}`; throw err; });
  }

  // Head view: queries on the left, keys on the right, a line from query j to key i.
  async function headView(ticket) {
    const x = sen(), n = x.n, heads = [...S.on].sort((a, b) => a - b);
    const mats = await Promise.all(heads.map(h => head(S.s, S.l, h)));
    const current = await head(S.s, S.l, S.h);
    if (ticket !== pending) return;
    if (!ui.lines || ui.lines.dataset.s !== String(S.s)) buildLines(x);
    if (ui.main.firstChild !== ui.lines) ui.main.replaceChildren(ui.lines);
    const canvas = ui.canvas, box = canvas.parentElement.getBoundingClientRect();
    const row = ui.rowPx, dpr = window.devicePixelRatio || 1, w = Math.max(40, box.width), h = n * row;
    canvas.width = Math.round(w * dpr); canvas.height = Math.round(h * dpr);
    canvas.style.width = `${w}px`; canvas.style.height = `${h}px`;
    const ctx = canvas.getContext('2d');
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    ctx.clearRect(0, 0, w, h);
    ctx.lineWidth = 1; // (1.2 rasterises three times slower in software)
    const focus = S.hover || S.pin;
    heads.forEach((hd, k) => lines(ctx, mats[k], n, colour(hd), w, row, focus));
    numbers(x, current, focus);
    ui.lines.classList.toggle('focused', !!focus);
    const hidden = S.thr > 0 ? `; lines under ${S.thr} hidden` : '';
    ui.readout.textContent = focus ? readout(x, current, focus) : `Layer ${x.layers[S.l]}, head ${x.heads[S.h]} (numbers), ${heads.length} of ${x.heads.length} heads drawn${hidden}. Hover or click a token.`;
  }

  function buildLines(x) {
    const row = x.n > 64 ? 16 : 22;
    ui.rowPx = row;
    const side = (name) => el('div', { cls: `col ${name}` }, el('div', { cls: 'colhead', text: name === 'q' ? 'query j' : 'key i' }),
      ...x.tokens.map((t, k) => el('div', { cls: `tok${x.special[k] ? ' special' : ''}`, 'data-side': name, 'data-t': k, style: `height:${row}px`, title: label(t, k) },
        el('span', { cls: 'w' }), el('span', { cls: 'lab', text: label(t, k) }))));
    ui.canvas = el('canvas', { id: 'lines', 'aria-label': 'attention lines from each query to the keys' });
    ui.lines = el('div', { cls: 'headview', 'data-s': S.s, style: `--row:${row}px` }, side('q'),
      el('div', { cls: 'mid' }, el('div', { cls: 'colhead', text: '' }), ui.canvas), side('k'));
    ui.lines.addEventListener('mouseover', e => { const t = tokenOf(e); if (t && !same(t, S.hover)) { S.hover = t; draw(); } });
    ui.lines.addEventListener('mouseleave', () => { S.hover = null; draw(); });
    ui.lines.addEventListener('click', e => { const t = tokenOf(e); if (t) { S.pin = same(t, S.pin) ? null : t; S.hover = null; draw(); } });
  }
  const tokenOf = e => { const d = e.target.closest('.tok'); return d ? { side: d.dataset.side, t: +d.dataset.t } : null; };
  const same = (a, b) => a && b && a.side === b.side && a.t === b.t;

  // Lines of one head, batched by opacity (32 levels) so 512 tokens draw in a few strokes.
  function lines(ctx, W, n, stroke, w, row, focus) {
    const paths = new Map(), thr = Math.max(S.thr, 1e-6);
    for (let i = 0; i < n; i++) {
      for (let j = 0; j < n; j++) {
        const v = W[i * n + j];
        if (v < thr) continue;
        let a = Math.min(1, v);
        if (focus && !(focus.side === 'q' ? j === focus.t : i === focus.t)) {
          if (n > LONG) continue; // a long input draws only the focused token's lines
          a *= 0.1;
        }
        const lvl = Math.ceil(a * 32);
        if (!paths.has(lvl)) paths.set(lvl, []);
        paths.get(lvl).push(j, i);
      }
    }
    ctx.strokeStyle = stroke;
    for (const [lvl, ends] of [...paths].sort((a, b) => a[0] - b[0])) {
      ctx.globalAlpha = lvl / 32;
      for (let k = 0; k < ends.length; k += 2) { // one stroke per line: long multi-line paths are slow to rasterise
        ctx.beginPath(); ctx.moveTo(2, (ends[k] + 0.5) * row); ctx.lineTo(w - 2, (ends[k + 1] + 0.5) * row); ctx.stroke();
      }
    }
    ctx.globalAlpha = 1;
  }

  // The current head's weights as numbers beside the other side's tokens.
  function numbers(x, W, focus) {
    const n = x.n;
    for (const d of ui.lines.querySelectorAll('.tok')) {
      const k = +d.dataset.t, wEl = d.firstChild;
      let v = null;
      if (focus && focus.side === 'q' && d.dataset.side === 'k') v = W[k * n + focus.t];
      if (focus && focus.side === 'k' && d.dataset.side === 'q') v = W[focus.t * n + k];
      wEl.textContent = v === null ? '' : shown(v);
      wEl.style.setProperty('--a', v === null ? 0 : Math.min(1, v));
      d.classList.toggle('focus', !!focus && focus.side === d.dataset.side && focus.t === k);
      d.classList.toggle('pinned', !!S.pin && S.pin.side === d.dataset.side && S.pin.t === k);
    }
  }
  function readout(x, W, f) {
    const n = x.n, who = `head ${x.heads[S.h]}, layer ${x.layers[S.l]}`;
    if (f.side === 'q') {
      let best = 0;
      for (let i = 1; i < n; i++) if (W[i * n + f.t] > W[best * n + f.t]) best = i;
      return `Query ${label(x.tokens[f.t], f.t)} (${who}${S.pin ? ', pinned' : ''}): weights of each key beside the keys; strongest key ${label(x.tokens[best], best)} = ${fmt(W[best * n + f.t])}.`;
    }
    return `Key ${label(x.tokens[f.t], f.t)} (${who}): the weight each query gives it, beside the queries.`;
  }

  // Model view: every layer × head as a thumbnail; a click opens it in the head view.
  async function modelView(ticket) {
    const x = sen();
    const grid = el('div', { cls: 'model', style: `--heads:${x.heads.length}` }, el('div', { cls: 'corner' }),
      ...x.heads.map(h => el('div', { cls: 'colname', text: `H${h}` })));
    const thumbs = [];
    x.layers.forEach((l, li) => {
      grid.append(el('div', { cls: 'rowname', text: `L${l}` }));
      x.heads.forEach((h, hi) => {
        const c = el('canvas', { cls: 'thumb', 'data-l': li, 'data-h': hi, title: `layer ${l}, head ${h}`, tabindex: 0 });
        c.addEventListener('click', () => { S.l = li; S.h = hi; S.on = new Set([hi]); S.view = 'head'; draw(); });
        c.classList.toggle('current', li === S.l && hi === S.h);
        grid.append(c); thumbs.push(c);
      });
    });
    ui.main.replaceChildren(el('p', { cls: 'hint', text: 'Rows: layers, columns: heads; each thumbnail is A′ (keys down, queries across). Click one to open it in the head view.' }), grid);
    ui.readout.textContent = `${x.layers.length} layer${x.layers.length > 1 ? 's' : ''} × ${x.heads.length} head${x.heads.length > 1 ? 's' : ''}.`;
    for (const c of thumbs) {
      if (ticket !== pending) return;
      thumb(c, await head(S.s, +c.dataset.l, +c.dataset.h), x.n);
    }
  }
  function thumb(c, W, n) {
    const t = Math.min(n, 64), img = new ImageData(t, t), top = vmaxOf(sen());
    for (let y = 0; y < t; y++) {
      for (let x = 0; x < t; x++) {
        let m = 0; // max-pool: a strong weight shows even when it is one in a block
        for (let i = Math.floor(y * n / t); i < Math.floor((y + 1) * n / t); i++)
          for (let j = Math.floor(x * n / t); j < Math.floor((x + 1) * n / t); j++) m = Math.max(m, W[i * n + j]);
        paint(img.data, (y * t + x) * 4, m / top);
      }
    }
    c.width = c.height = t;
    c.getContext('2d').putImageData(img, 0, 0);
  }
  const vmaxOf = x => Math.max(1e-9, ...x.max.flat()); // one colour scale per sentence, as the PNGs
  function paint(px, o, f) {
    const k = Math.max(0, Math.min(255, Math.round(f * 255))) * 3;
    px[o] = LUT[k]; px[o + 1] = LUT[k + 1]; px[o + 2] = LUT[k + 2]; px[o + 3] = 255;
  }

  // Heatmap: keys i down, queries j across, as the PNGs (viridis, one scale for the sentence).
  async function heatmapView(ticket) {
    const x = sen(), n = x.n, W = await head(S.s, S.l, S.h);
    if (ticket !== pending) return;
    const vmax = vmaxOf(x);
    const c = el('canvas', { id: 'hm', width: n, height: n, 'aria-label': 'heatmap of A′' });
    const img = new ImageData(n, n);
    for (let k = 0; k < n * n; k++) paint(img.data, k * 4, W[k] / vmax);
    c.getContext('2d').putImageData(img, 0, 0);
    const avail = Math.max(120, ui.main.getBoundingClientRect().width - (n <= 40 ? 110 : 16));
    const cell = Math.min(28, avail / n), side = cell * n;
    c.style.width = c.style.height = `${side}px`;
    const labels = cell >= 12;
    const rows = labels ? el('div', { cls: 'hm-rows' }, ...x.tokens.map((t, k) => el('div', { text: label(t, k), title: label(t, k), style: `height:${cell}px;line-height:${cell}px` }))) : null;
    const cols = labels ? el('div', { cls: 'hm-cols', style: `width:${side}px` }, ...x.tokens.map((t, k) => el('div', { text: label(t, k), style: `width:${cell}px` }))) : null;
    const bar = el('div', { cls: 'bar' }, el('span', { text: '0' }), el('canvas', { id: 'cbar', width: 256, height: 1 }), el('span', { text: fmt(vmax) }));
    const cb = bar.querySelector('canvas'), bi = new ImageData(256, 1);
    for (let k = 0; k < 256; k++) paint(bi.data, k * 4, k / 255);
    cb.getContext('2d').putImageData(bi, 0, 0);
    const wrap = el('div', { cls: 'hm' }, el('div', { cls: 'hm-x', text: `queries j → (layer ${x.layers[S.l]}, head ${x.heads[S.h]})` }),
      el('div', { cls: 'hm-grid' }, el('div', { cls: 'hm-y', text: 'keys i ↓' }), cols || el('div'), rows || el('div'), c), bar);
    c.addEventListener('mousemove', e => {
      const r = c.getBoundingClientRect();
      const j = Math.min(n - 1, Math.floor((e.clientX - r.left) / r.width * n)), i = Math.min(n - 1, Math.floor((e.clientY - r.top) / r.height * n));
      ui.readout.textContent = `A′[${i + 1}, ${j + 1}] = ${shown(W[i * n + j])}: key ${label(x.tokens[i], i)} for query ${label(x.tokens[j], j)}.`;
      ui.readout.dataset.i = i; ui.readout.dataset.j = j; ui.readout.dataset.w = W[i * n + j];
    });
    ui.main.replaceChildren(wrap);
    ui.readout.textContent = `Layer ${x.layers[S.l]}, head ${x.heads[S.h]}: hover a cell for its value. Colour 0 to ${fmt(vmax)} (the largest weight of this sentence).`;
  }

  build();
  setSentence(0);
})();
