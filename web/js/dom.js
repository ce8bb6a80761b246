// Small DOM helpers shared by every page: element building, number and byte
// formatting, the flash message, and URL state.

/** h('div.cls#id', {attrs, on*: handlers}, ...children) */
export function h(tag, attrs, ...children) {
  const [, name, rest] = /^([a-z0-9]+)?(.*)$/i.exec(tag);
  const el = document.createElement(name || 'div');
  for (const part of rest.match(/[.#][^.#]+/g) || []) {
    if (part[0] === '.') el.classList.add(part.slice(1));
    else el.id = part.slice(1);
  }
  if (attrs && (typeof attrs !== 'object' || attrs instanceof Node || Array.isArray(attrs))) {
    children.unshift(attrs);
    attrs = null;
  }
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v == null || v === false) continue;
    if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
    else if (k === 'dataset') Object.assign(el.dataset, v);
    else if (k === 'value') el.value = v;
    else if (k === 'checked') el.checked = !!v;
    else el.setAttribute(k, v === true ? '' : v);
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const c of children) {
    if (c == null || c === false) continue;
    if (Array.isArray(c)) append(el, c);
    else el.append(c instanceof Node ? c : String(c));
  }
}

export function clear(el, ...children) {
  el.replaceChildren();
  append(el, children);
  return el;
}

const units = ['', 'k', 'M', 'G', 'T', 'P'];

/** 1234567 -> "1.23M"; small numbers keep up to 3 significant decimals. */
export function num(v) {
  if (v == null || Number.isNaN(v)) return '–';
  const a = Math.abs(v);
  if (a < 1000) return String(+v.toPrecision(a < 1 ? 3 : 4));
  let i = 0;
  while (Math.abs(v) >= 1000 && i < units.length - 1) { v /= 1000; i++; }
  return +v.toPrecision(3) + units[i];
}

export function bytes(v) {
  if (v == null) return '–';
  const names = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let i = 0;
  while (v >= 1024 && i < names.length - 1) { v /= 1024; i++; }
  return (i ? v.toFixed(v < 10 ? 1 : 0) : v) + ' ' + names[i];
}

export function duration(s) {
  if (s < 120) return Math.round(s) + 's';
  if (s < 7200) return Math.round(s / 60) + 'm';
  if (s < 172800) return Math.round(s / 3600) + 'h';
  return Math.round(s / 86400) + 'd';
}

let flashTimer;
/** A message at the top of the page; errors stay until the next one. */
export function flash(text, kind = 'info') {
  const el = document.getElementById('flash');
  el.textContent = text;
  el.className = kind;
  el.hidden = false;
  clearTimeout(flashTimer);
  if (kind !== 'error') flashTimer = setTimeout(() => { el.hidden = true; }, 4000);
}

/** The current query string as URLSearchParams. */
export function params() {
  return new URLSearchParams(location.search);
}

/**
 * Writes page state into the URL. `push` makes a history entry (Back undoes
 * it), otherwise the current entry is replaced. Empty values are dropped.
 */
export function setParams(values, push = false) {
  const p = params();
  for (const [k, v] of Object.entries(values)) {
    p.delete(k);
    for (const one of Array.isArray(v) ? v : [v]) if (one != null && one !== '') p.append(k, one);
  }
  const url = location.pathname + (p.toString() ? '?' + p : '');
  if (url === location.pathname + location.search) return;
  if (push) history.pushState(null, '', url);
  else history.replaceState(null, '', url);
}

/** Debounces `fn` by `ms`. */
export function debounce(fn, ms) {
  let t;
  return (...a) => { clearTimeout(t); t = setTimeout(() => fn(...a), ms); };
}
