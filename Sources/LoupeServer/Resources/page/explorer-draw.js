// The Loupe explorer's drawing helpers: elements, token chips, the colour scales shared with the CLI's
// pictures, legends, heatmaps and the all-heads attention grid. Loaded before explorer.js; every text from the
// server goes in as text (textContent), never as HTML.
'use strict';

function el(tag, props = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(props)) {
    if (k === 'class') e.className = v;
    else if (k === 'style') e.style.cssText = v;
    else if (k.startsWith('on')) e.addEventListener(k.slice(2), v);
    else if (v !== undefined && v !== null) e.setAttribute(k, v);
  }
  for (const c of children.flat()) e.append(c instanceof Node ? c : document.createTextNode(String(c)));
  return e;
}

/** A token's text with its spaces and line breaks visible. */
function shown(text) { return text.replace(/ /g, '\u00b7').replace(/\n/g, '\u23ce').replace(/\t/g, '\u21e5'); }
function fmt(v, digits = 3) { return typeof v === 'number' ? v.toFixed(digits) : String(v); }
function pct(p) { return p >= 0.001 ? (100 * p).toFixed(1) + '%' : p.toExponential(1); }

// The colour scales of the CLI's pictures (LoupeRender's ColorScale), so one value has one colour everywhere:
// diverging: blue (negative) – white (0) – red (positive), for effects with a sign; sequential: white – blue,
// for probabilities, attention and scores.
const RED = [178, 24, 43], BLUE = [33, 102, 172];
function mix(to, t) { return `rgb(${to.map((c) => Math.round(255 + (c - 255) * t)).join(',')})`; }
function color(v, max, scale = 'diverging') {
  if (!isFinite(v) || max <= 0) return '#fff';
  if (scale === 'sequential') return mix(BLUE, Math.max(0, Math.min(1, v / max)));
  const t = Math.min(1, Math.abs(v) / max);
  return mix(v >= 0 ? RED : BLUE, t);
}
function ink(v, max) { return max > 0 && Math.abs(v) / max > 0.55 ? '#fff' : '#1f2328'; }

/** The key to a heatmap's colours: the scale from its lowest to its highest value, with what they mean. */
function legend(max, scale = 'diverging', meaning = '') {
  const lo = scale === 'sequential' ? 0 : -max;
  const stops = [0, 0.25, 0.5, 0.75, 1].map((t) => color(lo + t * (max - lo), max, scale)).join(',');
  return el('div', { class: 'legend', role: 'img', 'aria-label': `colour scale from ${fmt(lo, 2)} to ${fmt(max, 2)}` },
    el('span', {}, fmt(lo, 2)), el('span', { class: 'ramp', style: `background:linear-gradient(to right,${stops})` }),
    el('span', {}, fmt(max, 2)), meaning ? el('span', { class: 'muted' }, meaning) : '');
}

/** A heatmap as a table with its legend: rows × cols, `value(r, c)`; `onpick(r, c)` makes cells clickable. */
function heatmap({ rows, cols, rowLabels, colLabels, value, digits = 2, onpick, picked, showValues = true, max, scale = 'diverging', meaning = '' }) {
  let m = max;
  if (m === undefined) { m = 0; for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) m = Math.max(m, Math.abs(value(r, c)) || 0); }
  const head = el('tr', {}, el('th'), colLabels.map((l) => el('th', { class: 'col', title: l }, l)));
  const body = [];
  for (let r = 0; r < rows; r++) {
    const cells = [];
    for (let c = 0; c < cols; c++) {
      const v = value(r, c);
      const td = el('td', { style: `background:${color(v, m, scale)};color:${ink(v, m)}`, title: `${rowLabels[r]} · ${colLabels[c]}: ${fmt(v, 4)}` },
                    showValues ? fmt(v, digits) : '');
      if (onpick) { td.classList.add('click'); td.addEventListener('click', () => onpick(r, c)); }
      if (picked && picked[0] === r && picked[1] === c) td.classList.add('picked');
      cells.push(td);
    }
    body.push(el('tr', {}, el('th', { class: 'rowlabel' }, rowLabels[r]), cells));
  }
  return el('div', { class: 'heatmap' }, legend(m, scale, meaning),
            el('div', { class: 'scroll' }, el('table', { class: 'heat' }, el('thead', {}, head), el('tbody', {}, body))));
}

/** Every head's attention pattern, small, layers down and heads across (as CircuitsVis draws them): hover
 *  reads a query → key weight, a click picks the head. */
function headGrid(tokens, patterns, nL, nH, { picked, onpick }) {
  const T = tokens.length, cell = Math.max(1, Math.floor(Math.min(96, Math.max(40, 4 * T)) / T)), size = cell * T;
  const tip = el('div', { class: 'note muted', id: 'head-tip' }, 'Hover a head for its weights; click it to show it large.');
  const rows = [];
  for (let l = 0; l < nL; l++) {
    const cells = [el('th', { class: 'rowlabel' }, `L${l}`)];
    for (let h = 0; h < nH; h++) {
      const p = patterns[l * nH + h];
      const canvas = el('canvas', { width: size, height: size, class: 'head' + (picked[0] === l && picked[1] === h ? ' picked' : ''),
                                    'data-head': `${l}.${h}`, title: `L${l}H${h}` });
      const g = canvas.getContext('2d');
      for (let q = 0; q < T; q++) for (let k = 0; k < T; k++) { g.fillStyle = color(p[q][k], 1, 'sequential'); g.fillRect(k * cell, q * cell, cell, cell); }
      canvas.addEventListener('mousemove', (e) => {
        const box = canvas.getBoundingClientRect();
        const k = Math.min(T - 1, Math.floor((e.clientX - box.left) / box.width * T)), q = Math.min(T - 1, Math.floor((e.clientY - box.top) / box.height * T));
        tip.textContent = `L${l}H${h}: query ${q} ${shown(tokens[q].text)} → key ${k} ${shown(tokens[k].text)}: ${fmt(p[q][k], 3)}`;
      });
      canvas.addEventListener('click', () => onpick(l, h));
      cells.push(el('td', { class: 'headcell' }, canvas));
    }
    rows.push(el('tr', {}, cells));
  }
  return el('div', {}, el('div', { class: 'scroll' }, el('table', { class: 'heads' }, el('tr', {}, el('th'), [...Array(nH).keys()].map((h) => el('th', {}, `H${h}`))), rows)),
            tip, legend(1, 'sequential', 'attention weight (rows: query, columns: key)'));
}

function tokenChips(tokens, { selected, onpick } = {}) {
  return el('div', { class: 'tokens' }, tokens.map((t, i) => {
    const chip = el('span', { class: 'tok' + (onpick ? ' clickable' : '') + (i === selected ? ' selected' : ''), title: `position ${i}, id ${t.id}` }, shown(t.text));
    if (onpick) chip.addEventListener('click', () => onpick(i));
    return chip;
  }));
}

