// Shared by the agent dashboard and the admin page: DOM building (text only),
// formatting, the REST helper, sign-in, a reconnecting WebSocket and sounds.
// Nothing here ever parses a string as HTML.

const SVG_NS = 'http://www.w3.org/2000/svg';

const ICONS = {
  chat: 'M21 11.5a8.5 8.5 0 0 1-12.3 7.6L3.5 20.5l1.4-4.8A8.5 8.5 0 1 1 21 11.5z',
  close: 'M6 6l12 12M18 6L6 18',
  send: 'M5 12h13M12 5l7 7-7 7',
  back: 'M15 18l-6-6 6-6',
  clip: 'M20.5 11.5l-8.6 8.6a5.2 5.2 0 0 1-7.4-7.4l8.6-8.6a3.5 3.5 0 0 1 4.9 4.9l-8.6 8.6a1.7 1.7 0 0 1-2.4-2.4l7.9-7.9',
  check: 'M5 12.5l4.2 4.2L19 7',
  checks: 'M2.5 12.5l4.2 4.2L16.5 7M11.8 16.2l.5.5L22 7',
  clock: 'M12 21a9 9 0 1 0 0-18 9 9 0 0 0 0 18zM12 7.5V12l3 2',
  alert: 'M12 8.5v4.5M12 16.5v.5M10.3 3.9L2.6 17.5A2 2 0 0 0 4.3 20.5h15.4a2 2 0 0 0 1.7-3L13.7 3.9a2 2 0 0 0-3.4 0z',
  person: 'M12 12a4 4 0 1 0 0-8 4 4 0 0 0 0 8zM4.5 20.5a7.5 7.5 0 0 1 15 0',
  people: 'M9 11a3.5 3.5 0 1 0 0-7 3.5 3.5 0 0 0 0 7zM2.5 20a6.5 6.5 0 0 1 13 0M16 4.3a3.5 3.5 0 0 1 0 6.4M18 14.2a6.5 6.5 0 0 1 3.5 5.8',
  bot: 'M12 3.5V6.5M7 7h10a3 3 0 0 1 3 3v6a3 3 0 0 1-3 3H7a3 3 0 0 1-3-3v-6a3 3 0 0 1 3-3zM9 12v1M15 12v1',
  inbox: 'M3 13h5l1.5 3h5L16 13h5M5.5 5h13L21 13v6a1 1 0 0 1-1 1H4a1 1 0 0 1-1-1v-6z',
  file: 'M14 3H7a2 2 0 0 0-2 2v14a2 2 0 0 0 2 2h10a2 2 0 0 0 2-2V8l-5-5zM14 3v5h5',
  bell: 'M6 16V11a6 6 0 1 1 12 0v5l2 2H4zM10 20a2 2 0 0 0 4 0',
  bellOff: 'M6 16V11a6 6 0 0 1 9.5-4.9M18 11v5l2 2H8M10 20a2 2 0 0 0 4 0M3 3l18 18',
  logout: 'M9 21H5a2 2 0 0 1-2-2V5a2 2 0 0 1 2-2h4M16 17l5-5-5-5M21 12H9',
  swap: 'M7 4L3 8l4 4M3 8h14M17 20l4-4-4-4M21 16H7',
  done: 'M22 11.1V12a10 10 0 1 1-5.9-9.1M22 4L12 14l-3-3',
  zap: 'M13 2L4 14h7l-1 8 9-12h-7z',
  plus: 'M12 5v14M5 12h14',
  refresh: 'M20 11a8 8 0 0 0-14.9-3.5M4 4v4h4M4 13a8 8 0 0 0 14.9 3.5M20 20v-4h-4',
  chart: 'M4 20V10M10 20V4M16 20v-7M22 20H2',
  shield: 'M12 3l8 3v6c0 4.5-3.4 8.3-8 9-4.6-.7-8-4.5-8-9V6z',
  wifi: 'M2 8.5a15 15 0 0 1 20 0M5.5 12a10 10 0 0 1 13 0M9 15.5a5 5 0 0 1 6 0M12 19h.01',
  globe: 'M12 21a9 9 0 1 0 0-18 9 9 0 0 0 0 18zM3 12h18M12 3a14 14 0 0 1 0 18M12 3a14 14 0 0 0 0 18',
  trash: 'M4 7h16M10 11v6M14 11v6M6 7l1 13h10l1-13M9 7V4h6v3',
  lock: 'M7 11V8a5 5 0 0 1 10 0v3M5.5 11h13v9.5h-13z',
  mail: 'M3.5 5.5h17v13h-17zM3.5 6.5l8.5 6.5 8.5-6.5',
};

