// The admin console: live figures from GET /api/admin/stats (polled), charts
// drawn here as inline SVG, and agent management through /api/admin/agents.

import { Auth, api, avatar, clear, formatClock, formatDuration, h, icon, percent, toast, wireLogin } from '/assets/common.js';

const auth = new Auth('switchboard:admin');
const POLL_MS = 3000;
const SLOW_POLL_MS = 15000;
const AGENTS_EVERY_MS = 10000;
const MAX_POINTS = 1200;
const SVG_NS = 'http://www.w3.org/2000/svg';
const COLOURS = { queue: '#4f46e5', high: '#dc2626', oldest: '#d97706', mean: '#0f766e', bot: '#8b5cf6', waiting: '#f59e0b', assigned: '#4f46e5', closed: '#94a3b8' };

const $ = (id) => document.getElementById(id);

const state = {
  login: null,
  stats: null,
  history: [],
  pollTimer: null,
  agentsTimer: null,
  agents: null,
  agentsAvailable: true,
  stopped: true,
};

// ------------------------------------------------------------------ sign-in

function showLogin(notice) {
  stop();
  $('app').hidden = true;
  $('setup').hidden = true;
  $('login').hidden = false;
  $('login-notice').textContent = notice || '';
  $('login-notice').hidden = !notice;
  setTimeout(() => document.querySelector('[data-testid=login-username]').focus(), 0);
}

function signOut(notice) {
  auth.clear();
  state.history = [];
  state.stats = null;
  state.agents = null;
  showLogin(notice);
}

// ------------------------------------------------------------------ first admin

/** A fresh install has no admin yet: offer to create one instead of signing in. */
async function showSignInOrSetup() {
  const setup = await api('/api/setup');
  if (setup.ok && setup.data?.needsAdmin === true) showSetup();
  else showLogin();
}

function showSetup() {
  stop();
  $('app').hidden = true;
  $('login').hidden = true;
  $('setup').hidden = false;
  setTimeout(() => document.querySelector('[data-testid=setup-code]').focus(), 0);
}

$('setup-form').addEventListener('submit', async (event) => {
  event.preventDefault();
  const form = event.target;
  const error = form.querySelector('[data-testid=setup-error]');
  const submit = form.querySelector('[type=submit]');
  error.hidden = true;
  submit.disabled = true;
  submit.classList.add('is-busy');
  // form.name would be the form's own name attribute, not the field: ask the elements.
  const field = (key) => form.elements.namedItem(key).value;
  const result = await api('/api/setup/admin', {
    method: 'POST',
    body: {
      setupCode: field('setupCode').trim(),
      name: field('name').trim(),
      username: field('username').trim(),
      password: field('password'),
    },
  });
  submit.disabled = false;
  submit.classList.remove('is-busy');
  if (result.ok && result.data?.token) {
    form.reset();
    auth.set(result.data);
    start(result.data);
  } else if (result.error.error === 'already_set_up') {
    form.reset();
    showLogin('An admin account exists already. Sign in with it, or ask its owner for one.');
  } else {
    error.textContent = result.error.message || `The admin was not created (HTTP ${result.status}).`;
    error.hidden = false;
  }
});

// ------------------------------------------------------------------ sign-in form

wireLogin({
  form: $('login-form'),
  accept: (login) => (login.role === 'admin' ? null : 'This account is not an admin. Agents use the agent desk at /agent.'),
  onSignedIn: (login) => {
    auth.set(login);
    start(login);
  },
});

$('sign-out').append(icon('logout', 18));
$('sign-out').addEventListener('click', () => signOut('You have signed out.'));
$('agents-refresh').append(icon('refresh', 15), h('span', { text: 'Refresh' }));
$('agents-refresh').addEventListener('click', () => loadAgents());

function start(login) {
  state.login = login;
  state.stopped = false;
  $('login').hidden = true;
  $('setup').hidden = true;
  $('app').hidden = false;
  $('me-name').textContent = login.name;
  $('me').querySelector('.avatar')?.remove();
  $('me').prepend(avatar(login.name));
  renderKpis(null);
  renderCharts();
  renderLoad(null);
  renderSessions(null);
  poll();
  loadAgents();
}

function stop() {
  state.stopped = true;
  clearTimeout(state.pollTimer);
  clearTimeout(state.agentsTimer);
}

