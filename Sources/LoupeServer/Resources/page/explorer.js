// The Loupe explorer's page: reads its view and inputs from the address (#view=lens&prompt=…), calls the
// JSON API, and draws tables and heatmaps. No external resources; every text from the server goes in as
// text (textContent), never as HTML. On a failure the page shows #error, sets body[data-status=error]
// and the title "Loupe explorer — error" (the browser check looks for them).
'use strict';

const $ = (id) => document.getElementById(id);
const VIEWS = ['predict', 'lens', 'attention', 'heads', 'patch', 'neurons'];
const TITLES = { predict: 'Predictions', lens: 'Logit lens', attention: 'Attention', heads: 'Head scores',
                 patch: 'Patching', neurons: 'Neurons' };
// Address key → input id, for the inputs each view reads.
const FIELDS = {
  predict: { prompt: 'prompt', k: 'topk' },
  lens: { prompt: 'prompt', k: 'lensk', position: 'position', target: 'target' },
  attention: { prompt: 'prompt', layer: 'layer', head: 'head', weighted: 'weighted' },
  heads: { prompt: 'prompt', induction: 'induction' },
  patch: { clean: 'clean', corrupt: 'corrupt', answer: 'answer', wrong: 'wrong', hook: 'hook', metric: 'metric' },
  neurons: { prompt: 'prompt', layer: 'nlayer', top: 'ntop' },
};
const DEFAULTS = {
  prompt: 'When Mary and John went to the store, John gave a drink to',
  clean: 'When Mary and John went to the store, John gave a drink to',
  corrupt: 'When Mary and John went to the store, Mary gave a drink to',
  answer: ' Mary', wrong: ' John',
};

let view = 'predict';
let models = [];
let job = null;       // the patching job being polled: {id, cancelled}
let runCount = 0;     // later runs supersede earlier ones

// ---------- small helpers ----------

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

/** Background for a value: blue for positive, red for negative, white at zero; `max` scales. */
function color(v, max) {
  if (!isFinite(v) || max <= 0) return '#fff';
  const a = Math.min(1, Math.abs(v) / max);
  return v >= 0 ? `rgba(9,105,218,${(a * 0.85).toFixed(3)})` : `rgba(207,34,46,${(a * 0.85).toFixed(3)})`;
}
function ink(v, max) { return max > 0 && Math.abs(v) / max > 0.55 ? '#fff' : '#1f2328'; }

/** A heatmap as a table: rows × cols, `value(r, c)`; `onpick(r, c)` makes cells clickable. */
function heatmap({ rows, cols, rowLabels, colLabels, value, digits = 2, onpick, picked, showValues = true, max }) {
  let m = max;
  if (m === undefined) { m = 0; for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) m = Math.max(m, Math.abs(value(r, c)) || 0); }
  const head = el('tr', {}, el('th'), colLabels.map((l) => el('th', { class: 'col', title: l }, l)));
  const body = [];
  for (let r = 0; r < rows; r++) {
    const cells = [];
    for (let c = 0; c < cols; c++) {
      const v = value(r, c);
      const td = el('td', { style: `background:${color(v, m)};color:${ink(v, m)}`, title: `${rowLabels[r]} · ${colLabels[c]}: ${fmt(v, 4)}` },
                    showValues ? fmt(v, digits) : '');
      if (onpick) { td.classList.add('click'); td.addEventListener('click', () => onpick(r, c)); }
      if (picked && picked[0] === r && picked[1] === c) td.classList.add('picked');
      cells.push(td);
    }
    body.push(el('tr', {}, el('th', { class: 'rowlabel' }, rowLabels[r]), cells));
  }
  return el('table', { class: 'heat' }, el('thead', {}, head), el('tbody', {}, body));
}

function tokenChips(tokens, { selected, onpick } = {}) {
  return el('div', { class: 'tokens' }, tokens.map((t, i) => {
    const chip = el('span', { class: 'tok' + (onpick ? ' clickable' : '') + (i === selected ? ' selected' : ''), title: `position ${i}, id ${t.id}` }, shown(t.text));
    if (onpick) chip.addEventListener('click', () => onpick(i));
    return chip;
  }));
}

