// Saved dashboards (/api/dashboards): a list, and a grid of graph panels with
// a time range, auto refresh and template variables over path nodes ($name
// in a target, chosen values in the URL as var-name=...). Import and export
// as JSON. State: ?id=..&from=..&until=..&refresh=..&var-<name>=..
import { h, clear, flash, params, setParams } from './dom.js';
import { get, post, put, del, url, render } from './api.js';
import { draw, logsHref } from './chart.js';
import { rangePicker, window as span } from './time.js';
import { go } from './app.js';

const REFRESH = ['off', '10s', '30s', '1m', '5m', '15m'];

export default async function dashboards(main) {
  const id = params().get('id');
  return id ? board(main, id) : list(main);
}

async function list(main) {
  const all = await get('/api/dashboards');
  const title = h('input', { name: 'title', placeholder: 'title', 'aria-label': 'new dashboard title', required: true });
  const json = h('textarea', { rows: 6, 'aria-label': 'dashboard JSON to import', placeholder: '{"title": "...", "panels": [{"title": "...", "targets": ["..."]}]}' });
  const create = async (body) => {
    try {
      const saved = await post('/api/dashboards', body);
      go('/ui/dashboards?id=' + encodeURIComponent(saved.id));
    } catch (e) { flash(e.message, 'error'); }
  };
  clear(main, h('h1', 'Dashboards'),
    all.length ? h('table.data#dashboard-list', h('thead', h('tr', h('th', 'title'), h('th', 'tags'), h('th', 'updated'))),
      h('tbody', all.map((d) => h('tr',
        h('td', h('a', { href: '/ui/dashboards?id=' + encodeURIComponent(d.id) }, d.title)),
        h('td', (d.tags || []).join(', ')),
        h('td', d.updated ? new Date(d.updated).toLocaleString() : '')))))
      : h('p.muted', 'No dashboards yet.'),
    h('div.grid',
      h('form.card#new-dashboard', { onsubmit: (e) => { e.preventDefault(); create({ title: title.value.trim(), from: '-6h', until: 'now', panels: [] }); } },
        h('h2', 'New dashboard'), title, ' ', h('button', { type: 'submit' }, 'Create')),
      h('form.card', {
        onsubmit: (e) => {
          e.preventDefault();
          let body;
          try { body = JSON.parse(json.value); } catch (err) { flash('not JSON: ' + err.message, 'error'); return; }
          create(body);
        },
      }, h('h2', 'Import JSON'), json, h('button', { type: 'submit' }, 'Import'))));
}

/** `$name` and `${name}` in a target, replaced by the variable's value. */
export function substitute(target, values) {
  return target.replace(/\$\{(\w+)\}|\$(\w+)/g, (all, a, b) => {
    const v = values[a || b];
    return v == null ? all : v;
  });
}