function token() {
  const login = auth.get();
  if (!login) {
    signOut('Your session has expired. Please sign in again.');
    return null;
  }
  return login.token;
}

function refused(result) {
  if (result.status === 401) {
    signOut('Your session has expired. Please sign in again.');
    return true;
  }
  if (result.status === 403) {
    signOut('This account may not use the admin console.');
    return true;
  }
  return false;
}

// ------------------------------------------------------------------ stats

async function poll() {
  clearTimeout(state.pollTimer);
  if (state.stopped) return;
  const bearer = token();
  if (!bearer) return;
  const result = await api('/api/admin/stats', { token: bearer });
  if (state.stopped) return;
  let next = POLL_MS;
  if (result.ok && result.data) {
    state.stats = result.data;
    $('stats-error').hidden = true;
    $('live').dataset.state = 'live';
    $('updated').textContent = `Live · updated ${formatClock(new Date())}`;
    record(result.data);
    renderKpis(result.data);
    renderCharts();
    renderLoad(result.data);
    renderSessions(result.data);
    if (!state.agentsAvailable) renderAgents(null);
  } else if (refused(result)) {
    return;
  } else {
    $('live').dataset.state = 'error';
    const missing = result.status === 404 || result.status === 405;
    $('updated').textContent = missing ? 'Statistics unavailable' : `Last attempt ${formatClock(new Date())}`;
    showStatsError(missing
      ? ['Live statistics are not available on this server yet.', 'The server does not offer GET /api/admin/stats. The page will pick the figures up as soon as it does.']
      : ['Live statistics could not be loaded.', `${result.error.message || 'The server did not answer.'} Retrying automatically.`]);
    if (missing) next = SLOW_POLL_MS;
  }
  const delay = document.visibilityState === 'visible' ? next : Math.max(next, SLOW_POLL_MS);
  state.pollTimer = setTimeout(poll, delay);
}

document.addEventListener('visibilitychange', () => {
  if (document.visibilityState === 'visible' && !state.stopped) poll();
});

function showStatsError([title, text]) {
  const box = $('stats-error');
  const iconBox = box.querySelector('.banner-icon');
  if (!iconBox.firstChild) iconBox.append(icon('alert', 20));
  $('stats-error-title').textContent = title;
  $('stats-error-text').textContent = text;
  box.hidden = false;
}

function num(value) {
  return typeof value === 'number' && Number.isFinite(value) ? value : null;
}

function record(stats) {
  state.history.push({
    t: Date.now(),
    queue: num(stats.queue?.length),
    high: num(stats.queue?.byPriority?.high),
    oldest: num(stats.queue?.oldestWaitSeconds),
    mean: num(stats.queue?.meanWaitSeconds),
  });
  if (state.history.length > MAX_POINTS) state.history.splice(0, state.history.length - MAX_POINTS);
}

function kpi(key, label, iconName, value, sub) {
  return h('div', { class: 'kpi', testid: 'admin-kpi', dataset: { kpi: key } },
    h('span', { class: 'kpi-label' }, icon(iconName, 15), label),
    h('span', { class: 'kpi-value', text: value }),
    h('span', { class: 'kpi-sub', text: sub }));
}

