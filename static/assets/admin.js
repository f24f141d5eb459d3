// The admin console, in four views (tabs, kept in the address's #hash):
// - Operations: live figures from GET /api/admin/stats (polled), charts drawn
//   here as inline SVG, and agent management through /api/admin/agents;
// - Conversations: search every chat (GET /api/sessions?q=…) and read one
//   (the teams of GET /api/teams to filter by);
// - Replies & labels: the canned replies and labels agents use;
// - Reports: a date range's figures from GET /api/admin/reports, and its CSV;
// - Webhooks: the endpoints told about chats (/api/admin/webhooks) and each
//   one's recent deliveries, read again every few seconds while shown;
// - Partners: the partner organisations and their accounts (/api/admin/partners).

import {
  Auth, api, avatar, clear, formatClock, formatDuration, formatSize, formatTime, h, icon, percent, showLoginForm, toast, wireLogin,
} from '/assets/common.js';

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
  view: 'operations',
};

// ------------------------------------------------------------------ sign-in

function showLogin(notice) {
  stop();
  $('setup').hidden = true;
  showLoginForm(notice);
}

function signOut(notice) {
  auth.clear();
  state.history = [];
  state.stats = null;
  state.agents = null;
  resetConversations();
  resetCatalog();
  resetReport();
  resetWebhooks();
  resetPartners();
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
  loadEmails();
  const { name, arg } = viewFromHash();
  showView(name, arg);
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
    if (state.view === 'operations') renderCharts();
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
    fillAgentFilter();
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

// ------------------------------------------------------------------ views

const VIEWS = ['operations', 'conversations', 'replies', 'reports', 'webhooks', 'partners'];
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** "#conversations/<session id>" → {name: 'conversations', arg: '<session id>'}. */
// ------------------------------------------------------------------ email outbox

async function loadEmails() {
  const bearer = token();
  if (!bearer) return;
  const result = await api('/api/admin/emails?limit=50', { token: bearer });
  if (state.stopped || refused(result)) return;
  const body = clear($('emails'));
  $('emails-error').hidden = result.ok;
  if (!result.ok) {
    $('emails-error').textContent = `The email outbox could not be loaded: ${result.error.message || 'no answer'}.`;
    return;
  }
  if (!result.data.length) {
    body.append(h('tr', {}, h('td', { colspan: '6', class: 'muted', style: { textAlign: 'center', padding: '24px' }, text: 'No email yet.' })));
    return;
  }
  for (const email of result.data) {
    const pill = { sent: 'pill', queued: 'pill pill-admin', failed: 'pill pill-off' }[email.status] || 'pill';
    body.append(h('tr', { testid: 'admin-email-row', dataset: { emailId: email.id, status: email.status } },
      h('td', { text: formatDateTime(email.createdAt) }),
      h('td', { text: email.toAddress }),
      h('td', { text: email.kind.replace(/_/g, ' ') }),
      h('td', {}, h('span', { class: pill, testid: 'admin-email-status', text: email.status })),
      h('td', { style: { fontVariantNumeric: 'tabular-nums' }, testid: 'admin-email-attempts', text: String(email.attempts) }),
      h('td', { class: 'muted', testid: 'admin-email-error', text: email.lastError || '' })));
  }
}

$('emails-refresh').append(icon('refresh', 15), h('span', { text: 'Refresh' }));
$('emails-refresh').addEventListener('click', () => loadEmails());

function viewFromHash() {
  const [name, arg] = window.location.hash.replace(/^#/, '').split('/');
  return { name: VIEWS.includes(name) ? name : 'operations', arg: arg && UUID.test(arg) ? arg : null };
}

function showView(name, arg = null) {
  state.view = name;
  for (const view of VIEWS) {
    const selected = view === name;
    $(`view-${view}`).hidden = !selected;
    $(`tab-${view}`).setAttribute('aria-selected', String(selected));
    $(`tab-${view}`).tabIndex = selected ? 0 : -1;
  }
  if (name === 'operations') renderCharts();
  else if (name === 'conversations') enterConversations(arg);
  else if (name === 'replies') loadCatalog();
  else if (name === 'reports') enterReports();
  else if (name === 'partners') loadPartners();
  if (name === 'webhooks') enterWebhooks();
  else leaveWebhooks();
}

window.addEventListener('hashchange', () => {
  if (state.stopped) return;
  const { name, arg } = viewFromHash();
  // Opening a chat rewrites the hash itself: nothing to do then.
  if (name === 'conversations' && state.view === 'conversations' && arg && arg === conversations.open) return;
  showView(name, arg);
});

// Arrow keys move along the tabs, as in any tab list.
$('admin-tabs').addEventListener('keydown', (event) => {
  const step = { ArrowRight: 1, ArrowLeft: -1 }[event.key];
  if (!step) return;
  event.preventDefault();
  const next = VIEWS[(VIEWS.indexOf(state.view) + step + VIEWS.length) % VIEWS.length];
  $(`tab-${next}`).focus();
  window.location.hash = next;
});

/** A date input's value (YYYY-MM-DD) as the start of that day here, `plusDays` later. */
function localDay(value, plusDays = 0) {
  const [year, month, day] = value.split('-').map(Number);
  return new Date(year, month - 1, day + plusDays);
}

const dayFormat = new Intl.DateTimeFormat(undefined, { day: 'numeric', month: 'short', year: 'numeric' });
const dateTimeFormat = new Intl.DateTimeFormat(undefined, { day: 'numeric', month: 'short', year: 'numeric', hour: 'numeric', minute: '2-digit' });

function formatDateTime(iso) {
  const date = new Date(iso);
  return Number.isNaN(date.getTime()) ? '—' : dateTimeFormat.format(date);
}

function missing(result) {
  return result.status === 404 || result.status === 405;
}

// ------------------------------------------------------------------ conversations

const SEARCH_PAGE = 30;
const READER_PAGE = 200;
const STATUS_LABELS = { bot: 'With the bot', waiting: 'Waiting', assigned: 'With an agent', closed: 'Closed' };
const ENDED_LABELS = { resolved: 'Resolved', closed_by_agent: 'Closed by the agent', customer_ended: 'Ended by the customer', abandoned: 'Abandoned' };
const SENDER_LABELS = { customer: 'Customer', bot: 'Bot', agent: 'Agent', note: 'Private note', system: 'System' };

const conversations = {
  loaded: false,
  request: 0, // the latest search asked; older answers are dropped
  params: null, // the latest search's query, without its cursor
  results: [],
  cursor: null,
  open: null, // the session in the reader
  reading: 0,
  messages: [],
  hasMore: false,
  typingTimer: null,
  teams: null,
  session: null, // the reader's session, as last read
};

function resetConversations() {
  clearTimeout(conversations.typingTimer);
  Object.assign(conversations, {
    loaded: false, request: conversations.request + 1, params: null, results: [], cursor: null, open: null,
    reading: conversations.reading + 1, messages: [], hasMore: false, teams: null, session: null,
  });
  $('search-form').reset();
  clear($('results'));
  $('results-empty').hidden = true;
  $('results-more').hidden = true;
  $('search-error').hidden = true;
  $('reader-body').hidden = true;
  $('reader-empty').hidden = false;
}

function enterConversations(sessionId) {
  fillAgentFilter();
  loadLabels();
  loadTeams();
  if (!conversations.loaded) {
    conversations.loaded = true;
    runSearch();
  }
  if (sessionId && sessionId !== conversations.open) openConversation(sessionId);
}

/** The agent filter lists every agent and admin, keeping the one chosen. */
function fillAgentFilter() {
  const select = $('search-form').elements.namedItem('agentId');
  const chosen = select.value;
  const agents = [...(state.agents || [])].sort((a, b) => String(a.name).localeCompare(String(b.name)));
  clear(select).append(h('option', { value: '', text: 'Any' }),
    ...agents.map((agent) => h('option', { value: agent.agentId, text: agent.name || agent.username || 'Agent' })));
  if (chosen && !agents.some((agent) => agent.agentId === chosen)) select.append(h('option', { value: chosen, text: 'An agent no longer listed' }));
  select.value = chosen;
}

function fillLabelFilter() {
  const select = $('search-form').elements.namedItem('label');
  const chosen = select.value;
  const labels = [...(catalog.labels || [])].sort((a, b) => a.name.localeCompare(b.name));
  clear(select).append(h('option', { value: '', text: 'Any' }), ...labels.map((label) => h('option', { value: label.name, text: label.name })));
  if (chosen && !labels.some((label) => label.name === chosen)) select.append(h('option', { value: chosen, text: chosen }));
  select.value = chosen;
}

/** The teams (departments) chats are routed to, for the team filter and the reader. */
async function loadTeams() {
  const bearer = token();
  if (!bearer) return;
  const result = await api('/api/teams', { token: bearer });
  if (state.stopped) return;
  if (result.ok && Array.isArray(result.data)) {
    conversations.teams = result.data;
    fillTeamFilter();
    // Team names where only ids were known.
    if (conversations.results.some((session) => session.teamId)) renderResults();
    if (conversations.session?.teamId) renderReaderHead(conversations.session);
  } else {
    refused(result);
  }
}

function fillTeamFilter() {
  const select = $('search-form').elements.namedItem('teamId');
  const chosen = select.value;
  const teams = [...(conversations.teams || [])].sort((a, b) => a.name.localeCompare(b.name));
  clear(select).append(h('option', { value: '', text: 'Any' }), ...teams.map((team) => h('option', { value: team.id, text: team.name })));
  if (chosen && !teams.some((team) => team.id === chosen)) select.append(h('option', { value: chosen, text: 'A team no longer listed' }));
  select.value = chosen;
  // The field is only worth its room once there are teams.
  select.closest('.field').hidden = !teams.length && !chosen;
}

function teamName(teamId) {
  if (!teamId || !conversations.teams) return null;
  return conversations.teams.find((team) => team.id === teamId)?.name || 'A removed team';
}

/** The form as a query for GET /api/sessions, or null (with the reason shown) when it cannot be asked. */
function searchQuery() {
  const form = $('search-form');
  const value = (name) => form.elements.namedItem(name).value.trim();
  const query = new URLSearchParams();
  if (value('q')) query.set('q', value('q'));
  for (const key of ['status', 'agentId', 'teamId', 'label', 'rating']) if (value(key)) query.set(key, value(key));
  // The dates are days here, in this browser's time zone: from the start of
  // the first to the end of the last.
  const from = value('from');
  const to = value('to');
  if (from && to && from > to) {
    showSearchError('The “From” date is after the “To” date.');
    return null;
  }
  if (from) query.set('from', localDay(from).toISOString());
  if (to) query.set('to', localDay(to, 1).toISOString());
  query.set('limit', String(SEARCH_PAGE));
  return query;
}

function showSearchError(text) {
  $('search-error').textContent = text;
  $('search-error').hidden = false;
  $('results-summary').textContent = 'Nothing searched';
}

async function runSearch({ more = false } = {}) {
  clearTimeout(conversations.typingTimer);
  if (state.stopped) return;
  const bearer = token();
  if (!bearer) return;
  const query = more ? new URLSearchParams(conversations.params) : searchQuery();
  const request = ++conversations.request;
  if (!query) {
    conversations.results = [];
    conversations.cursor = null;
    renderResults({ failed: true });
    return;
  }
  if (more) query.set('cursor', conversations.cursor);
  $('search-error').hidden = true;
  $('results-summary').textContent = more ? 'Loading more…' : 'Searching…';
  $('search-form').setAttribute('aria-busy', 'true');
  const result = await api(`/api/sessions?${query}`, { token: bearer });
  if (request !== conversations.request || state.stopped) return;
  $('search-form').removeAttribute('aria-busy');
  if (result.ok && Array.isArray(result.data?.sessions)) {
    if (!more) {
      conversations.results = [];
      query.delete('cursor');
      conversations.params = query.toString();
    }
    const known = new Set(conversations.results.map((session) => session.sessionId));
    conversations.results.push(...result.data.sessions.filter((session) => !known.has(session.sessionId)));
    conversations.cursor = result.data.nextCursor || null;
    renderResults();
  } else if (refused(result)) {
    // signed out
  } else {
    showSearchError(missing(result)
      ? 'Searching conversations is not available on this server yet.'
      : `The search failed: ${result.error.message || `HTTP ${result.status}`}`);
    if (!more) {
      conversations.results = [];
      conversations.cursor = null;
      renderResults({ failed: true });
    }
  }
}

function renderResults({ failed = false } = {}) {
  const list = clear($('results'));
  const found = conversations.results;
  list.append(...found.map(resultItem));
  $('results-empty').hidden = failed || found.length > 0;
  $('results-more').hidden = !conversations.cursor;
  if (!failed) {
    const count = `${found.length}${conversations.cursor ? '+' : ''}`;
    $('results-summary').textContent = found.length
      ? `${count} conversation${found.length === 1 && !conversations.cursor ? '' : 's'}, newest first`
      : 'No conversations found';
  }
}

function statusText(session) {
  if (session.status === 'closed') return ENDED_LABELS[session.endedReason] || 'Closed';
  return STATUS_LABELS[session.status] || session.status;
}

function statusPill(session, testid) {
  return h('span', { class: 'pill status-pill', testid, dataset: { status: session.status, ended: session.endedReason || '' }, text: statusText(session) });
}

function labelChips(names) {
  const colours = new Map((catalog.labels || []).map((label) => [label.name, label.color]));
  return (names || []).map((name) => {
    const chip = h('span', { class: 'admin-chip', testid: 'admin-label-chip', dataset: { label: name } }, h('i', { 'aria-hidden': 'true' }), name);
    const colour = colours.get(name);
    if (colour) chip.firstChild.style.background = colour;
    return chip;
  });
}

function resultItem(session) {
  const open = session.sessionId === conversations.open;
  const subject = session.title || session.category || 'Untitled chat';
  return h('li', {},
    h('button', {
      type: 'button', class: `result${open ? ' is-open' : ''}`, testid: 'admin-search-result',
      dataset: { sessionId: session.sessionId, status: session.status }, 'aria-current': open ? 'true' : null,
      onclick: () => openConversation(session.sessionId, session),
    },
    h('span', { class: 'result-top' },
      h('strong', { class: 'result-customer', testid: 'admin-search-result-customer', text: session.customerName || 'Customer' }),
      h('time', { class: 'result-date', datetime: session.createdAt, testid: 'admin-search-result-date', text: formatTime(session.createdAt) })),
    h('span', { class: `result-title${session.title || session.category ? '' : ' is-untitled'}`, testid: 'admin-search-result-title', text: subject }),
    h('span', { class: 'result-meta' },
      statusPill(session, 'admin-search-result-status'),
      h('span', { class: 'result-agent', testid: 'admin-search-result-agent' }, icon('person', 13), session.agentName || 'No agent'),
      teamName(session.teamId) ? h('span', { class: 'result-team', testid: 'admin-search-result-team' }, icon('people', 13), teamName(session.teamId)) : null,
      h('span', { class: 'result-count' }, icon('chat', 13), String(session.messageCount ?? 0)),
      labelChips(session.labels))));
}

async function openConversation(sessionId, known = null) {
  const bearer = token();
  if (!bearer) return;
  conversations.open = sessionId;
  const reading = ++conversations.reading;
  window.history.replaceState(null, '', `#conversations/${sessionId}`);
  for (const button of $('results').querySelectorAll('.result')) {
    const open = button.dataset.sessionId === sessionId;
    button.classList.toggle('is-open', open);
    if (open) button.setAttribute('aria-current', 'true');
    else button.removeAttribute('aria-current');
  }
  $('reader-empty').hidden = true;
  $('reader-body').hidden = false;
  $('reader-error').hidden = true;
  $('reader').dataset.sessionId = sessionId;
  $('reader').setAttribute('aria-busy', 'true');
  if (known) renderReaderHead(known);
  else renderReaderHead(null);
  conversations.messages = [];
  conversations.hasMore = false;
  renderTranscript();

  const [session, page] = await Promise.all([
    api(`/api/sessions/${encodeURIComponent(sessionId)}`, { token: bearer }),
    api(`/api/sessions/${encodeURIComponent(sessionId)}/messages?limit=${READER_PAGE}`, { token: bearer }),
  ]);
  if (reading !== conversations.reading || state.stopped) return;
  $('reader').removeAttribute('aria-busy');
  if ((!session.ok && refused(session)) || (!page.ok && refused(page))) return;
  if (session.ok) renderReaderHead(session.data);
  if (page.ok && Array.isArray(page.data?.messages)) {
    conversations.messages = page.data.messages;
    conversations.hasMore = Boolean(page.data.hasMore);
    renderTranscript();
  } else {
    const failed = page.ok ? session : page;
    $('reader-error').textContent = failed.status === 404
      ? 'This conversation no longer exists.'
      : `The messages could not be loaded: ${failed.error?.message || `HTTP ${failed.status}`}`;
    $('reader-error').hidden = false;
  }
}

function renderReaderHead(session) {
  conversations.session = session;
  if (!session) {
    $('reader-title').textContent = 'Loading…';
    $('reader-sub').textContent = '';
    $('reader-status').hidden = true;
    clear($('reader-facts'));
    return;
  }
  $('reader-title').textContent = session.customerName || 'Customer';
  $('reader-sub').textContent = session.title || session.category || 'Untitled chat';
  const status = $('reader-status');
  status.hidden = false;
  status.textContent = statusText(session);
  status.dataset.status = session.status;
  status.className = 'pill status-pill';
  const fact = (label, value, testid) => (value === null || value === undefined || value === '' || (Array.isArray(value) && !value.length)
    ? null
    : h('div', { class: 'fact' }, h('dt', { text: label }), h('dd', { testid }, value)));
  clear($('reader-facts')).append(...[
    fact('Agent', session.agentName || 'None', 'admin-reader-agent'),
    fact('Team', teamName(session.teamId), 'admin-reader-team'),
    fact('Started', formatDateTime(session.createdAt), 'admin-reader-started'),
    session.closedAt ? fact('Ended', formatDateTime(session.closedAt), 'admin-reader-ended') : null,
    fact('Priority', session.priority, 'admin-reader-priority'),
    fact('Category', session.category, 'admin-reader-category'),
    fact('Messages', String(session.messageCount ?? session.lastSeq ?? 0), 'admin-reader-count'),
    fact('Labels', labelChips(session.labels), 'admin-reader-labels'),
    fact('Closing note', session.notes, 'admin-reader-closing-note'),
  ].filter(Boolean));
}

function renderTranscript() {
  const list = clear($('transcript'));
  const messages = conversations.messages;
  $('reader-earlier').hidden = !conversations.hasMore;
  if (!messages.length) {
    if ($('reader').getAttribute('aria-busy') !== 'true') list.append(h('li', { class: 'transcript-empty', text: 'No messages in this chat.' }));
    return;
  }
  list.append(...messages.map(transcriptLine));
}

function transcriptLine(message) {
  const sender = SENDER_LABELS[message.sender] ? message.sender : 'system';
  const props = { class: `line line-${sender}`, testid: 'admin-reader-message', dataset: { sender, seq: String(message.seq) } };
  const when = h('time', { class: 'line-time', datetime: message.createdAt, title: formatDateTime(message.createdAt), text: formatTime(message.createdAt) });
  const text = h('p', { class: 'line-text', testid: 'admin-reader-text', text: message.content });
  if (sender === 'system') return h('li', props, text, when);
  const attachments = (message.attachments || []).map((file) => h('a', {
    class: 'line-file', href: `${file.url}${file.url.includes('?') ? '&' : '?'}token=${encodeURIComponent(token() || '')}`,
    target: '_blank', rel: 'noopener noreferrer',
  }, icon('file', 14), h('span', { text: file.fileName }), h('small', { text: formatSize(file.sizeBytes) })));
  return h('li', props,
    h('div', { class: 'line-meta' },
      sender === 'note' ? h('span', { class: 'note-tag', testid: 'admin-reader-note-label' }, icon('lock', 12), 'Private note') : null,
      h('strong', { class: 'line-who', text: message.senderName || SENDER_LABELS[sender] }),
      sender === 'note' ? null : h('span', { class: 'line-role', text: SENDER_LABELS[sender] }),
      when),
    text,
    attachments.length ? h('div', { class: 'line-files' }, attachments) : null);
}

async function loadEarlier() {
  const sessionId = conversations.open;
  const first = conversations.messages[0];
  const bearer = token();
  if (!sessionId || !first || !bearer) return;
  const reading = conversations.reading;
  $('reader-earlier').disabled = true;
  const page = await api(`/api/sessions/${encodeURIComponent(sessionId)}/messages?limit=${READER_PAGE}&before=${first.seq}`, { token: bearer });
  $('reader-earlier').disabled = false;
  if (reading !== conversations.reading || state.stopped) return;
  if (page.ok && Array.isArray(page.data?.messages)) {
    conversations.messages = [...page.data.messages, ...conversations.messages];
    conversations.hasMore = Boolean(page.data.hasMore);
    renderTranscript();
  } else if (!refused(page)) {
    toast(`Earlier messages could not be loaded: ${page.error.message || page.status}`, 'error');
  }
}

$('search-form').addEventListener('submit', (event) => {
  event.preventDefault();
  runSearch();
});
$('search-reset').addEventListener('click', () => {
  $('search-form').reset();
  runSearch();
});
$('search-form').addEventListener('change', (event) => {
  if (event.target.name !== 'q') runSearch();
});
$('search-form').elements.namedItem('q').addEventListener('input', () => {
  clearTimeout(conversations.typingTimer);
  conversations.typingTimer = setTimeout(() => runSearch(), 400);
});
$('results-more').addEventListener('click', () => runSearch({ more: true }));
$('reader-earlier').addEventListener('click', loadEarlier);

// ------------------------------------------------------------------ canned replies and labels

const catalog = {
  replies: null,
  labels: null,
  editing: null, // the reply being edited
  confirming: null, // the reply or label whose delete button asks again
};

function resetCatalog() {
  Object.assign(catalog, { replies: null, labels: null, editing: null, confirming: null });
  clear($('canned'));
  clear($('labels'));
}

function loadCatalog() {
  loadReplies();
  loadLabels();
}

async function loadReplies() {
  const bearer = token();
  if (!bearer) return;
  const result = await api('/api/canned-replies', { token: bearer });
  if (state.stopped) return;
  if (result.ok && Array.isArray(result.data)) {
    catalog.replies = result.data;
    $('canned-error').hidden = true;
    renderReplies();
  } else if (!refused(result)) {
    $('canned-error').textContent = missing(result)
      ? 'Canned replies are not available on this server yet (GET /api/canned-replies).'
      : `The canned replies could not be loaded: ${result.error.message || `HTTP ${result.status}`}.`;
    $('canned-error').hidden = false;
    $('canned-summary').textContent = 'Unavailable';
  }
}

function renderReplies() {
  const body = $('canned');
  // Someone is typing in a row: keep it as it is.
  if (catalog.editing && body.contains(document.activeElement) && document.activeElement.matches('input, textarea')) return;
  clear(body);
  const replies = [...(catalog.replies || [])].sort((a, b) => a.shortcut.localeCompare(b.shortcut));
  $('canned-summary').textContent = replies.length === 1 ? '1 reply' : `${replies.length} replies`;
  if (!replies.length) {
    body.append(h('tr', {}, h('td', { colspan: '4', class: 'muted table-empty', text: 'No canned replies yet. Add the first one below.' })));
    return;
  }
  for (const reply of replies) body.append(reply.id === catalog.editing ? replyEditor(reply) : replyRow(reply));
}

function deleteButton(kind, item, onDelete) {
  const asking = catalog.confirming === `${kind}:${item.id}`;
  if (!asking) {
    return h('button', {
      type: 'button', class: 'btn btn-sm btn-danger-soft', testid: `admin-${kind}-delete`, 'aria-label': `Delete ${item.shortcut || item.name}`,
      onclick: () => {
        catalog.confirming = `${kind}:${item.id}`;
        if (kind === 'canned') renderReplies();
        else renderLabels();
      },
    }, icon('trash', 14), h('span', { class: 'hide-sm', text: 'Delete' }));
  }
  return h('span', { class: 'confirm' },
    h('button', { type: 'button', class: 'btn btn-sm btn-danger', testid: `admin-${kind}-delete-confirm`, onclick: onDelete }, 'Delete'),
    h('button', {
      type: 'button', class: 'btn btn-sm btn-ghost', testid: `admin-${kind}-delete-cancel`,
      onclick: () => {
        catalog.confirming = null;
        if (kind === 'canned') renderReplies();
        else renderLabels();
      },
    }, 'Keep'));
}

function replyRow(reply) {
  return h('tr', { testid: 'admin-canned-row', dataset: { id: reply.id, shortcut: reply.shortcut } },
    h('td', { class: 'col-shortcut' }, h('code', { testid: 'admin-canned-shortcut-text', text: reply.shortcut })),
    h('td', { class: 'col-title', testid: 'admin-canned-title-text', text: reply.title }),
    h('td', { class: 'col-content' }, h('p', { class: 'reply-text', testid: 'admin-canned-content-text', text: reply.content })),
    h('td', { class: 'col-actions' }, h('span', { class: 'row-actions' },
      h('button', {
        type: 'button', class: 'btn btn-sm', testid: 'admin-canned-edit', 'aria-label': `Edit ${reply.shortcut}`,
        onclick: () => {
          catalog.editing = reply.id;
          catalog.confirming = null;
          renderReplies();
          $('canned').querySelector('[data-testid=admin-canned-edit-title]')?.focus();
        },
      }, 'Edit'),
      deleteButton('canned', reply, () => deleteReply(reply)))));
}

function replyEditor(reply) {
  const shortcut = h('input', {
    class: 'input', value: reply.shortcut, maxlength: '32', required: true, pattern: '[a-z0-9_\\-]{1,32}', testid: 'admin-canned-edit-shortcut',
    'aria-label': 'Shortcut', autocapitalize: 'none', spellcheck: 'false',
  });
  const title = h('input', { class: 'input', value: reply.title, maxlength: '100', required: true, testid: 'admin-canned-edit-title', 'aria-label': 'Title' });
  const content = h('textarea', { class: 'input', maxlength: '4000', required: true, rows: '3', testid: 'admin-canned-edit-content', 'aria-label': 'Reply' });
  content.value = reply.content;
  const error = h('p', { class: 'form-error', testid: 'admin-canned-edit-error', role: 'alert', hidden: true });
  const save = async () => {
    const patch = {};
    if (shortcut.value.trim() !== reply.shortcut) patch.shortcut = shortcut.value.trim();
    if (title.value.trim() !== reply.title) patch.title = title.value.trim();
    if (content.value.trim() !== reply.content) patch.content = content.value.trim();
    if (!Object.keys(patch).length) {
      catalog.editing = null;
      renderReplies();
      return;
    }
    for (const field of [shortcut, title, content]) {
      if (!field.reportValidity()) return;
    }
    const bearer = token();
    if (!bearer) return;
    const result = await api(`/api/admin/canned-replies/${encodeURIComponent(reply.id)}`, { method: 'PATCH', token: bearer, body: patch });
    if (result.ok) {
      catalog.editing = null;
      document.activeElement?.blur();
      toast(`Saved /${result.data?.shortcut || patch.shortcut || reply.shortcut}.`);
      loadReplies();
    } else if (!refused(result)) {
      error.textContent = result.status === 409
        ? `The shortcut “${patch.shortcut}” is taken by another reply.`
        : result.error.message || `Not saved (HTTP ${result.status}).`;
      error.hidden = false;
    }
  };
  const onKey = (event) => {
    if (event.key === 'Escape') {
      catalog.editing = null;
      renderReplies();
    } else if (event.key === 'Enter' && (event.target.tagName !== 'TEXTAREA' || event.ctrlKey || event.metaKey)) {
      event.preventDefault();
      save();
    }
  };
  return h('tr', { class: 'is-editing', testid: 'admin-canned-row', dataset: { id: reply.id, shortcut: reply.shortcut }, onkeydown: onKey },
    h('td', { class: 'col-shortcut' }, shortcut),
    h('td', { class: 'col-title' }, title),
    h('td', { class: 'col-content' }, content, error),
    h('td', { class: 'col-actions' }, h('span', { class: 'row-actions' },
      h('button', { type: 'button', class: 'btn btn-sm btn-primary', testid: 'admin-canned-save', onclick: save }, 'Save'),
      h('button', {
        type: 'button', class: 'btn btn-sm btn-ghost', testid: 'admin-canned-cancel',
        onclick: () => {
          catalog.editing = null;
          renderReplies();
        },
      }, 'Cancel'))));
}

async function deleteReply(reply) {
  const bearer = token();
  if (!bearer) return;
  const result = await api(`/api/admin/canned-replies/${encodeURIComponent(reply.id)}`, { method: 'DELETE', token: bearer });
  catalog.confirming = null;
  if (result.ok || result.status === 404) {
    toast(`Deleted /${reply.shortcut}.`);
    loadReplies();
  } else if (!refused(result)) {
    toast(`Not deleted: ${result.error.message || result.status}`, 'error');
    renderReplies();
  }
}

$('canned-form').addEventListener('submit', async (event) => {
  event.preventDefault();
  const form = event.target;
  const error = form.querySelector('[data-testid=admin-canned-form-error]');
  const ok = form.querySelector('[data-testid=admin-canned-form-ok]');
  error.hidden = true;
  ok.hidden = true;
  const bearer = token();
  if (!bearer) return;
  const field = (name) => form.elements.namedItem(name).value.trim();
  const body = { shortcut: field('shortcut'), title: field('title'), content: field('content') };
  const submit = form.querySelector('[type=submit]');
  submit.disabled = true;
  const result = await api('/api/admin/canned-replies', { method: 'POST', token: bearer, body });
  submit.disabled = false;
  if (result.ok) {
    ok.textContent = `Agents can now insert “${body.title}” with ${body.shortcut}.`;
    ok.hidden = false;
    form.reset();
    loadReplies();
  } else if (!refused(result)) {
    error.textContent = result.status === 409 && result.error.error === 'conflict'
      ? `The shortcut “${body.shortcut}” is taken: choose another.`
      : missing(result)
        ? 'Adding canned replies is not available on this server yet.'
        : result.error.message || `The reply was not added (HTTP ${result.status}).`;
    error.hidden = false;
  }
});

// What was wrong with the last try goes once the form is changed.
for (const form of [$('canned-form'), $('label-form')]) {
  form.addEventListener('input', () => {
    for (const note of form.querySelectorAll('.form-error, .form-ok')) note.hidden = true;
  });
}

async function loadLabels() {
  const bearer = token();
  if (!bearer) return;
  const result = await api('/api/labels', { token: bearer });
  if (state.stopped) return;
  if (result.ok && Array.isArray(result.data)) {
    catalog.labels = result.data;
    $('labels-error').hidden = true;
    renderLabels();
    fillLabelFilter();
  } else if (!refused(result)) {
    $('labels-error').textContent = missing(result)
      ? 'Labels are not available on this server yet (GET /api/labels).'
      : `The labels could not be loaded: ${result.error.message || `HTTP ${result.status}`}.`;
    $('labels-error').hidden = false;
    $('labels-summary').textContent = 'Unavailable';
  }
}

function renderLabels() {
  const list = clear($('labels'));
  const labels = [...(catalog.labels || [])].sort((a, b) => a.name.localeCompare(b.name));
  $('labels-summary').textContent = labels.length === 1 ? '1 label' : `${labels.length} labels`;
  if (!labels.length) {
    list.append(h('li', { class: 'muted label-empty', text: 'No labels yet. Add the first one below.' }));
    return;
  }
  for (const label of labels) {
    const swatch = h('i', { class: 'label-swatch', 'aria-hidden': 'true' });
    swatch.style.background = label.color;
    list.append(h('li', { class: 'label-item', testid: 'admin-label-item', dataset: { id: label.id, name: label.name, color: label.color } },
      swatch,
      h('span', { class: 'admin-label-name', testid: 'admin-label-item-name', text: label.name }),
      h('code', { class: 'label-hex', text: label.color }),
      deleteButton('label', label, () => deleteLabel(label))));
  }
}

async function deleteLabel(label) {
  const bearer = token();
  if (!bearer) return;
  const result = await api(`/api/admin/labels/${encodeURIComponent(label.id)}`, { method: 'DELETE', token: bearer });
  catalog.confirming = null;
  if (result.ok || result.status === 404) {
    toast(`Deleted the label ${label.name}.`);
    loadLabels();
  } else if (!refused(result)) {
    toast(`Not deleted: ${result.error.message || result.status}`, 'error');
    renderLabels();
  }
}

$('label-form').addEventListener('submit', async (event) => {
  event.preventDefault();
  const form = event.target;
  const error = form.querySelector('[data-testid=admin-label-form-error]');
  error.hidden = true;
  const bearer = token();
  if (!bearer) return;
  const body = { name: form.elements.namedItem('name').value.trim(), color: form.elements.namedItem('color').value.toLowerCase() };
  const submit = form.querySelector('[type=submit]');
  submit.disabled = true;
  const result = await api('/api/admin/labels', { method: 'POST', token: bearer, body });
  submit.disabled = false;
  if (result.ok) {
    toast(`Agents can now label chats “${body.name}”.`);
    form.elements.namedItem('name').value = '';
    loadLabels();
  } else if (!refused(result)) {
    error.textContent = result.status === 409 && result.error.error === 'conflict'
      ? `A label named “${body.name}” exists already.`
      : missing(result)
        ? 'Adding labels is not available on this server yet.'
        : result.error.message || `The label was not added (HTTP ${result.status}).`;
    error.hidden = false;
  }
});

// ------------------------------------------------------------------ reports

const RATING_COLOURS = { 1: '#dc2626', 2: '#f97316', 3: '#eab308', 4: '#84cc16', 5: '#16a34a' };

const report = { request: 0, data: null, loaded: false };

function resetReport() {
  Object.assign(report, { request: report.request + 1, data: null, loaded: false });
  $('report-form').reset();
}

/** YYYY-MM-DD `days` after the day `value` (YYYY-MM-DD), as calendar days. */
function shiftDay(value, days) {
  const date = new Date(`${value}T00:00:00Z`);
  date.setUTCDate(date.getUTCDate() + days);
  return date.toISOString().slice(0, 10);
}

/**
 * The range asked for: the last seven days unless someone chose one. The
 * server counts a chat in the day (UTC) it started, so "today" is UTC's.
 */
function reportRange() {
  const form = $('report-form');
  const from = form.elements.namedItem('from');
  const to = form.elements.namedItem('to');
  if (!to.value) to.value = new Date().toISOString().slice(0, 10);
  if (!from.value) from.value = shiftDay(to.value, -6);
  return { from: from.value, to: to.value };
}

function enterReports() {
  reportRange();
  if (!report.loaded) loadReport();
}

function showReportError(title, text) {
  const box = $('report-error');
  const iconBox = box.querySelector('.banner-icon');
  if (!iconBox.firstChild) iconBox.append(icon('alert', 20));
  $('report-error-title').textContent = title;
  $('report-error-text').textContent = text;
  box.hidden = false;
}

async function loadReport() {
  const bearer = token();
  if (!bearer) return;
  const { from, to } = reportRange();
  const request = ++report.request;
  if (from > to) {
    showReportError('The range is back to front.', 'The “From” date is after the “To” date.');
    return;
  }
  report.loaded = true;
  $('report-caption').textContent = 'Loading…';
  $('view-reports').setAttribute('aria-busy', 'true');
  const query = new URLSearchParams({ from, to });
  const result = await api(`/api/admin/reports?${query}`, { token: bearer });
  if (request !== report.request || state.stopped) return;
  $('view-reports').removeAttribute('aria-busy');
  if (result.ok && result.data?.overall) {
    $('report-error').hidden = true;
    report.data = result.data;
    renderReport(result.data);
  } else if (refused(result)) {
    // signed out
  } else {
    report.data = null;
    renderReport(null);
    if (missing(result)) showReportError('Reports are not available on this server yet.', 'The server does not offer GET /api/admin/reports.');
    else showReportError('The report could not be loaded.', result.error.message || `HTTP ${result.status}`);
  }
}

function csatText(csat) {
  return csat && csat.count > 0 && typeof csat.average === 'number' ? csat.average.toFixed(1) : '—';
}

function percentiles(figures) {
  if (!figures || num(figures.p50) === null) return '—';
  return `${formatDuration(num(figures.p50))} · ${formatDuration(num(figures.p90))}`;
}

function reportKpi(key, label, iconName, value, sub) {
  return h('div', { class: 'kpi', testid: 'admin-report-kpi', dataset: { report: key } },
    h('span', { class: 'kpi-label' }, icon(iconName, 15), label),
    h('span', { class: 'kpi-value', testid: 'admin-report-value', text: value }),
    h('span', { class: 'kpi-sub', text: sub }));
}

function renderReport(data) {
  const o = data?.overall;
  const dash = '—';
  $('report-caption').textContent = data
    ? `${dayFormat.format(localDay(data.from))} to ${dayFormat.format(localDay(data.to))} (days in UTC) · ${o.chats === 1 ? '1 chat' : `${o.chats} chats`} started`
    : '';
  const fr = o?.firstResponseSeconds || {};
  const res = o?.resolutionSeconds || {};
  clear($('report-kpis')).append(
    reportKpi('chats', 'Chats', 'chat', o ? String(o.chats ?? 0) : dash,
      o ? `${o.handedOff ?? 0} handed to a person` : 'No report'),
    reportKpi('handoff', 'Handed to a person', 'person', o ? percent(o.handoffRate) : dash,
      o ? 'Of the chats in the range' : 'No report'),
    reportKpi('first-response', 'First response (median)', 'zap', o ? formatDuration(num(fr.p50)) : dash,
      o ? `90th percentile ${formatDuration(num(fr.p90))}` : 'No report'),
    reportKpi('resolution', 'Resolution (median)', 'done', o ? formatDuration(num(res.p50)) : dash,
      o ? `90th percentile ${formatDuration(num(res.p90))}` : 'No report'),
    reportKpi('csat', 'Satisfaction (CSAT)', 'check', o ? csatText(o.csat) : dash,
      o ? (o.csat?.count === 1 ? '1 rating, out of 5' : `${o.csat?.count ?? 0} ratings, out of 5`) : 'No report'),
  );
  renderReportRows($('report-agents'), data?.byAgent, 'agent', 'No agent handled a chat in this range.');
  const teams = data?.byTeam || [];
  $('report-teams-card').hidden = !teams.length;
  renderReportRows($('report-teams'), teams, 'team', 'No team handled a chat in this range.');
  renderCsat(o?.csat);
}

function renderReportRows(body, rows, kind, emptyText) {
  clear(body);
  if (!rows?.length) {
    body.append(h('tr', {}, h('td', { colspan: '5', class: 'muted table-empty', testid: `admin-report-${kind}-empty`, text: emptyText })));
    return;
  }
  const sorted = [...rows].sort((a, b) => (b.chats ?? 0) - (a.chats ?? 0) || String(a.name).localeCompare(String(b.name)));
  for (const row of sorted) {
    const id = kind === 'agent' ? row.agentId : row.teamId;
    body.append(h('tr', { testid: `admin-report-${kind}-row`, dataset: { id: id || '' } },
      h('td', { class: 'col-who' }, h('div', { class: 'who' }, avatar(row.name || '?'), h('strong', { testid: `admin-report-${kind}-name`, text: row.name || '—' }))),
      h('td', { class: 'num', 'data-label': 'Chats', testid: `admin-report-${kind}-chats`, text: String(row.chats ?? 0) }),
      h('td', { class: 'num', 'data-label': 'First response', title: 'Median · 90th percentile', testid: `admin-report-${kind}-first-response`, text: percentiles(row.firstResponseSeconds) }),
      h('td', { class: 'num', 'data-label': 'Resolution', title: 'Median · 90th percentile', testid: `admin-report-${kind}-resolution`, text: percentiles(row.resolutionSeconds) }),
      h('td', { class: 'num', 'data-label': 'CSAT' },
        h('span', { testid: `admin-report-${kind}-csat`, text: csatText(row.csat) }),
        row.csat?.count ? h('small', { class: 'muted', text: ` (${row.csat.count})` }) : null)));
  }
}

/** The ratings 5 to 1 as bars, each as long as its share of the ratings. */
function renderCsat(csat) {
  const box = clear($('report-csat'));
  const distribution = csat?.distribution || {};
  const count = csat?.count ?? 0;
  $('report-csat-sub').textContent = count
    ? `Average ${csatText(csat)} out of 5, from ${count === 1 ? '1 rating' : `${count} ratings`}`
    : 'How customers rated their chats';
  if (!count) {
    box.append(h('div', { class: 'chart-empty report-csat-empty', testid: 'admin-report-csat-empty', text: csat ? 'No ratings in this range.' : 'No report.' }));
    return;
  }
  const most = Math.max(1, ...[1, 2, 3, 4, 5].map((rating) => distribution[rating] || 0));
  box.append(h('div', { class: 'bars', role: 'img', 'aria-label': [5, 4, 3, 2, 1].map((rating) => `${rating} stars: ${distribution[rating] || 0}`).join(', ') },
    [5, 4, 3, 2, 1].map((rating) => {
      const n = distribution[rating] || 0;
      const fill = h('div', { class: 'bar-fill' });
      fill.style.width = `${(n / most) * 100}%`;
      fill.style.background = RATING_COLOURS[rating];
      return h('div', { class: 'bar-row csat-row', testid: 'admin-report-csat-bar', dataset: { rating: String(rating), count: String(n) } },
        h('span', { class: 'bar-name', text: `${rating} ${rating === 1 ? 'star' : 'stars'}` }),
        h('div', { class: 'bar-track' }, fill),
        h('span', { class: 'bar-value', text: `${n} · ${percent(n / count)}` }));
    })));
}

async function exportCsv() {
  const bearer = token();
  if (!bearer) return;
  const { from, to } = reportRange();
  if (from > to) {
    showReportError('The range is back to front.', 'The “From” date is after the “To” date.');
    return;
  }
  const button = $('report-csv');
  button.disabled = true;
  let response = null;
  try {
    // With the bearer token in a header, never in a link anyone could copy.
    response = await fetch(`/api/admin/reports.csv?${new URLSearchParams({ from, to })}`, { headers: { Authorization: `Bearer ${bearer}` }, cache: 'no-store' });
  } catch {
    response = null;
  } finally {
    button.disabled = false;
  }
  if (!response) {
    toast('The server cannot be reached.', 'error');
    return;
  }
  if (response.status === 401 || response.status === 403) {
    refused({ status: response.status });
    return;
  }
  if (!response.ok) {
    toast(response.status === 404 ? 'CSV export is not available on this server yet.' : `The CSV could not be made (HTTP ${response.status}).`, 'error');
    return;
  }
  // The server names the file; this name is for a server that does not.
  const named = /filename="([^"]+)"/.exec(response.headers.get('Content-Disposition') || '');
  const url = URL.createObjectURL(await response.blob());
  const link = h('a', { href: url, download: named ? named[1] : `switchboard-report-${from}-${to}.csv`, hidden: true });
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10000);
}

