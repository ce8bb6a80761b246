// The metric explorer: a tree over /metrics/find with search, several targets
// per graph with completion, a range picker, drag to zoom, the logs of the
// graph's window, and "add to a dashboard". State: ?target=..&from=..&until=..
import { h, clear, flash, params, setParams } from './dom.js';
import { get, put, post, url, render } from './api.js';
import { attach } from './complete.js';
import { draw, logsHref } from './chart.js';
import { rangePicker, window as span } from './time.js';
import { go } from './app.js';

export default async function metrics(main) {
  const p = params();
  let targets = p.getAll('target');
  let from = p.get('from') || '-1h';
  let until = p.get('until') || 'now';

  const tree = h('ul.tree', { role: 'tree', 'aria-label': 'metrics' });
  const search = h('input', { type: 'search', placeholder: 'search metrics (text or glob)', 'aria-label': 'search metrics' });
  const found = h('ul.tree.found', { hidden: true });
  const editor = h('div.targets');
  const range = h('div');
  const graph = h('div.graph#graph', { 'aria-label': 'graph' });
  const tools = h('div.tools');
  clear(main,
    h('h1', 'Metrics'),
    h('div.split',
      h('aside.sidebar', search, found, tree),
      h('section.content', editor, range, tools, graph)));

  let chart = null;
  let shown = [];
  let controller = null;

  const redraw = async () => {
    setParams({ target: targets, from, until });
    clear(range, rangePicker(from, until, (f, u) => { from = f; until = u; setParams({ from, until }, true); redraw(); }));
    drawEditor();
    controller?.abort();
    controller = new AbortController();
    chart?.destroy();
    chart = null;
    if (!targets.length) {
      clear(graph, h('p.muted', 'Pick a metric in the tree or type a target above.'));
      clear(tools);
      return;
    }
    const [f, u] = span(from, until);
    try {
      shown = await render(targets, from, until, Math.max(300, graph.clientWidth || 800), controller.signal);
    } catch (e) {
      if (e.name === 'AbortError') return;
      clear(graph, h('p.error', e.message));
      return;
    }
    chart = draw(graph, shown, f, u, {
      height: 320,
      onZoom: async (a, b, { shift }) => {
        if (shift) { go(await logsHref(shown, a, b)); return; }
        from = String(a); until = String(b);
        setParams({ from, until }, true);
        redraw();
      },
    });
    if (!shown.length) graph.prepend(h('p.muted', 'No series matched.'));
    drawTools(f, u);
  };

  const drawEditor = () => {
    const rows = targets.map((t, i) => {
      const input = h('input.target', { value: t, 'aria-label': `target ${i + 1}`, spellcheck: 'false' });
      const form = h('form.row', {
        onsubmit: (e) => { e.preventDefault(); targets[i] = input.value.trim(); targets = targets.filter(Boolean); redraw(); },
      }, input, h('button', { type: 'submit' }, 'Apply'),
      h('button', { type: 'button', 'aria-label': `remove target ${i + 1}`, onclick: () => { targets.splice(i, 1); redraw(); } }, '×'));
      attach(input);
      return form;
    });
    const fresh = h('input.target', { placeholder: 'add a target: a path, a glob or a function, e.g. sumSeries(servers.*.cpu.user)', 'aria-label': 'new target', spellcheck: 'false' });
    const add = h('form.row', {
      onsubmit: (e) => { e.preventDefault(); const t = fresh.value.trim(); if (t) { targets.push(t); redraw(); } },
    }, fresh, h('button', { type: 'submit' }, 'Add'));
    attach(fresh);
    clear(editor, rows, add);
  };

  const drawTools = (f, u) => {
    const logs = h('button', {
      type: 'button', title: 'the logs of this window, from the hosts these series name (or shift-drag on the graph)',
      onclick: async () => go(await logsHref(shown, f, u)),
    }, 'Logs of this window');
    clear(tools, logs, addToDashboard(targets, from, until), h('span.muted', 'drag on the graph to zoom; shift-drag for its logs'));
  };

  const expand = async (li, node) => {
    const open = li.getAttribute('aria-expanded') === 'true';
    if (open) { li.setAttribute('aria-expanded', 'false'); li.querySelector('ul')?.remove(); return; }
    li.setAttribute('aria-expanded', 'true');
    const children = await get(url('/metrics/find', { query: node.id + '.*' }));
    li.append(h('ul', { role: 'group' }, children.map(treeItem)));
  };
  const treeItem = (node) => {
    const li = h('li', { role: 'treeitem' });
    if (node.leaf) {
      li.append(h('button.leaf', { type: 'button', title: node.id, onclick: () => { if (!targets.includes(node.id)) targets.push(node.id); redraw(); } }, node.text));
    } else {
      li.setAttribute('aria-expanded', 'false');
      li.append(h('button.branch', { type: 'button', title: node.id, onclick: () => expand(li, node) }, node.text));
    }
    return li;
  };

  let index = null;
  search.addEventListener('input', async () => {
    const term = search.value.trim();
    if (!term) { found.hidden = true; tree.hidden = false; return; }
    let ids;
    if (/[.*{[]/.test(term)) {
      const r = await get(url('/metrics/expand', { query: term, leavesOnly: 1 })).catch(() => ({ results: [] }));
      ids = r.results;
    } else {
      // The whole namespace, once; past the server's render limits it is refused.
      index ??= await get('/metrics/index.json').catch((e) => { flash(`${e.message}: search with a glob, e.g. servers.*.cpu*`, 'error'); return null; });
      const t = term.toLowerCase();
      ids = (index || []).filter((n) => n.toLowerCase().includes(t));
    }
    clear(found, ids.slice(0, 200).map((id) => treeItem({ id, text: id, leaf: true })),
      ids.length > 200 ? h('li.muted', `${ids.length - 200} more: narrow the search`) : null,
      ids.length === 0 ? h('li.muted', 'no metric matches') : null);
    found.hidden = false;
    tree.hidden = true;
  });

  const roots = await get(url('/metrics/find', { query: '*' }));
  clear(tree, roots.map(treeItem));
  await redraw();
  return () => { controller?.abort(); chart?.destroy(); };
}

/** A picker that appends the current targets as a panel of a saved dashboard. */
function addToDashboard(targets, from, until) {
  const select = h('select', { 'aria-label': 'dashboard' }, h('option', { value: '' }, 'add to dashboard…'));
  get('/api/dashboards').then((list) => {
    for (const d of list) select.append(h('option', { value: d.id }, d.title));
    select.append(h('option', { value: '+' }, 'a new dashboard…'));
  }, () => select.remove());
  select.addEventListener('change', async () => {
    const id = select.value;
    select.value = '';
    if (!id) return;
    const panel = { title: targets.join(', ').slice(0, 80), targets: [...targets] };
    try {
      let saved;
      if (id === '+') {
        const title = prompt('Title of the new dashboard:');
        if (!title) return;
        saved = await post('/api/dashboards', { title, from, until, panels: [panel] });
      } else {
        const d = await get('/api/dashboards/' + encodeURIComponent(id));
        d.panels = [...(d.panels || []), panel];
        saved = await put('/api/dashboards/' + encodeURIComponent(id), d);
      }
      flash(`Added to “${saved.title}”.`);
    } catch (e) {
      flash(e.message, 'error');
    }
  });
  return select;
}