function renderKpis(stats) {
  const s = stats || {};
  const queue = s.queue || {};
  const agents = s.agents || {};
  const sessions = s.sessions || {};
  const byPriority = queue.byPriority || {};
  const fr = s.firstResponseSeconds || {};
  const res = s.resolutionSeconds || {};
  const dash = '—';
  const open = stats ? (sessions.bot || 0) + (sessions.waiting || 0) + (sessions.assigned || 0) : null;
  clear($('kpis')).append(
    kpi('queue', 'In the queue', 'inbox', stats ? String(queue.length ?? 0) : dash,
      stats ? `${byPriority.high ?? 0} high · ${byPriority.normal ?? 0} normal · ${byPriority.low ?? 0} low` : 'Waiting for data'),
    kpi('wait', 'Longest wait', 'clock', stats ? formatDuration(num(queue.oldestWaitSeconds)) : dash,
      stats ? `Average ${formatDuration(num(queue.meanWaitSeconds))}` : 'Waiting for data'),
    kpi('agents', 'Agents online', 'people', stats ? String(agents.online ?? 0) : dash,
      stats ? `${agents.away ?? 0} away · ${agents.busy ?? 0} at capacity` : 'Waiting for data'),
    kpi('open', 'Open chats', 'chat', open === null ? dash : String(open),
      stats ? `${sessions.assigned ?? 0} with agents · ${sessions.bot ?? 0} with the bot` : 'Waiting for data'),
    kpi('first-response', 'First response (median)', 'zap', stats ? formatDuration(num(fr.p50)) : dash,
      stats ? `90th percentile ${formatDuration(num(fr.p90))}` : 'Waiting for data'),
    kpi('resolution', 'Resolution (median)', 'done', stats ? formatDuration(num(res.p50)) : dash,
      stats ? `90th percentile ${formatDuration(num(res.p90))}` : 'Waiting for data'),
    kpi('handoff', 'Handed to a person', 'person', stats ? percent(s.handoffRate) : dash,
      stats ? `Bot resolved ${percent(s.botResolvedRate)}` : 'Waiting for data'),
    kpi('messages', 'Messages, last hour', 'chart', stats ? String(s.messages?.lastHour ?? 0) : dash,
      stats ? `${(s.messages?.total ?? 0).toLocaleString()} in total` : 'Waiting for data'),
  );
}

// ------------------------------------------------------------------ charts

function svg(tag, attrs = {}) {
  const node = document.createElementNS(SVG_NS, tag);
  for (const [key, value] of Object.entries(attrs)) node.setAttribute(key, String(value));
  return node;
}

const COUNT_STEPS = [1, 2, 5, 10, 20, 25, 50, 100, 200, 250, 500, 1000];
const SECOND_STEPS = [5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 14400];

/** Four equal steps from 0 that cover `value` (at least `floor`), each a round number. */
function scale(value, floor, steps) {
  const target = Math.max(value, floor);
  const step = steps.find((candidate) => candidate * 4 >= target) || Math.ceil(target / 4);
  return step * 4;
}

function formatAxisSeconds(value) {
  if (value < 60) return `${Math.round(value)}s`;
  if (value < 3600) return value % 60 ? `${Math.floor(value / 60)}m ${Math.round(value % 60)}s` : `${value / 60}m`;
  return `${Math.round((value / 3600) * 10) / 10}h`;
}

function legend(box, items) {
  clear(box).append(...items.map(([label, colour]) => h('span', {}, h('i', { style: { background: colour } }), label)));
}