$('report-form').addEventListener('submit', (event) => {
  event.preventDefault();
  loadReport();
});
$('report-form').addEventListener('change', () => loadReport());
$('report-csv').prepend(icon('file', 15));
$('report-csv').addEventListener('click', exportCsv);

// ------------------------------------------------------------------ webhooks

const WEBHOOK_POLL_MS = 3000;
const DELIVERY_LABELS = { pending: 'Pending', delivered: 'Delivered', failed: 'Failed' };

const webhooks = {
  list: null,
  open: new Set(), // hooks whose deliveries are shown
  deliveries: new Map(), // hook id → its latest deliveries
  confirming: null, // the hook whose delete button asks again
  timer: null,
};

function resetWebhooks() {
  leaveWebhooks();
  Object.assign(webhooks, { list: null, confirming: null });
  webhooks.open.clear();
  webhooks.deliveries.clear();
  clear($('webhooks'));
  hideSecret();
}

function enterWebhooks() {
  loadWebhooks();
}

function leaveWebhooks() {
  clearTimeout(webhooks.timer);
  webhooks.timer = null;
}

async function loadWebhooks() {
  clearTimeout(webhooks.timer);
  const bearer = token();
  if (!bearer) return;
  const result = await api('/api/admin/webhooks', { token: bearer });
  if (state.stopped || state.view !== 'webhooks') return;
  if (result.ok && Array.isArray(result.data)) {
    webhooks.list = result.data;
    $('webhooks-error').hidden = true;
    const known = new Set(result.data.map((hook) => hook.id));
    for (const id of [...webhooks.open]) if (!known.has(id)) webhooks.open.delete(id);
    await Promise.all([...webhooks.open].map((id) => loadDeliveries(id, bearer)));
    if (state.stopped || state.view !== 'webhooks') return;
    renderWebhooks();
  } else if (!refused(result)) {
    $('webhooks-error').textContent = missing(result)
      ? 'Webhooks are not available on this server yet (GET /api/admin/webhooks).'
      : `The webhooks could not be loaded: ${result.error.message || `HTTP ${result.status}`}.`;
    $('webhooks-error').hidden = false;
    $('webhooks-summary').textContent = 'Unavailable';
  }
  // Deliveries change on their own (retries): keep the open lists current.
  webhooks.timer = setTimeout(loadWebhooks, WEBHOOK_POLL_MS);
}

