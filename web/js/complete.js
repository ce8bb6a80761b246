// Autocomplete for Graphite targets: function names from /functions (with
// their signatures) and metric path nodes from /metrics/find, for the token
// under the caret. Arrow keys move, Enter or Tab takes, Escape closes.
import { h, clear, debounce } from './dom.js';
import { get, url, graphiteFunctions } from './api.js';

const TOKEN = /[A-Za-z0-9_.*{}\-[\]]+$/;

/** The token ending at `caret`, and where it starts. */
export function tokenAt(text, caret) {
  const m = TOKEN.exec(text.slice(0, caret));
  return m ? { token: m[0], start: caret - m[0].length } : { token: '', start: caret };
}

/** Functions whose names start with `prefix` first, then those that contain it. */
export function matchFunctions(all, prefix, limit = 12) {
  const p = prefix.toLowerCase();
  const names = Object.keys(all);
  const starts = names.filter((n) => n.toLowerCase().startsWith(p));
  const contains = names.filter((n) => !n.toLowerCase().startsWith(p) && n.toLowerCase().includes(p));
  return [...starts.sort(), ...contains.sort()].slice(0, limit);
}

/** Attaches the completion list to `input`; `onAccept` runs after a pick. */
export function attach(input, onAccept = () => {}) {
  const list = h('ul.complete', { role: 'listbox', hidden: true });
  input.setAttribute('autocomplete', 'off');
  input.setAttribute('role', 'combobox');
  input.setAttribute('aria-autocomplete', 'list');
  const wrap = h('span.completer');
  input.replaceWith(wrap);
  wrap.append(input, list);
  let items = [];
  let active = 0;
  let seq = 0;

  const close = () => { list.hidden = true; items = []; input.setAttribute('aria-expanded', 'false'); };
  const show = () => {
    clear(list, items.map((it, i) => h('li', {
      role: 'option', 'aria-selected': String(i === active), class: i === active ? 'active' : '',
      onmousedown: (e) => { e.preventDefault(); active = i; take(); },
    }, h('span', it.label), it.hint ? h('small', it.hint) : null)));
    list.hidden = items.length === 0;
    input.setAttribute('aria-expanded', String(!list.hidden));
  };
  const take = () => {
    const it = items[active];
    if (!it) return;
    const caret = input.selectionStart;
    const { start } = tokenAt(input.value, caret);
    input.value = input.value.slice(0, start) + it.insert + input.value.slice(caret);
    const at = start + it.insert.length;
    input.setSelectionRange(at, at);
    close();
    onAccept(it);
    if (it.more) suggest();
  };
  const suggest = debounce(async () => {
    const mine = ++seq;
    const { token } = tokenAt(input.value, input.selectionStart);
    if (!token) { close(); return; }
    const found = [];
    if (!token.includes('.')) {
      try {
        const fns = await graphiteFunctions();
        for (const name of matchFunctions(fns, token)) {
          found.push({ label: name, hint: fns[name].function || '', insert: name + '(', more: true });
        }
      } catch { /* leave functions out */ }
    }
    try {
      const glob = /[*{[]/.test(token.split('.').pop()) ? token : token + '*';
      const nodes = await get(url('/metrics/find', { query: glob }));
      for (const n of nodes.slice(0, 30)) {
        found.push({ label: n.id, hint: n.leaf ? 'metric' : 'node', insert: n.leaf ? n.id : n.id + '.', more: !n.leaf });
      }
    } catch { /* a bad glob while typing */ }
    if (mine !== seq) return;
    items = found;
    active = 0;
    show();
  }, 120);

  input.addEventListener('input', suggest);
  input.addEventListener('blur', () => setTimeout(close, 100));
  input.addEventListener('keydown', (e) => {
    if (list.hidden) return;
    if (e.key === 'ArrowDown') { active = (active + 1) % items.length; show(); e.preventDefault(); }
    else if (e.key === 'ArrowUp') { active = (active - 1 + items.length) % items.length; show(); e.preventDefault(); }
    else if (e.key === 'Tab' || (e.key === 'Enter' && items.length)) { take(); e.preventDefault(); e.stopImmediatePropagation(); }
    else if (e.key === 'Escape') { close(); e.preventDefault(); }
  });
  return { close };
}
