// The Loupe explorer's page: reads its view and inputs from the address (#view=lens&prompt=…), calls the
// JSON API, and draws tables and heatmaps. No external resources; every text from the server goes in as
// text (textContent), never as HTML. On a failure the page shows #error, sets body[data-status=error]
// and the title "Loupe explorer — error" (the browser check looks for them).
'use strict';

const $ = (id) => document.getElementById(id);
const VIEWS = ['predict', 'lens', 'attention', 'heads', 'attribute', 'patch', 'path', 'trace', 'neurons', 'neuron', 'circuits', 'features', 'log'];
const TITLES = { predict: 'Predictions', lens: 'Logit lens', attention: 'Attention', heads: 'Head scores',
                 attribute: 'Attribution', patch: 'Patching', path: 'Path patching', trace: 'Causal tracing',
                 neurons: 'Neurons', neuron: 'Neuron', circuits: 'Circuits', features: 'SAE features', log: 'Request log' };
// Address key → input id, for the inputs each view reads.
const FIELDS = {
  predict: { prompt: 'prompt', k: 'topk' },
  lens: { prompt: 'prompt', k: 'lensk', position: 'position', target: 'target', tuned: 'tuned' },
  attention: { prompt: 'prompt', layer: 'layer', head: 'head', weighted: 'weighted' },
  heads: { prompt: 'prompt', induction: 'induction' },
  attribute: { prompt: 'prompt', answer: 'answer', wrong: 'wrong' },
  patch: { clean: 'clean', corrupt: 'corrupt', answer: 'answer', wrong: 'wrong', hook: 'hook', metric: 'metric' },
  path: { clean: 'clean', corrupt: 'corrupt', answer: 'answer', wrong: 'wrong', receiver: 'receiver' },
  trace: { prompt: 'prompt', subject: 'subject', answer: 'answer', kind: 'tracekind' },
  neurons: { prompt: 'prompt', layer: 'nlayer', top: 'ntop' },
  neuron: { layer: 'nlayer', neuron: 'neuron' },
  circuits: { scores: 'circuit', pairs: 'pairs' },
  features: { prompt: 'prompt', sae: 'sae', feature: 'feature', splice: 'splice', scale: 'scale' },
  log: {},
};
const DEFAULTS = {
  prompt: 'When Mary and John went to the store, John gave a drink to',
  clean: 'When Mary and John went to the store, John gave a drink to',
  corrupt: 'When Mary and John went to the store, Mary gave a drink to',
  answer: ' Mary', wrong: ' John', metric: 'normalized-logit-diff', receiver: 'logits',
};
// The trace view's own prompt, subject and answer when it is opened from another view.
const TRACE_DEFAULTS = { prompt: 'The Eiffel Tower is located in the city of', subject: 'Eiffel Tower', answer: ' Paris' };

let view = 'predict';
let models = [];
let job = null;       // the patching job being polled: {id, cancelled}
let runCount = 0;     // later runs supersede earlier ones

// ---------- tokens typed into inputs ----------

// Answer, wrong and followed tokens are single tokens: show which one (and its id) next to the box, with the
// CLI's caution when a word lacks the leading space it has inside a sentence.
const TOKEN_INPUTS = ['answer', 'wrong', 'target'];
const tokenTimers = {};
function resolveToken(id) {
  const input = $(id), out = $(id + '-token');
  clearTimeout(tokenTimers[id]);
  if (!out) return;
  if (input.value === '' || !$('model').value) { out.textContent = ''; out.className = 'resolved'; return; }
  tokenTimers[id] = setTimeout(async () => {
    const asked = input.value;
    try {
      const r = await api('/api/token', { model: $('model').value, text: asked });
      if (input.value !== asked) return;
      out.className = 'resolved' + (r.caution ? ' caution' : '');
      out.textContent = `= ${shown(r.token.text)} #${r.token.id}` + (r.caution ? ' ⚠' : '');
      out.title = r.caution || `token ${r.token.id}`;
    } catch (e) {
      if (input.value !== asked) return;
      out.className = 'resolved bad';
      out.textContent = e.message.replace(/^'text': /, '');
      out.title = e.message;
    }
  }, 300);
}

// ---------- state in the address ----------