async function loadDeliveries(id, bearer) {
  const result = await api(`/api/admin/webhooks/${encodeURIComponent(id)}/deliveries?limit=20`, { token: bearer });
  if (result.ok && Array.isArray(result.data)) webhooks.deliveries.set(id, result.data);
}

function renderWebhooks() {
  const list = clear($('webhooks'));
  const hooks = webhooks.list || [];
  $('webhooks-summary').textContent = hooks.length === 1 ? '1 endpoint' : `${hooks.length} endpoints`;
  if (!hooks.length) {
    list.append(h('li', { class: 'muted label-empty', text: 'No endpoints yet. Add the first one below.' }));
    return;
  }
  for (const hook of hooks) list.append(webhookItem(hook));
}

function webhookItem(hook) {
  const open = webhooks.open.has(hook.id);
  const asking = webhooks.confirming === hook.id;
  const actions = h('span', { class: 'row-actions' },
    h('button', {
      type: 'button', class: 'btn btn-sm', testid: 'admin-webhook-toggle',
      onclick: () => changeWebhook(hook, { active: !hook.active }, hook.active ? 'Disabled' : 'Enabled'),
    }, hook.active ? 'Disable' : 'Enable'),
    h('button', { type: 'button', class: 'btn btn-sm', testid: 'admin-webhook-rotate', onclick: () => rotateSecret(hook) }, 'New secret'),
    h('button', {
      type: 'button', class: 'btn btn-sm', testid: 'admin-webhook-deliveries-toggle', 'aria-expanded': String(open),
      onclick: () => {
        if (open) webhooks.open.delete(hook.id);
        else webhooks.open.add(hook.id);
        loadWebhooks();
      },
    }, open ? 'Hide deliveries' : 'Deliveries'),
    asking
      ? h('span', { class: 'confirm' },
        h('button', { type: 'button', class: 'btn btn-sm btn-danger', testid: 'admin-webhook-delete-confirm', onclick: () => deleteWebhook(hook) }, 'Delete'),
        h('button', {
          type: 'button', class: 'btn btn-sm btn-ghost', testid: 'admin-webhook-delete-cancel',
          onclick: () => {
            webhooks.confirming = null;
            renderWebhooks();
          },
        }, 'Keep'))
      : h('button', {
        type: 'button', class: 'btn btn-sm btn-danger-soft', testid: 'admin-webhook-delete', 'aria-label': `Delete ${hook.url}`,
        onclick: () => {
          webhooks.confirming = hook.id;
          renderWebhooks();
        },
      }, icon('trash', 14), h('span', { class: 'hide-sm', text: 'Delete' })));
  return h('li', { class: 'webhook-item', testid: 'admin-webhook-row', dataset: { id: hook.id, active: String(hook.active) } },
    h('div', { class: 'webhook-head' },
      h('code', { class: 'webhook-url', testid: 'admin-webhook-url-text', text: hook.url }),
      h('span', { class: hook.active ? 'pill pill-ok' : 'pill pill-off', testid: 'admin-webhook-state', text: hook.active ? 'Active' : 'Disabled' }),
      actions),
    h('div', { class: 'webhook-events-list', testid: 'admin-webhook-events-text' },
      ...hook.events.map((event) => h('span', { class: 'pill', text: event }))),
    open ? deliveryTable(hook) : null);
}