/** A line chart of `series` over the page's history; y formatted by `format`. */
function lineChart(box, series, { format, floor, steps, emptyText }) {
  const points = state.history;
  clear(box);
  if (points.length < 1) {
    box.append(h('div', { class: 'chart-empty', text: emptyText }));
    return;
  }
  const width = Math.max(box.clientWidth - 36, 260);
  const height = 200;
  const pad = { left: 48, right: 12, top: 12, bottom: 26 };
  const t0 = points[0].t;
  const t1 = Math.max(points[points.length - 1].t, t0 + 60000);
  let top = 0;
  for (const p of points) for (const s of series) if (p[s.key] !== null) top = Math.max(top, p[s.key]);
  const yMax = scale(top, floor, steps);
  const x = (t) => pad.left + ((t - t0) / (t1 - t0)) * (width - pad.left - pad.right);
  const y = (v) => pad.top + (1 - v / yMax) * (height - pad.top - pad.bottom);

  const chart = svg('svg', { class: 'chart', viewBox: `0 0 ${width} ${height}`, role: 'img', 'aria-label': series.map((s) => s.label).join(', ') });
  chart.style.height = `${height}px`;
  const defs = svg('defs');
  chart.append(defs);
  for (let i = 0; i <= 4; i += 1) {
    const value = (yMax / 4) * i;
    const yy = y(value);
    chart.append(svg('line', { class: 'grid-line', x1: pad.left, x2: width - pad.right, y1: yy, y2: yy }));
    const label = svg('text', { x: pad.left - 8, y: yy + 4, 'text-anchor': 'end' });
    label.textContent = format(value);
    chart.append(label);
  }
  const ticks = [t0, (t0 + t1) / 2, t1];
  ticks.forEach((t, i) => {
    const label = svg('text', { x: x(t), y: height - 6, 'text-anchor': i === 0 ? 'start' : i === 2 ? 'end' : 'middle' });
    label.textContent = formatClock(new Date(t));
    chart.append(label);
  });

  series.forEach((s, index) => {
    const segments = [];
    let current = [];
    for (const p of points) {
      if (p[s.key] === null) {
        if (current.length) segments.push(current);
        current = [];
      } else {
        current.push([x(p.t), y(p[s.key])]);
      }
    }
    if (current.length) segments.push(current);
    for (const segment of segments) {
      const d = segment.map(([px, py], i) => `${i ? 'L' : 'M'}${px.toFixed(1)},${py.toFixed(1)}`).join(' ');
      if (index === 0 && segment.length > 1) {
        const id = `fill-${box.id}`;
        const gradient = svg('linearGradient', { id, x1: 0, y1: 0, x2: 0, y2: 1 });
        gradient.append(svg('stop', { offset: '0', 'stop-color': s.colour, 'stop-opacity': '0.22' }), svg('stop', { offset: '1', 'stop-color': s.colour, 'stop-opacity': '0' }));
        defs.append(gradient);
        const base = y(0).toFixed(1);
        chart.append(svg('path', { d: `${d} L${segment[segment.length - 1][0].toFixed(1)},${base} L${segment[0][0].toFixed(1)},${base} Z`, fill: `url(#${id})` }));
      }
      chart.append(svg('path', { d, fill: 'none', stroke: s.colour, 'stroke-width': 2.25, 'stroke-linejoin': 'round', 'stroke-linecap': 'round', ...(s.dashed ? { 'stroke-dasharray': '5 4' } : {}) }));
      const [lx, ly] = segment[segment.length - 1];
      chart.append(svg('circle', { cx: lx, cy: ly, r: 3.5, fill: '#fff', stroke: s.colour, 'stroke-width': 2 }));
    }
  });
  box.append(chart);
}

function renderCharts() {
  const empty = state.stats ? 'Collecting the first figures…' : 'No figures yet: live statistics are unavailable.';
  legend($('queue-legend'), [['All', COLOURS.queue], ['High priority', COLOURS.high]]);
  lineChart($('queue-chart'), [
    { key: 'queue', label: 'Queue length', colour: COLOURS.queue },
    { key: 'high', label: 'High priority', colour: COLOURS.high, dashed: true },
  ], { format: (v) => String(Math.round(v)), floor: 4, steps: COUNT_STEPS, emptyText: empty });
  legend($('wait-legend'), [['Longest', COLOURS.oldest], ['Average', COLOURS.mean]]);
  lineChart($('wait-chart'), [
    { key: 'oldest', label: 'Longest wait', colour: COLOURS.oldest },
    { key: 'mean', label: 'Average wait', colour: COLOURS.mean, dashed: true },
  ], { format: formatAxisSeconds, floor: 60, steps: SECOND_STEPS, emptyText: empty });
}

let resizeTimer = null;
window.addEventListener('resize', () => {
  clearTimeout(resizeTimer);
  resizeTimer = setTimeout(renderCharts, 150);
});

function renderLoad(stats) {
  const box = clear($('load'));
  const list = stats?.agents?.list;
  if (!Array.isArray(list)) {
    box.append(h('div', { class: 'chart-empty', text: stats ? 'No agents yet.' : 'No figures yet: live statistics are unavailable.' }));
    return;
  }
  if (!list.length) {
    box.append(h('div', { class: 'chart-empty', text: 'No agents yet.' }));
    return;
  }
  const sorted = [...list].sort((a, b) => (b.activeSessions / (b.maxConcurrent || 1)) - (a.activeSessions / (a.maxConcurrent || 1)) || String(a.name).localeCompare(String(b.name)));
  box.append(h('div', { class: 'bars' }, sorted.map((agent) => {
    const max = Math.max(1, agent.maxConcurrent || 1);
    const share = Math.min(1, (agent.activeSessions || 0) / max);
    return h('div', { class: 'bar-row', testid: 'admin-load-row' },
      h('span', { class: 'bar-name', title: agent.name }, h('span', { class: 'presence', dataset: { status: agent.status }, 'aria-label': agent.status }), agent.name || '—'),
      h('div', { class: 'bar-track', role: 'meter', 'aria-valuemin': '0', 'aria-valuemax': String(max), 'aria-valuenow': String(agent.activeSessions || 0), 'aria-label': `${agent.name} load` },
        h('div', { class: `bar-fill${share >= 1 ? ' is-full' : ''}`, style: { width: `${Math.round(share * 100)}%` } })),
      h('span', { class: 'bar-value', text: `${agent.activeSessions || 0} / ${max}` }));
  })));
}