function readAddress() {
  const p = new URLSearchParams(location.hash.slice(1));
  view = VIEWS.includes(p.get('view')) ? p.get('view') : 'predict';
  const defaults = view === 'trace' ? { ...DEFAULTS, ...TRACE_DEFAULTS } : DEFAULTS;
  for (const [key, id] of Object.entries(FIELDS[view])) {
    const input = $(id);
    const value = p.has(key) ? p.get(key) : defaults[key];
    if (value === undefined) continue;
    if (input.type === 'checkbox') input.checked = value === '1' || value === 'true';
    else input.value = value;
    if (id === 'sae') input.dataset.wanted = value;   // its options come with the model list
  }
  return p;
}

function writeAddress() { history.replaceState(null, '', '#' + currentHash()); }

function showView() {
  document.querySelectorAll('#views button').forEach((b) => b.classList.toggle('active', b.dataset.view === view));
  document.querySelectorAll('[data-for]').forEach((e) => { e.hidden = !e.dataset.for.split(' ').includes(view); });
  document.querySelectorAll('[data-not]').forEach((e) => { e.hidden = e.dataset.not.split(' ').includes(view); });
}

/** Shows the tokens typed into the current view's token boxes. */
function resolveVisibleTokens() { for (const id of TOKEN_INPUTS) if (!$(id).closest('[data-for]').hidden) resolveToken(id); }

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
  // The model's SAEs and tuned lens (loupe serve --sae / --tuned-lens).
  const sae = $('sae'), wanted = sae.dataset.wanted || sae.value, saes = (m && m.saes) || [];
  sae.replaceChildren(...saes.map((n) => el('option', { value: n }, n)));
  if (saes.includes(wanted)) sae.value = wanted;
  delete sae.dataset.wanted;
  $('tuned').disabled = !(m && m.tunedLens);
  if ($('tuned').disabled) $('tuned').checked = false;
  $('tuned-label').title = m && m.tunedLens ? `read through ${m.tunedLens}` : 'start the server with --tuned-lens FILE to read through a tuned lens';
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

/** Submits a job and follows it with the progress bar and the Cancel button; the final status, or null
 *  when a newer run took over. */