function deliveryTable(hook) {
  const deliveries = webhooks.deliveries.get(hook.id);
  const rows = (deliveries || []).map((delivery) => h('tr', { testid: 'admin-webhook-delivery', dataset: { id: delivery.id, status: delivery.status, event: delivery.event } },
    h('td', {}, h('code', { text: delivery.event })),
    h('td', {}, h('span', {
      class: { delivered: 'pill pill-ok', failed: 'pill pill-off', pending: 'pill pill-wait' }[delivery.status] || 'pill',
      testid: 'admin-webhook-delivery-status', text: DELIVERY_LABELS[delivery.status] || delivery.status,
    })),
    h('td', { class: 'num', testid: 'admin-webhook-delivery-attempts', text: String(delivery.attempts) }),
    h('td', { class: 'num', testid: 'admin-webhook-delivery-code', text: delivery.lastStatusCode == null ? '—' : String(delivery.lastStatusCode) }),
    h('td', { class: 'webhook-error-text', testid: 'admin-webhook-delivery-error', text: delivery.lastError || '' }),
    h('td', { class: 'muted', text: formatDateTime(delivery.createdAt) })));
  return h('div', { class: 'webhook-deliveries table-wrap', testid: 'admin-webhook-deliveries' },
    h('table', { class: 'table' },
      h('thead', {}, h('tr', {}, ...['Event', 'Status', 'Attempts', 'Last HTTP status', 'Last error', 'Created'].map((title) => h('th', { scope: 'col', text: title })))),
      h('tbody', {}, rows.length
        ? rows
        : h('tr', {}, h('td', { colspan: '6', class: 'muted table-empty', text: deliveries ? 'Nothing sent yet.' : 'Loading…' })))));
}