// ---------- state in the address ----------

function readAddress() {
  const p = new URLSearchParams(location.hash.slice(1));
  view = VIEWS.includes(p.get('view')) ? p.get('view') : 'predict';
  for (const [key, id] of Object.entries(FIELDS[view])) {
    const input = $(id);
    const value = p.has(key) ? p.get(key) : DEFAULTS[key];
    if (value === undefined) continue;
    if (input.type === 'checkbox') input.checked = value === '1' || value === 'true';
    else input.value = value;
  }
  return p;
}

function writeAddress() { history.replaceState(null, '', '#' + currentHash()); }

function showView() {
  document.querySelectorAll('#views button').forEach((b) => b.classList.toggle('active', b.dataset.view === view));
  document.querySelectorAll('[data-for]').forEach((e) => { e.hidden = !e.dataset.for.split(' ').includes(view); });
  document.querySelectorAll('[data-not]').forEach((e) => { e.hidden = e.dataset.not === view; });
}

// ---------- status ----------

function setStatus(kind, message = '') {
  document.body.dataset.status = kind;
  $('error').hidden = kind !== 'error';
  $('error').textContent = kind === 'error' ? message : '';
  $('status').textContent = kind === 'error' ? '' : message;
  document.title = kind === 'error' ? 'Loupe explorer — error' : `Loupe explorer — ${TITLES[view]}`;
}

// A server started with --token is opened as http://host:port/?token=TOKEN; every API call carries it.
const TOKEN = new URLSearchParams(location.search).get('token') || sessionStorage.getItem('loupe-token');
if (TOKEN) sessionStorage.setItem('loupe-token', TOKEN);

async function api(path, body, method) {
  const options = { method: method || (body ? 'POST' : 'GET'), headers: {} };
  if (body) { options.headers['Content-Type'] = 'application/json'; options.body = JSON.stringify(body); }
  if (TOKEN) options.headers['Authorization'] = `Bearer ${TOKEN}`;
  const res = await fetch(path, options);
  let data;
  try { data = await res.json(); } catch (e) { throw new Error(`${path}: HTTP ${res.status} with a body that is not JSON`); }
  if (!res.ok) throw new Error(data && data.error ? data.error : `${path}: HTTP ${res.status}`);
  return data;
}

// ---------- models ----------

async function loadModels(wanted) {
  const data = await api('/api/models');
  models = data.models;
  const select = $('model');
  select.replaceChildren(...models.map((m) => el('option', { value: m.name }, m.name + (m.available === false ? ' (not fetched)' : ''))));
  const ready = models.find((m) => m.state === 'loaded' || m.state === 'loading');
  const available = models.find((m) => m.available !== false);
  select.value = models.some((m) => m.name === wanted) ? wanted : (ready || available || models[0] || {}).name || '';
  describeModel();
}

function describeModel() {
  const m = models.find((x) => x.name === $('model').value);
  $('model-info').textContent = !m ? '' : m.config
    ? `${m.config.architecture}: ${m.config.nLayers} layers, ${m.config.nHeads} heads, d_model ${m.config.dModel}, d_mlp ${m.config.dMLP}, n_ctx ${m.config.nCtx}`
    : `${m.summary} (${m.state})`;
}

async function refreshModel() {
  try { const data = await api('/api/models'); models = data.models; describeModel(); } catch (e) { /* the run reports errors */ }
}

// ---------- views ----------

const num = (id) => ($(id).value === '' ? undefined : Number($(id).value));
const text = (id) => ($(id).value === '' ? undefined : $(id).value);