async function board(main, id) {
  const path = '/api/dashboards/' + encodeURIComponent(id);
  let d = await get(path);
  d.panels ||= [];
  d.variables ||= [];
  const p = params();
  let from = p.get('from') || d.from || '-6h';
  let until = p.get('until') || d.until || 'now';
  let refresh = p.get('refresh') || d.refresh || 'off';
  const values = {};
  let dirty = false;
  let charts = [];
  let timer = null;
  let controller = null;

  const heading = h('h1', d.title);
  const bar = h('div.toolbar');
  const vars = h('div.vars');
  const grid = h('div.panels#panels');
  const took = h('span.muted.took', { 'aria-live': 'polite' });
  const save = h('button#save-dashboard', { type: 'button', onclick: () => saveIt() }, 'Save');
  clear(main, heading, bar, vars, grid);

  const markDirty = () => { dirty = true; save.classList.add('primary'); save.textContent = 'Save*'; };
  const saveIt = async () => {
    try {
      d.from = from; d.until = until; d.refresh = refresh;
      for (const v of d.variables) v.current = values[v.name];
      d = await put(path, d);
      dirty = false;
      save.classList.remove('primary');
      save.textContent = 'Save';
      flash('Saved.');
    } catch (e) { flash(e.message, 'error'); }
  };

  const drawBar = () => {
    const sel = h('select', { 'aria-label': 'refresh every', onchange: () => { refresh = sel.value; setParams({ refresh }); schedule(); } },
      REFRESH.map((r) => h('option', { value: r, selected: r === refresh }, r === 'off' ? 'no refresh' : 'every ' + r)));
    clear(bar,
      rangePicker(from, until, (f, u) => { from = f; until = u; setParams({ from, until }, true); drawBar(); redraw(); }),
      sel,
      h('button', { type: 'button', onclick: () => editPanel(null) }, 'Add panel'),
      h('button', { type: 'button', onclick: () => editVariables() }, 'Variables'),
      h('button', { type: 'button', onclick: () => exportJson() }, 'Export JSON'),
      save,
      h('button.danger', { type: 'button', onclick: () => remove() }, 'Delete'),
      took);
  };

  const drawVars = async () => {
    clear(vars);
    for (const v of d.variables) {
      let options = [];
      try {
        const nodes = await get(url('/metrics/find', { query: v.query }));
        options = [...new Set(nodes.map((n) => n.text))].sort();
      } catch (e) { flash(`variable ${v.name}: ${e.message}`, 'error'); }
      const chosen = params().get('var-' + v.name) ?? v.current ?? '*';
      values[v.name] = chosen;
      const sel = h('select', {
        'aria-label': 'variable ' + v.name,
        onchange: () => { values[v.name] = sel.value; setParams({ ['var-' + v.name]: sel.value }, true); redraw(); },
      }, h('option', { value: '*', selected: chosen === '*' }, 'all'),
      options.map((o) => h('option', { value: o, selected: o === chosen }, o)));
      vars.append(h('label', '$' + v.name + ' ', sel));
    }
  };

  const redraw = async () => {
    const started = performance.now();
    controller?.abort();
    controller = new AbortController();
    const signal = controller.signal;
    for (const c of charts) c.destroy();
    charts = [];
    const [f, u] = span(from, until);
    const cells = d.panels.map((panel, i) => panelCell(panel, i));
    clear(grid, cells.map((c) => c.el), d.panels.length ? null : h('p.muted', 'No panels yet: Add panel.'));
    const results = await Promise.all(d.panels.map((panel, i) => {
      const targets = (panel.targets || []).map((t) => substitute(t, values));
      return targets.length
        ? render(targets, from, until, Math.max(200, cells[i].graph.clientWidth || 500), signal).catch((e) => e)
        : Promise.resolve([]);
    }));
    if (signal.aborted) return;
    results.forEach((r, i) => {
      const graph = cells[i].graph;
      if (r instanceof Error) { clear(graph, h('p.error', r.message)); return; }
      charts.push(draw(graph, r, f, u, {
        height: 200,
        onZoom: async (a, b, { shift }) => {
          if (shift) { go(await logsHref(r, a, b)); return; }
          from = String(a); until = String(b);
          setParams({ from, until }, true);
          drawBar();
          redraw();
        },
      }));
      cells[i].logs.onclick = async () => go(await logsHref(r, f, u));
    });
    const ms = performance.now() - started;
    performance.mark('dashboard-drawn', { detail: { ms, panels: d.panels.length } });
    took.textContent = `drawn in ${Math.round(ms)} ms`;
    grid.dataset.drawnMs = String(Math.round(ms));
  };

  const panelCell = (panel, i) => {
    const graph = h('div.graph', { 'aria-label': panel.title || `panel ${i + 1}` });
    const logs = h('button', { type: 'button', title: 'the logs of this window from the hosts in these series' }, 'Logs');
    const move = (by) => {
      const j = i + by;
      if (j < 0 || j >= d.panels.length) return;
      [d.panels[i], d.panels[j]] = [d.panels[j], d.panels[i]];
      markDirty();
      redraw();
    };
    const el = h('section.panel', { class: panel.span === 2 ? 'panel wide' : 'panel' },
      h('header', h('h2', panel.title || '(untitled)'),
        h('span.actions',
          logs,
          h('button', { type: 'button', 'aria-label': 'move panel earlier', onclick: () => move(-1) }, '↑'),
          h('button', { type: 'button', 'aria-label': 'move panel later', onclick: () => move(1) }, '↓'),
          h('button', { type: 'button', onclick: () => editPanel(i) }, 'Edit'),
          h('button', { type: 'button', 'aria-label': 'remove panel', onclick: () => { d.panels.splice(i, 1); markDirty(); redraw(); } }, '×'))),
      graph);
    return { el, graph, logs };
  };

  const dialog = (title, body, onOk) => {
    const dlg = h('dialog', h('form', { method: 'dialog' }, h('h2', title), body,
      h('menu', h('button', { value: 'cancel', formnovalidate: true }, 'Cancel'), h('button.primary', { value: 'ok' }, 'OK'))));
    dlg.addEventListener('close', () => { if (dlg.returnValue === 'ok') onOk(); dlg.remove(); });
    document.body.append(dlg);
    dlg.showModal();
    return dlg;
  };

  const editPanel = (i) => {
    const panel = i == null ? { title: '', targets: [] } : d.panels[i];
    const title = h('input', { name: 'panel-title', value: panel.title, 'aria-label': 'panel title' });
    const targets = h('textarea', { name: 'panel-targets', rows: 6, cols: 60, 'aria-label': 'targets, one per line' }, (panel.targets || []).join('\n'));
    const wide = h('input', { type: 'checkbox', checked: panel.span === 2 });
    dialog(i == null ? 'Add panel' : 'Edit panel',
      [h('label', 'Title ', title), h('label', 'Targets, one per line ', targets), h('label', wide, ' full width')],
      () => {
        const next = { ...panel, title: title.value.trim(), targets: targets.value.split('\n').map((t) => t.trim()).filter(Boolean), span: wide.checked ? 2 : 1 };
        if (i == null) d.panels.push(next); else d.panels[i] = next;
        markDirty();
        redraw();
      });
  };

  const editVariables = () => {
    const text = h('textarea', { rows: 5, cols: 60, 'aria-label': 'variables' }, d.variables.map((v) => `${v.name} = ${v.query}`).join('\n'));
    dialog('Template variables', [h('p.muted', 'One per line: name = a path glob, e.g. host = servers.*. Use $host in targets.'), text], () => {
      d.variables = text.value.split('\n').map((l) => l.split('=')).filter((kv) => kv.length === 2 && kv[0].trim())
        .map(([k, q]) => ({ name: k.trim(), query: q.trim() }));
      markDirty();
      drawVars().then(redraw);
    });
  };

  const exportJson = () => {
    const text = JSON.stringify(d, null, 2);
    const link = h('a', { href: URL.createObjectURL(new Blob([text], { type: 'application/json' })), download: `${d.id}.json` }, 'Download');
    dialog('Export JSON', [h('textarea', { rows: 16, cols: 70, readonly: true, 'aria-label': 'dashboard JSON' }, text), h('p', link)], () => {});
  };

  const remove = async () => {
    if (!confirm(`Delete the dashboard “${d.title}”?`)) return;
    try { await del(path); go('/ui/dashboards'); } catch (e) { flash(e.message, 'error'); }
  };

  const schedule = () => {
    clearInterval(timer);
    const m = /^(\d+)(s|m)$/.exec(refresh);
    if (m) timer = setInterval(redraw, Number(m[1]) * (m[2] === 'm' ? 60000 : 1000));
  };

  const leave = (e) => { if (dirty) { e.preventDefault(); e.returnValue = ''; } };
  window.addEventListener('beforeunload', leave);
  drawBar();
  await drawVars();
  await redraw();
  schedule();
  return () => {
    clearInterval(timer);
    controller?.abort();
    for (const c of charts) c.destroy();
    window.removeEventListener('beforeunload', leave);
  };
}