function showSecret(hook) {
  $('webhook-secret-url').textContent = hook.url;
  $('webhook-secret-value').textContent = hook.secret;
  $('webhook-secret').hidden = false;
}

function hideSecret() {
  $('webhook-secret-value').textContent = '';
  $('webhook-secret').hidden = true;
}

$('webhook-secret-hide').addEventListener('click', hideSecret);
$('webhook-secret-copy').addEventListener('click', async () => {
  try {
    await navigator.clipboard.writeText($('webhook-secret-value').textContent);
    toast('Secret copied.');
  } catch {
    toast('Select the secret and copy it.', 'error');
  }
});

async function changeWebhook(hook, patch, done) {
  const bearer = token();
  if (!bearer) return;
  const result = await api(`/api/admin/webhooks/${encodeURIComponent(hook.id)}`, { method: 'PATCH', token: bearer, body: patch });
  if (result.ok) {
    toast(`${done}: ${hook.url}`);
    loadWebhooks();
  } else if (!refused(result)) {
    toast(`Not changed: ${result.error.message || result.status}`, 'error');
  }
}

async function rotateSecret(hook) {
  const bearer = token();
  if (!bearer) return;
  const result = await api(`/api/admin/webhooks/${encodeURIComponent(hook.id)}/secret`, { method: 'POST', token: bearer, body: {} });
  if (result.ok && result.data?.secret) {
    showSecret(result.data);
    loadWebhooks();
  } else if (!refused(result)) {
    toast(`No new secret: ${result.error.message || result.status}`, 'error');
  }
}