const RENDER = {
  async predict(model, out) {
    const r = await api('/api/predict', { model, prompt: $('prompt').value, topK: num('topk') });
    out.append(tokenChips(r.tokens), el('h2', {}, 'Next token after the last position'));
    const max = r.predictions.length ? r.predictions[0].probability : 1;
    out.append(el('table', {}, el('tr', {}, ['rank', 'token', 'probability', 'logit', 'id'].map((h) => el('th', {}, h))),
      r.predictions.map((p) => el('tr', {}, el('td', {}, p.rank), el('td', { class: 'tokcell' }, shown(p.token)),
        el('td', { style: 'text-align:left' }, el('span', { class: 'bar', style: `width:${(8 * p.probability / max).toFixed(2)}rem` }), pct(p.probability)),
        el('td', {}, fmt(p.logit)), el('td', {}, p.id)))));
    return `${r.tokens.length} tokens`;
  },

  async lens(model, out) {
    const r = await api('/api/lens', { model, prompt: $('prompt').value, topK: num('lensk'), position: num('position'), target: text('target') });
    out.append(tokenChips(r.tokens, { selected: r.position, onpick: (i) => { $('position').value = i; run(); } }));
    out.append(el('p', { class: 'note muted' }, `Position ${r.position} (${shown(r.tokens[r.position].text)}): each layer's residual stream read through the final norm and the unembedding. Click a token to read another position.`));
    const k = r.cells.length ? r.cells[0].top.length : 0;
    const headers = ['layer', ...Array.from({ length: k }, (_, i) => `top ${i + 1}`), 'rank of final', 'P(final)', ...(r.target ? [`rank of ${shown(r.target.text)}`, `P(${shown(r.target.text)})`] : []), 'KL to final', 'entropy'];
    out.append(el('table', {}, el('tr', {}, headers.map((h) => el('th', {}, h))), r.cells.map((c) => el('tr', {},
      el('th', { class: 'rowlabel' }, c.label),
      c.top.map((t) => el('td', { class: 'tokcell', style: `background:${color(t.probability, 1)};color:${ink(t.probability, 1)}`, title: `id ${t.id}, logit ${fmt(t.logit)}` }, `${shown(t.token)} ${pct(t.probability)}`)),
      el('td', {}, c.finalTokenRank), el('td', {}, pct(c.finalTokenProbability)),
      ...(r.target ? [el('td', {}, c.targetRank), el('td', {}, pct(c.targetProbability))] : []),
      el('td', {}, fmt(c.klToFinal)), el('td', {}, fmt(c.entropy))))));
    return `${r.tokens.length} tokens, ${r.cells.length} layers read`;
  },

  async attention(model, out) {
    const layer = num('layer') ?? 0, head = num('head') ?? 0;
    const r = await api('/api/attention', { model, prompt: $('prompt').value, layer, head });
    const nL = Math.max(...r.heads.map((h) => h.layer)) + 1, nH = Math.max(...r.heads.map((h) => h.head)) + 1;
    const at = (l, h) => r.heads[l * nH + h];
    const pick = (l, h) => { $('layer').value = l; $('head').value = h; run(); };
    const overview = el('div', {}, el('h2', {}, 'Attention to the previous token (click a head)'),
      heatmap({ rows: nL, cols: nH, rowLabels: [...Array(nL).keys()].map((l) => `L${l}`), colLabels: [...Array(nH).keys()].map((h) => `H${h}`),
                value: (l, h) => at(l, h).toPrevious, onpick: pick, picked: [layer, head], max: 1 }),
      el('h2', {}, 'Attention to the first token'),
      heatmap({ rows: nL, cols: nH, rowLabels: [...Array(nL).keys()].map((l) => `L${l}`), colLabels: [...Array(nH).keys()].map((h) => `H${h}`),
                value: (l, h) => at(l, h).toFirst, onpick: pick, picked: [layer, head], max: 1 }));
    const p = r.selected;
    const weighted = $('weighted').checked;
    const grid = weighted ? p.valueWeighted : p.pattern;
    const labels = r.tokens.map((t, i) => `${i} ${shown(t.text)}`);
    const pattern = el('div', {}, el('h2', {}, `L${p.layer}H${p.head} ${weighted ? 'value-weighted ' : ''}pattern (rows: query, columns: key)`),
      heatmap({ rows: grid.length, cols: grid.length, rowLabels: labels, colLabels: labels, value: (q, k) => grid[q][k], max: 1, showValues: grid.length <= 24 }));
    out.append(tokenChips(r.tokens), el('div', { class: 'grid' }, overview, pattern));
    return `${r.tokens.length} tokens, ${nL} layers × ${nH} heads`;
  },

  async heads(model, out) {
    const body = { model };
    if (!$('induction').checked) body.prompt = $('prompt').value;
    const r = await api('/api/heads', body);
    const names = { previous_token: 'Previous-token heads', duplicate_token: 'Duplicate-token heads', induction: 'Induction heads' };
    if (r.inductionTest) {
      out.append(el('p', { class: 'note' }, `Induction test: ${r.inductionTest.length} random tokens repeated; loss ${fmt(r.inductionTest.firstHalfLoss, 2)} on the first copy, ${fmt(r.inductionTest.secondHalfLoss, 2)} on the second.`));
    } else {
      out.append(tokenChips(r.tokens));
    }
    const maps = Object.keys(names).filter((k) => r.scores[k]).map((k) => {
      const s = r.scores[k], nL = s.length, nH = s[0].length;
      const best = s.flatMap((row, l) => row.map((v, h) => [v, l, h])).sort((a, b) => b[0] - a[0]).slice(0, 3);
      return el('div', {}, el('h2', {}, names[k]),
        heatmap({ rows: nL, cols: nH, rowLabels: [...Array(nL).keys()].map((l) => `L${l}`), colLabels: [...Array(nH).keys()].map((h) => `H${h}`), value: (l, h) => s[l][h], max: 1 }),
        el('p', { class: 'note muted' }, 'best: ' + best.map(([v, l, h]) => `L${l}H${h} ${fmt(v, 2)}`).join(', ')));
    });
    out.append(el('p', { class: 'note muted' }, `Share of each head's attention on the pattern (${r.measure}), over ${r.tokens.length} tokens.`), el('div', { class: 'grid' }, maps));
    return `${r.tokens.length} tokens`;
  },

  async patch(model, out, mine) {
    const body = { model, clean: $('clean').value, corrupt: $('corrupt').value, answer: $('answer').value, hook: $('hook').value, metric: $('metric').value };
    if ($('wrong').value !== '') body.wrong = $('wrong').value;
    let status = await api('/api/jobs', body);
    const mineJob = { id: status.id };
    job = mineJob;
    $('cancel').hidden = false;
    $('progress').hidden = false;
    try {
      while (status.state === 'queued' || status.state === 'running') {
        $('bar').style.width = status.total ? `${(100 * status.done / status.total).toFixed(1)}%` : '0';
        $('progress-text').textContent = `${status.state}: ${status.done}/${status.total || '?'} batches`;
        // The server answers when the job ends or after a second, with its progress.
        status = await api(`/api/jobs/${status.id}?wait=1`);
        if (mine !== runCount) return null;
      }
    } finally {
      // A newer run may have started its own job meanwhile: leave its controls alone.
      if (job === mineJob) {
        $('cancel').hidden = true;
        $('progress').hidden = true;
        job = null;
      }
    }
    if (status.state === 'cancelled') { out.append(el('p', { class: 'note' }, 'The job was cancelled.')); return 'cancelled'; }
    if (status.state === 'failed') throw new Error(status.error || 'the job failed');
    const r = status.result;
    const [nL, second] = r.shape;
    const rows = r.shape.length === 2 ? nL : nL * second;
    const cols = r.shape[r.shape.length - 1];
    const axisLabels = (axis, n) => axis === 'pos' || axis === 'dest_pos' ? r.cleanTokens.map((t, i) => `${i} ${shown(t.text)}`) : [...Array(n).keys()].map((h) => `H${h}`);
    const rowLabels = r.shape.length === 2 ? [...Array(nL).keys()].map((l) => `L${l}`)
      : [...Array(rows).keys()].map((i) => `L${Math.floor(i / second)} ${axisLabels(r.axes[1], second)[i % second]}`);
    out.append(el('p', { class: 'note' }, `${r.hook}, metric ${r.metric}: clean ${fmt(r.clean)}, corrupted ${fmt(r.corrupted)}. Each cell: the corrupted run with that one activation from the clean run.`),
      el('h2', {}, `Patching ${r.hook} (${r.axes.join(' × ')})`),
      heatmap({ rows, cols, rowLabels, colLabels: axisLabels(r.axes[r.axes.length - 1], cols), value: (i, j) => r.values[i * cols + j], showValues: cols <= 24 }));
    return `${r.cleanTokens.length} tokens, ${status.total} batches in ${status.elapsedSeconds.toFixed(2)} s`;
  },

  async neurons(model, out) {
    const r = await api('/api/neurons', { model, prompt: $('prompt').value, layer: num('nlayer') ?? 0, top: num('ntop'), topK: 4 });
    out.append(tokenChips(r.tokens), el('p', { class: 'note muted' }, `Layer ${r.layer}: the neurons with the highest activation (mlp.hook_post) on this prompt, and the tokens their value vectors promote and suppress through the unembedding.`));
    const max = Math.max(...r.neurons.map((n) => Math.abs(n.activation)), 1e-6);
    const tokenList = (list) => list.map((t) => `${shown(t.token)} ${t.logit >= 0 ? '+' : ''}${fmt(t.logit, 2)}`).join(', ');
    out.append(el('table', {}, el('tr', {}, ['neuron', 'activation', 'at', 'in/out cos', 'per token', 'promotes', 'suppresses'].map((h) => el('th', {}, h))),
      r.neurons.map((n) => el('tr', {}, el('th', { class: 'rowlabel' }, `N${n.neuron}`), el('td', {}, fmt(n.activation)),
        el('td', { class: 'tokcell' }, `${n.position} ${shown(r.tokens[n.position].text)}`), el('td', {}, fmt(n.inputOutputCosine, 2)),
        el('td', { style: 'padding:0' }, el('span', { style: 'display:flex' }, n.activations.map((a, i) =>
          el('span', { style: `display:inline-block;width:10px;height:1.1rem;background:${color(a, max)}`, title: `${i} ${shown(r.tokens[i].text)}: ${fmt(a)}` })))),
        el('td', { class: 'tokcell' }, tokenList(n.promoted)), el('td', { class: 'tokcell' }, tokenList(n.suppressed))))));
    return `${r.tokens.length} tokens, ${r.neurons.length} neurons`;
  },
};