/** A stroke icon from the fixed set above. */
export function icon(name, size = 18) {
  const svg = document.createElementNS(SVG_NS, 'svg');
  for (const [key, value] of Object.entries({
    viewBox: '0 0 24 24', width: size, height: size, fill: 'none', stroke: 'currentColor',
    'stroke-width': 2, 'stroke-linecap': 'round', 'stroke-linejoin': 'round', 'aria-hidden': 'true', focusable: 'false',
  })) svg.setAttribute(key, String(value));
  const path = document.createElementNS(SVG_NS, 'path');
  path.setAttribute('d', ICONS[name] || '');
  svg.append(path);
  return svg;
}

/**
 * h('button', {class: 'btn', testid: 'x', onclick: fn}, 'text', child…)
 * Strings become text nodes; props never set innerHTML.
 */
export function h(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(props || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key === 'class') node.className = value;
    else if (key === 'testid') node.dataset.testid = value;
    else if (key === 'text') node.textContent = value;
    else if (key === 'dataset') Object.assign(node.dataset, value);
    else if (key === 'style' && typeof value === 'object') Object.assign(node.style, value);
    else if (key.startsWith('on') && typeof value === 'function') node.addEventListener(key.slice(2), value);
    else if (key === 'hidden' || key === 'disabled' || key === 'checked' || key === 'selected' || key === 'required') node[key] = Boolean(value);
    else if (key === 'value') node.value = value;
    else node.setAttribute(key, value === true ? '' : String(value));
  }
  appendChildren(node, children);
  return node;
}

function appendChildren(node, children) {
  for (const child of children) {
    if (child === null || child === undefined || child === false) continue;
    if (Array.isArray(child)) appendChildren(node, child);
    else node.append(typeof child === 'string' || typeof child === 'number' ? document.createTextNode(String(child)) : child);
  }
}

export function clear(node) {
  node.replaceChildren();
  return node;
}

/** Plain text with http(s) links made clickable, all as text nodes and anchors. */
export function richText(text) {
  const fragment = document.createDocumentFragment();
  const pattern = /\bhttps?:\/\/[^\s<>"']+/gi;
  let last = 0;
  let match;
  while ((match = pattern.exec(text)) !== null) {
    const url = match[0].replace(/[.,;:!?)\]]+$/, '');
    if (match.index > last) fragment.append(document.createTextNode(text.slice(last, match.index)));
    const a = document.createElement('a');
    a.href = url;
    a.target = '_blank';
    a.rel = 'noopener noreferrer nofollow';
    a.textContent = url;
    fragment.append(a);
    last = match.index + url.length;
    pattern.lastIndex = last;
  }
  if (last < text.length) fragment.append(document.createTextNode(text.slice(last)));
  return fragment;
}

// ------------------------------------------------------------------ formatting

const timeFormat = new Intl.DateTimeFormat(undefined, { hour: 'numeric', minute: '2-digit' });
const dayTimeFormat = new Intl.DateTimeFormat(undefined, { day: 'numeric', month: 'short', hour: 'numeric', minute: '2-digit' });
const clockFormat = new Intl.DateTimeFormat(undefined, { hour: 'numeric', minute: '2-digit', second: '2-digit' });