function renderSessions(stats) {
  const box = clear($('sessions'));
  const s = stats?.sessions;
  if (!s) {
    box.append(h('div', { class: 'chart-empty', text: 'No figures yet: live statistics are unavailable.' }));
    return;
  }
  const parts = [['With the bot', 'bot'], ['Waiting', 'waiting'], ['With an agent', 'assigned'], ['Closed', 'closed']];
  const total = Math.max(1, s.total || parts.reduce((sum, [, key]) => sum + (s[key] || 0), 0));
  box.append(
    h('div', { class: 'status-bar', role: 'img', 'aria-label': parts.map(([label, key]) => `${label}: ${s[key] || 0}`).join(', ') },
      parts.map(([, key]) => h('span', { style: { width: `${((s[key] || 0) / total) * 100}%`, background: COLOURS[key] } }))),
    h('div', { class: 'bars', style: { marginTop: '16px' } }, parts.map(([label, key]) => h('div', { class: 'bar-row' },
      h('span', { class: 'bar-name' }, h('i', { style: { display: 'inline-block', width: '10px', height: '10px', borderRadius: '3px', background: COLOURS[key] } }), label),
      h('div', { class: 'bar-track' }, h('div', { class: 'bar-fill', style: { width: `${((s[key] || 0) / total) * 100}%`, background: COLOURS[key] } })),
      h('span', { class: 'bar-value', text: String(s[key] || 0) })))),
    h('p', { class: 'muted', style: { margin: '14px 0 0', fontSize: '12.5px' }, text: `${s.total ?? 0} chats in total · ${percent(stats.handoffRate)} handed to a person · ${percent(stats.botResolvedRate)} resolved by the bot` }),
  );
}

// ------------------------------------------------------------------ agents

async function loadAgents() {
  clearTimeout(state.agentsTimer);
  if (state.stopped) return;
  const bearer = token();
  if (!bearer) return;
  const result = await api('/api/admin/agents', { token: bearer });
  if (state.stopped) return;
  if (result.ok && Array.isArray(result.data)) {
    state.agentsAvailable = true;
    state.agents = result.data;
    $('agents-error').hidden = true;
    renderAgents(result.data);
  } else if (refused(result)) {
    return;
  } else {
    state.agentsAvailable = false;
    const missing = result.status === 404 || result.status === 405;
    $('agents-error').textContent = missing
      ? 'Agent management is not available on this server yet (GET /api/admin/agents). New agents can be added with `switchboard user add`.'
      : `The agents could not be loaded: ${result.error.message || 'no answer'}.`;
    $('agents-error').hidden = false;
    renderAgents(null);
  }
  state.agentsTimer = setTimeout(loadAgents, AGENTS_EVERY_MS);
}