async function run() {
  const mine = ++runCount;
  if (job) { api(`/api/jobs/${job.id}`, null, 'DELETE').catch(() => {}); }
  writeAddress();
  const model = $('model').value;
  const out = $('output');
  const fresh = el('div');
  setStatus('loading', `running ${TITLES[view].toLowerCase()} on ${model}…`);
  try {
    if (!model) throw new Error('the server offers no model');
    const note = await RENDER[view](model, fresh, mine);
    if (mine !== runCount) return;
    out.replaceChildren(fresh);
    setStatus('ok', note);
    refreshModel();
  } catch (e) {
    if (mine !== runCount) return;
    out.replaceChildren();
    setStatus('error', e.message);
  }
}

function init() {
  const wanted = readAddress().get('model');
  showView();
  document.querySelectorAll('#views button').forEach((b) => b.addEventListener('click', () => {
    view = b.dataset.view;
    for (const [key, id] of Object.entries(FIELDS[view])) if ($(id).value === '' && DEFAULTS[key]) $(id).value = DEFAULTS[key];
    showView();
    run();
  }));
  $('form').addEventListener('submit', (e) => { e.preventDefault(); run(); });
  $('prompt').addEventListener('keydown', (e) => { if (e.key === 'Enter' && (e.ctrlKey || e.metaKey)) { e.preventDefault(); run(); } });
  $('model').addEventListener('change', () => { describeModel(); run(); });
  $('cancel').addEventListener('click', async () => {
    if (!job) return;
    try { await api(`/api/jobs/${job.id}`, null, 'DELETE'); } catch (e) { setStatus('error', e.message); }
  });
  window.addEventListener('hashchange', () => { if (location.hash.slice(1) !== currentHash()) { readAddress(); showView(); run(); } });
  setStatus('loading', 'loading the model list…');
  loadModels(wanted).then(run, (e) => setStatus('error', e.message));
}

function currentHash() {
  const p = new URLSearchParams();
  p.set('view', view);
  if ($('model').value) p.set('model', $('model').value);
  for (const [key, id] of Object.entries(FIELDS[view])) {
    const input = $(id);
    if (input.type === 'checkbox') { if (input.checked) p.set(key, '1'); } else if (input.value !== '') p.set(key, input.value);
  }
  return p.toString();
}

init();
