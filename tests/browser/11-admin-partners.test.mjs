// The admin console's Partners view against the real server: the admin adds
// a partner organisation and an account to it on the page, a taken username
// is refused with the server's words, and the new member signs in on the
// partner page with the password the admin chose.

import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';

import { ADMIN, DESKTOP, launchBrowser, screenshot, signIn, until, watch, watchCsp } from './helpers.mjs';
import { tag } from './desk.mjs';
import { rest, signInByApi } from './scenario.mjs';

describe('the admin console manages partner organisations and their accounts', () => {
  const run = tag();
  const ORG = `Courier Express ${run}`;
  const MEMBER = { username: `dispatch.${run}`, password: `pw-${run}-${run}`, name: 'Dora Dispatch' };

  let browser;
  let context;
  let page;
  let record;
  let violations;
  let admin;
  const orgRow = () => page.locator('[data-testid=admin-partner-org]', { has: page.locator(`[data-testid=admin-partner-org-name-text]:text-is("${ORG}")`) });

  before(async () => {
    admin = await signInByApi(ADMIN);
    browser = await launchBrowser();
    context = await browser.newContext({ viewport: DESKTOP });
    context.setDefaultTimeout(10000);
    page = await context.newPage();
    record = watch(page, 'admin');
    violations = await watchCsp(page);
  });

  after(async () => {
    await browser?.close();
  });

  it('adds an organisation, then an account to it, and lists both', async () => {
    await signIn(page, '/admin#partners', ADMIN);
    await page.getByTestId('admin-view-partners').waitFor();
    await page.getByTestId('admin-partners-summary').filter({ hasText: /organisation/ }).waitFor();

    await page.getByTestId('admin-partner-org-name').fill(ORG);
    await page.getByTestId('admin-partner-org-submit').click();
    await orgRow().waitFor();
    assert.equal(await orgRow().getByTestId('admin-partner-account').count(), 0);
    // The account form has the new organisation chosen.
    const orgId = await orgRow().getAttribute('data-id');
    assert.equal(await page.getByTestId('admin-partner-account-org').inputValue(), orgId);

    await page.getByTestId('admin-partner-account-username').fill(MEMBER.username);
    await page.getByTestId('admin-partner-account-name').fill(MEMBER.name);
    await page.getByTestId('admin-partner-account-password').fill(MEMBER.password);
    await page.getByTestId('admin-partner-account-submit').click();
    await page.locator('[data-testid=admin-partner-account-ok]:not([hidden])').waitFor();
    const account = orgRow().getByTestId('admin-partner-account');
    await account.waitFor();
    assert.equal(await account.getByTestId('admin-partner-account-display').textContent(), MEMBER.name);
    assert.equal(await account.getByTestId('admin-partner-account-username-text').textContent(), MEMBER.username);
    assert.equal(await account.getAttribute('data-active'), 'true');

    // The server has them too.
    const listed = (await rest('/api/admin/partners', { token: admin.token, expect: 200 })).data.find((org) => org.id === orgId);
    assert.equal(listed.name, ORG);
    assert.deepEqual(listed.accounts.map((a) => [a.username, a.displayName, a.active]), [[MEMBER.username, MEMBER.name, true]]);
    await screenshot(page, 'admin-partners', { fullPage: true });
  });

  it('shows the server\'s reason when the username is taken', async () => {
    await page.getByTestId('admin-partner-account-username').fill(MEMBER.username);
    await page.getByTestId('admin-partner-account-name').fill('Someone Else');
    await page.getByTestId('admin-partner-account-password').fill(MEMBER.password);
    await page.getByTestId('admin-partner-account-submit').click();
    const error = page.locator('[data-testid=admin-partner-account-error]:not([hidden])');
    await error.waitFor();
    assert.equal(await error.textContent(), 'that username is taken');
    assert.equal(await orgRow().getByTestId('admin-partner-account').count(), 1);
  });

  it('the new member signs in on the partner page', async () => {
    const partner = await context.newPage();
    const partnerRecord = watch(partner, 'partner');
    await signIn(partner, '/partner', MEMBER);
    await until(async () => (await partner.getByTestId('partner-name').textContent()) === `${MEMBER.name} (${ORG})`, "the member's name with the organisation's");
    await partner.getByTestId('partner-chats-empty').waitFor();
    assert.deepEqual(partnerRecord.errors, []);

    assert.deepEqual(record.dialogs, []);
    assert.deepEqual(record.errors, []);
    assert.deepEqual(violations, []);
  });
});
