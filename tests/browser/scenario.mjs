// Scenarios the admin page's tests set up through the real server's API, as a
// customer, an agent and an admin would: nothing here is stubbed, and the
// page under test reads what these calls stored.

import { createHmac, randomUUID } from 'node:crypto';

import { BASE_URL } from './helpers.mjs';

/** A REST call to the server under test; `expect` fails the test on any other status. */
export async function rest(path, { method = 'GET', token, body, expect } = {}) {
  const headers = {};
  if (token) headers.Authorization = `Bearer ${token}`;
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  const response = await fetch(`${BASE_URL}${path}`, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  const text = await response.text();
  let data = null;
  try {
    data = text ? JSON.parse(text) : null;
  } catch {
    data = text;
  }
  if (expect !== undefined && response.status !== expect) {
    throw new Error(`${method} ${path} answered ${response.status}, not ${expect}: ${text.slice(0, 300)}`);
  }
  return { status: response.status, data, text, headers: response.headers };
}

/** A word nobody has said: letters only, so full-text search keeps it whole. */
export function uniqueWord(prefix) {
  const letters = 'bcdfghjklmnpqrstvwxz';
  let word = prefix;
  for (let i = 0; i < 8; i += 1) word += letters[Math.floor(Math.random() * letters.length)];
  return word;
}

/** YYYY-MM-DD of `date` plus `days`, in this machine's time zone (the browser's too). */
export function localDate(days = 0, date = new Date()) {
  const day = new Date(date.getFullYear(), date.getMonth(), date.getDate() + days);
  return `${day.getFullYear()}-${String(day.getMonth() + 1).padStart(2, '0')}-${String(day.getDate()).padStart(2, '0')}`;
}

/** The same, in UTC: the days the server's reports count in. */
export function utcDate(days = 0, date = new Date()) {
  return new Date(date.getTime() + days * 86400000).toISOString().slice(0, 10);
}

export async function signInByApi({ username, password }) {
  return (await rest('/auth/login', { method: 'POST', body: { username, password }, expect: 200 })).data;
}

/** A new visitor with their own token, as the widget makes one. */
export async function visitor(name) {
  return (await rest('/api/auth/visitor', { method: 'POST', body: { name }, expect: 200 })).data;
}

/**
 * A customer signed in on a host website, with the token that site would
 * mint (scripts/browser-tests.sh shares the server's secret with the tests):
 * only such a token may give the customer a priority in the queue.
 */
export function hostCustomer(name, priority = 'normal') {
  const secret = process.env.SWITCHBOARD_JWT_SECRET;
  if (!secret) throw new Error('SWITCHBOARD_JWT_SECRET is not set: run the tests through scripts/browser-tests.sh');
  const encode = (value) => Buffer.from(JSON.stringify(value)).toString('base64url');
  const now = Math.floor(Date.now() / 1000);
  const userId = randomUUID();
  const body = `${encode({ alg: 'HS256', typ: 'JWT' })}.${encode({
    sub: userId, role: 'customer', name, priority, iss: 'switchboard', aud: 'switchboard:customer', iat: now, nbf: now - 5, exp: now + 600,
  })}`;
  return { token: `${body}.${createHmac('sha256', secret).update(body).digest('base64url')}`, userId, name };
}

/** The customer starts a chat (with the bot), for a team if `team` names one; its session id. */
export async function startChat(customer, { team } = {}) {
  return (await rest('/api/sessions', { method: 'POST', token: customer.token, body: team ? { team } : {}, expect: 201 })).data.sessionId;
}

/** A team an admin makes through the API, with these agents in it. */
export async function newTeam(admin, name, agentIds = []) {
  const team = (await rest('/api/admin/teams', { method: 'POST', token: admin.token, body: { name }, expect: 201 })).data;
  if (agentIds.length) {
    await rest(`/api/admin/teams/${team.id}/members`, { method: 'PUT', token: admin.token, body: { agentIds }, expect: 200 });
  }
  return team;
}

/** Someone in the chat says `content`; resolves once it is stored. */
export async function say(who, sessionId, content) {
  return (await rest(`/api/sessions/${sessionId}/messages`, {
    method: 'POST', token: who.token, body: { content, clientMsgId: `t-${randomUUID()}` }, expect: 201,
  })).data;
}

/** Staff write a private note in the chat. */
export async function note(who, sessionId, content) {
  return (await rest(`/api/sessions/${sessionId}/notes`, { method: 'POST', token: who.token, body: { content }, expect: 201 })).data;
}

/** The customer asks for a person: the chat joins the queue. */
export async function askForAPerson(customer, sessionId) {
  return (await rest(`/api/sessions/${sessionId}/transfer`, { method: 'POST', token: customer.token, body: { reason: 'asked for a person' }, expect: 200 })).data;
}

/** A new agent account, made by an admin through the API; signed in. */
export async function newAgent(admin, { username, name, maxConcurrent = 5 }) {
  const password = `pw-${randomUUID()}`;
  await rest('/api/admin/agents', {
    method: 'POST', token: admin.token, body: { username, password, displayName: name, maxConcurrent, role: 'agent' }, expect: 201,
  });
  return signInByApi({ username, password });
}

/**
 * Leaves nothing of a test's scenario in the way of the tests after it: its
 * chats closed, its teams and labels removed, its agents disabled. Best effort.
 */
export async function tidyUp(admin, { sessions = [], teams = [], labels = [], agents = [] }) {
  const quietly = (path, options) => rest(path, { token: admin.token, ...options }).catch(() => null);
  for (const id of sessions) await quietly(`/api/sessions/${id}/resolve`, { method: 'POST', body: {} });
  for (const team of teams) await quietly(`/api/admin/teams/${team.id}`, { method: 'DELETE' });
  for (const label of labels) await quietly(`/api/admin/labels/${label.id}`, { method: 'DELETE' });
  for (const agent of agents) await quietly(`/api/admin/agents/${agent.userId}`, { method: 'PATCH', body: { disabled: true } });
}

/**
 * An agent's WebSocket on the agent desk's endpoint, opened from a page of
 * the server (Node 20 has no WebSocket of its own): `request` sends a frame
 * and resolves with its reply; `next` waits for a push.
 */
export async function staffSocket(page, login) {
  await page.goto(`${BASE_URL}/api/info`);
  await page.evaluate((token) => new Promise((resolve, reject) => {
    const url = `${location.origin.replace(/^http/, 'ws')}/ws/agent?token=${encodeURIComponent(token)}`;
    const ws = new WebSocket(url);
    window.__frames = [];
    window.__ws = ws;
    ws.onmessage = (event) => window.__frames.push(JSON.parse(event.data));
    ws.onopen = () => resolve();
    ws.onerror = () => reject(new Error('the agent socket did not open'));
  }), login.token);
  let counter = 0;
  const frames = () => page.evaluate(() => window.__frames);
  const waitFor = async (match, what, timeout = 10000) => {
    const deadline = Date.now() + timeout;
    for (;;) {
      const found = (await frames()).find(match);
      if (found) return found;
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}; frames: ${JSON.stringify(await frames()).slice(0, 2000)}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  };
  return {
    async request(event, data = {}) {
      counter += 1;
      const ref = `t${counter}`;
      await page.evaluate((frame) => window.__ws.send(JSON.stringify(frame)), { event, ref, data });
      const reply = await waitFor((frame) => frame.ref === ref, `the reply to ${event}`);
      if (reply.event === 'error') throw new Error(`${event} failed: ${JSON.stringify(reply.data)}`);
      return reply;
    },
    next: (event, match = () => true, timeout) => waitFor((frame) => frame.event === event && match(frame.data), event, timeout),
    close: () => page.evaluate(() => window.__ws.close(1000)),
  };
}