async function deleteWebhook(hook) {
  const bearer = token();
  if (!bearer) return;
  const result = await api(`/api/admin/webhooks/${encodeURIComponent(hook.id)}`, { method: 'DELETE', token: bearer });
  webhooks.confirming = null;
  if (result.ok || result.status === 404) {
    webhooks.open.delete(hook.id);
    toast(`Deleted ${hook.url}.`);
    loadWebhooks();
  } else if (!refused(result)) {
    toast(`Not deleted: ${result.error.message || result.status}`, 'error');
    renderWebhooks();
  }
}

$('webhook-form').addEventListener('submit', async (event) => {
  event.preventDefault();
  const form = event.target;
  const error = form.querySelector('[data-testid=admin-webhook-form-error]');
  error.hidden = true;
  const events = [...form.querySelectorAll('input[name=events]:checked')].map((box) => box.value);
  if (!events.length) {
    error.textContent = 'Choose at least one event.';
    error.hidden = false;
    return;
  }
  const bearer = token();
  if (!bearer) return;
  const submit = form.querySelector('[type=submit]');
  submit.disabled = true;
  const result = await api('/api/admin/webhooks', { method: 'POST', token: bearer, body: { url: form.elements.namedItem('url').value.trim(), events } });
  submit.disabled = false;
  if (result.ok) {
    form.reset();
    showSecret(result.data);
    webhooks.open.add(result.data.id);
    loadWebhooks();
  } else if (!refused(result)) {
    error.textContent = result.error.error === 'limit_reached'
      ? `${result.error.message}: delete one first.`
      : result.error.message || `The endpoint was not added (HTTP ${result.status}).`;
    error.hidden = false;
  }
});
$('webhook-form').addEventListener('input', () => {
  $('webhook-form').querySelector('.form-error').hidden = true;
});