async function runJob(path, body, mine, unit) {
  let status = await api(path, body);
  const mineJob = { id: status.id };
  job = mineJob;
  $('cancel').hidden = false;
  $('progress').hidden = false;
  try {
    while (status.state === 'queued' || status.state === 'running') {
      $('bar').style.width = status.total ? `${(100 * status.done / status.total).toFixed(1)}%` : '0';
      $('progress-text').textContent = `${status.state}: ${status.done}/${status.total || '?'} ${unit}`;
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
  if (status.state === 'failed') throw new Error(status.error || 'the job failed');
  return status;
}

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
    const r = await api('/api/lens', { model, prompt: $('prompt').value, topK: num('lensk'), position: num('position'), target: text('target'), tuned: $('tuned').checked || undefined });
    out.append(tokenChips(r.tokens, { selected: r.position, onpick: (i) => { $('position').value = i; run(); } }));
    out.append(el('p', { class: 'note muted' }, `Position ${r.position} (${shown(r.tokens[r.position].text)}): each layer's residual stream read ${r.tunedLens ? `through its translator in the tuned lens ${r.tunedLens}, then ` : ''}through the final norm and the unembedding. Click a token to read another position.`));
    const k = r.cells.length ? r.cells[0].top.length : 0;
    const headers = ['layer', ...Array.from({ length: k }, (_, i) => `top ${i + 1}`), 'rank of final', 'P(final)', ...(r.target ? [`rank of ${shown(r.target.text)}`, `P(${shown(r.target.text)})`] : []), 'KL to final', 'entropy'];
    out.append(el('table', {}, el('tr', {}, headers.map((h) => el('th', {}, h))), r.cells.map((c) => el('tr', {},
      el('th', { class: 'rowlabel' }, c.label),
      c.top.map((t) => el('td', { class: 'tokcell', style: `background:${color(t.probability, 1, 'sequential')};color:${ink(t.probability, 1)}`, title: `id ${t.id}, logit ${fmt(t.logit)}` }, `${shown(t.token)} ${pct(t.probability)}`)),
      el('td', {}, c.finalTokenRank), el('td', {}, pct(c.finalTokenProbability)),
      ...(r.target ? [el('td', {}, c.targetRank), el('td', {}, pct(c.targetProbability))] : []),
      el('td', {}, fmt(c.klToFinal)), el('td', {}, fmt(c.entropy))))));
    return `${r.tokens.length} tokens, ${r.cells.length} layers read`;
  },

  async attention(model, out) {
    const layer = num('layer') ?? 0, head = num('head') ?? 0;
    // Every head's pattern comes along while layers × heads × tokens² stays within the server's limit.
    const body = { model, prompt: $('prompt').value, layer, head };
    let r;
    try { r = await api('/api/attention', { ...body, all: true }); } catch (e) {
      if (!e.message.includes("'all'")) throw e;
      r = await api('/api/attention', body);
    }
    const nL = Math.max(...r.heads.map((h) => h.layer)) + 1, nH = Math.max(...r.heads.map((h) => h.head)) + 1;
    const at = (l, h) => r.heads.find((x) => x.layer === l && x.head === h);
    const pick = (l, h) => { $('layer').value = l; $('head').value = h; run(); };
    const summary = (title, key) => el('div', {}, el('h2', {}, title),
      heatmap({ rows: nL, cols: nH, rowLabels: [...Array(nL).keys()].map((l) => `L${l}`), colLabels: [...Array(nH).keys()].map((h) => `H${h}`),
                value: (l, h) => at(l, h)[key], onpick: pick, picked: [layer, head], max: 1, scale: 'sequential', meaning: 'share of attention' }));
    const overview = r.patterns
      ? el('div', {}, el('h2', {}, `Every head's pattern (${nL} layers × ${nH} heads)`), headGrid(r.tokens, r.patterns, nL, nH, { picked: [layer, head], onpick: pick }))
      : el('div', {}, el('p', { class: 'note muted' }, 'This prompt is too long to send every head\'s pattern: summaries instead.'),
           summary('Attention to the previous token (click a head)', 'toPrevious'), summary('Attention to the first token', 'toFirst'));
    const p = r.selected;
    const weighted = $('weighted').checked;
    const grid = weighted ? p.valueWeighted : p.pattern;
    const labels = r.tokens.map((t, i) => `${i} ${shown(t.text)}`);
    const pattern = el('div', {}, el('h2', {}, `L${p.layer}H${p.head} ${weighted ? 'value-weighted ' : ''}pattern (rows: query, columns: key)`),
      heatmap({ rows: grid.length, cols: grid.length, rowLabels: labels, colLabels: labels, value: (q, k) => grid[q][k], max: 1, showValues: grid.length <= 24,
                scale: 'sequential', meaning: 'attention weight' }));
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
        heatmap({ rows: nL, cols: nH, rowLabels: [...Array(nL).keys()].map((l) => `L${l}`), colLabels: [...Array(nH).keys()].map((h) => `H${h}`), value: (l, h) => s[l][h], max: 1, scale: 'sequential', meaning: 'share of attention on the pattern' }),
        el('p', { class: 'note muted' }, 'best: ' + best.map(([v, l, h]) => `L${l}H${h} ${fmt(v, 2)}`).join(', ')));
    });
    out.append(el('p', { class: 'note muted' }, `Share of each head's attention on the pattern (${r.measure}), over ${r.tokens.length} tokens.`), el('div', { class: 'grid' }, maps));
    return `${r.tokens.length} tokens`;
  },

  async patch(model, out, mine) {
    const body = { model, clean: $('clean').value, corrupt: $('corrupt').value, answer: $('answer').value, hook: $('hook').value, metric: $('metric').value };
    if ($('wrong').value !== '') body.wrong = $('wrong').value;
    const status = await runJob('/api/jobs', body, mine, 'batches');
    if (!status) return null;
    if (status.state === 'cancelled') { out.append(el('p', { class: 'note' }, 'The job was cancelled.')); return 'cancelled'; }
    const r = status.result;
    const [nL, second] = r.shape;
    const rows = r.shape.length === 2 ? nL : nL * second;
    const cols = r.shape[r.shape.length - 1];
    const axisLabels = (axis, n) => axis === 'pos' || axis === 'dest_pos' ? r.cleanTokens.map((t, i) => `${i} ${shown(t.text)}`) : [...Array(n).keys()].map((h) => `H${h}`);
    const rowLabels = r.shape.length === 2 ? [...Array(nL).keys()].map((l) => `L${l}`)
      : [...Array(rows).keys()].map((i) => `L${Math.floor(i / second)} ${axisLabels(r.axes[1], second)[i % second]}`);
    out.append(el('p', { class: 'note' }, `${r.hook}, metric ${r.metric}: clean ${fmt(r.clean)}, corrupted ${fmt(r.corrupted)}. Each cell: the corrupted run with that one activation from the clean run.`),
      el('h2', {}, `Patching ${r.hook} (${r.axes.join(' × ')})`),
      heatmap({ rows, cols, rowLabels, colLabels: axisLabels(r.axes[r.axes.length - 1], cols), value: (i, j) => r.values[i * cols + j], showValues: cols <= 24,
                meaning: r.metric === 'normalized-logit-diff' ? '1 = the clean run\'s value restored, 0 = the corrupted run\'s' : `${r.metric} (clean ${fmt(r.clean)}, corrupted ${fmt(r.corrupted)})` }));
    return `${r.cleanTokens.length} tokens, ${status.total} batches in ${status.elapsedSeconds.toFixed(2)} s`;
  },

  async path(model, out, mine) {
    const body = { model, clean: $('clean').value, corrupt: $('corrupt').value, answer: $('answer').value, wrong: $('wrong').value, receiver: $('receiver').value || 'logits' };
    const status = await runJob('/api/path-patch', body, mine, 'sender layers');
    if (!status) return null;
    if (status.state === 'cancelled') { out.append(el('p', { class: 'note' }, 'The job was cancelled.')); return 'cancelled'; }
    const r = status.result, nL = r.normalized.length, nH = r.normalized[0].length;
    out.append(tokenChips(r.cleanTokens),
      el('p', { class: 'note' }, `Receiver ${r.receiver}; logit difference: clean ${fmt(r.clean)}, corrupted ${fmt(r.corrupted)}. Each cell: the clean run with one head's output taken from the corrupted run along the path to the receiver only. 0 = no effect; −1 = that path alone carries the whole clean–corrupted difference.`),
      el('h2', {}, `Path patching into ${r.receiver} (sender layer × head)`),
      heatmap({ rows: nL, cols: nH, rowLabels: [...Array(nL).keys()].map((l) => `L${l}`), colLabels: [...Array(nH).keys()].map((h) => `H${h}`),
                value: (l, h) => r.normalized[l][h] - 1, max: 1, meaning: '(metric − clean) / (clean − corrupted)' }));
    return `${r.cleanTokens.length} tokens, ${status.total} sender layers in ${status.elapsedSeconds.toFixed(2)} s`;
  },

  async trace(model, out, mine) {
    const body = { model, prompt: $('prompt').value, subject: $('subject').value, answer: $('answer').value, kind: $('tracekind').value };
    const status = await runJob('/api/trace', body, mine, 'batches');
    if (!status) return null;
    if (status.state === 'cancelled') { out.append(el('p', { class: 'note' }, 'The job was cancelled.')); return 'cancelled'; }
    const r = status.result, nL = r.restored.length, T = r.tokens.length;
    const subject = new Set(r.subject);
    out.append(tokenChips(r.tokens),
      el('p', { class: 'note' }, `P(${shown(r.answer.text)}): clean ${pct(r.clean)}, with noise on the subject (${r.samples} samples) ${pct(r.corrupted)}. Each cell: the noisy run with one state restored from the clean run` + (r.kind === 'resid' ? ' (the residual stream after the block).' : ` (the ${r.kind} outputs of ${r.window} blocks around it).`)),
      el('h2', {}, `P(${shown(r.answer.text)}) with ${r.kind} restored (rows: positions, * the subject; columns: layers)`),
      heatmap({ rows: T, cols: nL, rowLabels: r.tokens.map((t, i) => `${i}${subject.has(i) ? '*' : ''} ${shown(t.text)}`), colLabels: [...Array(nL).keys()].map((l) => `${l}`),
                value: (p, l) => r.restored[l][p], showValues: nL <= 16, scale: 'sequential', max: Math.max(r.clean, ...r.restored.flat()), meaning: `P(${shown(r.answer.text)})` }));
    return `${T} tokens, ${nL} layers in ${status.elapsedSeconds.toFixed(2)} s`;
  },

  async neurons(model, out) {
    const r = await api('/api/neurons', { model, prompt: $('prompt').value, layer: num('nlayer') ?? 0, top: num('ntop'), topK: 4 });
    out.append(tokenChips(r.tokens), el('p', { class: 'note muted' }, `Layer ${r.layer}: the neurons with the highest activation (mlp.hook_post) on this prompt, and the tokens their value vectors promote and suppress through the unembedding.`));
    const max = Math.max(...r.neurons.map((n) => Math.abs(n.activation)), 1e-6);
    const tokenList = (list) => list.map((t) => `${shown(t.token)} ${t.logit >= 0 ? '+' : ''}${fmt(t.logit, 2)}`).join(', ');
    out.append(el('table', { class: 'neurons' }, el('tr', {}, ['neuron', 'activation', 'at', 'in/out cos', 'activation on each token', 'promotes', 'suppresses'].map((h) => el('th', {}, h))),
      r.neurons.map((n) => el('tr', {}, el('th', { class: 'rowlabel' }, el('a', { href: `#view=neuron&model=${encodeURIComponent(model)}&layer=${r.layer}&neuron=${n.neuron}`, title: 'open the neuron\'s page' }, `N${n.neuron}`)), el('td', {}, fmt(n.activation)),
        el('td', { class: 'tokcell' }, `${n.position} ${shown(r.tokens[n.position].text)}`), el('td', {}, fmt(n.inputOutputCosine, 2)),
        el('td', { class: 'strip' }, el('span', { class: 'tokens' }, n.activations.map((a, i) =>
          el('span', { class: 'tok', style: `background:${color(a, max)};color:${ink(a, max)}`, title: `${i} ${shown(r.tokens[i].text)}: ${fmt(a)}` }, shown(r.tokens[i].text))))),
        el('td', { class: 'tokcell' }, tokenList(n.promoted)), el('td', { class: 'tokcell' }, tokenList(n.suppressed))))));
    out.append(legend(max, 'diverging', 'activation (mlp.hook_post)'));
    return `${r.tokens.length} tokens, ${r.neurons.length} neurons`;
  },

  async neuron(model, out) {
    const r = await api('/api/neuron', { model, layer: num('nlayer') ?? 0, neuron: num('neuron') ?? 0 });
    const logits = (title, list) => el('div', {}, el('h2', {}, title), el('table', {}, list.map((t) => el('tr', {},
      el('td', { class: 'tokcell' }, shown(t.token)),
      el('td', { style: 'text-align:left' }, el('span', { class: 'bar', style: `width:${(6 * Math.abs(t.logit) / Math.max(...list.map((x) => Math.abs(x.logit)), 1e-6)).toFixed(2)}rem;background:${color(t.logit, 1)}` }), (t.logit >= 0 ? '+' : '') + fmt(t.logit, 2))))));
    out.append(el('p', { class: 'note' }, `Layer ${r.layer}, neuron ${r.neuron} (mlp.hook_post). Input/output cosine ${fmt(r.inputOutputCosine, 2)}. Its value vector, through the final norm and the unembedding, promotes and suppresses (logit per unit of activation):`),
      el('div', { class: 'grid' }, logits('Promotes', r.promoted), logits('Suppresses', r.suppressed)));
    if (!r.index) {
      out.append(el('p', { class: 'note muted' }, 'No corpus examples: start the server with --db FILE, a neuron index (loupe neuron-index) built on this model at this layer.'));
      return `L${r.layer} N${r.neuron}`;
    }
    const max = Math.max(...r.examples.flatMap((e) => e.activations.map(Math.abs)), 1e-6);
    out.append(el('h2', {}, `Top ${r.examples.length} examples in ${r.index}`),
      el('table', { class: 'examples' }, el('tr', {}, ['activation', 'document:position', 'context, coloured by the neuron\'s activation with only the shown tokens before each'].map((h) => el('th', {}, h))),
        r.examples.map((e) => el('tr', {}, el('td', {}, fmt(e.activation)), el('td', {}, `${e.document}:${e.position}`),
          el('td', { class: 'strip' }, el('span', { class: 'tokens' }, e.tokens.map((t, i) =>
            el('span', { class: 'tok' + (i === e.focus ? ' selected' : ''), style: `background:${color(e.activations[i], max)};color:${ink(e.activations[i], max)}`, title: `${shown(t.text)}: ${fmt(e.activations[i])}` }, shown(t.text)))))))),
      legend(max, 'diverging', 'activation; the outlined token is the example\'s position'));
    if (r.histogram) {
      const h = r.histogram, top = Math.max(...h.counts, 1), width = (h.upper - h.lower) / h.counts.length;
      out.append(el('h2', {}, 'Activations on the examples\' tokens'),
        el('div', { class: 'histogram', role: 'img', 'aria-label': 'histogram of activations' }, h.counts.map((c, i) =>
          el('span', { style: `height:${(5 * c / top).toFixed(2)}rem;background:${color(h.lower + (i + 0.5) * width, max)}`, title: `${fmt(h.lower + i * width, 2)} to ${fmt(h.lower + (i + 1) * width, 2)}: ${c} tokens` }))),
        el('p', { class: 'note muted' }, `${fmt(h.lower, 2)} … ${fmt(h.upper, 2)}, ${h.counts.reduce((a, b) => a + b, 0)} tokens in ${h.counts.length} bins`));
    }
    return `L${r.layer} N${r.neuron}, ${r.examples.length} examples`;
  },

  async attribute(model, out) {
    const body = { model, prompt: $('prompt').value, answer: $('answer').value };
    if ($('wrong').value !== '') body.wrong = $('wrong').value;
    const r = await api('/api/attribute', body);
    const what = `logit[${shown(r.answer.text)}]` + (r.wrong ? ` − logit[${shown(r.wrong.text)}]` : '');
    out.append(tokenChips(r.tokens, { selected: r.position }),
      el('p', { class: 'note muted' }, `Direct logit attribution of ${what} at position ${r.position}: each component's output read straight through the final norm (its scale frozen from the run) and the unembedding.`));
    const nL = r.heads.length, nH = r.heads[0].length;
    const max = Math.max(...r.components.map((c) => Math.abs(c.value)), 1e-6);
    const bars = el('table', {}, el('tr', {}, ['component', 'direct contribution'].map((h) => el('th', {}, h))),
      r.components.map((c) => el('tr', {}, el('th', { class: 'rowlabel' }, c.label),
        el('td', { style: 'text-align:left' }, el('span', { class: 'bar', style: `width:${(10 * Math.abs(c.value) / max).toFixed(2)}rem;background:${color(c.value >= 0 ? max : -max, max)}` }), fmt(c.value)))));
    const ranked = r.heads.flatMap((row, l) => row.map((v, h) => [v, l, h])).sort((a, b) => Math.abs(b[0]) - Math.abs(a[0])).slice(0, 5);
    out.append(el('div', { class: 'grid' }, el('div', {}, el('h2', {}, 'Components'), bars),
      el('div', {}, el('h2', {}, 'Heads'),
        heatmap({ rows: nL, cols: nH, rowLabels: [...Array(nL).keys()].map((l) => `L${l}`), colLabels: [...Array(nH).keys()].map((h) => `H${h}`),
                  value: (l, h) => r.heads[l][h], meaning: `direct contribution to ${what}` }),
        el('p', { class: 'note muted' }, 'largest: ' + ranked.map(([v, l, h]) => `L${l}H${h} ${v >= 0 ? '+' : ''}${fmt(v, 2)}`).join(', ')))));
    return `${r.tokens.length} tokens, ${what}`;
  },

  async log(model, out) {
    const r = await api('/api/requests');
    out.append(el('p', { class: 'note muted' }, `The server's last ${r.requests.length} requests, newest first (the server also prints each on standard error).`),
      el('table', {}, el('tr', {}, ['time', 'method', 'path', 'status', 'ms'].map((h) => el('th', {}, h))),
        r.requests.map((q) => el('tr', { class: q.status >= 400 ? 'failed' : '' }, el('td', {}, q.time), el('td', {}, q.method),
          el('td', { style: 'text-align:left' }, q.path), el('td', {}, q.status), el('td', {}, fmt(q.milliseconds, 1))))));
    return `${r.requests.length} requests`;
  },
};

