// The explorer's weight and feature views, loaded after explorer.js and added to its RENDER table: circuits
// (OV copying scores; Q/K/V-composition between every pair of heads, a job) and SAE features (the features an
// SAE finds on a prompt, one feature's logit effect, predictions with it ablated or steered).
'use strict';

/** A square matrix of scores drawn on a canvas (too many cells for a table), with a hover read-out. */
function matrixCanvas(n, value, label, max, meaning) {
  const cell = Math.max(1, Math.min(8, Math.floor(560 / n))), size = cell * n;
  const canvas = el('canvas', { width: size, height: size, class: 'matrix', role: 'img', 'aria-label': meaning });
  const g = canvas.getContext('2d');
  for (let i = 0; i < n; i++) for (let j = 0; j < n; j++) { g.fillStyle = color(value(i, j), max, 'sequential'); g.fillRect(j * cell, i * cell, cell, cell); }
  const tip = el('div', { class: 'note muted' }, 'Hover a cell: rows are earlier heads, columns later heads.');
  canvas.addEventListener('mousemove', (e) => {
    const box = canvas.getBoundingClientRect();
    const j = Math.min(n - 1, Math.floor((e.clientX - box.left) / box.width * n)), i = Math.min(n - 1, Math.floor((e.clientY - box.top) / box.height * n));
    tip.textContent = `${label(i)} → ${label(j)}: ${fmt(value(i, j), 4)}`;
  });
  return el('div', {}, legend(max, 'sequential', meaning), el('div', { class: 'scroll' }, canvas), tip);
}

/** Tokens a direction writes, with bars: [{token, logit}]. */
function logitList(title, list) {
  const top = Math.max(...list.map((x) => Math.abs(x.logit)), 1e-6);
  return el('div', {}, el('h2', {}, title), el('table', {}, list.map((t) => el('tr', {},
    el('td', { class: 'tokcell' }, shown(t.token)),
    el('td', { style: 'text-align:left' }, el('span', { class: 'bar', style: `width:${(6 * Math.abs(t.logit) / top).toFixed(2)}rem;background:${color(t.logit, 1)}` }), (t.logit >= 0 ? '+' : '') + fmt(t.logit, 2))))));
}

/** A token strip coloured by one value per token. */
function strip(tokens, values, max, selected) {
  return el('span', { class: 'tokens' }, tokens.map((t, i) => el('span', { class: 'tok' + (i === selected ? ' selected' : ''),
    style: `background:${color(values[i], max)};color:${ink(values[i], max)}`, title: `${i} ${shown(t.text)}: ${fmt(values[i])}` }, shown(t.text))));
}