// ------------------------------------------------------------------ partners

const partners = { list: null };

function resetPartners() {
  partners.list = null;
  clear($('partners'));
  clear($('partner-account-form').elements.namedItem('org'));
}

async function loadPartners() {
  const bearer = token();
  if (!bearer) return;
  const result = await api('/api/admin/partners', { token: bearer });
  if (state.stopped || state.view !== 'partners') return;
  if (result.ok && Array.isArray(result.data)) {
    partners.list = result.data;
    $('partners-error').hidden = true;
    renderPartners();
  } else if (!refused(result)) {
    $('partners-error').textContent = `The partner organisations could not be loaded: ${result.error.message || `HTTP ${result.status}`}.`;
    $('partners-error').hidden = false;
    $('partners-summary').textContent = 'Unavailable';
  }
}

function renderPartners() {
  const orgs = partners.list || [];
  $('partners-summary').textContent = orgs.length === 1 ? '1 organisation' : `${orgs.length} organisations`;
  const list = clear($('partners'));
  if (!orgs.length) list.append(h('li', { class: 'muted label-empty', text: 'No partner organisations yet. Add the first one below.' }));
  for (const org of orgs) list.append(partnerItem(org));
  // The account form's organisations, keeping the one chosen.
  const select = $('partner-account-form').elements.namedItem('org');
  const chosen = select.value;
  clear(select);
  for (const org of orgs) select.append(h('option', { value: org.id, text: org.name }));
  if (orgs.some((org) => org.id === chosen)) select.value = chosen;
}