export function formatTime(iso) {
  const date = iso ? new Date(iso) : new Date();
  if (Number.isNaN(date.getTime())) return '';
  return date.toDateString() === new Date().toDateString() ? timeFormat.format(date) : dayTimeFormat.format(date);
}

export function formatClock(date = new Date()) {
  return clockFormat.format(date);
}

/** 75 → "1m 15s", 4000 → "1h 6m". */
export function formatDuration(seconds) {
  if (seconds === null || seconds === undefined || Number.isNaN(seconds)) return '—';
  const s = Math.max(0, Math.round(seconds));
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m ${String(s % 60).padStart(2, '0')}s`;
  return `${Math.floor(s / 3600)}h ${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}m`;
}

export function secondsSince(iso) {
  const time = new Date(iso).getTime();
  return Number.isNaN(time) ? 0 : Math.max(0, (Date.now() - time) / 1000);
}

export function formatSize(bytes) {
  if (!(bytes >= 0)) return '';
  if (bytes < 1024) return `${bytes} B`;
  if (bytes < 1024 * 1024) return `${Math.round(bytes / 1024)} KB`;
  return `${(bytes / 1024 / 1024).toFixed(1)} MB`;
}

export function percent(value) {
  return typeof value === 'number' && Number.isFinite(value) ? `${Math.round(value * 100)}%` : '—';
}

export function initials(name) {
  const parts = String(name || '?').trim().split(/\s+/).filter(Boolean);
  if (!parts.length) return '?';
  return (parts[0][0] + (parts.length > 1 ? parts[parts.length - 1][0] : '')).toUpperCase();
}

const AVATAR_COLOURS = ['#4f46e5', '#0f766e', '#b45309', '#be185d', '#0369a1', '#7c3aed', '#15803d', '#c2410c'];
export function colourFor(text) {
  let hash = 0;
  for (const char of String(text || '')) hash = (hash * 31 + char.codePointAt(0)) >>> 0;
  return AVATAR_COLOURS[hash % AVATAR_COLOURS.length];
}

export function avatar(name, extraClass = '') {
  return h('span', { class: `avatar ${extraClass}`.trim(), style: { background: colourFor(name) }, 'aria-hidden': 'true', text: initials(name) });
}

/**
 * The attachments of a message as links, images shown inline: `token` signs
 * each link (an <img> or a new tab cannot send a header), and links to
 * another origin are dropped.
 */
export function attachmentList(list, token, testid) {
  if (!Array.isArray(list) || !list.length) return null;
  const box = h('div', { class: 'attachments' });
  for (const item of list) {
    let href;
    try {
      const url = new URL(item.url || `/api/attachments/${item.attachmentId}`, location.origin);
      if (url.origin !== location.origin) continue;
      url.searchParams.set('token', token || '');
      href = url.href;
    } catch { continue; }
    if (/^image\//.test(item.contentType || '')) {
      box.append(h('a', { class: 'attachment-image', href, target: '_blank', rel: 'noopener noreferrer', testid },
        h('img', { src: href, alt: item.fileName || 'Attached image', loading: 'lazy' })));
    } else {
      box.append(h('a', { class: 'attachment-file', href, target: '_blank', rel: 'noopener noreferrer', testid },
        icon('file', 16), h('span', { class: 'file-name', text: item.fileName || 'file' }), h('span', { class: 'file-size', text: formatSize(item.sizeBytes) })));
    }
  }
  return box;
}

export function newId(prefix) {
  return prefix + (crypto.randomUUID ? crypto.randomUUID() : `${Date.now().toString(36)}${Math.random().toString(36).slice(2)}`);
}

// ------------------------------------------------------------------ REST

/** fetch JSON; resolves to {ok, status, data, error} and never throws. */
export async function api(path, { method = 'GET', token, body } = {}) {
  const headers = {};
  if (token) headers.Authorization = `Bearer ${token}`;
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  let response;
  try {
    response = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body), cache: 'no-store' });
  } catch (error) {
    return { ok: false, status: 0, data: null, error: { error: 'network', message: 'The server cannot be reached.' } };
  }
  let data = null;
  const text = await response.text().catch(() => '');
  if (text) {
    try { data = JSON.parse(text); } catch { data = null; }
  }
  if (response.ok) return { ok: true, status: response.status, data, error: null };
  const error = data && typeof data === 'object' && data.error
    ? data
    : { error: `http_${response.status}`, message: response.statusText || `HTTP ${response.status}` };
  return { ok: false, status: response.status, data, error };
}

// ------------------------------------------------------------------ sign-in

/** The signed-in staff member for this tab, kept in sessionStorage. */
export class Auth {
  constructor(key) { this.key = key; }

  get() {
    try {
      const value = JSON.parse(sessionStorage.getItem(this.key) || 'null');
      if (!value || !value.token) return null;
      if (value.expiresAt && new Date(value.expiresAt).getTime() <= Date.now()) {
        this.clear();
        return null;
      }
      return value;
    } catch {
      return null;
    }
  }

  set(value) { sessionStorage.setItem(this.key, JSON.stringify(value)); }
  clear() { sessionStorage.removeItem(this.key); }
}

/** Shows the sign-in form (#login) in place of the page (#app), with `notice` above it if there is one. */
export function showLoginForm(notice) {
  document.getElementById('app').hidden = true;
  document.getElementById('login').hidden = false;
  const box = document.getElementById('login-notice');
  box.textContent = notice || '';
  box.hidden = !notice;
  setTimeout(() => document.querySelector('[data-testid=login-username]').focus(), 0);
}

/**
 * Wires a sign-in form (#login-form) to POST /auth/login.
 * `accept(login)` returns an error message to refuse a role, or null.
 */
export function wireLogin({ form, onSignedIn, accept }) {
  const username = form.querySelector('[name=username]');
  const password = form.querySelector('[name=password]');
  const error = form.querySelector('[data-testid=login-error]');
  const submit = form.querySelector('[type=submit]');
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    error.hidden = true;
    submit.disabled = true;
    submit.classList.add('is-busy');
    const result = await api('/auth/login', { method: 'POST', body: { username: username.value.trim(), password: password.value } });
    submit.disabled = false;
    submit.classList.remove('is-busy');
    let message = null;
    if (!result.ok) {
      message = result.error.error === 'invalid_credentials'
        ? 'Wrong username or password.'
        : result.error.message || 'Sign-in failed. Please try again.';
    } else {
      message = accept(result.data);
    }
    if (message) {
      error.textContent = message;
      error.hidden = false;
      password.select();
      return;
    }
    password.value = '';
    onSignedIn(result.data);
  });
}

// ------------------------------------------------------------------ WebSocket

/**
 * A WebSocket that reconnects by itself with backoff. `request()` sends a
 * frame with a `ref` and resolves with the reply frame (or rejects with the
 * error data). Every frame, replies included, also goes to `onFrame`.
 */
export class Socket {
  constructor(url, { onFrame, onOpen, onState }) {
    this.url = url;
    this.onFrame = onFrame;
    this.onOpen = onOpen;
    this.onState = onState || (() => {});
    this.ws = null;
    this.open = false;
    this.wanted = false;
    this.attempts = 0;
    this.failedOpens = 0;
    this.refs = new Map();
    this.counter = 0;
    this.timer = null;
    window.addEventListener('online', () => this.now());
    document.addEventListener('visibilitychange', () => { if (document.visibilityState === 'visible') this.now(); });
  }

  connect() {
    this.wanted = true;
    if (this.ws) return;
    clearTimeout(this.timer);
    const ws = new WebSocket(typeof this.url === 'function' ? this.url() : this.url);
    this.ws = ws;
    let opened = false;
    this.onState('connecting');
    ws.onopen = () => {
      opened = true;
      this.open = true;
      this.attempts = 0;
      this.failedOpens = 0;
      this.onState('open');
      this.onOpen();
    };
    ws.onmessage = (event) => {
      let frame;
      try { frame = JSON.parse(event.data); } catch { return; }
      const pending = frame.ref ? this.refs.get(frame.ref) : null;
      if (pending) {
        this.refs.delete(frame.ref);
        clearTimeout(pending.timer);
      }
      if (frame.event === 'error') {
        if (pending) pending.reject(frame.data || {});
        else this.onFrame(frame);
        return;
      }
      this.onFrame(frame);
      if (pending) pending.resolve(frame);
    };
    ws.onclose = (event) => {
      if (this.ws !== ws) return;
      this.ws = null;
      this.open = false;
      for (const pending of this.refs.values()) {
        clearTimeout(pending.timer);
        pending.reject({ code: 'disconnected', message: 'The connection was lost.' });
      }
      this.refs.clear();
      if (!opened) this.failedOpens += 1;
      this.onState('closed', { code: event.code, reason: event.reason, failedOpens: this.failedOpens });
      if (this.wanted) this.schedule();
    };
  }

  schedule() {
    clearTimeout(this.timer);
    this.attempts += 1;
    const delay = Math.min(10000, 400 * 1.8 ** (this.attempts - 1)) * (0.75 + Math.random() * 0.5);
    this.timer = setTimeout(() => this.connect(), delay);
  }

  now() {
    if (this.wanted && !this.ws) {
      this.attempts = 0;
      this.connect();
    }
  }

  close() {
    this.wanted = false;
    clearTimeout(this.timer);
    if (this.ws) {
      const ws = this.ws;
      this.ws = null;
      this.open = false;
      ws.close(1000);
    }
  }

  request(event, data = {}, timeoutMs = 20000) {
    return new Promise((resolve, reject) => {
      if (!this.ws || !this.open) {
        reject({ code: 'disconnected', message: 'Not connected.' });
        return;
      }
      this.counter += 1;
      const ref = `r${this.counter}`;
      const timer = setTimeout(() => {
        if (this.refs.delete(ref)) reject({ code: 'timeout', message: 'The server did not answer.' });
      }, timeoutMs);
      this.refs.set(ref, { resolve, reject, timer });
      this.ws.send(JSON.stringify({ event, ref, data }));
    });
  }
}

// ------------------------------------------------------------------ sound

let audio = null;

/** Call from a user gesture so later beeps are allowed. */
export function unlockAudio() {
  try {
    audio = audio || new (window.AudioContext || window.webkitAudioContext)();
    if (audio.state === 'suspended') audio.resume();
  } catch { /* no audio */ }
}

/** A short two-note chime. */
export function beep() {
  if (!audio) return;
  try {
    const start = audio.currentTime + 0.01;
    [[880, 0], [1320, 0.11]].forEach(([frequency, offset]) => {
      const osc = audio.createOscillator();
      const gain = audio.createGain();
      osc.type = 'sine';
      osc.frequency.value = frequency;
      gain.gain.setValueAtTime(0.0001, start + offset);
      gain.gain.exponentialRampToValueAtTime(0.18, start + offset + 0.02);
      gain.gain.exponentialRampToValueAtTime(0.0001, start + offset + 0.18);
      osc.connect(gain).connect(audio.destination);
      osc.start(start + offset);
      osc.stop(start + offset + 0.2);
    });
  } catch { /* ignore */ }
}

// ------------------------------------------------------------------ toasts

export function toast(message, kind = 'info', ms = 4500) {
  let box = document.querySelector('.toasts');
  if (!box) {
    box = h('div', { class: 'toasts', role: 'status', 'aria-live': 'polite' });
    document.body.append(box);
  }
  const item = h('div', { class: `toast toast-${kind}`, testid: 'toast' }, icon(kind === 'error' ? 'alert' : 'check', 16), h('span', { text: message }));
  box.append(item);
  setTimeout(() => {
    item.classList.add('toast-out');
    setTimeout(() => item.remove(), 300);
  }, ms);
}