function renderAgents(list) {
  const body = $('agents');
  if (body.contains(document.activeElement) && document.activeElement.matches('input')) return; // someone is editing
  clear(body);
  const editable = Array.isArray(list);
  let rows = list;
  if (!editable) {
    // Fall back to the live figures, read-only.
    rows = (state.stats?.agents?.list || []).map((agent) => ({ ...agent, username: null, role: 'agent', disabled: false }));
  }
  if (!rows.length) {
    body.append(h('tr', {}, h('td', { colspan: '6', class: 'muted', style: { textAlign: 'center', padding: '24px' }, text: editable ? 'No agents yet. Add the first one below.' : 'No agents to show.' })));
    return;
  }
  const live = new Map((state.stats?.agents?.list || []).map((agent) => [agent.agentId, agent]));
  for (const agent of [...rows].sort((a, b) => String(a.name).localeCompare(String(b.name)))) {
    const now = live.get(agent.agentId) || {};
    const status = now.status || agent.status || 'offline';
    const active = now.activeSessions ?? agent.activeSessions ?? 0;
    const capacity = h('input', {
      class: 'cap-input', type: 'number', min: '1', max: '100', value: String(agent.maxConcurrent ?? ''), testid: 'admin-agent-capacity',
      'aria-label': `Capacity of ${agent.name}`, disabled: !editable,
      onchange: (event) => updateAgent(agent, { maxConcurrent: Number(event.target.value) }),
    });
    const self = agent.agentId && agent.agentId === state.login?.userId;
    const toggle = self
      ? h('span', { class: 'pill', title: 'You cannot disable your own account', text: 'You' })
      : h('button', {
        class: `btn btn-sm${agent.disabled ? '' : ' btn-danger-soft'}`, type: 'button', testid: 'admin-agent-toggle', disabled: !editable,
        onclick: () => updateAgent(agent, { disabled: !agent.disabled }),
      }, agent.disabled ? 'Enable' : 'Disable');
    body.append(h('tr', { class: agent.disabled ? 'is-disabled' : '', testid: 'admin-agent-row', dataset: { agentId: agent.agentId || '', username: agent.username || '' } },
      h('td', { class: 'col-who' }, h('div', { class: 'who' }, avatar(agent.name), h('div', {}, h('strong', { text: agent.name || '—' }), agent.username ? h('small', { text: `@${agent.username}` }) : null))),
      h('td', { class: 'col-role' }, h('span', { class: `pill${agent.role === 'admin' ? ' pill-admin' : ''}`, text: agent.role || 'agent' })),
      h('td', { class: 'col-status' }, agent.disabled ? h('span', { class: 'pill pill-off', text: 'disabled' }) : h('span', { class: 'presence', dataset: { status }, text: status })),
      h('td', { class: 'col-open', style: { fontVariantNumeric: 'tabular-nums' }, text: String(active) }),
      h('td', { class: 'col-capacity', 'data-label': 'Capacity' }, capacity),
      h('td', { class: 'col-access' }, toggle)));
  }
}

async function updateAgent(agent, patch) {
  const bearer = token();
  if (!bearer) return;
  if (patch.maxConcurrent !== undefined && !(patch.maxConcurrent >= 1 && patch.maxConcurrent <= 100)) {
    toast('Capacity must be between 1 and 100.', 'error');
    renderAgents(state.agents);
    return;
  }
  const result = await api(`/api/admin/agents/${encodeURIComponent(agent.agentId)}`, { method: 'PATCH', token: bearer, body: patch });
  if (result.ok) {
    if (patch.disabled !== undefined) toast(`${agent.name} is ${patch.disabled ? 'disabled' : 'enabled'}.`);
    else toast(`${agent.name} can now take ${patch.maxConcurrent} chats.`);
    if (document.activeElement) document.activeElement.blur();
    loadAgents();
  } else if (!refused(result)) {
    toast(`Not saved: ${result.error.message || result.status}`, 'error');
    renderAgents(state.agents);
  }
}

$('create-form').addEventListener('submit', async (event) => {
  event.preventDefault();
  const form = event.target;
  const error = form.querySelector('[data-testid=admin-create-error]');
  const ok = form.querySelector('[data-testid=admin-create-ok]');
  error.hidden = true;
  ok.hidden = true;
  const bearer = token();
  if (!bearer) return;
  const body = {
    username: form.username.value.trim(),
    password: form.password.value,
    displayName: form.displayName.value.trim(),
    maxConcurrent: Number(form.maxConcurrent.value),
    role: form.role.value,
  };
  const submit = form.querySelector('[type=submit]');
  submit.disabled = true;
  const result = await api('/api/admin/agents', { method: 'POST', token: bearer, body });
  submit.disabled = false;
  if (result.ok) {
    ok.textContent = `${body.displayName} (@${body.username}) can now sign in.`;
    ok.hidden = false;
    form.reset();
    loadAgents();
  } else if (!refused(result)) {
    error.textContent = result.status === 404 || result.status === 405
      ? 'Adding agents is not available on this server yet.'
      : result.error.message || `The agent was not created (HTTP ${result.status}).`;
    error.hidden = false;
  }
});

// ------------------------------------------------------------------ start

const saved = auth.get();
if (saved && saved.role === 'admin') start(saved);
else showSignInOrSetup();