function partnerItem(org) {
  const accounts = org.accounts.map((account) => h('tr', { testid: 'admin-partner-account', dataset: { userId: account.userId, active: String(account.active) } },
    h('td', { testid: 'admin-partner-account-display', text: account.displayName }),
    h('td', {}, h('code', { testid: 'admin-partner-account-username-text', text: account.username })),
    h('td', {}, h('span', { class: account.active ? 'pill pill-ok' : 'pill pill-off', text: account.active ? 'Active' : 'Disabled' }))));
  return h('li', { class: 'webhook-item', testid: 'admin-partner-org', dataset: { id: org.id } },
    h('div', { class: 'webhook-head' },
      h('strong', { testid: 'admin-partner-org-name-text', text: org.name }),
      h('span', { class: 'muted', text: org.accounts.length === 1 ? '1 account' : `${org.accounts.length} accounts` })),
    h('div', { class: 'table-wrap' },
      h('table', { class: 'table' },
        h('thead', {}, h('tr', {}, ...['Name', 'Username', 'Access'].map((title) => h('th', { scope: 'col', text: title })))),
        h('tbody', {}, accounts.length
          ? accounts
          : h('tr', {}, h('td', { colspan: '3', class: 'muted table-empty', text: 'No accounts yet.' }))))));
}

$('partner-org-form').addEventListener('submit', async (event) => {
  event.preventDefault();
  const form = event.target;
  const error = form.querySelector('.form-error');
  error.hidden = true;
  const bearer = token();
  if (!bearer) return;
  const submit = form.querySelector('[type=submit]');
  submit.disabled = true;
  const result = await api('/api/admin/partners', { method: 'POST', token: bearer, body: { name: form.elements.namedItem('name').value.trim() } });
  submit.disabled = false;
  if (result.ok) {
    form.reset();
    toast(`Added ${result.data.name}.`);
    await loadPartners();
    // The next account most likely belongs to the organisation just added.
    $('partner-account-form').elements.namedItem('org').value = result.data.id;
  } else if (!refused(result)) {
    error.textContent = result.error.message || `The organisation was not added (HTTP ${result.status}).`;
    error.hidden = false;
  }
});

$('partner-account-form').addEventListener('submit', async (event) => {
  event.preventDefault();
  const form = event.target;
  const error = form.querySelector('.form-error');
  const ok = form.querySelector('.form-ok');
  error.hidden = true;
  ok.hidden = true;
  const field = (key) => form.elements.namedItem(key).value;
  const org = field('org');
  if (!org) {
    error.textContent = 'Add an organisation first.';
    error.hidden = false;
    return;
  }
  const bearer = token();
  if (!bearer) return;
  const submit = form.querySelector('[type=submit]');
  submit.disabled = true;
  const result = await api(`/api/admin/partners/${encodeURIComponent(org)}/accounts`, {
    method: 'POST',
    token: bearer,
    body: { username: field('username').trim(), displayName: field('displayName').trim(), password: field('password') },
  });
  submit.disabled = false;
  if (result.ok) {
    form.elements.namedItem('username').value = '';
    form.elements.namedItem('displayName').value = '';
    form.elements.namedItem('password').value = '';
    ok.textContent = `${result.data.displayName} can sign in at /partner as ${result.data.username}.`;
    ok.hidden = false;
    loadPartners();
  } else if (!refused(result)) {
    error.textContent = result.error.message || `The account was not added (HTTP ${result.status}).`;
    error.hidden = false;
  }
});

// ------------------------------------------------------------------ start

const saved = auth.get();
if (saved && saved.role === 'admin') start(saved);
else showSignInOrSetup();
