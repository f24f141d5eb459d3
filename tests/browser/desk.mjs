// Shared by the agent desk's tests of canned replies, labels and transfers:
// the admin's REST calls that set the scene, and a customer handed to an
// agent through the real widget and queue.

import { randomBytes } from 'node:crypto';

import { ADMIN, BASE_URL, until, widgetMessages } from './helpers.mjs';

/** A short random tag that keeps names made by one run apart from every other's. */
export function tag() {
  return randomBytes(3).toString('hex');
}

/** A JSON call to the server under test: {status, data}. */
export async function rest(path, { method = 'GET', token, body } = {}) {
  const headers = {};
  if (token) headers.Authorization = `Bearer ${token}`;
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  const response = await fetch(`${BASE_URL}${path}`, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  const text = await response.text();
  let data = null;
  try { data = text ? JSON.parse(text) : null; } catch { data = text; }
  return { status: response.status, data };
}

/** Signs in over REST (POST /auth/login) and returns {token, userId, name, role}. */
export async function login({ username, password }) {
  const { status, data } = await rest('/auth/login', { method: 'POST', body: { username, password } });
  if (status !== 200) throw new Error(`signing in ${username} failed: ${status} ${JSON.stringify(data)}`);
  return data;
}

/** The admin's bearer token (the admin scripts/browser-tests.sh created). */
export async function adminToken() {
  return (await login(ADMIN)).token;
}

/** Sets the desk's presence toggle to `status` (online or away) and waits for the server's answer. */
export async function setPresence(page, status) {
  const toggle = page.getByTestId('agent-status-toggle');
  await page.locator('[data-testid=agent-connection][data-state=open]').waitFor();
  await until(async () => !(await toggle.isDisabled()), 'the presence toggle to be enabled');
  if ((await toggle.getAttribute('data-status')) !== status) await toggle.click();
  await page.locator(`[data-testid=agent-status-toggle][data-status=${status}]`).waitFor();
}

/** The session id the widget keeps in localStorage. */
export function widgetSession(page) {
  return page.evaluate(() => {
    const key = Object.keys(localStorage).find((k) => k.startsWith('switchboard:v1:'));
    return key ? JSON.parse(localStorage.getItem(key)).sessionId || null : null;
  });
}

/**
 * The customer opens the widget on the demo shop, starts a chat under
 * `name` and asks for a person; the agent (away, so nobody is assigned by
 * the queue) picks it up from the board. Returns the session id.
 */
export async function customerHandedTo(customer, agent, { name, agentName, question }) {
  await customer.goto(`${BASE_URL}/`);
  await customer.getByTestId('sb-launcher').click();
  await customer.getByTestId('sb-name').fill(name);
  await customer.getByTestId('sb-start').click();
  await customer.locator('[data-testid=sb-message][data-sender=bot]').first().waitFor();
  const sessionId = await until(() => widgetSession(customer), 'the session id in the widget');
  await customer.getByTestId('sb-input').fill(question);
  await customer.getByTestId('sb-input').press('Enter');
  await until(async () => (await widgetMessages(customer)).some((m) => m.text === question && m.seq), "the customer's message to be acknowledged");
  await customer.getByTestId('sb-talk-to-person').click();
  await customer.getByTestId('sb-queue').waitFor();
  const item = agent.locator(`[data-testid=agent-queue-item][data-session-id="${sessionId}"]`);
  await item.waitFor();
  await item.getByTestId('agent-pickup').click();
  await agent.locator(`[data-testid=agent-chat][data-session-id="${sessionId}"]`).waitFor();
  await until(async () => (await customer.getByTestId('sb-agent-name').textContent().catch(() => '')) === agentName,
    "the agent's name in the widget");
  return sessionId;
}