async function run() {
  const mine = ++runCount;
  if (job) { api(`/api/jobs/${job.id}`, null, 'DELETE').catch(() => {}); }
  writeAddress();
  resolveVisibleTokens();
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
    const from = view;
    view = b.dataset.view;
    if (view === 'trace' && from !== 'trace') for (const [key, value] of Object.entries(TRACE_DEFAULTS)) $(FIELDS.trace[key]).value = value;
    else if (from === 'trace') {
      // Back from tracing: the IOI prompt and answer again.
      for (const key of ['prompt', 'answer']) if (FIELDS[view][key]) $(FIELDS[view][key]).value = DEFAULTS[key];
    }
    for (const [key, id] of Object.entries(FIELDS[view])) if ($(id).value === '' && DEFAULTS[key]) $(id).value = DEFAULTS[key];
    showView();
    run();
  }));
  $('form').addEventListener('submit', (e) => { e.preventDefault(); run(); });
  $('prompt').addEventListener('keydown', (e) => { if (e.key === 'Enter' && (e.ctrlKey || e.metaKey)) { e.preventDefault(); run(); } });
  $('model').addEventListener('change', () => { describeModel(); run(); });
  for (const id of TOKEN_INPUTS) $(id).addEventListener('input', () => resolveToken(id));
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
