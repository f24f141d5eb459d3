// The admin console's Reports view against the real server: a customer's chat
// goes to a new agent of a new team, who answers and resolves it, and the
// customer rates it 4; the report for today shows that agent's and that
// team's rows (1 chat, CSAT 4.0) and the
// overall figures the API gives, a past range shows none, and the CSV the
// page downloads is the server's. Nothing is stubbed.

import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { after, before, describe, it } from 'node:test';

import { ADMIN, DESKTOP, PHONE, launchBrowser, screenshot, signIn, until, watch, watchCsp } from './helpers.mjs';
import {
  askForAPerson, hostCustomer, newAgent, newTeam, rest, say, signInByApi, staffSocket, startChat, tidyUp, uniqueWord, utcDate,
} from './scenario.mjs';

const PAST = { from: '2020-01-01', to: '2020-01-07' };

/** The page's way of writing a duration under a minute (as common.js formatDuration). */
function seconds(value) {
  return value === null || value === undefined ? '—' : `${Math.max(0, Math.round(value))}s`;
}

describe('the admin console reports a date range', () => {
  let browser;
  let page;
  let record;
  let violations;
  let admin;
  let agent;
  let socket;
  let sessionId;
  let team;
  const agentName = `Rhea ${uniqueWord('R')}`;
  const today = utcDate(0);

  const kpi = (key) => page.locator(`[data-testid=admin-report-kpi][data-report=${key}] [data-testid=admin-report-value]`).textContent();
  const agentRow = () => page.locator(`[data-testid=admin-report-agent-row][data-id="${agent.userId}"]`);
  const teamRow = () => page.locator(`[data-testid=admin-report-team-row][data-id="${team.id}"]`);
  const report = async ({ from, to }) => (await rest(`/api/admin/reports?from=${from}&to=${to}`, { token: admin.token, expect: 200 })).data;

  /** Sets the range in the page and waits for the report the server gives for it. */
  async function showRange({ from, to }) {
    await page.getByTestId('admin-report-from').fill(from);
    await page.getByTestId('admin-report-to').fill(to);
    await page.getByTestId('admin-report-submit').click();
    await until(async () => (await page.getByTestId('admin-view-reports').getAttribute('aria-busy')) === null
      && /chats? started$/.test(await page.getByTestId('admin-report-caption').textContent()), `the report for ${from} to ${to}`);
  }

  before(async () => {
    browser = await launchBrowser();
    const context = await browser.newContext({ viewport: DESKTOP, acceptDownloads: true });
    context.setDefaultTimeout(10000);
    page = await context.newPage();
    record = watch(page, 'admin');
    violations = await watchCsp(page);
    admin = await signInByApi(ADMIN);

    // A customer of high priority asks the team for a person; its new agent,
    // with room for one chat, comes online and is given it, the first in the queue.
    agent = await newAgent(admin, { username: uniqueWord('reporter-'), name: agentName, maxConcurrent: 1 });
    team = await newTeam(admin, `Invoices ${uniqueWord('T')}`, [agent.userId]);
    const customer = hostCustomer('Carla Csat', 'high');
    sessionId = await startChat(customer, { team: team.name });
    await say(customer, sessionId, 'The invoice shows my old address');
    await askForAPerson(customer, sessionId);
    const queue = (await rest('/api/admin/queue', { token: admin.token, expect: 200 })).data.waiting;
    assert.equal(queue[0]?.sessionId, sessionId, `the chat is first in the queue, so the new agent gets it (queue: ${JSON.stringify(queue)})`);
    socket = await staffSocket(await context.newPage(), agent);
    await socket.request('agent:join', { maxConcurrent: 1 });
    await socket.next('session:assigned', (data) => data.sessionId === sessionId);
    await say(agent, sessionId, 'Fixed: your invoice now shows the new address.');
    await rest(`/api/sessions/${sessionId}/resolve`, { method: 'POST', token: agent.token, body: { notes: 'address corrected' }, expect: 200 });
    await rest(`/api/sessions/${sessionId}/rating`, { method: 'POST', token: customer.token, body: { rating: 4, comment: 'Quick fix' }, expect: 204 });
  });

  after(async () => {
    await socket?.close().catch(() => {});
    await browser?.close();
    if (admin) await tidyUp(admin, { teams: [team].filter(Boolean), agents: [agent].filter(Boolean) });
  });

  it('opens on the last seven days, ending today', async () => {
    await signIn(page, '/admin#reports', ADMIN);
    await page.getByTestId('admin-view-reports').waitFor();
    assert.equal(await page.getByTestId('admin-report-to').inputValue(), today);
    assert.equal(await page.getByTestId('admin-report-from').inputValue(), utcDate(-6));
    await agentRow().waitFor();
  });

  it("shows today's chat: its agent's row with 1 chat and CSAT 4.0, and the overall figures the API gives", async () => {
    await showRange({ from: today, to: today });
    const api = await report({ from: today, to: today });
    const mine = api.byAgent.find((row) => row.agentId === agent.userId);
    assert.equal(mine.chats, 1);
    assert.equal(mine.csat.average, 4);

    assert.equal(await agentRow().getByTestId('admin-report-agent-name').textContent(), agentName);
    assert.equal(await agentRow().getByTestId('admin-report-agent-chats').textContent(), '1');
    assert.equal(await agentRow().getByTestId('admin-report-agent-csat').textContent(), '4.0');
    assert.equal(await agentRow().getByTestId('admin-report-agent-first-response').textContent(),
      `${seconds(mine.firstResponseSeconds.p50)} · ${seconds(mine.firstResponseSeconds.p90)}`);
    assert.notEqual(mine.resolutionSeconds.p50, null, 'the resolved chat has a resolution time');
    assert.equal(await agentRow().getByTestId('admin-report-agent-resolution').textContent(),
      `${seconds(mine.resolutionSeconds.p50)} · ${seconds(mine.resolutionSeconds.p90)}`);
    assert.equal(await page.getByTestId('admin-report-agent-row').count(), api.byAgent.length, 'a row per agent the API lists');

    // The team's row: the same chat.
    const teamFigures = api.byTeam.find((row) => row.teamId === team.id);
    assert.equal(teamFigures.chats, 1);
    assert.equal(await teamRow().getByTestId('admin-report-team-name').textContent(), team.name);
    assert.equal(await teamRow().getByTestId('admin-report-team-chats').textContent(), '1');
    assert.equal(await teamRow().getByTestId('admin-report-team-csat').textContent(), '4.0');
    assert.equal(await page.getByTestId('admin-report-team-row').count(), api.byTeam.length, 'a row per team the API lists');

    // Overall: every chat started today (other tests' too), as the API counts them.
    assert.ok(api.overall.chats >= 1);
    assert.equal(await kpi('chats'), String(api.overall.chats));
    assert.equal(await kpi('csat'), api.overall.csat.average.toFixed(1));
    assert.equal(await kpi('handoff'), `${Math.round(api.overall.handoffRate * 100)}%`);
    const bars = await page.getByTestId('admin-report-csat-bar').evaluateAll((items) => Object.fromEntries(items.map((item) => [item.dataset.rating, Number(item.dataset.count)])));
    assert.deepEqual(bars, Object.fromEntries(Object.entries(api.overall.csat.distribution).map(([rating, n]) => [rating, n])));
    assert.ok(bars[4] >= 1, 'the rating of 4 is among them');
    // The bars (5 down to 1) are drawn in proportion: the most given rating fills its track.
    const widths = await page.getByTestId('admin-report-csat-bar').evaluateAll((items) => items.map((item) => [
      item.querySelector('.bar-fill').getBoundingClientRect().width, item.querySelector('.bar-track').clientWidth]));
    const most = Math.max(...Object.values(bars));
    [5, 4, 3, 2, 1].forEach((rating, i) => {
      const [width, track] = widths[i];
      assert.ok(Math.abs(width - (track * bars[rating]) / most) < 2, `the bar of ${rating} is ${bars[rating]}/${most} of its track (${width} of ${track})`);
    });
    await screenshot(page, 'admin-reports', { fullPage: true });
  });

  it('shows none for a range before any chat', async () => {
    await showRange(PAST);
    const api = await report(PAST);
    assert.equal(api.overall.chats, 0);
    assert.equal(await kpi('chats'), '0');
    assert.equal(await kpi('csat'), '—');
    assert.equal(await page.getByTestId('admin-report-agent-row').count(), 0);
    assert.equal(await page.getByTestId('admin-report-team-row').count(), 0);
    await page.getByTestId('admin-report-agent-empty').waitFor();
    await page.getByTestId('admin-report-csat-empty').waitFor();
    assert.match(await page.getByTestId('admin-report-caption').textContent(), /0 chats started/);
  });

  it('refuses a range that ends before it starts', async () => {
    await page.getByTestId('admin-report-from').fill(today);
    await page.getByTestId('admin-report-to').fill(utcDate(-1));
    await page.locator('[data-testid=admin-report-error]:not([hidden])').waitFor();
    assert.match(await page.getByTestId('admin-report-error').textContent(), /after/);
  });

  it('downloads the CSV the server makes for the range', async () => {
    await showRange({ from: today, to: today });
    const [download] = await Promise.all([page.waitForEvent('download'), page.getByTestId('admin-report-csv').click()]);
    assert.equal(download.suggestedFilename(), `switchboard-report-${today}-${today}.csv`);
    const csv = readFileSync(await download.path(), 'utf8');
    const expected = (await rest(`/api/admin/reports.csv?from=${today}&to=${today}`, { token: admin.token, expect: 200 })).text;
    assert.equal(csv, expected);
    const line = csv.split('\n').find((l) => l.includes(agent.userId));
    assert.ok(line, "the agent's line");
    assert.match(line, new RegExp(`^agent,${agent.userId},${agentName},1,`));
    assert.match(csv, new RegExp(`\nteam,${team.id},${team.name},1,`), "the team's line");
  });

  it('fits a phone, and raised no dialog, page error or policy violation', async () => {
    await page.setViewportSize(PHONE);
    await screenshot(page, 'admin-reports-phone', { fullPage: true });
    await page.setViewportSize(DESKTOP);
    assert.deepEqual(record.dialogs, []);
    assert.deepEqual(record.errors, []);
    assert.deepEqual(violations, []);
  });
});