Object.assign(RENDER, {
  async circuits(model, out, mine) {
    const kind = $('circuit').value;
    const layerLabels = (n) => [...Array(n).keys()].map((l) => `L${l}`), headLabels = (n) => [...Array(n).keys()].map((h) => `H${h}`);
    if (kind === 'copying') {
      const r = await api('/api/copying', { model });
      const nL = r.scores.length, nH = r.scores[0].length;
      const best = r.scores.flatMap((row, l) => row.map((v, h) => [v, l, h])).sort((a, b) => b[0] - a[0]).slice(0, 5);
      out.append(el('p', { class: 'note' }, 'OV copying score of each head: Σ Re λ / Σ |λ| over the eigenvalues of its full OV circuit W_E W_V W_O W_U. Near 1: the head raises the logits of the tokens it attends to (copying, as induction and name-mover heads do); near −1: it lowers them.'),
        heatmap({ rows: nL, cols: nH, rowLabels: layerLabels(nL), colLabels: headLabels(nH), value: (l, h) => r.scores[l][h], max: 1, meaning: 'copying score' }),
        el('p', { class: 'note muted' }, 'most copying: ' + best.map(([v, l, h]) => `L${l}H${h} ${fmt(v, 2)}`).join(', ')));
      return `${nL} layers × ${nH} heads`;
    }
    const status = await runJob('/api/composition', { model, mode: kind, top: num('pairs') }, mine, 'heads');
    if (!status) return null;
    if (status.state === 'cancelled') { out.append(el('p', { class: 'note' }, 'The job was cancelled.')); return 'cancelled'; }
    const r = status.result, n = r.nLayers * r.nHeads;
    const name = (i) => `L${Math.floor(i / r.nHeads)}H${i % r.nHeads}`;
    const input = { q: 'query', k: 'key', v: 'value' }[r.mode];
    out.append(el('p', { class: 'note' }, `${r.mode.toUpperCase()}-composition: how much each earlier head's output (its OV circuit) is read by a later head's ${input} input: ‖W_OV · M‖ / (‖W_OV‖ ‖M‖), with M the later head's ${r.mode === 'v' ? 'OV' : 'QK'} circuit${r.mode === 'k' ? ' transposed' : ''}. Random matrices score about 1/√d_head; induction heads K-compose with previous-token heads.`));
    const top = Math.max(...r.top.map((p) => p.score), 1e-6);
    const pairs = el('div', {}, el('h2', {}, `Strongest ${r.top.length} pairs`), el('table', {}, el('tr', {}, ['earlier head', 'later head', 'score'].map((h) => el('th', {}, h))),
      r.top.map((p) => el('tr', {}, el('td', {}, `L${p.from.layer}H${p.from.head}`), el('td', {}, `L${p.to.layer}H${p.to.head}`),
        el('td', { style: 'text-align:left' }, el('span', { class: 'bar', style: `width:${(6 * p.score / top).toFixed(2)}rem` }), fmt(p.score))))));
    const matrix = r.scores
      ? el('div', {}, el('h2', {}, `Every pair (${n} × ${n} heads; rows: earlier head, columns: later head)`), matrixCanvas(n, (i, j) => r.scores[i][j], name, top, `${r.mode}-composition score`))
      : el('p', { class: 'note muted' }, `${n} heads: too many to send every pair; the strongest are listed.`);
    out.append(el('div', { class: 'grid' }, matrix, pairs));
    return `${n} heads, ${r.mode}-composition in ${status.elapsedSeconds.toFixed(2)} s`;
  },

  async features(model, out) {
    const body = { model, prompt: $('prompt').value, feature: num('feature'), top: 12 };
    if ($('sae').value) body.sae = $('sae').value;
    if ($('splice').value && body.feature !== undefined) { body.splice = $('splice').value; body.scale = num('scale'); }
    const r = await api('/api/features', body);
    const mean = r.active.slice(1).reduce((a, b) => a + b, 0) / Math.max(1, r.active.length - 1);
    out.append(tokenChips(r.tokens), el('p', { class: 'note' }, `SAE ${r.sae} (${r.architecture}, ${r.dSAE} features) on ${r.hook}: about ${fmt(mean, 1)} features active per token`
      + (r.fractionOfVarianceUnexplained === null || r.fractionOfVarianceUnexplained === undefined ? '.' : `; it leaves ${pct(r.fractionOfVarianceUnexplained)} of the prompt's variance unexplained (position 0 left out).`)));
    const pick = (f) => { $('feature').value = f; run(); };
    const max = Math.max(...r.features.map((f) => f.max), 1e-6);
    out.append(el('h2', {}, `The ${r.features.length} strongest features on this prompt (click one)`),
      el('table', { class: 'examples' }, el('tr', {}, ['feature', 'max', 'at', 'activation on each token'].map((h) => el('th', {}, h))),
        r.features.map((f) => el('tr', { class: f.feature === num('feature') ? 'picked' : '' },
          el('th', { class: 'rowlabel' }, el('a', { href: '#', onclick: (e) => { e.preventDefault(); pick(f.feature); }, title: 'show this feature' }, `F${f.feature}`)),
          el('td', {}, fmt(f.max)), el('td', { class: 'tokcell' }, `${f.position} ${shown(r.tokens[f.position].text)}`),
          el('td', { class: 'strip' }, strip(r.tokens, f.activations, max, f.position))))),
      legend(max, 'diverging', 'feature activation'));
    if (r.selected) {
      const s = r.selected, smax = Math.max(...s.activations, 1e-6);
      out.append(el('h2', {}, `Feature ${s.feature} on each token`), strip(r.tokens, s.activations, smax), legend(smax, 'diverging', `feature ${s.feature}'s activation`));
      if (s.promoted) {
        out.append(el('p', { class: 'note muted' }, 'Its decoder direction through the final norm\'s weight and the unembedding (logit per unit of activation):'),
          el('div', { class: 'grid' }, logitList('Promotes', s.promoted), logitList('Suppresses', s.suppressed)));
      }
    }
    if (r.spliceNote) out.append(el('p', { class: 'note muted' }, r.spliceNote));
    out.append(el('h2', {}, 'Next token'), el('div', { class: 'grid' }, r.predictions.map((p) => el('div', {}, el('h2', {}, p.mode),
      el('table', {}, p.top.map((c) => el('tr', {}, el('td', { class: 'tokcell' }, shown(c.token)), el('td', {}, pct(c.probability)))))))));
    return `${r.tokens.length} tokens, ${r.features.length} features`;
  },
});
